"""What kind of answer a question wants, and which passages look like such an answer.

The model (all-MiniLM-L6-v2) knows what a passage is about, not whether it answers: "Why did
Russia start talking to the Taliban?" is as close to a passage about holding talks as to one that
gives the reason. These small functions read the question's form ("why", "when", "how many",
"who") and the passage's surface (cause words, years, numbers, names), and :func:`kind_boost`
turns that into a small additive score. Passage features are computed once per index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from .lexical import STOPWORDS

KINDS = ("why", "when", "how_many", "who")

# Verbs of conversation that a question uses for relations: "talking to the Taliban" is dealing
# with them, while the sources' "talks" are rounds of negotiation; read literally, "Why did Russia
# start talking to the Taliban?" finds passages about hosting talks rather than its reasons.
# Only the verb forms: "talks with the Taliban" stays a negotiation.
_RELATION_IDIOMS = (
    (re.compile(r"\btalking\s+(?:to|with)\b", re.IGNORECASE), "dealing with"),
    (re.compile(r"\btalked\s+(?:to|with)\b", re.IGNORECASE), "dealt with"),
    (re.compile(r"\btalk\s+to\b", re.IGNORECASE), "deal with"),
)


def literal_relations(question: str) -> str:
    """``question`` with a verb of conversation used for a relation written as the relation
    ("started talking to the Taliban" → "started dealing with the Taliban")."""
    for pattern, relation in _RELATION_IDIOMS:
        question = pattern.sub(relation, question)
    return question


_QUESTION_KIND = {
    "why": re.compile(
        r"\bwhy\b|\bhow\s+come\b|\bfor\s+what\s+(?:reason|purpose)\b|\bwhat\s+(?:drove|drives|made|makes|prompted|"
        r"motivated|motivates|pushed|led)\b|\b(?:reasons?|motives?|motivations?|purpose|aims?|goals?)\s+(?:of|for|"
        r"behind)\b|\bwhat\s+(?:is|was|are|were)\s+(?:the\s+)?(?:reason|motive|aim|goal|purpose)",
        re.IGNORECASE,
    ),
    "when": re.compile(
        r"\bwhen\b|\b(?:what|which)\s+(?:year|month|date|decade)\b|\bsince\s+when\b|"
        r"\bhow\s+long\s+ago\b",
        re.IGNORECASE,
    ),
    "how_many": re.compile(
        r"\bhow\s+(?:many|much)\b|\bwhat\s+(?:number|share|percentage|proportion)\b|"
        r"\bnumber\s+of\b|\bhow\s+(?:large|big)\b",
        re.IGNORECASE,
    ),
    "who": re.compile(
        r"^\W*who\b|\bwho(?:m|se)?\s+(?:is|was|are|were|did|does|do|has|have|had|said|says|"
        r"attacked|led|leads|founded|backed|met)\b|\bwhich\s+(?:\w+\s+){0,2}(?:person|people|official|officials|"
        r"leader|leaders|minister|envoy|ambassador|spokesman|spokesperson|analyst|expert|group|"
        r"groups|organisation|organization|faction|country|countries)\b|\bname\s+of\b",
        re.IGNORECASE,
    ),
}

# Words a passage uses when it gives a reason or a purpose.
_CAUSAL = re.compile(
    r"\b(?:because|due\s+to|owing\s+to|thanks\s+to|in\s+order\s+to|so\s+that|so\s+as\s+to|reasons?|aim(?:s|ed)?|"
    r"goals?|purpose|motives?|motivat\w+|driven\s+by|drive[sn]?\s+by|seek(?:s|ing)?|sought|fears?|feared|"
    r"afraid|worr(?:y|ied|ies)|concerns?|concerned|to\s+ensure|ensuring|to\s+prevent|preventing|to\s+protect|"
    r"interests?|as\s+a\s+result|result(?:ed)?\s+in|therefore|thus|hence|led\s+to|leads?\s+to|prompted|"
    r"based\s+on|factors?|in\s+response|ambitions?|wants?\s+to|wished?\s+to|intend\w*|strateg\w+|"
    r"objectives?|threats?)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(
    r"\b(?:1[89]\d\d|20\d\d)s?\b|\b(?:January|February|March|April|May|June|July|August|September|"
    r"October|November|December)\b"
)
_NUMBER = re.compile(
    r"\b\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"twenty|thirty|forty|fifty|hundred|hundreds|thousand|thousands|million|millions|"
    r"dozens?|half|several)\b",
    re.IGNORECASE,
)
# two or more capitalised words in a row ("Zamir Kabulov", "Mohammed Daud Khan"): a name
_NAME = re.compile(r"\b[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?(?:\s+(?:[A-Z][a-z]+|[A-Z]\.))+")


_YEAR_ONLY = re.compile(r"^(?:1[89]\d\d|20\d\d)s?$")


def gives_count(text: str) -> bool:
    """Whether a text states a number other than a year: what a "how many" answer needs
    ("90,000 fighters", "three principles", "several districts"; not "in March 2024")."""
    return any(not _YEAR_ONLY.match(m.group(0)) for m in _NUMBER.finditer(text))


def count_asked(question: str) -> str:
    """The words of a "how many" question that say what is counted ("how many people died"),
    or "" when it asks for no count."""
    match = re.search(r"\bhow\s+(many|much)((?:\s+[\w'’-]+){1,2})", question, re.IGNORECASE)
    return " ".join(["how", match.group(1).lower(), *match.group(2).split()]) if match else ""


# "Who is the Taliban government's foreign minister?", "What is the name of the Taliban's charge
# d'affaires in Moscow?": a question for the person holding a role
_ROLES = (
    r"(?:ministers?|ambassadors?|envoys?|spokes(?:man|men|person|woman)|charg[eé]s?\s+d\W?affaires|"
    r"directors?|governors?|commanders?|presidents?|chiefs?|representatives?|leaders?|heads?|mayors?|"
    r"generals?|emirs?|muftis?)"
)
# words that end what a role is "of" ("the governor of Jowzjan quoted on ...")
_NOT_OF_ROLE = r"(?:quoted|named|mentioned|in|on|at|who|that|which|and|for|with|from|to|during|since|now|today)"
_ROLE_ASKED = re.compile(
    rf"^\W*(?:who\s+(?:is|was|are|were|has\s+been)|(?:what|which)\s+(?:is|was|are|were)\s+the\s+names?\s+of)"
    rf"\s+(?:the\s+)?(?:[\w'’-]+\s+){{0,5}}?(?:([\w-]+)\s+)?({_ROLES})\b"
    rf"(\s+of\s+(?:the\s+)?[\w'’-]+(?:\s+(?!{_NOT_OF_ROLE}\b)[\w'’-]+)?)?",
    re.IGNORECASE,
)


def role_asked(question: str) -> str:
    """The role whose holder a question asks for ("foreign minister", "charge d'affaires"), with
    the word before it unless that is a possessive or a stop word, else with what it is "of"
    ("head of the islamic emirate"); "" for any other question."""
    match = _ROLE_ASKED.search(question)
    if not match:
        return ""
    before, role, of = match.group(1), " ".join(match.group(2).split()), match.group(3)
    if before and not re.search(r"['’]s?$", before) and before.lower() not in STOPWORDS:
        return f"{before.lower()} {role.lower()}"
    return f"{role} {' '.join(of.split())}".lower() if of else role.lower()  # "head of the islamic emirate"


def names_role_holder(text: str, role: str, skip_names: frozenset[str] = frozenset(), window: int = 40) -> bool:
    """Whether ``text`` puts a personal name (:func:`passage_features`' kind) within ``window``
    characters of the role's head word ("Russia's ambassador to Kabul, Alexander Mantytskiy"),
    and the words that qualify the role as near it ("supreme" of "supreme leader": a name beside
    "Taliban leaders" does not name the supreme leader)."""
    found = re.search(_ROLES, role, re.IGNORECASE)
    head = found.group(0) if found else role  # "minister" of "foreign minister", "head" of "head of ..."
    qualifiers = (
        [re.compile(rf"\b{re.escape(q[:5])}", re.IGNORECASE) for q in role[: found.start()].split()] if found else []
    )
    names = [
        m
        for m in _NAME.finditer(text)
        if any(w.lower() not in skip_names and w.lower() not in STOPWORDS for w in m.group(0).split())
    ]
    for mention in re.finditer(rf"\b{re.escape(head[:5])}", text, re.IGNORECASE):
        near = text[max(0, mention.start() - window) : mention.end() + window]
        if not all(q.search(near) for q in qualifiers):
            continue
        if any(n.start() - mention.end() <= window and mention.start() - n.end() <= window for n in names):
            return True
    return False


def question_kinds(question: str) -> frozenset[str]:
    """The kinds of answer ``question`` asks for, from :data:`KINDS` (possibly none)."""
    return frozenset(kind for kind, pattern in _QUESTION_KIND.items() if pattern.search(question))


def _saturating(count: int, full: int = 2) -> float:
    return min(count, full) / full


def passage_features(text: str, skip_names: frozenset[str] = frozenset()) -> dict[str, float]:
    """Surface evidence that a passage answers each kind of question, each in [0, 1]:
    cause words (why), years and months (when), numbers (how many), personal names (who).

    ``skip_names``: lower-case words that do not make a name (the corpus's topic words:
    "Russian Federation" is not a person)."""
    names = sum(
        1
        for m in _NAME.finditer(text)
        if any(w.lower() not in skip_names and w.lower() not in STOPWORDS for w in m.group(0).split())
    )
    return {
        "why": _saturating(len(_CAUSAL.findall(text)), 3),
        "when": _saturating(len(_YEAR.findall(text))),
        "how_many": _saturating(len(_NUMBER.findall(text))),
        "who": _saturating(names),
    }


def feature_matrix(texts: Sequence[str], skip_names: frozenset[str] = frozenset()) -> np.ndarray:
    """:func:`passage_features` of every text, as a (texts, len(KINDS)) float32 array."""
    rows = [passage_features(t, skip_names) for t in texts]
    return np.array([[row[k] for k in KINDS] for row in rows], dtype=np.float32).reshape(len(rows), len(KINDS))


def kind_boost(kinds: frozenset[str], features: np.ndarray, weights: Mapping[str, float]) -> np.ndarray:
    """The score each passage (rows of ``features``) gains for looking like the wanted answer."""
    boost = np.zeros(len(features), dtype=np.float64)
    for column, kind in enumerate(KINDS):
        weight = float(weights.get(kind, 0.0))
        if kind in kinds and weight:
            boost += weight * features[:, column]
    return boost


_REFERENCE = re.compile(r"\([^()]*\d{4}[^()]*\)|\[[^\[\]]*\d[^\[\]]*\]")


def has_content(sentence: str, min_words: int = 4) -> bool:
    """Whether a sentence says something: at least ``min_words`` words once bracketed references
    are dropped. "(Shahryar, 2016:1)." and "Ibid." do not; they make poor bold sentences."""
    text = _REFERENCE.sub(" ", sentence)
    return len(re.findall(r"[^\W\d_]{2,}", text)) >= min_words
