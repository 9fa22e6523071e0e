"""Newest source first for questions about the present: a second look at the newest document.

:func:`embeddings.temporal.prefer_newest` re-orders the passages that score within a fixed
margin of the best. For a question about now ("Does the Kremlin currently regard the Taliban as
an enemy?") the newest source's answering passage is often further down than that: it shares
fewer words with the question than an older source's passage on the same topic. This module
looks at the newest source's passages on their own: its best passage that speaks for the
source's own date (not one of its history passages, temporal.passage_time) comes first when it
scores at least ``ratio`` of the best score of all, and when it has the look of an answer to the
question's kind (a name for a role asked, a number for "how many"). The other passages keep
their order after it, each shown with its source's date.
"""

from __future__ import annotations

import numpy as np

from . import cues


def promote_newest(
    order: np.ndarray,
    scores: np.ndarray,
    dates: np.ndarray,
    ratio: float,
    eligible: np.ndarray | None = None,
) -> np.ndarray:
    """``order`` (candidate positions, best first) with the newest passage that is relevant enough first.

    ``dates`` are the candidates' times (temporal.passage_time); the newest is the latest time
    among the ordered candidates. Its best ``eligible`` passage moves to rank 1 when it scores at
    least ``ratio`` times the best score among ``order``; otherwise nothing moves. ``ratio`` 0 (or
    scores that are not positive) turns this off."""
    order = np.asarray(order)
    if not len(order) or ratio <= 0:
        return order
    best = float(scores[order].max())
    times = dates[order]
    if best <= 0 or not np.isfinite(times.max()):
        return order  # nothing dated: no newest source to prefer
    newest = times == times.max()
    if eligible is not None:
        newest &= eligible[order]
    if not newest.any():
        return order
    position = int(np.flatnonzero(newest)[0])  # ``order`` is best first: its first newest passage
    if position == 0 or float(scores[order[position]]) < ratio * best:
        return order
    return np.concatenate([order[position : position + 1], order[:position], order[position + 1 :]])


def asks_state(question: str, named_documents: frozenset[int] = frozenset()) -> bool:
    """Whether a current question (temporal.is_current_question) asks for the state of things,
    which the newest source tells best: not when it names a source of its own ("according to
    the 2024 report") and not when it asks for a reason ("Why does Koofi still want ...")."""
    return not named_documents and "why" not in cues.question_kinds(question)


def answers_kind(question: str, texts: list[str], topic_words: frozenset[str]) -> np.ndarray:
    """Per passage: could it answer the question's kind? A question for whoever holds a role
    needs a passage naming a holder (cues.names_role_holder); a "how many" question one that
    states a count (cues.gives_count). Other questions take any passage."""
    role = cues.role_asked(question)
    counting = bool(cues.count_asked(question)) and "how_many" in cues.question_kinds(question)
    if not role and not counting:
        return np.ones(len(texts), dtype=bool)
    return np.array(
        [
            (not role or cues.names_role_holder(text, role, topic_words)) and (not counting or cues.gives_count(text))
            for text in texts
        ],
        dtype=bool,
    )
