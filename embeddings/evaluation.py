"""Retrieval evaluation: hit@k, MRR@5, answered and decline rates, overall and per question kind,
for any pipeline; and cross-validation of candidate settings over stratified folds.

A question is answered at rank r when the r-th passage contains one of its evidence strings,
both normalised (lower case, every run of characters other than a-z0-9 folded to one space).
A declined answer (for whatever reason: off-topic, not covered, ...) answers nothing, even when
it offers the closest passages; for an ``unanswerable`` question declining is the right answer.
"""

from __future__ import annotations

import itertools
import random
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chunking import fixed_size_chunks
from .fusion import Weights, calibrate_threshold
from .search import Searcher
from .yamlfile import read_yaml

K = 5
LOOKUP, CURRENT, UNANSWERABLE = "lookup", "current", "unanswerable"
# ``current``: the answer the newest source gives must come first; ``unanswerable``: on-topic
# words, but no document says it, so the right answer is to decline (such questions have no evidence)
KINDS = (LOOKUP, "why", "when", "how_many", "who", CURRENT, UNANSWERABLE)
RANK_METRICS = ("hit@1", "hit@3", "hit@5", "mrr@5", "answered")


class EvalSetError(ValueError):
    """An evaluation file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    docs: tuple[str, ...]
    evidence: tuple[str, ...]
    kind: str = LOOKUP

    @property
    def answerable(self) -> bool:
        return self.kind != UNANSWERABLE


@dataclass(frozen=True)
class EvalSet:
    questions: list[EvalQuestion]
    off_topic: list[str]

    def subset(self, questions: Sequence[int], off_topic: Sequence[int]) -> EvalSet:
        """The questions and off-topic questions at the given positions."""
        return EvalSet([self.questions[i] for i in questions], [self.off_topic[i] for i in off_topic])


@dataclass(frozen=True)
class Answer:
    """What a pipeline returned for one question: declined?, passages, best similarity."""

    abstained: bool  # declined, for any reason; passages may still be offered as "closest"
    passages: list[str]
    best_similarity: float
    declined_reason: str | None = None


Pipeline = Callable[[Sequence[str]], list[Answer]]


def is_declined(result: Any) -> bool:
    """Whether a search result declines to answer: its abstention flag, or any declined reason
    ("off-topic", "not-covered", ...), whatever the reason and whether or not passages come with it."""
    return bool(
        getattr(result, "abstained", False)
        or getattr(result, "declined", False)
        or getattr(result, "declined_reason", None)
    )


# ------------------------------------------------------------------------------------ the file


def load_eval_set(path: Path) -> EvalSet:
    """Read and check an evaluation file; :class:`EvalSetError` names the file and what is wrong."""
    data = read_yaml(path, EvalSetError, "evaluation file")
    if not isinstance(data, dict) or "questions" not in data:
        raise EvalSetError(
            f"{path}: not an evaluation set: expected a mapping with `questions:` "
            "(and optionally `off_topic:`), see tests/data/eval.yaml"
        )
    items, off_topic = data.get("questions") or [], data.get("off_topic") or []
    if not isinstance(items, list) or not isinstance(off_topic, list):
        raise EvalSetError(f"{path}: `questions` and `off_topic` must be lists")
    questions = [_question(path, n, item) for n, item in enumerate(items, start=1)]
    for n, text in enumerate(off_topic, start=1):
        if not isinstance(text, str) or not text.strip():
            raise EvalSetError(f"{path}: off_topic #{n}: must be a non-empty string, got {text!r}")
    if not questions and not off_topic:
        raise EvalSetError(f"{path}: holds no questions")
    return EvalSet(questions, list(off_topic))


def _question(path: Path, n: int, item: Any) -> EvalQuestion:
    where = f"{path}: question #{n}"
    if not isinstance(item, dict):
        raise EvalSetError(f"{where}: must be a mapping with `q:` and `evidence:`, got {item!r}")
    text = item.get("q")
    if not isinstance(text, str) or not text.strip():
        raise EvalSetError(f"{where}: needs `q:`, the question as a non-empty string")
    where = f"{where} ({text.strip()[:60]!r})"
    unknown = set(item) - {"q", "doc", "evidence", "kind"}
    if unknown:
        raise EvalSetError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    kind = item.get("kind", LOOKUP)
    if kind not in KINDS:
        raise EvalSetError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    evidence = item.get("evidence", [])
    if isinstance(evidence, str):
        evidence = [evidence]
    if not isinstance(evidence, list) or not all(isinstance(e, str) and normalize(e) for e in evidence):
        raise EvalSetError(f"{where}: `evidence` must be a list of non-empty strings, got {evidence!r}")
    if kind == UNANSWERABLE and evidence:
        raise EvalSetError(f"{where}: an unanswerable question has no evidence")
    if kind != UNANSWERABLE and not evidence:
        raise EvalSetError(f"{where}: needs `evidence:` (or `kind: unanswerable`)")
    doc = item.get("doc", "")
    if not isinstance(doc, str):
        raise EvalSetError(f'{where}: `doc` must be a string of seed prefixes like "001,003", got {doc!r}')
    return EvalQuestion(text, tuple(d.strip() for d in doc.split(",") if d.strip()), tuple(evidence), kind)


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


# ------------------------------------------------------------------------------------ scoring


def answer_rank(question: EvalQuestion, answer: Answer) -> int | None:
    """Where the answer holds the question's evidence; a declined answer holds none."""
    return None if answer.abstained else hit_rank(answer.passages, question.evidence)


def rank_metrics(ranks: Sequence[int | None], declined: Sequence[bool]) -> dict[str, float]:
    """hit@1/3/5, MRR@5 and the answered share of answerable questions, from their hit ranks."""
    n = max(1, len(ranks))
    return {
        "hit@1": sum(r == 1 for r in ranks if r) / n,
        "hit@3": sum(r <= 3 for r in ranks if r) / n,
        "hit@5": sum(r <= 5 for r in ranks if r) / n,
        "mrr@5": sum(1 / r for r in ranks if r) / n,
        "answered": sum(not d for d in declined) / n,
    }


def score(eval_set: EvalSet, answers: Sequence[Answer], off_answers: Sequence[Answer]) -> dict[str, Any]:
    """The metrics of one pipeline's answers: hit@k, MRR@5 and answered over the answerable
    questions; the decline rates of off-topic and unanswerable questions; the same per kind;
    ``newest_first``, the hit@1 of ``current`` questions (None when there are none)."""
    pairs = list(zip(eval_set.questions, answers, strict=True))
    answerable = [(q, a) for q, a in pairs if q.answerable]
    unanswerable = [a for q, a in pairs if not q.answerable]
    result: dict[str, Any] = rank_metrics(
        [answer_rank(q, a) for q, a in answerable], [a.abstained for _, a in answerable]
    )
    result["abstained_off_topic"] = _share_declined(off_answers)
    result["abstained_unanswerable"] = _share_declined(unanswerable)
    shown = [len(p) for a in answers for p in a.passages[:3]]
    result["mean_chars"] = statistics.mean(shown) if shown else 0.0
    by_kind: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        mine = [(q, a) for q, a in pairs if q.kind == kind]
        if not mine:
            continue
        if kind == UNANSWERABLE:
            declined = _share_declined([a for _, a in mine])
            by_kind[kind] = {"questions": len(mine), "declined": declined, "answered": 1 - declined}
        else:
            by_kind[kind] = {
                "questions": len(mine),
                **rank_metrics([answer_rank(q, a) for q, a in mine], [a.abstained for _, a in mine]),
            }
    result["by_kind"] = by_kind
    result["newest_first"] = by_kind[CURRENT]["hit@1"] if CURRENT in by_kind else None
    result["counts"] = {"answerable": len(answerable), "unanswerable": len(unanswerable), "off_topic": len(off_answers)}
    return result


def _share_declined(answers: Sequence[Answer]) -> float:
    return sum(a.abstained for a in answers) / max(1, len(answers))


def evaluate(eval_set: EvalSet, pipeline: Pipeline) -> dict[str, Any]:
    answers = pipeline([q.question for q in eval_set.questions])
    off_answers = pipeline(eval_set.off_topic)
    return _report(eval_set, answers, off_answers)


def _report(eval_set: EvalSet, answers: Sequence[Answer], off_answers: Sequence[Answer]) -> dict[str, Any]:
    result = score(eval_set, answers, off_answers)
    pairs = list(zip(eval_set.questions, answers, strict=True))
    result["misses"] = [q.question for q, a in pairs if q.answerable and answer_rank(q, a) != 1]
    result["not_declined"] = [q.question for q, a in pairs if not q.answerable and not a.abstained]
    result["calibrated_threshold"] = calibrate_threshold(
        [a.best_similarity for q, a in pairs if q.answerable], [a.best_similarity for a in off_answers]
    )
    return result


# ------------------------------------------------------------------------------------ cross-validation

Candidate = Mapping[str, Any]  # settings overrides, e.g. {"retrieval.weights.bm25": 0.3}


def default_objective(metrics: Mapping[str, Any]) -> float:
    """What a tuning run maximises: the mean of MRR@5 and the answered share of answerable
    questions, and the decline rates of off-topic and unanswerable ones, so that no setting wins
    by answering everything or by declining everything."""
    return (
        metrics["mrr@5"] + metrics["answered"] + metrics["abstained_off_topic"] + metrics["abstained_unanswerable"]
    ) / 4


def stratified_folds(eval_set: EvalSet, k: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """``k`` folds, each (question positions, off-topic positions), stratified by kind (the
    off-topic questions are a stratum of their own) and the same for the same ``seed``."""
    if not 2 <= k <= len(eval_set.questions) + len(eval_set.off_topic):
        raise ValueError(f"folds must be between 2 and the number of questions, got {k}")
    rng = random.Random(seed)
    strata: dict[str, list[int]] = {}
    for i, q in enumerate(eval_set.questions):
        strata.setdefault(q.kind, []).append(i)
    folds: list[tuple[list[int], list[int]]] = [([], []) for _ in range(k)]
    deal = itertools.cycle(range(k))  # dealt on across strata, so fold sizes differ by one at most
    for kind in sorted(strata):
        members = strata[kind]
        rng.shuffle(members)
        for i in members:
            folds[next(deal)][0].append(i)
    off = list(range(len(eval_set.off_topic)))
    rng.shuffle(off)
    for i in off:
        folds[next(deal)][1].append(i)
    return [(sorted(q), sorted(o)) for q, o in folds]


@dataclass(frozen=True)
class FoldResult:
    fold: int
    chosen: dict[str, Any]  # the candidate that scored best on the other folds
    train_objective: float
    held_out: dict[str, Any]  # its metrics on this fold
    held_out_objective: float


@dataclass(frozen=True)
class CrossValidation:
    folds: list[FoldResult]
    candidates: list[dict[str, Any]]
    seed: int

    def mean(self) -> dict[str, float | None]:
        """Held-out figures averaged over the folds (metrics a fold lacks, e.g. no current
        questions, are averaged over the folds that have them)."""
        keys = [*RANK_METRICS, "abstained_off_topic", "abstained_unanswerable", "newest_first"]
        out = {}
        for key in keys:
            values = [f.held_out[key] for f in self.folds if f.held_out.get(key) is not None]
            out[key] = statistics.mean(values) if values else None
        out["objective"] = statistics.mean(f.held_out_objective for f in self.folds)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": len(self.folds),
            "seed": self.seed,
            "candidates": self.candidates,
            "folds": [
                {
                    "fold": f.fold,
                    "chosen": f.chosen,
                    "train_objective": f.train_objective,
                    "held_out_objective": f.held_out_objective,
                    "held_out": {k: v for k, v in f.held_out.items() if k not in ("by_kind",)},
                    "held_out_by_kind": f.held_out["by_kind"],
                }
                for f in self.folds
            ],
            "mean": self.mean(),
        }


def cross_validate(
    eval_set: EvalSet,
    pipeline_for: Callable[[Candidate], Pipeline],
    candidates: Sequence[Candidate],
    folds: int = 5,
    seed: int = 0,
    objective: Callable[[Mapping[str, Any]], float] = default_objective,
) -> CrossValidation:
    """Choose among ``candidates`` by K-fold cross-validation: for each fold, the candidate with
    the best ``objective`` on the other K-1 folds, and its figures on the held-out fold.

    ``pipeline_for(candidate)`` builds the pipeline a candidate describes. Each candidate answers
    every question once (an answer does not depend on the other questions); the folds then only
    re-score those answers. Ties go to the earlier candidate."""
    if not candidates:
        raise ValueError("no candidate settings to choose from")
    runs = []
    for candidate in candidates:
        pipeline = pipeline_for(candidate)
        runs.append((pipeline([q.question for q in eval_set.questions]), pipeline(eval_set.off_topic)))
    split = stratified_folds(eval_set, folds, seed)
    results = []
    for n, (test_q, test_off) in enumerate(split, start=1):
        held_q, held_off = set(test_q), set(test_off)
        train_q = [i for i in range(len(eval_set.questions)) if i not in held_q]
        train_off = [i for i in range(len(eval_set.off_topic)) if i not in held_off]
        train_scores = [objective(_subset_score(eval_set, run, train_q, train_off)) for run in runs]
        best = max(range(len(runs)), key=lambda c: (train_scores[c], -c))
        held_out = _subset_score(eval_set, runs[best], test_q, test_off)
        results.append(FoldResult(n, dict(candidates[best]), train_scores[best], held_out, objective(held_out)))
    return CrossValidation(results, [dict(c) for c in candidates], seed)


def _subset_score(
    eval_set: EvalSet, run: tuple[list[Answer], list[Answer]], questions: Sequence[int], off_topic: Sequence[int]
) -> dict[str, Any]:
    answers, off_answers = run
    return score(
        eval_set.subset(questions, off_topic), [answers[i] for i in questions], [off_answers[i] for i in off_topic]
    )


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
        return [
            Answer(is_declined(r), [h.text for h in r.hits], r.best_similarity, getattr(r, "declined_reason", None))
            for r in results
        ]

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
        return [
            Answer(bool(sims[0] < searcher.abstain_below), [chunks[i] for i in row if i >= 0], float(sims[0]))
            for sims, row in zip(similarities, ids, strict=True)
        ]

    return run


def compare_pipelines(eval_set: EvalSet, searcher: Searcher) -> dict[str, dict[str, Any]]:
    """The full pipeline beside its dense-only and BM25-only ablations and the naive baseline."""
    return {
        "full": evaluate(eval_set, searcher_pipeline(searcher)),
        "dense-only": evaluate(eval_set, searcher_pipeline(searcher, DENSE_ONLY)),
        "bm25-only": evaluate(eval_set, searcher_pipeline(searcher, BM25_ONLY)),
        "naive-1000/200-dense": evaluate(eval_set, naive_pipeline(searcher)),
    }
