"""The focus vector three ways, on the evaluation set in one run: pooled from the question's own
token vectors (one forward pass, what the searcher does) with the direction of the left-out tokens
taken away (``retrieval.focus_topic_weight``), pooled as a plain mean of the kept tokens, and the
stripped question encoded as a second text (two texts per question, as before), each with the
focus weight the cross-validation chose for it (bench/grids/one_pass_focus.yaml).

    python -m bench.focus [--quick]

Prints and writes the ``citebot eval`` figures of each, overall and per question kind.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from embeddings.evaluation import RANK_METRICS

from .common import EVAL_FILE, open_searcher, parser, write_result

KEYS = (*RANK_METRICS, "abstained_off_topic", "abstained_unanswerable", "newest_first")


# the encoded focus's weight in the fusion, chosen for it by the same cross-validation
ENCODED_FOCUS_WEIGHT = 0.45


def run() -> dict[str, Any]:
    from embeddings.evaluation import evaluate, load_eval_set, searcher_pipeline

    searcher = open_searcher()
    eval_set = load_eval_set(EVAL_FILE)
    configured = (searcher.focus_from_tokens, searcher.focus_topic_weight, searcher.weights)
    variants = {
        "one pass, left-out direction taken away (configured)": (True, searcher.focus_topic_weight, None),
        "one pass, plain mean of the focus tokens": (True, 0.0, None),
        "two texts (stripped text encoded)": (False, 0.0, ENCODED_FOCUS_WEIGHT),
    }
    out = {}
    try:
        for name, (pooled, topic_weight, focus_weight) in variants.items():
            searcher.focus_from_tokens, searcher.focus_topic_weight = pooled, topic_weight
            searcher.weights = replace(configured[2], dense_focus=focus_weight or configured[2].dense_focus)
            searcher.forget_questions()
            metrics = evaluate(eval_set, searcher_pipeline(searcher))
            out[name] = {
                **{k: metrics.get(k) for k in KEYS},
                "dense_focus": searcher.weights.dense_focus,
                "by_kind": metrics["by_kind"],
            }
    finally:
        searcher.focus_from_tokens, searcher.focus_topic_weight, searcher.weights = configured
        searcher.forget_questions()
    return {"eval_file": str(EVAL_FILE.name), "variants": out}


def main(argv: list[str] | None = None) -> int:
    parser(__doc__.splitlines()[0]).parse_args(argv)
    data = run()
    for name, m in data["variants"].items():
        print(name, {k: round(v, 3) for k, v in m.items() if isinstance(v, float)})
        for kind, km in m["by_kind"].items():
            print("   ", kind, {k: round(v, 3) for k, v in km.items()})
    write_result("focus", data, False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
