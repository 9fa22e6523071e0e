"""Concurrent questions share one model call, and each caller gets its own answer."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from embeddings.batching import QueryBatcher, group_requests


def test_concurrent_questions_are_batched_and_answers_go_to_their_askers():
    calls = []
    release = threading.Event()

    def run_batch(questions, k, offset):
        calls.append(list(questions))
        release.wait(5)  # the first batch is slow, so the others queue up behind it
        return [f"{q}|{k}|{offset}" for q in questions]

    batcher = QueryBatcher(run_batch)
    with ThreadPoolExecutor(12) as pool:
        first = pool.submit(batcher.submit, "q0", 3, 0)
        while not calls:
            threading.Event().wait(0.01)
        rest = [pool.submit(batcher.submit, f"q{i}", 3, 0) for i in range(1, 11)]
        threading.Event().wait(0.2)
        release.set()
        answers = [first.result(5)] + [f.result(5) for f in rest]
    assert answers == [f"q{i}|3|0" for i in range(11)]
    assert calls[0] == ["q0"] and len(calls) == 2 and sorted(calls[1]) == sorted(f"q{i}" for i in range(1, 11))


def test_a_failing_batch_raises_in_every_caller_and_the_batcher_keeps_working():
    def run_batch(questions, k, offset):
        if "boom" in questions:
            raise ValueError("model failed")
        return [q.upper() for q in questions]

    batcher = QueryBatcher(run_batch)
    with pytest.raises(ValueError, match="model failed"):
        batcher.submit("boom", 3, 0)
    assert batcher.submit("fine", 3, 0) == "FINE"


def test_requests_are_grouped_by_page():
    batch = [("a", 3, 0, None), ("b", 3, 3, None), ("c", 3, 0, None)]
    assert [[r[0] for r in g] for g in group_requests(batch)] == [["a", "c"], ["b"]]


def test_real_searcher_answers_concurrent_questions_like_sequential_ones(searcher):
    questions = ["Who overthrew King Zahir Shah?", "Do Afghans still speak Russian?", "What is the capital of France?"]
    sequential = [searcher.search_many([q])[0] for q in questions]
    with ThreadPoolExecutor(3) as pool:
        concurrent = list(pool.map(searcher.search, questions))
    assert [[h.start for h in r.hits] for r in concurrent] == [[h.start for h in r.hits] for r in sequential]
    assert [r.abstained for r in concurrent] == [False, False, True]
