"""Several texts per row of one forward pass, instead of one text per row padded to the longest.

A batch of questions padded to its longest spends half the model's work on padding: questions run
from 4 to 30 word pieces, and the bot encodes each one with its focus text (the question without
the topic words), shorter still. Almost all of a forward pass is in the linear layers, whose cost
is one row of work per token wherever the token sits, so packing short texts side by side in a
row, each with position ids from 0 and a block-diagonal attention mask (a text sees only its own
tokens), gives every text the same vectors (to float rounding, tests/test_model.py) for far fewer
token slots. Attention grows with the row's length, which :func:`row_layout`'s cost keeps in
check: it picks the number of rows that costs least, not the fewest rows.

Pure functions over lists and arrays; :meth:`embeddings.model.Encoder.forward` runs the model.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil

import numpy as np

# How long a row gets before attention (every token against every token of its row) costs as much
# per token as the linear layers: MiniLM-L6's six layers do about 21 MFLOP of matrix products per
# token, and attention about 9 kFLOP per token per token of the row. Timed on batches of 1 to 32
# questions with their focus texts, 300 to 3,000 gave the same speed (bench/README.md, "Where the
# CPU goes per question").
ATTENTION_TOKENS = 1000.0


def balance_rows(lengths: Sequence[int], rows: int) -> list[list[int]]:
    """The texts (indices into ``lengths``) in at most ``rows`` rows of near-equal total length:
    longest first, each into the emptiest row so far (longest-processing-time scheduling)."""
    heap = [(0, row) for row in range(max(1, rows))]
    out: list[list[int]] = [[] for _ in heap]
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        fill, row = heapq.heappop(heap)
        out[row].append(i)
        heapq.heappush(heap, (fill + lengths[i], row))
    return [row for row in out if row]


def layout_cost(lengths: Sequence[int], rows: list[list[int]], attention_tokens: float = ATTENTION_TOKENS) -> float:
    """The work of a forward pass over ``rows`` padded to the longest: token slots, each dearer as
    the row it attends over grows."""
    width = max(sum(lengths[i] for i in row) for row in rows)
    return len(rows) * width * (1 + width / attention_tokens)


def row_layout(lengths: Sequence[int], attention_tokens: float = ATTENTION_TOKENS) -> list[list[int]]:
    """Rows for texts of ``lengths`` tokens, the cheapest of a few candidate row widths (one to four
    times the longest text, and one text per row as the library does), by :func:`layout_cost`."""
    if not lengths:
        return []
    longest, total = max(lengths), sum(lengths)
    candidates = {len(lengths)} | {ceil(total / (longest * k)) for k in (1, 2, 3, 4)}
    layouts = [balance_rows(lengths, rows) for rows in sorted(candidates)]
    return min(layouts, key=lambda rows: layout_cost(lengths, rows, attention_tokens))


@dataclass(frozen=True)
class PackedBatch:
    """The model's inputs for texts packed into rows, and where each text's tokens lie."""

    input_ids: np.ndarray  # (rows, width) int64, 0 where a row is padded
    position_ids: np.ndarray  # (rows, width) int64, each text counting from 0
    attention_mask: np.ndarray  # (rows, 1, width, width) bool: a token sees the tokens of its own text
    spans: list[tuple[int, int, int]]  # per text: (row, first token, tokens)


def pack(token_ids: Sequence[Sequence[int]], rows: list[list[int]]) -> PackedBatch:
    """The texts' word-piece ids laid out as ``rows`` say (:func:`row_layout`). A row's padding is
    a block of its own, so that no token attends to nothing (softmax over no key is NaN)."""
    width = max(sum(len(token_ids[i]) for i in row) for row in rows)
    input_ids = np.zeros((len(rows), width), dtype=np.int64)
    position_ids = np.zeros((len(rows), width), dtype=np.int64)
    block = np.zeros((len(rows), width), dtype=np.int64)
    spans: list[tuple[int, int, int]] = [(0, 0, 0)] * len(token_ids)
    for r, row in enumerate(rows):
        start = 0
        for number, i in enumerate(row):
            n = len(token_ids[i])
            input_ids[r, start : start + n] = token_ids[i]
            position_ids[r, start : start + n] = np.arange(n)
            block[r, start : start + n] = number
            spans[i] = (r, start, n)
            start += n
        block[r, start:] = len(row)
    mask = (block[:, :, None] == block[:, None, :])[:, None]
    return PackedBatch(input_ids, position_ids, mask, spans)
