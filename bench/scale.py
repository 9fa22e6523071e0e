"""Scale: corpora of 10k, 100k and 1M passages — query latency, build time and memory of the
vector index at each size, exact (flat) against approximate (HNSW, IVF), with recall@10.

Corpus: passages made by recombining real seed sentences (2–4 sentences from random seed
documents, ~320 characters, like the real chunker's passages). The 10k corpus is embedded for real
with the packaged model, which gives the embedding throughput. Embedding 100k or 1M passages would
take too long here, so at those sizes the vectors are synthetic: each is a mix of two of the real
10k vectors plus Gaussian noise, re-normalised (it keeps the real vectors' clustered geometry,
which random vectors would not). Queries are always real: encoded questions of the evaluation set.
BM25 (bm25s) build and scoring are measured on the recombined texts up to ``--bm25-max`` passages.

    python -m bench.scale [--quick] [--repeats N] [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import functools
import gc
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from embeddings.vector_index import index_kind, make_vector_index, recall_at_k, set_search_effort

from .common import bench_settings, latency_summary, over_runs, parser, peak_rss_mib, rss_mib, write_result
from .questions import questions as make_questions

T = TypeVar("T")

CANDIDATES = 100  # the Searcher asks FAISS for this many neighbours of the question and its focus
HNSW_EF = (64, 128, 256)
IVF_NPROBE = (16, 32, 64)


def seed_sentences(settings: Any = None) -> tuple[list[list[str]], Any]:
    """The seed documents' sentences (per document), from the bench index, and the encoder."""
    from citebot import engine

    settings = settings or bench_settings()
    encoder = engine.load_encoder(settings)
    engine.update_index(settings, encoder)
    data = engine.open_index(settings)
    per_doc: list[list[str]] = [[] for _ in data.documents]
    for i, row in enumerate(np.asarray(data.sentences)):
        text = data.sentence_text(i).strip()
        if len(text) > 20:
            per_doc[int(row["doc"])].append(text)
    return [s for s in per_doc if s], encoder


def recombined_passages(per_doc: list[list[str]], n: int, seed: int = 0, target: int = 320) -> list[str]:
    """``n`` passages of real sentences: a run from one document, then sentences from others."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        doc = rng.choice(per_doc)
        i = rng.randrange(len(doc))
        parts = [doc[i]]
        size = len(doc[i])
        while size < target:
            other = rng.choice(per_doc)
            s = other[rng.randrange(len(other))] if rng.random() < 0.5 or i + 1 >= len(doc) else doc[i + 1]
            i += 1
            parts.append(s)
            size += len(s) + 1
        out.append(" ".join(parts))
    return out


def synthetic_vectors(real: np.ndarray, n: int, seed: int = 0, noise: float = 0.03) -> np.ndarray:
    """``n`` unit vectors near the real ones: x_i + 0.5·x_j + noise, normalised (in chunks)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        v = real[rng.integers(0, len(real), m)] + 0.5 * real[rng.integers(0, len(real), m)]
        v += rng.standard_normal(v.shape, dtype=np.float32) * noise
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[start : start + m] = v
    return out


def query_latency(index, queries: np.ndarray, focus: np.ndarray, repeats: int, limit: int) -> dict[str, Any]:
    """Per question: one FAISS call for (question, focus) with k=CANDIDATES, as the Searcher does."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # one question, one thread: OpenMP fan-out costs more than it saves
    runs = []
    for _ in range(repeats):
        times = []
        for q, f in zip(queries[:limit], focus[:limit], strict=True):
            pair = np.stack([q, f])
            start = time.perf_counter()
            index.search(pair, CANDIDATES)
            times.append(time.perf_counter() - start)
        runs.append(latency_summary(times))
    faiss.omp_set_num_threads(threads)
    return over_runs(runs)


def measure_index(
    kind: str, vectors: np.ndarray, queries, focus, exact_ids, repeats: int, limit: int, exact_below: int
) -> dict[str, Any]:
    gc.collect()
    before = rss_mib()
    start = time.perf_counter()
    index = make_vector_index(vectors, exact_below=exact_below if kind != "flat" else 0, kind=kind)
    build = time.perf_counter() - start
    memory = rss_mib() - before
    result: dict[str, Any] = {"kind": index_kind(index), "build_seconds": build, "memory_mib": memory}
    if kind == "flat":
        result["latency_ms"] = query_latency(index, queries, focus, repeats, limit)
        result["recall@10"] = 1.0
    else:
        sweep = []
        for effort in HNSW_EF if kind == "hnsw" else IVF_NPROBE:
            set_search_effort(index, ef_search=effort, nprobe=effort)
            ids = index.search(queries, 10)[1]
            sweep.append(
                {
                    "effort": effort,
                    "recall@10": recall_at_k(ids, exact_ids, 10),
                    "latency_ms": query_latency(index, queries, focus, repeats, limit),
                }
            )
        result["effort_name"] = "efSearch" if kind == "hnsw" else "nprobe"
        result["sweep"] = sweep
        ok = [s for s in sweep if s["recall@10"] >= 0.95]
        chosen = ok[0] if ok else sweep[-1]
        result.update(
            {"effort": chosen["effort"], "recall@10": chosen["recall@10"], "latency_ms": chosen["latency_ms"]}
        )
    del index
    gc.collect()
    return result


def bm25(texts: list[str], questions: list[str], repeats: int) -> dict[str, Any]:
    from embeddings.lexical import LexicalIndex

    gc.collect()
    before = rss_mib()
    start = time.perf_counter()
    lexical = LexicalIndex(texts)
    build = time.perf_counter() - start
    memory = rss_mib() - before
    runs = []
    for _ in range(repeats):
        times = []
        for q in questions:
            t = time.perf_counter()
            lexical.scores(q)
            times.append(time.perf_counter() - t)
        runs.append(latency_summary(times))
    del lexical
    gc.collect()
    return {"build_seconds": build, "memory_mib": memory, "latency_ms": over_runs(runs)}


def frozen_heap(function: Callable[..., T]) -> Callable[..., T]:
    """``function`` with what exists before it frozen out of the garbage collector: its collections
    between measurements then see only what it allocates, and take milliseconds instead of 0.5 s
    each in a process that holds the model and an index (or a whole test session)."""

    @functools.wraps(function)
    def frozen(*args: Any, **kwargs: Any) -> T:
        gc.freeze()
        try:
            return function(*args, **kwargs)
        finally:
            gc.unfreeze()

    return frozen


@frozen_heap
def run(
    sizes: list[int],
    repeats: int,
    quick: bool,
    bm25_max: int,
    kinds: list[str],
    exact_below: int,
    embed: int,
    settings: Any = None,
    n_questions: int | None = None,
) -> dict[str, Any]:
    per_doc, encoder = seed_sentences(settings)
    questions = make_questions(n_questions or (40 if quick else 200))
    encoder.encode(questions[:4])
    queries = encoder.encode(questions)
    focus = np.roll(queries, 1, axis=0)  # a second vector per call, as the Searcher's focus query
    real_n = min(sizes[0], embed)
    texts_real = recombined_passages(per_doc, real_n, seed=1)
    start = time.perf_counter()
    real = encoder.encode(texts_real)
    embed_seconds = time.perf_counter() - start
    throughput = real_n / embed_seconds
    out: dict[str, Any] = {
        "candidates_k": CANDIDATES,
        "queries": len(questions),
        "repeats": repeats,
        "exact_below": exact_below,
        "embedding": {
            "passages": real_n,
            "seconds": embed_seconds,
            "passages_per_second": throughput,
            "mean_chars": float(np.mean([len(t) for t in texts_real])),
        },
        "sizes": [],
    }
    for n in sizes:
        print(f"scale: {n} passages", flush=True)
        vectors = real if n == real_n else synthetic_vectors(real, n, seed=n)
        row: dict[str, Any] = {
            "passages": n,
            "vectors": "real" if n == real_n else "synthetic",
            "vector_bytes": int(vectors.nbytes),
            "embedding_seconds_estimated": n / throughput,
        }
        exact = make_vector_index(vectors, exact_below=0, kind="flat")
        exact_ids = exact.search(queries, 10)[1]
        del exact
        limit = len(queries) if n < 1_000_000 else min(len(queries), 60)
        row["flat"] = measure_index("flat", vectors, queries, focus, exact_ids, repeats, limit, exact_below)
        for kind in kinds:
            if n >= exact_below or n >= 100_000 or quick:
                print(f"scale: {n} passages, {kind}", flush=True)
                row[kind] = measure_index(kind, vectors, queries, focus, exact_ids, repeats, len(queries), 1)
        if n <= bm25_max:
            texts = texts_real if n == real_n else recombined_passages(per_doc, n, seed=n)
            row["bm25"] = bm25(texts, questions, repeats)
            del texts
        row["chosen"] = "flat" if n < exact_below else _best(row, kinds)
        out["sizes"].append(row)
        del vectors
        gc.collect()
    return out


def _best(row: dict[str, Any], kinds: list[str]) -> str:
    """The approximate kind with recall ≥ 0.95 and the lowest p50."""
    ok = [k for k in kinds if k in row and row[k]["recall@10"] >= 0.95]
    return min(ok, key=lambda k: row[k]["latency_ms"]["p50"]["median"]) if ok else "flat"


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default=None, help="comma-separated corpus sizes (default 10000,100000,1000000)")
    p.add_argument("--bm25-max", type=int, default=100_000, help="largest corpus to build BM25 for")
    p.add_argument("--kinds", default="hnsw,ivf", help="approximate index kinds to measure")
    p.add_argument("--embed", type=int, default=10_000, help="passages embedded for real (the smallest size)")
    p.add_argument(
        "--exact-below",
        type=int,
        default=None,
        help="exact search below this many passages (default: the config's retrieval.exact_search_below)",
    )
    args = p.parse_args(argv)
    sizes = [int(s) for s in (args.sizes or ("1000,5000" if args.quick else "10000,100000,1000000")).split(",")]
    settings = bench_settings()
    exact_below = settings.retrieval.exact_search_below if args.exact_below is None else args.exact_below
    result = run(
        sizes,
        args.repeats or (1 if args.quick else 3),
        args.quick,
        args.bm25_max,
        [k for k in args.kinds.split(",") if k],
        exact_below,
        args.embed,
        settings,
    )
    result["sizes_requested"] = sizes
    result["peak_rss_mib"] = peak_rss_mib()
    write_result("scale", result, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
