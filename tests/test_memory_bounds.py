"""Every cache that grows with distinct questions is bounded by bytes, not only by entries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.state import QueryCache, StoredQuery
from embeddings.memory import HeapTrimmer, limit_arenas, trim_heap
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


def test_the_heap_trimmer_trims_at_most_once_per_interval_and_never_at_zero():
    now = [100.0]
    trimmer = HeapTrimmer(1.0, clock=lambda: now[0])
    trimmer()
    trimmer()  # too soon
    assert trimmer.trims == 1
    now[0] += 1.0
    trimmer()
    assert trimmer.trims == 2
    never = HeapTrimmer(0.0, clock=lambda: now[0])
    for _ in range(3):
        now[0] += 10
        never()
    assert never.trims == 0


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


LONG_QUESTION = (
    "What did the documents say about Russia's talks with the Taliban in Moscow, case {n}, and what "
    "followed for the wider region, for Central Asia, for the neighbours and for Kabul over the years?"
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_memory_freed_by_batches_of_long_questions_goes_back_to_the_os(encoder):
    """The real model, batches of 32 long questions: the heap keeps the freed activations (RSS
    climbs) unless trimmed; trimmed after each batch, RSS stays within a few MiB of the first."""
    batches = [[LONG_QUESTION.format(n=32 * b + i) for i in range(32)] for b in range(5)]
    encoder.token_states(batches[0])
    if not trim_heap():
        pytest.skip("this C library has no malloc_trim")
    before_trim = None
    after_first = _rss_mib()
    for batch in batches[1:]:
        encoder.token_states(batch + batch)  # a batch of 64: the largest the searcher encodes
        before_trim = _rss_mib()
        trim_heap()
    assert before_trim is not None
    released = before_trim - _rss_mib()
    assert released > 8, f"trimming released only {released:.1f} MiB after a batch of long questions"
    assert _rss_mib() - after_first < 24, f"RSS {after_first:.0f} → {_rss_mib():.0f} MiB over 4 trimmed batches"


def test_limit_arenas_is_taken_by_glibc_and_zero_leaves_the_default():
    import platform

    assert limit_arenas(0) is False
    if platform.libc_ver()[0] == "glibc":
        assert limit_arenas(2) is True
