"""The vector index factory: exact below the threshold, approximate above it, with high recall."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.vector_index import (
    index_kind,
    load_vector_index,
    make_vector_index,
    recall_at_k,
    save_vector_index,
    set_search_effort,
)


def _clustered(n: int, dim: int = 64, clusters: int = 50, seed: int = 0) -> np.ndarray:
    """Normalised vectors around a few centres, like sentence embeddings of one topic."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    points = centres[rng.integers(0, clusters, n)] + 0.7 * rng.standard_normal((n, dim)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    vectors = _clustered(5000)
    queries = _clustered(200, seed=1)
    return vectors, queries


@pytest.fixture(scope="module")
def built(data) -> dict[str, object]:
    """One index of each kind over the 5k vectors (threshold 1000), built once."""
    vectors, _ = data
    return {kind: make_vector_index(vectors, exact_below=1000, kind=kind) for kind in ("flat", "hnsw", "ivf")}


def test_exact_below_threshold(data):
    vectors, queries = data
    index = make_vector_index(vectors[:500], exact_below=1000)
    assert index_kind(index) == "flat" and index.ntotal == 500
    scores, ids = index.search(queries[:5], 3)
    expected = np.argsort(-(queries[:5] @ vectors[:500].T), axis=1)[:, :3]
    assert (ids == expected).all()
    assert np.allclose(scores[:, 0], (queries[:5] @ vectors[:500].T).max(axis=1), atol=1e-5)


def test_auto_is_ivf_above_threshold(data):
    vectors, _ = data
    assert index_kind(make_vector_index(vectors[:1500], exact_below=1000)) == "ivf"
    assert index_kind(make_vector_index(vectors[:999], exact_below=1000)) == "flat"


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_above_threshold_keeps_recall(data, built, kind):
    _, queries = data
    exact, approx = built["flat"], built[kind]
    assert index_kind(exact) == "flat" and index_kind(approx) == kind
    _, exact_ids = exact.search(queries, 10)
    _, approx_ids = approx.search(queries, 10)
    assert recall_at_k(approx_ids, exact_ids, 10) >= 0.95


def test_recall_at_k_counts_overlap():
    exact = np.array([[1, 2, 3], [4, 5, 6]])
    assert recall_at_k(exact, exact, 3) == 1.0
    assert recall_at_k(np.array([[3, 9, 1], [-1, -1, -1]]), exact, 3) == pytest.approx(2 / 6)
    assert recall_at_k(np.array([[1, 7, 8]]), np.array([[1, 2, 8]]), 1) == 1.0


def test_empty_and_bad_input():
    index = make_vector_index(np.zeros((0, 8), np.float32), exact_below=0)
    assert index.ntotal == 0 and index.d == 8
    with pytest.raises(ValueError):
        make_vector_index(np.zeros(8, np.float32), exact_below=0)
    with pytest.raises(ValueError):
        make_vector_index(np.zeros((10, 8), np.float32), exact_below=0, kind="lsh")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
@pytest.mark.parametrize("mmap", [True, False])
def test_save_and_load_round_trip(tmp_path, data, built, kind, mmap):
    vectors, queries = data
    index = built[kind]
    set_search_effort(index, ef_search=150, nprobe=40)
    path = tmp_path / "vectors.faiss"
    save_vector_index(index, path)
    assert path.exists() and not list(tmp_path.glob(".*.tmp"))
    loaded = load_vector_index(path, mmap=mmap)
    assert index_kind(loaded) == kind and loaded.ntotal == len(vectors)
    assert (loaded.search(queries, 10)[1] == index.search(queries, 10)[1]).all()
