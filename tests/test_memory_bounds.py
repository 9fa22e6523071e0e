"""Every cache that grows with distinct questions is bounded by bytes, not only by entries."""

from __future__ import annotations

import numpy as np

from bot.state import QueryCache, StoredQuery
from embeddings.search import QUESTION_CACHE_BYTES, TOKEN_CACHE_BYTES, BoundedCache, nbytes


def test_bounded_cache_forgets_the_least_recent_beyond_its_byte_budget():
    cache: BoundedCache[str, tuple[np.ndarray, np.ndarray]] = BoundedCache(10_000, max_bytes=4 * 2**20)
    entry = (np.zeros(384, np.float32), np.zeros((256, 384), np.float32))  # a long question: ~385 KiB
    cache.put_all({"first": entry})
    for n in range(100):
        cache.put_all({f"question {n}": entry})
        assert cache.get("first") is not None  # used again: kept
        assert cache.bytes <= 4 * 2**20
    assert len(cache) == 4 * 2**20 // nbytes(("question 99", entry))
    assert cache.get("question 0") is None and cache.get("question 99") is not None
    cache.put_all({"huge": (np.zeros((4096, 384), np.float32), None)})  # larger than the budget: not kept
    assert cache.get("huge") is None and cache.bytes <= 4 * 2**20
    cache.clear()
    assert cache.bytes == 0 and len(cache) == 0


def test_the_searchers_caches_have_byte_budgets_and_keep_to_them(searcher):
    assert searcher._cache.max_bytes == QUESTION_CACHE_BYTES
    assert searcher._passage_token_cache.max_bytes == TOKEN_CACHE_BYTES
    saved = searcher._cache
    searcher._cache = BoundedCache(10_000, max_bytes=2**19)  # small, to see it filled by real encodes
    try:
        long = " and what the sources say about Russia's relations with the Taliban" * 4
        for n in range(12):
            searcher.search(f"question {n} about Kabul{long}")
            assert searcher._cache.bytes <= 2**19
        assert 0 < len(searcher._cache) < 24  # two texts a question: some were forgotten
    finally:
        searcher._cache = saved


def test_the_bots_query_store_keeps_to_its_byte_budget():
    store = QueryCache(size=100_000, max_bytes=2**20)
    tokens = [store.put(StoredQuery("Q" * 500 + str(n), 3, chat_id=n)) for n in range(5000)]
    assert store.bytes <= 2**20 and len(store) < 2000
    assert store.get(tokens[0]) is None and store.get(tokens[-1]).chat_id == 4999
