"""Concurrent questions share one model call, and each caller gets its own answer."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from embeddings.batching import AsyncQueryBatcher, QueryBatcher, Request, group_requests


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


# ------------------------------------------------------------------ questions from an event loop


def _blocking_batch(first_started: threading.Event, release: threading.Event, calls: list):
    def run_batch(questions, k, offset):
        calls.append((threading.current_thread().name, list(questions), k, offset))
        first_started.set()
        release.wait(5)  # the first batch is slow, so the others queue up behind it
        if "boom" in questions:
            raise ValueError("model failed")
        return [f"{q}|{k}|{offset}" for q in questions]

    return run_batch


async def _queued(batcher: AsyncQueryBatcher, n: int) -> None:
    """Until ``n`` questions wait behind the running batch."""
    while len(batcher._pending) < n:
        await asyncio.sleep(0)


def test_the_async_batcher_answers_waiting_questions_in_one_batch_resolved_with_one_hand_off():
    async def main():
        calls: list = []
        started, release = threading.Event(), threading.Event()
        batcher = AsyncQueryBatcher(_blocking_batch(started, release, calls), name="batch-thread")
        loop = asyncio.get_running_loop()
        hand_offs = []
        original = loop.call_soon_threadsafe
        loop.call_soon_threadsafe = lambda *a, **kw: (hand_offs.append(a[0]), original(*a, **kw))[1]
        try:
            first = asyncio.ensure_future(batcher.search("q0", 3, 0))
            await asyncio.to_thread(started.wait, 5)  # the first batch runs: the rest wait for it
            rest = [asyncio.ensure_future(batcher.search(f"q{i}", 3, 0)) for i in range(1, 11)]
            await _queued(batcher, 10)
            release.set()
            answers = await asyncio.gather(first, *rest)
        finally:
            loop.call_soon_threadsafe = original
            await asyncio.to_thread(batcher.close, 5)
        assert answers == [f"q{i}|3|0" for i in range(11)]
        assert [c[1] for c in calls] == [["q0"], [f"q{i}" for i in range(1, 11)]]
        assert {c[0] for c in calls} == {"batch-thread"}
        assert len([f for f in hand_offs if f.__name__ == "_resolve"]) == 2  # one per batch, not per question

    asyncio.run(main())


def test_the_async_batcher_groups_pages_and_a_failing_batch_fails_only_its_callers():
    async def main():
        calls: list = []
        started, release = threading.Event(), threading.Event()
        batcher = AsyncQueryBatcher(_blocking_batch(started, release, calls))
        first = asyncio.ensure_future(batcher.search("warm", 3, 0))
        await asyncio.to_thread(started.wait, 5)
        page_two = asyncio.ensure_future(batcher.search("a", 3, 3))
        boom = asyncio.ensure_future(batcher.search("boom", 3, 0))
        fine = asyncio.ensure_future(batcher.search("b", 3, 3))
        await _queued(batcher, 3)
        release.set()
        assert await first == "warm|3|0"
        assert [await page_two, await fine] == ["a|3|3", "b|3|3"]
        with pytest.raises(ValueError, match="model failed"):
            await boom
        assert await batcher.search("after", 5, 0) == "after|5|0"  # the thread keeps serving
        assert [c[1] for c in calls[1:3]] == [["a", "b"], ["boom"]]
        await asyncio.to_thread(batcher.close, 5)

    asyncio.run(main())


def test_a_cancelled_caller_is_skipped_and_close_stops_the_thread():
    async def main():
        calls: list = []
        started, release = threading.Event(), threading.Event()
        batcher = AsyncQueryBatcher(_blocking_batch(started, release, calls), name="closing-batcher")
        gone = asyncio.ensure_future(batcher.search("gone", 3, 0))
        await asyncio.to_thread(started.wait, 5)
        stays = asyncio.ensure_future(batcher.search("stays", 3, 0))
        await _queued(batcher, 1)
        gone.cancel()
        release.set()
        assert await stays == "stays|3|0"
        assert gone.cancelled()
        await asyncio.to_thread(batcher.close, 5)
        assert "closing-batcher" not in {t.name for t in threading.enumerate()}
        with pytest.raises(RuntimeError, match="closed"):
            await batcher.search("late", 3, 0)

    asyncio.run(main())


def test_both_batchers_run_after_batch_once_per_batch_and_survive_its_failure():
    ran = []

    def after() -> None:
        ran.append(True)
        raise RuntimeError("housekeeping failed")  # must not reach any caller

    batcher = QueryBatcher(lambda qs, k, o: [q.upper() for q in qs], after_batch=after)
    assert [batcher.submit(q, 3, 0) for q in ("a", "b")] == ["A", "B"]
    assert len(ran) == 2

    async def ask() -> list[str]:
        batcher = AsyncQueryBatcher(lambda qs, k, o: [q.upper() for q in qs], after_batch=after)
        try:
            first = await batcher.search("a", 3, 0)
            return [first, await batcher.search("b", 3, 0)]
        finally:
            batcher.close(5)

    ran.clear()
    assert asyncio.run(ask()) == ["A", "B"]
    assert len(ran) == 2


def test_the_async_batcher_runs_on_start_once_in_its_thread_before_the_first_batch():
    events = []

    def on_start() -> None:
        events.append(("start", threading.current_thread().name))
        raise RuntimeError("limits not set")  # the batcher answers anyway

    def run_batch(qs, k, o):
        events.append(("batch", threading.current_thread().name))
        return [q.upper() for q in qs]

    async def ask() -> list[str]:
        batcher = AsyncQueryBatcher(run_batch, name="limited-batcher", on_start=on_start)
        try:
            return [await batcher.search(q, 3, 0) for q in ("a", "b")]
        finally:
            batcher.close(5)

    assert asyncio.run(ask()) == ["A", "B"]
    assert events == [("start", "limited-batcher"), ("batch", "limited-batcher"), ("batch", "limited-batcher")]
