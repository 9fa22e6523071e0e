"""Questions that name a source or ask who wrote it: the citation metadata in ranking.

"What does the 2017 paper recommend ...", "Why, in Asma Hussain's view, ...", "Where do the
authors of the 2025 commentary work?": the question says which document it means, or asks for
its authors. The passages' words cannot tell the model that (every document speaks of the same
things, and a 2025 article's passage does not say "2025"), but the sources file can. These pure
functions read the question against the documents' citations; the searcher turns them into a
small additive score (``retrieval.source_boosts``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .sources import Citation

# what a question calls a document: "the 2017 paper", "the 2025 commentary", "the brief from 2017"
_SOURCE_NOUNS = (
    r"(?:paper|brief|report|article|piece|commentary|study|analysis|essay|document|source|story|"
    r"op-?ed|text|publication|authors?|writers?)"
)
_AUTHORSHIP = re.compile(r"\bauthors?\b|\bwho\s+wrote\b|\bwritten\s+by\b|\bwriters?\b", re.IGNORECASE)
_YEAR = re.compile(r"^\s*(\d{4})")


def _surnames(citation: Citation) -> set[str]:
    """The last word of each author's name, lower case ("Asma Hussain" → "hussain")."""
    out = set()
    for author in citation.authors:
        parts = re.findall(r"[^\W\d_][\w'’-]*", author)
        if parts and len(parts[-1]) >= 3:
            out.add(parts[-1].lower())
    return out


def _names_year(question: str, year: str) -> bool:
    """ "the 2017 paper", "2017's report", "the brief from 2017": the year said of a document."""
    return bool(
        re.search(
            rf"\b{year}(?:['’]s)?\s+(?:[\w-]+\s+)?{_SOURCE_NOUNS}\b|"
            rf"\b{_SOURCE_NOUNS}\s+(?:from|of|published\s+in|dated|written\s+in)\s+{year}\b",
            question,
            re.IGNORECASE,
        )
    )


def named_documents(question: str, citations: Sequence[Citation]) -> frozenset[int]:
    """The documents (positions in ``citations``) the question names by an author's surname, the
    publisher, or the year of the source ("the 2017 brief"); empty when it names none, or every
    one (then naming says nothing)."""
    named = set()
    for i, citation in enumerate(citations):
        year = _YEAR.match(citation.date or "")
        if _names_by_name(question, citation) or (year and _names_year(question, year.group(1))):
            named.add(i)
    return frozenset(named) if len(named) < len(citations) else frozenset()


def _names_by_name(question: str, citation: Citation) -> bool:
    """Whether the question says an author's surname or the publisher of ``citation``."""
    publisher = citation.publisher.strip()
    return any(re.search(rf"\b{re.escape(s)}\b", question, re.IGNORECASE) for s in _surnames(citation)) or bool(
        publisher and re.search(rf"\b{re.escape(publisher)}\b", question, re.IGNORECASE)
    )


def names_a_source(question: str, citations: Sequence[Citation]) -> bool:
    """Whether the question names a source by an author's surname or its publisher ("What did
    Asma Hussain write?", "What is the EurAsian Times?"): a question about the corpus itself,
    however little its words share with the passages."""
    return any(_names_by_name(question, citation) for citation in citations)


def asks_authorship(question: str) -> bool:
    """Whether the question asks about who wrote a source ("Who are the authors ...")."""
    return bool(_AUTHORSHIP.search(question))


def names_its_authors(text: str, citation: Citation) -> bool:
    """Whether a passage names one of its own document's authors in full ("Harsh V. Pant is ...")."""
    return any(author.strip() and author.strip().lower() in text.lower() for author in citation.authors)


def source_boost(
    named: frozenset[int],
    authorship: bool,
    passage_docs: np.ndarray,
    passage_names_authors: np.ndarray,
    named_weight: float,
    authors_weight: float,
) -> np.ndarray:
    """What each passage (its document's position ``passage_docs``; whether it names its authors)
    gains: ``named_weight`` in a document the question names, ``authors_weight`` for naming its
    authors when the question asks who wrote it."""
    boost = np.zeros(len(passage_docs), dtype=np.float64)
    if named and named_weight:
        boost += named_weight * np.isin(passage_docs, sorted(named))
    if authorship and authors_weight:
        boost += authors_weight * np.asarray(passage_names_authors, dtype=np.float64)
    return boost
