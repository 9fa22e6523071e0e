"""Choose the retrieval settings issue 11 added by K-fold cross-validation on tests/data/eval.yaml.

    .venv/bin/python -m bench.tune [--folds 5] [--json]

Each setting (the newest-first margin for current questions, one cue boost per question kind,
the margin over the calibrated off-topic threshold) is tried over a small grid, the others held
at zero. A setting changes no fitted state, so every question's outcome under every grid value
is measured once; each fold then picks the value that scores best on the other folds and is
scored on its own held-out questions. The value proposed for config/citebot.yaml is the median
of the folds' picks, and the held-out figures are what that procedure earns on unseen questions.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from embeddings.evaluation import hit_rank

EVAL_FILE = Path(__file__).resolve().parent.parent / "tests" / "data" / "eval.yaml"
K = 5

GRIDS: dict[str, tuple[float, ...]] = {
    "recency_margin": (0.0, 0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.8),
    "why": (0.0, 0.01, 0.02, 0.04, 0.06, 0.1, 0.15),
    "when": (0.0, 0.01, 0.02, 0.04, 0.06, 0.1, 0.15),
    "how_many": (0.0, 0.01, 0.02, 0.04, 0.06, 0.1, 0.15),
    "who": (0.0, 0.01, 0.02, 0.04, 0.06, 0.1, 0.15),
    "abstain_margin": (-0.04, -0.02, 0.0, 0.01, 0.02, 0.03, 0.04, 0.06),
}


@dataclass(frozen=True)
class Item:
    question: str
    kind: str  # lookup, why, when, how_many, who, current, unanswerable, off_topic
    evidence: tuple[str, ...]


def load_items(path: Path) -> list[Item]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    items = [
        Item(str(q["q"]), str(q.get("kind") or "lookup"), tuple(q.get("evidence") or ()))
        for q in data.get("questions", [])
    ]
    items += [Item(str(q), "off_topic", ()) for q in data.get("off_topic", [])]
    return items


def outcome(item: Item, result: Any) -> float:
    """One question's score: reciprocal rank for an answerable one, 1 for a right decline."""
    if item.kind in ("unanswerable", "off_topic"):
        return float(result.abstained)
    if result.abstained:
        return 0.0
    rank = hit_rank([h.text for h in result.hits], item.evidence)
    if item.kind == "current":
        return float(rank == 1)  # the newest source's answer must come first
    return 1.0 / rank if rank else 0.0


def apply(searcher: Any, setting: str, value: float) -> None:
    if setting in ("recency_margin", "abstain_margin"):
        setattr(searcher, setting, value)
    else:
        searcher.kind_weights[setting] = value


def measure(searcher: Any, items: Sequence[Item], setting: str, grid: Sequence[float]) -> dict[float, list[float]]:
    """Outcome of every question under every value of ``setting`` (others at zero)."""
    questions = [item.question for item in items]
    table = {}
    for value in grid:
        reset(searcher)
        apply(searcher, setting, value)
        results = searcher.search_many(questions, k=K)
        table[value] = [outcome(item, r) for item, r in zip(items, results, strict=True)]
    reset(searcher)
    return table


def reset(searcher: Any) -> None:
    searcher.recency_margin = 0.0
    searcher.abstain_margin = 0.0
    searcher.kind_weights = {}


def folds_of(n: int, k: int, seed: int = 0) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i::k] for i in range(k)]


def cross_validate(table: dict[float, list[float]], folds: list[list[int]]) -> dict[str, Any]:
    """Each fold picks the best value on the other folds (ties: the smallest change, nearest 0)
    and is scored on its own questions."""
    picks, held_out = [], []
    everything = set().union(*map(set, folds))
    for fold in folds:
        train = sorted(everything - set(fold))

        def mean_on(rows: list[int], value: float) -> float:
            return statistics.mean(table[value][i] for i in rows) if rows else 0.0

        best = max(table, key=lambda v: (round(mean_on(train, v), 9), -abs(v)))
        picks.append(best)
        held_out.append(
            {
                "value": best,
                "train": mean_on(train, best),
                "test": mean_on(fold, best),
                "test_at_zero": mean_on(fold, 0.0) if 0.0 in table else None,
                "questions": len(fold),
            }
        )
    return {"folds": held_out, "picks": picks, "chosen": statistics.median(picks)}


def relevant(items: Sequence[Item], setting: str) -> Callable[[Item], bool]:
    """The questions a setting is meant to help (and must not hurt): its kind, or all of them."""
    if setting in ("why", "when", "how_many", "who"):
        from embeddings.cues import question_kinds

        return lambda item: item.kind not in ("unanswerable", "off_topic") and setting in question_kinds(item.question)
    if setting == "recency_margin":
        from embeddings.temporal import is_current_question

        return lambda item: item.kind not in ("unanswerable", "off_topic") and is_current_question(item.question)
    return lambda item: True


def kind_report(searcher: Any, items: Sequence[Item]) -> dict[str, dict[str, float]]:
    """Per question kind: hit@1, hit@5 and MRR@5 of answerable questions (of current ones: the
    newest source's answer first), and the share declined."""
    results = searcher.search_many([item.question for item in items], k=K)
    by_kind: dict[str, list[tuple[Item, Any]]] = {}
    for item, result in zip(items, results, strict=True):
        by_kind.setdefault(item.kind, []).append((item, result))
        if item.kind not in ("unanswerable", "off_topic"):
            by_kind.setdefault("all answerable", []).append((item, result))
    report = {}
    for kind, pairs in sorted(by_kind.items()):
        ranks = [None if r.abstained else hit_rank([h.text for h in r.hits], i.evidence) for i, r in pairs]
        n = len(pairs)
        report[kind] = {"n": n, "declined": sum(r.abstained for _, r in pairs) / n}
        if kind not in ("unanswerable", "off_topic"):
            report[kind].update(
                {
                    "hit@1": sum(x == 1 for x in ranks) / n,
                    "hit@5": sum(x is not None for x in ranks) / n,
                    "mrr@5": sum(1 / x for x in ranks if x) / n,
                }
            )
    return report


def print_kind_report(report: dict[str, dict[str, float]]) -> None:
    print("| kind | n | hit@1 | hit@5 | MRR@5 | declined |\n|---|---|---|---|---|---|")
    for kind, m in report.items():
        cells = [f"{m[c]:.3f}" if c in m else "–" for c in ("hit@1", "hit@5", "mrr@5", "declined")]
        print(f"| {kind} | {m['n']} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=EVAL_FILE)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=None, help="settings to tune (default: all)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--report", action="store_true", help="only print per-kind figures at the configured settings")
    args = parser.parse_args(argv)

    from citebot.config import load_settings
    from citebot.service import open_service

    searcher = open_service(load_settings()).searcher
    items = load_items(args.file)
    if args.report:
        report = kind_report(searcher, items)
        print(json.dumps(report)) if args.json else print_kind_report(report)
        return 0
    report: dict[str, Any] = {}
    for setting, grid in GRIDS.items():
        if args.only and setting not in args.only:
            continue
        chosen_items = [item for item in items if relevant(items, setting)(item)]
        table = measure(searcher, chosen_items, setting, grid)
        cv = cross_validate(table, folds_of(len(chosen_items), args.folds))
        cv["questions"] = len(chosen_items)
        cv["whole_set_by_value"] = {v: round(statistics.mean(s), 4) for v, s in table.items()}
        report[setting] = cv
        if not args.json:
            print(
                f"\n{setting}: {len(chosen_items)} questions; per value (whole set, for the record): "
                + ", ".join(f"{v:g}→{m:.3f}" for v, m in cv["whole_set_by_value"].items())
            )
            for n, fold in enumerate(cv["folds"], start=1):
                zero = "" if fold["test_at_zero"] is None else f" (at 0: {fold['test_at_zero']:.3f})"
                print(
                    f"  fold {n}: picked {fold['value']:g}, train {fold['train']:.3f}, "
                    f"held-out {fold['test']:.3f}{zero}, {fold['questions']} questions"
                )
            print(f"  chosen (median of picks): {cv['chosen']:g}")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
