"""Everything the ranking needs of a question, from one forward pass of the model.

The searcher asks three things of a question: its pooled vector, its *focus* vector (the question
without the corpus-wide topic words, see :func:`embeddings.lexical.strip_words`) and its token
vectors (for MaxSim). Encoding the question and its stripped text separately costs two forward
passes; here the focus vector is the mean of the question's own token vectors with the topic
words' word pieces left out. The topic words still shape the other tokens' vectors (they were
in the text the transformer read), which is the difference from encoding the stripped text. So
the focus also leaves out [CLS] and [SEP] (which hold the whole sentence's context) and takes
away ``topic_weight`` times the direction of what it left out (:func:`focus_vector`): with that,
one pass ranks better than two (``citebot eval``; README, Evaluation).

Pure functions over arrays: the model's part is :meth:`embeddings.model.Encoder.token_states`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from .lexical import words


@dataclass(frozen=True)
class TokenStates:
    """One text's token vectors as the transformer left them (no padding; [CLS] first, [SEP]
    last) and each token's character span in the text ((0, 0) for the special tokens)."""

    vectors: np.ndarray  # (tokens, dim) float32
    offsets: np.ndarray  # (tokens, 2) int


class QuestionVectors(NamedTuple):
    """What the ranking uses of one question: all unit length, float32. A tuple, so that the
    searcher's byte-bounded cache counts its arrays (:func:`embeddings.search.nbytes`)."""

    pooled: np.ndarray  # (dim,) the model's sentence embedding: mean of every token
    focus: np.ndarray  # (dim,) mean of the tokens that are not topic words
    tokens: np.ndarray  # (tokens - 2, dim) token vectors for MaxSim, [CLS] and [SEP] dropped


class TokenStateEncoder(Protocol):
    def token_states(self, texts: list[str]) -> list[TokenStates]: ...


def mean_pool(vectors: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Mean of the rows of ``vectors`` where ``keep`` is true (sentence-transformers' mean pooling)."""
    weights = keep.astype(np.float32)
    return (weights @ vectors) / max(float(weights.sum()), 1e-9)


def unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to unit length, float32."""
    return np.asarray(vector / max(float(np.linalg.norm(vector)), 1e-12), dtype=np.float32)


def dropped_word_spans(text: str, drop: frozenset[str]) -> list[tuple[int, int]]:
    """Character spans of the words :func:`~embeddings.lexical.strip_words` leaves out of ``text``
    (none when it would leave nothing, since it then keeps the whole text)."""
    spans, kept = [], []
    for match in re.finditer(r"\S+", text):
        if re.sub(r"[^a-z0-9]", "", match.group().lower()) in drop:
            spans.append(match.span())
        else:
            kept.append(match.group())
    return spans if spans and words(" ".join(kept)) else []


def focus_mask(offsets: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Which tokens the focus vector keeps: all but the word pieces inside ``spans`` (sorted,
    disjoint). Special tokens ((0, 0) spans) are kept, as they are when the stripped text is encoded."""
    keep = np.ones(len(offsets), dtype=bool)
    if not len(spans) or not len(offsets):
        return keep
    starts = np.array([s for s, _ in spans])
    ends = np.array([e for _, e in spans])
    token_start, token_end = offsets[:, 0], offsets[:, 1]
    i = np.searchsorted(starts, token_start, side="right") - 1
    inside = (i >= 0) & (token_start < ends[np.maximum(i, 0)]) & (token_end > token_start)
    keep[inside] = False
    return keep


def focus_vector(vectors: np.ndarray, keep: np.ndarray, topic_weight: float = 0.0) -> np.ndarray:
    """The focus of one question: the mean of its ``keep`` token vectors (``vectors`` start with
    [CLS] and end with [SEP]), less ``topic_weight`` times the unit mean of the others.

    The kept tokens were read beside the topic words and carry some of them; taking away the
    direction of what was left out (the topic words' pieces and, when ``topic_weight`` is set,
    [CLS] and [SEP] too, which hold the whole sentence's context) points the focus at what the
    question asks beyond its topic. That is further from an encoding of the stripped text than
    the plain mean (cosine 0.70 against 0.83 on the benchmark questions) and ranks better
    (README, Evaluation). ``topic_weight`` 0 is the plain mean of the ``keep`` tokens."""
    content = keep.copy()
    if topic_weight and len(content) > 2 and content[1:-1].any():
        content[[0, -1]] = False
    focus = unit(mean_pool(vectors, content))
    if topic_weight and not content.all():
        focus = unit(focus - topic_weight * unit(mean_pool(vectors, ~content)))
    return focus


def question_vectors(states: TokenStates, keep: np.ndarray, topic_weight: float = 0.0) -> QuestionVectors:
    """Pool one question's token vectors: all of them, and the ``keep`` ones (the focus, see
    :func:`focus_vector`)."""
    vectors = states.vectors
    everything = np.ones(len(vectors), dtype=bool)
    tokens = vectors[1:-1] if len(vectors) > 2 else vectors
    norms = np.linalg.norm(tokens, axis=1, keepdims=True)
    return QuestionVectors(
        unit(mean_pool(vectors, everything)),
        focus_vector(vectors, keep, topic_weight),
        np.ascontiguousarray(tokens / np.maximum(norms, 1e-12), dtype=np.float32),
    )


def encode_questions(
    encoder: TokenStateEncoder, texts: list[str], topic_words: frozenset[str], topic_weight: float = 0.0
) -> list[QuestionVectors]:
    """Pooled, focus and token vectors of each question, from one forward pass of the batch."""
    out = []
    for text, states in zip(texts, encoder.token_states(texts), strict=True):
        keep = focus_mask(states.offsets, dropped_word_spans(text, topic_words))
        out.append(question_vectors(states, keep, topic_weight))
    return out
