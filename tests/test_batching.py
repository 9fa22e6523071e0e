"""Concurrent questions share one model call, and each caller gets its own answer."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from embeddings.batching import QueryBatcher, Request, group_requests


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
    batch = [Request("a", 3, 0), Request("b", 3, 3), Request("c", 3, 0)]
    assert [[r.question for r in g] for g in group_requests(batch)] == [["a", "c"], ["b"]]


def test_a_leader_returns_after_its_own_batch_and_a_waiting_caller_runs_the_next():
    batches: list[tuple[str, list[str]]] = []
    second_batch_started = threading.Event()
    release = {"q0": threading.Event(), "q1": threading.Event()}

    def run_batch(questions, k, offset):
        batches.append((threading.current_thread().name, list(questions)))
        if "q1" in questions:
            second_batch_started.set()
        release.get(questions[0], threading.Event()).wait(5)
        return [q.upper() for q in questions]

    batcher = QueryBatcher(run_batch)
    with ThreadPoolExecutor(3, thread_name_prefix="asker") as pool:
        first = pool.submit(batcher.submit, "q0", 3, 0)
        while not batches:
            threading.Event().wait(0.01)
        second = pool.submit(batcher.submit, "q1", 3, 0)
        threading.Event().wait(0.1)
        release["q0"].set()
        assert first.result(5) == "Q0"  # answered while the next batch is still running
        assert second_batch_started.wait(5) and not second.done()
        release["q1"].set()
        assert second.result(5) == "Q1"
    (leader_one, _), (leader_two, _) = batches
    assert leader_one != leader_two  # the second batch ran in its own asker's thread


def test_real_searcher_answers_concurrent_questions_like_sequential_ones(searcher):
    questions = ["Who overthrew King Zahir Shah?", "Do Afghans still speak Russian?", "What is the capital of France?"]
    sequential = [searcher.search_many([q])[0] for q in questions]
    with ThreadPoolExecutor(3) as pool:
        concurrent = list(pool.map(searcher.search, questions))
    assert [[h.start for h in r.hits] for r in concurrent] == [[h.start for h in r.hits] for r in sequential]
    assert [r.abstained for r in concurrent] == [False, False, True]
