"""A faster encoder? The packaged model with int8 dynamic quantisation of its Linear layers
(``torch.ao.quantization.quantize_dynamic``, offline, no new packages), against fp32.

Measures bare encode latency of the same questions and throughput on passages, both models in the
same run, and retrieval quality on the evaluation set with questions encoded by each (the index
stays fp32, as a deployment would keep it while switching the query encoder).

    python -m bench.quantized [--quick] [--repeats N]
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np

from .common import EVAL_FILE, latency_summary, open_searcher, over_runs, parser, scalar_over_runs, write_result
from .questions import questions as make_questions


def quantized_copy(model):
    import torch

    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)


def run(quick: bool, repeats: int) -> dict[str, Any]:
    from embeddings.evaluation import evaluate, load_eval_set, searcher_pipeline

    searcher = open_searcher()
    fp32 = searcher.encoder.model
    int8 = quantized_copy(fp32)
    models = {"fp32": fp32, "int8": int8}
    questions = make_questions(40 if quick else 200)
    passages = [searcher.data.passage_text(i) for i in range(min(len(searcher.passages), 64 if quick else 256))]
    for m in models.values():
        m.encode(questions[:4])
    runs: dict[str, list] = {name: [] for name in models}
    throughput: dict[str, list[float]] = {name: [] for name in models}
    for r in range(repeats):
        t: dict[str, list[float]] = {name: [] for name in models}
        for i, q in enumerate(questions):
            for name in (("fp32", "int8") if (i + r) % 2 == 0 else ("int8", "fp32")):
                start = time.perf_counter()
                models[name].encode([q], normalize_embeddings=True)
                t[name].append(time.perf_counter() - start)
        for name, m in models.items():
            runs[name].append(latency_summary(t[name]))
            start = time.perf_counter()
            m.encode(passages, batch_size=64)
            throughput[name].append(len(passages) / (time.perf_counter() - start))
    a = fp32.encode(questions, normalize_embeddings=True)
    b = int8.encode(questions, normalize_embeddings=True)
    agreement = np.sum(a * b, axis=1)

    eval_set = load_eval_set(EVAL_FILE)
    quality = {}
    for name, m in models.items():
        searcher.encoder.model = m
        searcher._cache.clear()
        metrics = evaluate(eval_set, searcher_pipeline(searcher))
        metrics.pop("misses", None)
        quality[name] = metrics
    searcher.encoder.model = fp32
    return {
        "questions": len(questions), "repeats": repeats,
        "encode_latency_ms": {name: over_runs(v) for name, v in runs.items()},
        "passages_per_second": {name: scalar_over_runs(v) for name, v in throughput.items()},
        "cosine_fp32_vs_int8": {"mean": float(agreement.mean()), "min": float(agreement.min())},
        "quality_full_pipeline": quality,
    }


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    write_result("quantized", run(args.quick, args.repeats or (1 if args.quick else 3)), args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
