"""The naive pipeline beside citebot's, in the same run: quality and speed.

Naive = what the tutorials build (embeddings.evaluation.naive_pipeline): fixed 1000-character
chunks with 200 overlap, dense only, flat index. Quality comes from
``citebot eval tests/data/eval.yaml --json`` (run as a subprocess on the bench index); speed is
per-question latency of both pipelines over the same questions, query cache cleared.

    python -m bench.naive [--quick] [--repeats N]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import EVAL_FILE, REPO, WORK, latency_summary, open_searcher, over_runs, parser, timed, write_result
from .questions import questions as make_questions

NAIVE = "naive-1000/200-dense"


def quality() -> dict[str, Any]:
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        CITEBOT_INDEX_DIR=str(WORK / "index"),
    )
    citebot = Path(sys.executable).with_name("citebot")
    command = [str(citebot), "eval", str(EVAL_FILE.relative_to(REPO)), "--json"]
    seconds, out = timed(lambda: subprocess.run(command, capture_output=True, text=True, check=True, env=env, cwd=REPO))
    data = json.loads(out.stdout)
    for metrics in data["pipelines"].values():
        metrics.pop("misses", None)
    return {
        "command": "citebot eval tests/data/eval.yaml --json",
        "seconds": seconds,
        "questions": data["questions"],
        "off_topic": data["off_topic"],
        "pipelines": data["pipelines"],
    }


def speed(repeats: int, n: int) -> dict[str, Any]:
    from embeddings.evaluation import naive_pipeline

    searcher = open_searcher()
    build_seconds, naive = timed(lambda: naive_pipeline(searcher))
    questions = make_questions(n)
    naive(questions[:3])
    searcher.search(questions[0])
    runs: dict[str, list] = {"full": [], "naive": []}
    for r in range(repeats):
        searcher.forget_questions()
        t: dict[str, list[float]] = {"full": [], "naive": []}
        for i, q in enumerate(questions):
            order = ("full", "naive") if (i + r) % 2 == 0 else ("naive", "full")
            for name in order:
                start = time.perf_counter()
                if name == "full":
                    searcher.search(q, k=5)
                else:
                    naive([q])
                t[name].append(time.perf_counter() - start)
        for name in runs:
            runs[name].append(latency_summary(t[name]))
    return {
        "questions": len(questions),
        "repeats": repeats,
        "naive_index_build_seconds": build_seconds,
        "latency_ms": {name: over_runs(v) for name, v in runs.items()},
    }


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--no-quality", action="store_true", help="skip the `citebot eval` run")
    args = p.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    result: dict[str, Any] = {"speed": speed(repeats, 20 if args.quick else 150)}
    if not args.no_quality:
        result["quality"] = quality()
    write_result("naive", result, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
