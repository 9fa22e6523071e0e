"""Query latency in process: the full pipeline (spelling, encode, FAISS, BM25, fusion, formatting)
beside the bare model encode of the same questions, measured in the same run, question by question.

Also: the same questions again (query-embedding cache hits), and concurrent questions batched into
one encode (``Searcher.search_many``) against answering them one by one.

    python -m bench.latency [--quick] [--repeats N] [--questions N]
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from .common import latency_summary, library_encode, open_searcher, over_runs, parser, scalar_over_runs, write_result
from .questions import questions as make_questions


class ModelTimer:
    """Times every forward pass of the sentence-transformers model, whichever path calls it
    (``Encoder.encode`` or the searcher's token-vector encode), by wrapping ``Encoder.forward``."""

    def __init__(self, encoder: Any) -> None:
        self.spent = 0.0
        self.encoder = encoder
        self.own = "forward" in vars(encoder)  # already an instance attribute: put it back as it was
        self.inner = inner = encoder.forward

        def forward(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - start

        encoder.forward = forward

    def restore(self) -> None:
        if self.own:
            self.encoder.forward = self.inner
        else:
            del self.encoder.forward


def formatter():
    """The bot's answer formatting when bot/ is importable, else the CLI's."""
    try:
        from bot.formatting import answer_html

        return "bot.formatting.answer_html", lambda result, q: answer_html(result, question=q, per_page=3)
    except Exception:  # the bot is being written: fall back rather than fail the benchmark
        from citebot.cli import format_result

        return "citebot.cli.format_result", lambda result, q: format_result(result)


def run(quick: bool, repeats: int, n_questions: int, searcher: Any = None) -> dict[str, Any]:
    searcher = searcher or open_searcher()
    bare = searcher.encoder
    timed_encoder = ModelTimer(bare)
    fmt_name, fmt = formatter()
    questions = make_questions(n_questions)
    for q in questions[: 3 if quick else 10]:  # warm up: first calls allocate
        fmt(searcher.search(q), q)
        library_encode(bare, [q])
    searcher.forget_questions()

    runs: dict[str, list[dict[str, float]]] = {
        k: [] for k in ("bare_encode", "pipeline", "pipeline_encode", "pipeline_rest", "cached")
    }
    ratios = []
    for r in range(repeats):
        searcher.forget_questions()  # every question is a cache miss on each run
        t: dict[str, list[float]] = {k: [] for k in runs}
        for i, q in enumerate(questions):

            def encode_only(q=q, t=t):
                start = time.perf_counter()
                library_encode(bare, [q])
                t["bare_encode"].append(time.perf_counter() - start)

            def pipeline(q=q, t=t):
                searcher.forget_questions()  # variants of one question can share a focus text: no cache help
                timed_encoder.spent = 0.0
                start = time.perf_counter()
                fmt(searcher.search(q, k=3), q)
                total = time.perf_counter() - start
                t["pipeline"].append(total)
                t["pipeline_encode"].append(timed_encoder.spent)
                t["pipeline_rest"].append(total - timed_encoder.spent)

            # alternate the order so neither side always runs with warmer caches
            first, second = (encode_only, pipeline) if (i + r) % 2 == 0 else (pipeline, encode_only)
            first()
            second()
            start = time.perf_counter()
            fmt(searcher.search(q, k=3), q)
            t["cached"].append(time.perf_counter() - start)
        for k in runs:
            runs[k].append(latency_summary(t[k]))
        ratios.append(runs["pipeline"][-1]["p50"] / runs["bare_encode"][-1]["p50"])

    timed_encoder.restore()
    batching = measure_batching(searcher, questions, quick)
    threads = measure_threads(searcher, questions[: 30 if quick else 150], fmt)  # quick: ≤ n_questions
    return {
        "questions": len(questions),
        "repeats": repeats,
        "formatter": fmt_name,
        "passages": len(searcher.passages),
        "sentences": len(searcher.sentence_vectors),
        "latency_ms": {k: over_runs(v) for k, v in runs.items()},
        "p50_ratio_pipeline_to_bare_encode": scalar_over_runs(ratios),
        "target": "pipeline p50 <= 1.3 x bare encode p50",
        "batching": batching,
        "threads": threads,
    }


def measure_threads(searcher, questions: list[str], fmt) -> list[dict[str, Any]]:
    """The pipeline with FAISS and numpy's BLAS on one thread each (what ``limit_search_threads``
    sets) against the libraries' default of one per core: wall time, and CPU time per question
    (all threads, the model's included), which is what concurrent questions compete for."""
    import faiss
    from threadpoolctl import threadpool_limits

    rows = []
    for threads in (os.cpu_count() or 1, 1):
        faiss.omp_set_num_threads(threads)
        with threadpool_limits(threads, user_api="blas"):
            searcher.forget_questions()
            times, cpu = [], []
            for q in questions:
                start, start_cpu = time.perf_counter(), time.process_time()
                fmt(searcher.search(q, k=3), q)
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
        rows.append({"threads": threads, **latency_summary(times), "cpu_ms_per_question": 1000 * statistics.mean(cpu)})
    faiss.omp_set_num_threads(1)
    return rows


def measure_batching(searcher, questions: list[str], quick: bool) -> list[dict[str, Any]]:
    """Questions answered per second, one by one versus in batches of concurrent questions."""
    sample = questions[: 32 if quick else 128]  # quick: ≤ n_questions
    rows = []
    for size in (1, 4, 16, 32):
        searcher.forget_questions()
        start = time.perf_counter()
        for i in range(0, len(sample), size):
            searcher.search_many(sample[i : i + size], k=3)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "batch": size,
                "questions": len(sample),
                "seconds": seconds,
                "questions_per_second": len(sample) / seconds,
                "ms_per_question": 1000 * seconds / len(sample),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--questions", type=int, default=None, help="how many questions (default 300, quick 30)")
    args = p.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    n = args.questions or (30 if args.quick else 300)
    write_result("latency", run(args.quick, repeats, n), args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
