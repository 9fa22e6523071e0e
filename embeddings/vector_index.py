"""The vector side of search: exact FAISS search for small corpora, approximate for large ones.

Plain functions, so the choice of index type is one call and a second backend (a remote vector
engine) can slot in behind the same ``search(queries, k) -> (scores, ids)`` shape:

    index = make_vector_index(vectors, exact_below=100_000)
    scores, ids = index.search(queries, k)

Vectors are L2-normalised float32 rows, so inner product is cosine similarity.

Below ``exact_below`` rows the index is ``IndexFlatIP`` (exact, no build cost). At or above it,
``IndexIVFFlat`` (the default) or ``IndexHNSWFlat``, both with the inner-product metric. bench/scale.py
measured both on 100k and 1M vectors (bench/README.md §5): at 1M, IVF with nprobe 64 reached
recall@10 0.96 at ~5 ms per question and built in ~36 s, while HNSW (M 32, efConstruction 64)
stayed at recall 0.85 even with efSearch 256 and took ~140 s to build — so "auto" means IVF.
The searcher builds its vector index in memory when it starts (the index build stores only the
vectors). :func:`save_vector_index` and :func:`load_vector_index` write and memory-map a FAISS
index; nothing calls them yet (docs/scaling.md: what a corpus too large to index at start-up needs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

import faiss
import numpy as np

Kind = Literal["auto", "flat", "hnsw", "ivf"]


class VectorIndex(Protocol):
    """All the Searcher asks of a vector backend. A FAISS index is one as it is; a remote engine
    (Qdrant, OpenSearch) would be an adapter sending the batch of queries in one request."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row ids (each ``len(queries) × k``, best first) of the nearest rows."""
        ...


DEFAULT_HNSW_M = 32
DEFAULT_EF_CONSTRUCTION = 64
DEFAULT_EF_SEARCH = 128
DEFAULT_NPROBE = 64


def make_vector_index(
    vectors: np.ndarray,
    exact_below: int,
    *,
    kind: Kind = "auto",
    hnsw_m: int = DEFAULT_HNSW_M,
    ef_construction: int = DEFAULT_EF_CONSTRUCTION,
    ef_search: int = DEFAULT_EF_SEARCH,
    nlist: int | None = None,
    nprobe: int = DEFAULT_NPROBE,
) -> faiss.Index:
    """An inner-product index over ``vectors`` (n × d, L2-normalised).

    ``kind="auto"``: exact (``IndexFlatIP``) when ``n < exact_below``, else IVF. ``"ivf"`` or
    ``"hnsw"`` force an approximate type for large corpora (still exact below the threshold);
    ``"flat"`` is always exact. IVF uses ``nlist`` lists (default ≈ 4·√n, trained on at most 64 per
    list) and searches ``nprobe``; HNSW uses ``hnsw_m`` links, ``ef_construction`` and ``ef_search``.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be 2-D, got shape {vectors.shape}")
    n, dim = vectors.shape
    if kind == "flat" or n < exact_below or n == 0:
        index: faiss.Index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    elif kind in ("auto", "ivf"):
        lists = nlist or max(1, min(n // 39, int(4 * np.sqrt(n))))  # faiss wants ≥ 39 points per list
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
        sample = vectors if n <= 64 * lists else vectors[np.random.default_rng(0).choice(n, 64 * lists, replace=False)]
        index.train(sample)
        index.nprobe = min(nprobe, lists)
    else:
        raise ValueError(f"unknown index kind {kind!r} (auto, flat, hnsw, ivf)")
    if n:
        index.add(vectors)
    return index


def index_kind(index: faiss.Index) -> str:
    """ "flat", "hnsw" or "ivf" — what :func:`make_vector_index` chose."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    return "flat"


def set_search_effort(index: faiss.Index, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
    """Trade speed for recall on a built index (no-op for the exact index)."""
    index = faiss.downcast_index(index)
    if ef_search is not None and isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = ef_search
    if nprobe is not None and isinstance(index, faiss.IndexIVF):
        index.nprobe = nprobe


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int) -> float:
    """Mean share of each query's exact top ``k`` found in the approximate top ``k``.

    Both arrays are (queries × ≥k) id arrays as returned by ``index.search``; -1 (no result) never
    counts as found.
    """
    approx_ids = np.asarray(approx_ids)[:, :k]
    exact_ids = np.asarray(exact_ids)[:, :k]
    if len(exact_ids) == 0 or k <= 0:
        return 1.0
    found = 0
    wanted = 0
    for approx, exact in zip(approx_ids, exact_ids, strict=True):
        exact = exact[exact >= 0]
        wanted += len(exact)
        found += len(np.intersect1d(approx[approx >= 0], exact))
    return found / wanted if wanted else 1.0


def save_vector_index(index: faiss.Index, path: Path) -> None:
    """Write the index atomically (``path`` appears complete or not at all)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    faiss.write_index(index, str(tmp))
    tmp.replace(path)


def load_vector_index(path: Path, *, mmap: bool = True) -> faiss.Index:
    """Read an index written by :func:`save_vector_index`; memory-mapped (shared between
    processes, loaded lazily by the OS) unless ``mmap`` is false. HNSW and IVF keep their search
    settings (efSearch, nprobe) in the file."""
    flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
    return faiss.read_index(str(path), flags)
