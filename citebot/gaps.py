"""The coverage report: questions the bot declined or answered with low confidence, grouped
by meaning, so that whoever curates the seeds sees which documents are missing.

Needs ``telegram.store_questions`` (questions are kept only then). ``citebot gaps`` prints it;
admins get it in Telegram with ``/gaps``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embeddings.clustering import DEFAULT_MAX_DISTANCE, group_similar

from .store import QuestionRow

OTHER_LANGUAGES = "asked in another language (the sources and the model are English)"


@dataclass(frozen=True)
class Gap:
    """One group of similar questions the corpus answers badly."""

    count: int  # questions asked (repeats counted)
    declined: int  # of which the bot declined ("the sources don't cover that")
    examples: list[str]  # distinct questions, the most typical first
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "declined": self.declined, "examples": self.examples, "note": self.note}

    def counts(self) -> str:
        return f"{self.count} asked, {self.declined} declined"


@dataclass(frozen=True)
class CoverageReport:
    """The gaps among the ``considered`` stored questions (what ``citebot gaps`` and /gaps show)."""

    gaps: list[Gap]
    considered: int

    def summary(self) -> str:
        """The report's first line (the terminal and the /gaps message share it)."""
        if not self.gaps:
            return (
                f"no gaps: none of the {self.considered} stored questions was declined or answered with low confidence."
            )
        return (
            f"{sum(g.count for g in self.gaps)} of {self.considered} stored questions were declined or "
            f"answered with low confidence, in {len(self.gaps)} groups (most asked first):"
        )

    def as_dict(self) -> dict[str, Any]:
        return {"questions": self.considered, "gaps": [g.as_dict() for g in self.gaps]}


def is_gap(row: QuestionRow, similarity_below: float) -> bool:
    """Declined, or answered from a passage less similar than ``similarity_below``."""
    return row.abstained or row.similarity < similarity_below


def coverage_gaps(
    rows: Sequence[QuestionRow],
    encode: Callable[[list[str]], np.ndarray],
    *,
    similarity_below: float,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    examples: int = 3,
) -> list[Gap]:
    """Group the gap questions among ``rows`` by the similarity of their vectors (``encode``
    gives one normalised vector per text); largest group first. Questions in other languages
    are one group of their own: an English model cannot tell what they are about."""
    wanted = [r for r in rows if is_gap(r, similarity_below)]
    foreign = [r for r in wanted if r.language not in (None, "en")]
    english = [r for r in wanted if r.language in (None, "en")]
    gaps = []
    if english:
        texts = sorted({r.question for r in english}, key=[r.question for r in english].index)
        asked = Counter(r.question for r in english)
        declined = Counter(r.question for r in english if r.abstained)
        for group in group_similar(encode(texts), max_distance):
            members = [texts[i] for i in group]
            members = [members[0], *sorted(members[1:], key=lambda q: -asked[q])]
            gaps.append(Gap(sum(asked[q] for q in members), sum(declined[q] for q in members), members[:examples]))
    gaps.sort(key=lambda g: -g.count)  # stable: the clustering's order among equal counts
    if foreign:
        languages = Counter(r.language for r in foreign)
        note = ", ".join(f"{lang}: {n}" for lang, n in languages.most_common())
        distinct = list(dict.fromkeys(r.question for r in foreign))
        gaps.append(
            Gap(len(foreign), sum(r.abstained for r in foreign), distinct[:examples], f"{OTHER_LANGUAGES}; {note}")
        )
    return gaps


def coverage_report(
    store: Any, encode: Callable[[list[str]], np.ndarray], similarity_below: float, since: float | None = None
) -> CoverageReport:
    """The gaps among the questions ``store`` kept (since ``since``)."""
    rows = store.questions(since)
    return CoverageReport(coverage_gaps(rows, encode, similarity_below=similarity_below) if rows else [], len(rows))


def gaps_text(report: CoverageReport) -> str:
    """The report as terminal text."""
    summary = report.summary()
    lines = [summary[0].upper() + summary[1:]]
    for n, gap in enumerate(report.gaps, 1):
        lines += [f"\n{n}. {gap.counts()}" + (f" — {gap.note}" if gap.note else "")]
        lines += [f"   - {q}" for q in gap.examples]
    return "\n".join(lines)
