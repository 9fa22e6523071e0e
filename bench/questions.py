"""A few hundred varied questions from the evaluation set: as written, reworded, terse, misspelled.

Every string is distinct, so no benchmark run is flattered by the searcher's query cache.
"""

from __future__ import annotations

import random
import re

from embeddings.evaluation import load_eval_set

from .common import EVAL_FILE

PREFIXES = ("what do the sources say about", "tell me about", "explain", "any evidence on", "summarise")
STOP = {
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "and",
    "is",
    "are",
    "did",
    "does",
    "do",
    "what",
    "how",
    "why",
    "when",
    "which",
    "who",
    "with",
    "for",
    "on",
    "has",
    "have",
}


def _keywords(question: str) -> str:
    return " ".join(w for w in re.findall(r"[\w’'-]+", question.lower()) if w not in STOP)


def _typo(question: str, rng: random.Random) -> str:
    words = question.split()
    long = [i for i, w in enumerate(words) if len(w) > 5]
    if not long:
        return question + "?"
    i = rng.choice(long)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    words[i] = w[:j] + w[j + 1 :]  # drop one letter: "talibn"
    return " ".join(words)


def questions(n: int = 400, seed: int = 7) -> list[str]:
    """``n`` distinct questions (corpus and off-topic), in a fixed shuffled order."""
    rng = random.Random(seed)
    eval_set = load_eval_set(EVAL_FILE)
    base = [q.question for q in eval_set.questions] + list(eval_set.off_topic)
    pool: dict[str, None] = dict.fromkeys(base)
    variants = [
        lambda q: _keywords(q),
        lambda q: _typo(q, rng),
        lambda q: f"{rng.choice(PREFIXES)} {_keywords(q)}",
        lambda q: q.lower().rstrip("?") + " ?",
    ]
    for make in variants:
        for q in base:
            pool.setdefault(make(q), None)
    out = [q for q in pool if q.strip()]
    rng.shuffle(out)
    return out[:n]
