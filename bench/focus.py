"""The focus vector two ways, on the evaluation set in one run: pooled from the question's own
token vectors without the topic words (one forward pass, what the searcher does) against
encoding the stripped question as a second text (two forward passes, as before).

    python -m bench.focus [--quick]

Prints and writes the ``citebot eval`` figures of both, overall and per question kind.
"""

from __future__ import annotations

from typing import Any

from .common import EVAL_FILE, open_searcher, parser, write_result

KEYS = ("hit@1", "hit@3", "hit@5", "mrr@5", "answered", "abstained_off_topic", "abstained_unanswerable")


def run() -> dict[str, Any]:
    from embeddings.evaluation import evaluate, load_eval_set, searcher_pipeline

    searcher = open_searcher()
    eval_set = load_eval_set(EVAL_FILE)
    out = {}
    configured = searcher.focus_from_tokens
    try:
        for name, pooled in (("one pass (pooled focus)", True), ("two passes (stripped text encoded)", False)):
            searcher.focus_from_tokens = pooled
            searcher.forget_questions()
            metrics = evaluate(eval_set, searcher_pipeline(searcher))
            out[name] = {**{k: metrics.get(k) for k in KEYS}, "by_kind": metrics["by_kind"]}
    finally:
        searcher.focus_from_tokens = configured
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
