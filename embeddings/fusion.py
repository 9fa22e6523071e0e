"""The retrieval math: combining scores, choosing non-overlapping passages, abstaining.

Plain functions over numpy arrays, in the style of sentence-transformers' retrieve & rerank
example, so each step can be tested with three-element arrays.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Weights:
    dense_passage: float
    dense_sentence: float
    dense_focus: float
    bm25: float
    # late interaction (ColBERT-style MaxSim over the model's token vectors); 0 turns it off
    token_maxsim: float = 0.0


def normalize_by_max(scores: np.ndarray) -> np.ndarray:
    """Scale non-negative scores into [0, 1] by the largest; all zeros stay zeros."""
    top = float(scores.max()) if scores.size else 0.0
    return scores / top if top > 0 else np.zeros_like(scores)


def segment_max(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Maximum of each of the back-to-back segments of ``values`` (along axis 0) with the given
    (>= 1) lengths."""
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.intp)
    return np.maximum.reduceat(values, offsets, axis=0)


def maxsim(query_tokens: np.ndarray, passage_tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Late-interaction similarity of one question with back-to-back passages (ColBERT's MaxSim).

    ``query_tokens`` (q, d) and ``passage_tokens`` (t, d) are L2-normalised token vectors; the
    passages own consecutive runs of ``lengths`` (>= 1) rows. Each question token takes its best
    match in the passage, and the passage scores the mean of those: a passage that matches every
    part of the question beats one that shares only the topic, which a single pooled vector of a
    homogeneous corpus cannot tell apart.
    """
    if not len(lengths):
        return np.zeros(0, dtype=np.float32)
    best = segment_max(passage_tokens @ query_tokens.T, lengths)  # (passages, question tokens)
    return best.mean(axis=1)


def maxsim_in_place(
    query_tokens: np.ndarray, token_vectors: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """:func:`maxsim` of passages whose token vectors are the rows ``starts[i] .. starts[i] +
    lengths[i]`` of ``token_vectors``, read where they lie: gathering them into one matrix first
    copied megabytes per question and was slower (bench/latency.py)."""
    query_t = np.ascontiguousarray(query_tokens.T, dtype=np.float32)
    best = np.empty((len(starts), query_t.shape[1]), dtype=np.float32)  # (passages, question tokens)
    for row, (start, length) in enumerate(zip(starts.tolist(), lengths.tolist(), strict=True)):
        # the array's own max, not np.max: the same reduction without numpy's Python wrapper, a
        # tenth of this loop's time at 40 passages
        (token_vectors[start : start + length] @ query_t).max(axis=0, out=best[row])
    return best.mean(axis=1)


def fuse(
    dense_passage: np.ndarray,
    dense_sentence: np.ndarray,
    dense_focus: np.ndarray,
    bm25: np.ndarray,
    weights: Weights,
) -> np.ndarray:
    """Weighted sum of the dense similarities and the max-normalised BM25 score.

    * ``dense_passage``: cosine of the question and the whole passage;
    * ``dense_sentence``: best cosine of the question and one sentence of the passage, which
      rewards the passage holding the one sentence that answers;
    * ``dense_focus``: the same for the question without the words every passage shares
      ("Russia", "Taliban"), which would otherwise dominate the similarity;
    * ``bm25``: lexical match, normalised so the best candidate scores 1.

    ``weights.token_maxsim`` is applied afterwards to the best candidates only (:func:`maxsim`,
    :func:`rerank_with`): it is the costly step.
    """
    return (
        weights.dense_passage * dense_passage
        + weights.dense_sentence * dense_sentence
        + weights.dense_focus * dense_focus
        + weights.bm25 * normalize_by_max(bm25)
    )


def rerank_with(scores: np.ndarray, top: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """``scores`` with ``extra`` added at positions ``top`` (the re-scored best candidates).

    The others get the smallest ``extra`` seen: a stand-in that keeps them comparable without
    computing it, so a re-scored candidate that matched badly can still fall below them.
    """
    out = np.asarray(scores, dtype=np.float64).copy()
    if len(top):
        out += float(extra.min())
        out[top] += extra - float(extra.min())
    return out


def select_non_overlapping(
    order: Sequence[int] | np.ndarray, docs: np.ndarray, starts: np.ndarray, ends: np.ndarray, limit: int
) -> list[int]:
    """Walk candidates best-first, keeping those that overlap no kept passage of the same document."""
    # plain Python lists: reading numpy arrays element by element was most of this function's time
    docs_, starts_, ends_ = np.asarray(docs).tolist(), np.asarray(starts).tolist(), np.asarray(ends).tolist()
    kept: list[int] = []
    kept_spans: dict[object, list[tuple[int, int]]] = {}  # document → (start, end) of its kept passages
    for i in np.asarray(order).tolist():
        start, end = starts_[i], ends_[i]
        spans = kept_spans.setdefault(docs_[i], [])
        if any(start < kept_end and kept_start < end for kept_start, kept_end in spans):
            continue
        spans.append((start, end))
        kept.append(i)
        if len(kept) >= limit:
            break
    return kept


def segment_rows(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Row numbers of the segments ``starts[i] .. starts[i] + lengths[i]``, back to back."""
    lengths = np.asarray(lengths, dtype=np.intp)
    shift = np.repeat(np.asarray(starts, dtype=np.intp) - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return shift + np.arange(int(lengths.sum()))


def should_abstain(best_similarity: float, threshold: float) -> bool:
    """No passage is similar enough to the question: say the sources don't cover it."""
    return not best_similarity >= threshold


def calibrate_threshold(on_topic: Sequence[float], off_topic: Sequence[float]) -> float:
    """The threshold that best separates best-similarities of corpus and off-topic questions.

    Maximises (answered corpus questions + abstained off-topic ones); among equally good
    thresholds takes the middle of the widest gap, so it generalises rather than hugs a point.
    """
    values = sorted(set(on_topic) | set(off_topic))
    if not values:
        return 0.0
    candidates = [values[0] - 1e-3] + [(a + b) / 2 for a, b in itertools.pairwise(values)] + [values[-1] + 1e-3]

    def correct(t: float) -> int:
        return sum(s >= t for s in on_topic) + sum(s < t for s in off_topic)

    best = max(correct(t) for t in candidates)
    tied = [t for t in candidates if correct(t) == best]
    return (min(tied) + max(tied)) / 2
