"""What ``citebot feedback`` prints and exports: the votes of :mod:`citebot.store`.

The export is an evaluation file in the format of ``tests/data/eval.yaml``, for a person to
check before adding it: a 👎 answer becomes a question of ``kind: unanswerable`` (the bot should
have declined), which the person turns into a lookup with ``doc`` and ``evidence`` when a passage
does answer it, or moves to ``off_topic``; a 👍 answer becomes a question with its top passage's
document and best sentence as evidence. The file loads as it is (``citebot eval`` runs on it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from embeddings.evaluation import normalize

from .store import UP, FeedbackRow

EVIDENCE_WORDS = 12  # of the top passage's best sentence: enough to be unique, short to check


def doc_prefix(doc_id: str) -> str:
    """How eval files name a document: its three-digit prefix ("001_x.txt" → "001"), else its id."""
    match = re.match(r"(\d{3})_", doc_id)
    return match.group(1) if match else doc_id


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML double-quoted scalar


def _shown(row: FeedbackRow) -> str:
    return "; ".join(f"{doc_prefix(p['doc_id'])} [{p['start']}:{p['end']}]" for p in row.passages) or "nothing"


def export_yaml(rows: Sequence[FeedbackRow]) -> str:
    """The votes as an evaluation file (one entry per question and vote, the latest vote's passages)."""
    latest: dict[tuple[str, int], FeedbackRow] = {}
    for row in rows:
        latest[(row.question, row.vote)] = row
    down = [r for (_, vote), r in latest.items() if vote != UP]
    up = [r for (_, vote), r in latest.items() if vote == UP]
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [
        f"# citebot feedback export, {stamp}: {len(down)} 👎 and {len(up)} 👍 answers.",
        "# Check every entry before adding it to tests/data/eval.yaml:",
        "#   👎 entries are marked unanswerable (the bot should have declined): if a passage does answer",
        "#      the question, replace `kind: unanswerable` with its doc and evidence; if the question is",
        "#      not about the corpus's topic at all, move it to off_topic;",
        "#   👍 entries take doc and evidence from the top passage shown: check that it answers.",
        "questions:",
    ]
    for row in down:
        lines += [
            f"# 👎 {_stamp(row)}, build {row.build_id}, shown: {_shown(row)}",
            f"- q: {_quoted(row.question)}",
            "  kind: unanswerable",
        ]
    for row in up:
        top = row.passages[0] if row.passages else None
        if top is None:
            continue
        evidence = " ".join(normalize(top.get("best_sentence", "")).split()[:EVIDENCE_WORDS])
        lines += [
            f"# 👍 {_stamp(row)}, build {row.build_id}, top passage: {_shown(row).split('; ')[0]}",
            f"- q: {_quoted(row.question)}",
            f"  doc: {_quoted(doc_prefix(top['doc_id']))}",
            f"  evidence: [{_quoted(evidence)}]" if evidence else "  kind: unanswerable  # no sentence kept",
        ]
    if not down and not up:
        lines[-1] = "questions: []"
    lines.append("off_topic: []")
    return "\n".join(lines) + "\n"


def _stamp(row: FeedbackRow) -> str:
    return datetime.fromtimestamp(row.voted_at, UTC).isoformat(timespec="minutes")


def feedback_text(rows: Sequence[FeedbackRow]) -> str:
    """The votes as terminal text, oldest first, with a count."""
    if not rows:
        return "No feedback stored."
    up = sum(r.vote == UP for r in rows)
    lines = [f"{len(rows)} votes: {up} 👍, {len(rows) - up} 👎"]
    for row in rows:
        mark = "👍" if row.vote == UP else "👎"
        lines.append(f"\n{_stamp(row)}  {mark}  {row.question}  ({row.chat_kind}, user {row.user})")
        for n, p in enumerate(row.passages, 1):
            sentence = p.get("best_sentence", "")
            sentence = sentence if len(sentence) <= 100 else sentence[:99] + "…"
            lines.append(f"    {n}. {p['doc_id']} [{p['start']}:{p['end']}] {sentence}")
        lines.append(f"    build {row.build_id}")
    return "\n".join(lines)
