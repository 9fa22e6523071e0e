"""Sentences and passages: the units that are embedded, searched and shown.

A passage is a run of whole sentences of one paragraph, about ``target_chars`` long and never over
``max_chars`` (unless one sentence alone is longer). One passage starts at every sentence, so
consecutive passages overlap and an answer near a boundary always has a passage that holds it
with its neighbours; overlapping results are merged away at search time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from .cleaning import CleanText


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class PassageSpan:
    """Sentences ``first..last`` (inclusive) of a document, and their character span."""

    first: int
    last: int
    start: int
    end: int


@lru_cache(maxsize=1)
def _segmenter():  # pysbd builds its rules once; it is slow to construct
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(clean: CleanText, max_chars: int = 600) -> list[Span]:
    """Sentence spans of every paragraph, in order; over-long "sentences" are cut at words."""
    spans: list[Span] = []
    for block in clean.paragraphs():
        paragraph = clean.text[block.start : block.end]
        cursor = 0
        for piece in _segmenter().segment(paragraph):
            stripped = piece.strip()
            if not stripped:
                continue
            local = paragraph.find(stripped, cursor)
            if local < 0:  # pysbd changed the text; fall back to the rest of the paragraph
                local = cursor
                stripped = paragraph[cursor:].strip()
            cursor = local + len(stripped)
            for start, end in cut_long(stripped, max_chars):
                spans.append(Span(block.start + local + start, block.start + local + end))
            if cursor >= len(paragraph):
                break
    return spans


# builds record it: a change to how text is cut into sentences and passages re-embeds every document
# (2: over-long sentences cut at an inner sentence's end, not at the last space that fits)
CHUNKING_VERSION = 2

# where an over-long "sentence" is best cut, best first: after an inner sentence's end (a
# quotation of several sentences is one sentence to pysbd), a semicolon or colon, a comma, any space
_CUT_PREFERENCES = (
    re.compile(r"[.?!][\"”’)]*(?=\s+[\"“‘(]?[A-Z0-9])"),  # not "the U.S. started"
    re.compile(r"[;:](?=\s)"),
    re.compile(r",(?=\s)"),
)


def cut_long(sentence: str, max_chars: int) -> list[tuple[int, int]]:
    """Split an over-long sentence into pieces of at most ``max_chars``: at an inner sentence's
    end where one falls in the last two thirds of the piece, else at a semicolon, a comma, a
    space (a flattened table), so that a piece reads as whole as it can."""
    pieces = []
    start = 0
    while len(sentence) - start > max_chars:
        cut = _cut_at(sentence, start, max_chars)
        pieces.append((start, cut))
        start = cut
        while start < len(sentence) and sentence[start] == " ":
            start += 1
    pieces.append((start, len(sentence)))
    return pieces


def _cut_at(sentence: str, start: int, max_chars: int) -> int:
    """Where the piece beginning at ``start`` ends: the last preferred boundary within
    ``max_chars`` and past a third of it, else the last space, else ``max_chars`` in."""
    window = sentence[start : start + max_chars]
    earliest = max_chars // 3
    for boundary in _CUT_PREFERENCES:
        ends = [m.end() for m in boundary.finditer(window) if m.end() >= earliest]
        if ends:
            return start + ends[-1]
    space = sentence.rfind(" ", start, start + max_chars)
    return space if space > start else start + max_chars


def make_passages(clean: CleanText, sentences: Sequence[Span], target_chars: int, max_chars: int) -> list[PassageSpan]:
    """One passage starting at every sentence, grown to ``target_chars`` within its paragraph."""
    paragraph_of = _paragraph_index(clean, sentences)
    passages = []
    for first, sentence in enumerate(sentences):
        last = first
        while (
            last + 1 < len(sentences)
            # a very short paragraph ("They are:") borrows from the next one
            and (
                paragraph_of[last + 1] == paragraph_of[first]
                or sentences[last].end - sentence.start < target_chars // 3
            )
            and sentences[last].end - sentence.start < target_chars
            and sentences[last + 1].end - sentence.start <= max_chars
        ):
            last += 1
        passages.append(PassageSpan(first, last, sentence.start, sentences[last].end))
    return drop_contained(passages)


def drop_contained(passages: Sequence[PassageSpan]) -> list[PassageSpan]:
    """Drop a passage that ends where the previous one ends: it adds no text of its own.

    (The tail of a paragraph would otherwise appear as 3, 2 and 1-sentence passages.) A
    one-sentence tail is kept: it is the most focused passage for its sentence.
    """
    kept: list[PassageSpan] = []
    for passage in passages:
        if kept and passage.end == kept[-1].end and passage.last > passage.first:
            continue
        kept.append(passage)
    return kept


def _paragraph_index(clean: CleanText, sentences: Sequence[Span]) -> list[int]:
    paragraphs = clean.paragraphs()
    index = []
    p = 0
    for sentence in sentences:
        while p + 1 < len(paragraphs) and sentence.start >= paragraphs[p + 1].start:
            p += 1
        index.append(p)
    return index


def fixed_size_chunks(text: str, size: int = 1000, overlap: int = 200) -> list[tuple[int, int]]:
    """The tutorial baseline: fixed windows of characters, cut anywhere. Only for comparison."""
    step = max(1, size - overlap)
    return [(start, min(len(text), start + size)) for start in range(0, max(1, len(text) - overlap), step)]
