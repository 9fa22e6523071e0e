"""Time in retrieval: document dates, questions about the present, and newest-first re-ranking.

The corpus spans 2017–2025 and some facts changed in between (recognition, the terrorist list).
A question about the present state of things ("Has Russia recognised ...", "... still ...") must
get the newest source's answer first; every other question keeps its relevance order.
"""

from __future__ import annotations

import re

import numpy as np

UNDATED = float("-inf")  # an undated document ranks as the oldest

_DATE = re.compile(r"^\s*(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?")

# Words and phrases that ask about the state of things now. "yet" and present-perfect openings
# ("Has Russia recognised ...") ask whether something has happened by now.
_CURRENT_CUES = re.compile(
    r"\b(?:yet|still|now(?!\s+that\b)|nowadays|today|todays|current|currently|anymore|any\s+more|these\s+days|at\s+present|"
    r"presently|at\s+the\s+moment|so\s+far|to\s+date|as\s+of\s+now|latest|most\s+recent|"
    r"no\s+longer)\b",
    re.IGNORECASE,
)
# "Has Russia recognised ...", "Have the Taliban been ...", "Is the Taliban still ...": present
# perfect (or present state) questions open with has/have; the word after the subject is checked
# loosely (any word), since the subject may be several words long.
_PRESENT_PERFECT = re.compile(r"^\W*(?:has|have|hasn\W?t|haven\W?t)\s+\w+", re.IGNORECASE)
# "What is Russia's position ...", "Where do relations stand": present tense state questions
_PRESENT_STATE = re.compile(
    r"^\W*(?:what|how|where)\s+(?:is|are|do|does)\b.*\b(?:stand|status|state|position|relations?|"
    r"relationship|stance|policy)\b",
    re.IGNORECASE,
)


# "Did Russia take the Taliban off its list?", "Is the Taliban banned in Russia?": whether a status
# holds (recognition, a ban, a listing, an embassy) is a question about now unless a time is named
_STATUS_QUESTION = re.compile(r"^\W*(?:did|didn\W?t|is|isn\W?t|are|aren\W?t|was|were|does|do)\b", re.IGNORECASE)
_STATUS_WORDS = re.compile(
    r"\b(?:recogni[sz]\w*|(?:de-?|un)?list(?:ed|ing)?|blacklist\w*|(?:un)?bann?(?:ed|ing)?|lift\w*|"
    r"remov\w*|off\s+(?:the|its|their)\s+\w*\s*list|outlaw\w*|designat\w*|legali[sz]\w*|"
    r"sanction(?:ed|s)?|accredit\w*|normali[sz]\w*)\b",
    re.IGNORECASE,
)
# a named time makes the question about then: "in 2003", "before 2016", "during the 1990s", "ever"
_TIME_ANCHOR = re.compile(
    r"\b(?:1[89]\d\d|20\d\d)s?\b|\bever\b|\b(?:when|first|originally|initially|once|used\s+to)\b",
    re.IGNORECASE,
)
_YEARS = re.compile(r"\b(1[89]\d\d|20\d\d)s?\b")


def date_value(date: str) -> float:
    """A sortable number for a citation date ("2025-07-28", "2024-05", "2017"); "" → :data:`UNDATED`.

    A year alone counts as its start: "2025" sorts before "2025-07-28"."""
    match = _DATE.match(date or "")
    if not match:
        return UNDATED
    year, month, day = int(match.group(1)), int(match.group(2) or 1), int(match.group(3) or 1)
    return year + (min(max(month, 1), 12) - 1) / 12 + (min(max(day, 1), 31) - 1) / 372


def is_current_question(question: str) -> bool:
    """Does the question ask about the present state of things?

    True for "Has Russia recognised the Taliban yet?", "Is the Taliban still banned?", "What is
    Russia's current policy?", "Do Afghans speak Russian these days?"; False for "When did the
    Soviet Union invade Afghanistan?"."""
    text = " ".join(question.split())
    if _CURRENT_CUES.search(text) or _PRESENT_PERFECT.search(text) or _PRESENT_STATE.search(text):
        return True
    return bool(_STATUS_QUESTION.search(text) and _STATUS_WORDS.search(text) and not _TIME_ANCHOR.search(text))


def passage_time(text: str, document_date: float, history_years: float = 5) -> float:
    """The time a passage speaks of: its document's date, unless every year the passage names
    lies at least ``history_years`` before the document's (then the end of the latest of them).

    "In 2003, the Taliban were put on the list ... in the early 2010s" in a 2025 article is its
    history, not its news: for a question about now it is older than a 2024 article's. A passage
    naming a recent year ("since the takeover in August 2021, the embassy has stayed open") speaks
    for its document's date. Years after the document's own (forecasts) are not what it reports;
    an undated document's passages stay :data:`UNDATED`; ``history_years`` 0 turns this off."""
    if document_date == UNDATED or history_years <= 0:
        return document_date
    year = int(document_date)
    named = [int(y) for y in _YEARS.findall(text) if int(y) <= year]
    if not named or max(named) > year - history_years:
        return document_date
    return date_value(f"{max(named)}-12-31")


def prefer_newest(order: np.ndarray, scores: np.ndarray, dates: np.ndarray, margin: float) -> np.ndarray:
    """``order`` (candidate positions, best first) with the newest document's passages first among
    those within ``margin`` of the best score.

    Candidates scoring at least ``best - margin`` form the head; the head is sorted by date,
    newest first, keeping relevance order within one date; the rest follows unchanged. With
    ``margin`` 0 only exact ties move."""
    order = np.asarray(order)
    if not len(order) or margin <= 0:
        return order
    best = float(scores[order[0]])
    near = scores[order] >= best - margin
    head, tail = order[near], order[~near]
    # np.lexsort sorts by the last key first: date descending, then the existing position
    head = head[np.lexsort((np.arange(len(head)), -dates[head]))]
    return np.concatenate([head, tail])


def as_of_label(date: str) -> str:
    """ "as of 2017" for a dated source, "undated" otherwise."""
    match = _DATE.match(date or "")
    return f"as of {match.group(1)}" if match else "undated"
