"""Misspelled questions: the evaluation set with one typo per question, against the same questions
as written, in one run; and the same typos with capitalised words never corrected (the rule
before the seventh pass's follow-up, when every capitalised word counted as a name).

A typo is what typists make, in one word of six letters or more: two neighbouring letters
swapped ("Tlaiban"), one dropped ("Kudnz") or one doubled ("Moscoww"), chosen by a fixed seed;
each seed is one misspelled copy of the set.

    python -m bench.typos [--quick] [--seeds N]

Prints and writes the ``citebot eval`` figures of each variant.
"""

from __future__ import annotations

import random
import re
from contextlib import contextmanager
from typing import Any

from embeddings.evaluation import EvalQuestion, EvalSet, evaluate, load_eval_set, searcher_pipeline
from embeddings.lexical import Vocabulary

from .common import EVAL_FILE, open_searcher, parser, write_result

KEYS = ("hit@1", "hit@3", "hit@5", "mrr@5", "answered", "abstained_off_topic", "abstained_unanswerable")
MIN_LETTERS = 6


def misspell(text: str, rng: random.Random) -> str:
    """``text`` with one typo in one of its words of :data:`MIN_LETTERS` letters or more."""
    tokens = text.split(" ")
    long_words = [i for i, t in enumerate(tokens) if len(re.sub(r"\W", "", t)) >= MIN_LETTERS]
    if not long_words:
        return text
    i = rng.choice(long_words)
    word = tokens[i]
    j = rng.randrange(1, len(re.sub(r"\W+$", "", word)) - 2)  # never the first letter, nor the last
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap" and word[j] != word[j + 1]:  # "troops": swapping "oo" would change nothing
        word = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    elif kind == "drop":
        word = word[:j] + word[j + 1 :]
    else:
        word = word[:j] + word[j] + word[j:]
    tokens[i] = word
    return " ".join(tokens)


def misspelled_set(eval_set: EvalSet, seed: int) -> EvalSet:
    rng = random.Random(seed)
    questions = [EvalQuestion(misspell(q.question, rng), q.docs, q.evidence, q.kind) for q in eval_set.questions]
    return EvalSet(questions, [misspell(q, rng) for q in eval_set.off_topic])


@contextmanager
def names_never_corrected():
    """The former rule: a capitalised word is a name, left as written."""
    correct_name = Vocabulary._correct_name
    Vocabulary._correct_name = lambda self, word, lower, seen: word  # type: ignore[method-assign]
    try:
        yield
    finally:
        Vocabulary._correct_name = correct_name  # type: ignore[method-assign]


def _mean(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {k: sum(r[k] for r in runs) / len(runs) for k in KEYS}


def run(seeds: int) -> dict[str, Any]:
    searcher = open_searcher()
    eval_set = load_eval_set(EVAL_FILE)
    misspelled = [misspelled_set(eval_set, seed) for seed in range(seeds)]

    def measure(sets: list[EvalSet]) -> dict[str, float]:
        searcher.forget_questions()
        return _mean([evaluate(s, searcher_pipeline(searcher)) for s in sets])

    out = {"as written": measure([eval_set]), "one typo each": measure(misspelled)}
    with names_never_corrected():
        out["one typo each, capitalised words never corrected"] = measure(misspelled)
    searcher.forget_questions()
    return {"eval_file": EVAL_FILE.name, "seeds": seeds, "variants": out}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=None, help="misspelled copies of the set (default 5, quick 1)")
    args = p.parse_args(argv)
    data = run(args.seeds or (1 if args.quick else 5))
    for name, metrics in data["variants"].items():
        print(f"{name:50}", {k: round(v, 3) for k, v in metrics.items()})
    write_result("typos", data, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
