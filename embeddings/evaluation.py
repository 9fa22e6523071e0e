"""Retrieval evaluation: hit@k, MRR@5, answered and abstention rates, for any pipeline.

A question is answered at rank r when the r-th passage contains one of its evidence strings,
both normalised (lower case, every run of characters other than a-z0-9 folded to one space).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .chunking import fixed_size_chunks
from .fusion import Weights, calibrate_threshold
from .search import Searcher

K = 5


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    docs: tuple[str, ...]
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class EvalSet:
    questions: list[EvalQuestion]
    off_topic: list[str]


@dataclass(frozen=True)
class Answer:
    """What a pipeline returned for one question: abstained?, passages, best similarity."""

    abstained: bool
    passages: list[str]
    best_similarity: float


Pipeline = Callable[[Sequence[str]], list[Answer]]


def load_eval_set(path: Path) -> EvalSet:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    questions = [
        EvalQuestion(str(item["q"]), tuple(str(item.get("doc", "")).split(",")), tuple(item["evidence"]))
        for item in data.get("questions", [])
    ]
    return EvalSet(questions, [str(q) for q in data.get("off_topic", [])])


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def hit_rank(passages: Sequence[str], evidence: Sequence[str], k: int = K) -> int | None:
    """1-based rank of the first passage holding any evidence string, within the top k."""
    wanted = [normalize(e) for e in evidence]
    for rank, passage in enumerate(passages[:k], start=1):
        text = f" {normalize(passage)} "
        if any(f" {w} " in text for w in wanted):
            return rank
    return None


def score(eval_set: EvalSet, answers: Sequence[Answer], off_answers: Sequence[Answer]) -> dict[str, float]:
    """The metrics of one pipeline's answers to the corpus and off-topic questions."""
    ranks = [None if a.abstained else hit_rank(a.passages, q.evidence)
             for q, a in zip(eval_set.questions, answers, strict=True)]
    n = max(1, len(ranks))
    shown = [len(p) for a in answers for p in a.passages[:3]]
    return {
        "hit@1": sum(r == 1 for r in ranks if r) / n,
        "hit@3": sum(r <= 3 for r in ranks if r) / n,
        "hit@5": sum(r <= 5 for r in ranks if r) / n,
        "mrr@5": sum(1 / r for r in ranks if r) / n,
        "answered": sum(not a.abstained for a in answers) / n,
        "abstained_off_topic": sum(a.abstained for a in off_answers) / max(1, len(off_answers)),
        "mean_chars": statistics.mean(shown) if shown else 0.0,
    }


def evaluate(eval_set: EvalSet, pipeline: Pipeline) -> dict[str, Any]:
    answers = pipeline([q.question for q in eval_set.questions])
    off_answers = pipeline(eval_set.off_topic)
    result: dict[str, Any] = score(eval_set, answers, off_answers)
    result["misses"] = [
        q.question for q, a in zip(eval_set.questions, answers, strict=True)
        if a.abstained or hit_rank(a.passages, q.evidence) != 1
    ]
    result["calibrated_threshold"] = calibrate_threshold(
        [a.best_similarity for a in answers], [a.best_similarity for a in off_answers])
    return result


# ------------------------------------------------------------------------------------ pipelines

def searcher_pipeline(searcher: Searcher, weights: Weights | None = None) -> Pipeline:
    """The full pipeline, or an ablation of it with other weights."""

    def run(questions: Sequence[str]) -> list[Answer]:
        original = searcher.weights
        searcher.weights = weights or original
        try:
            results = searcher.search_many(list(questions), k=K)
        finally:
            searcher.weights = original
        return [Answer(r.abstained, [h.text for h in r.hits], r.best_similarity) for r in results]

    return run


DENSE_ONLY = Weights(dense_passage=0.35, dense_sentence=0.35, dense_focus=0.3, bm25=0.0)
BM25_ONLY = Weights(dense_passage=0.0, dense_sentence=0.0, dense_focus=0.0, bm25=1.0)


def naive_pipeline(searcher: Searcher, size: int = 1000, overlap: int = 200) -> Pipeline:
    """What the tutorials build: fixed 1000-character chunks (200 overlap), dense only, flat index.

    Abstains with the same similarity threshold as the full pipeline.
    """
    import faiss

    chunks = [doc.text[a:b] for doc in searcher.data.documents for a, b in fixed_size_chunks(doc.text, size, overlap)]
    vectors = searcher.encoder.encode(chunks)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)

    def run(questions: Sequence[str]) -> list[Answer]:
        q = searcher.encoder.encode(list(questions))
        similarities, ids = index.search(q, min(K, len(chunks)))
        return [Answer(bool(sims[0] < searcher.abstain_below), [chunks[i] for i in row if i >= 0], float(sims[0]))
                for sims, row in zip(similarities, ids, strict=True)]

    return run


def compare_pipelines(eval_set: EvalSet, searcher: Searcher) -> dict[str, dict[str, Any]]:
    """The full pipeline beside its dense-only and BM25-only ablations and the naive baseline."""
    return {
        "full": evaluate(eval_set, searcher_pipeline(searcher)),
        "dense-only": evaluate(eval_set, searcher_pipeline(searcher, DENSE_ONLY)),
        "bm25-only": evaluate(eval_set, searcher_pipeline(searcher, BM25_ONLY)),
        "naive-1000/200-dense": evaluate(eval_set, naive_pipeline(searcher)),
    }
