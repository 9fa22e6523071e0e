"""Answer concurrent questions with one model call: the batch forms while the model is busy.

Threads call :meth:`QueryBatcher.submit`. When no batch is running, the caller becomes the
leader: in its own thread it runs every question waiting through ``search_many`` (one encode for
all of them) and hands each caller its result. Callers arriving meanwhile wait. When the leader's
batch is done and questions are waiting, the oldest waiting caller leads the next batch, so no
caller runs more than its own batch: under sustained load an answered leader would otherwise go
on encoding other people's questions while its own user waits. No question waits for a timer: a
lone question runs straight through in its caller's thread. Encoding 16 questions at once costs
far less than 16 encodes (bench/README.md), which is where throughput under load comes from.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

Result = TypeVar("Result")
BatchCall = Callable[[Sequence[str], int, int], list[Any]]
R = TypeVar("R", "Request", "AsyncRequest")


@dataclass(eq=False)
class Request:
    question: str
    k: int
    offset: int
    future: Future = field(default_factory=Future)
    leads: bool = False  # set when this caller is to run the next batch


class QueryBatcher:
    """Groups concurrent ``(question, k, offset)`` requests into calls of ``run_batch``."""

    def __init__(
        self, run_batch: BatchCall, *, max_batch: int = 32, after_batch: Callable[[], object] | None = None
    ) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.after_batch = after_batch  # run by the leader once its callers have their answers
        self._pending: list[Request] = []
        self._changed = threading.Condition()
        self._running = False

    def submit(self, question: str, k: int, offset: int) -> Any:
        """The result for one question; blocks until its batch is done (exceptions propagate)."""
        request = Request(question, k, offset)
        with self._changed:
            self._pending.append(request)
            request.leads = not self._running
            self._running = True
            self._changed.wait_for(lambda: request.leads or request.future.done())
        if not request.future.done():
            self._lead()
        return request.future.result()

    def _lead(self) -> None:
        with self._changed:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        try:
            for group in group_requests(batch):
                self._run(group)
                with self._changed:
                    self._changed.notify_all()  # this group's callers have their answers
        finally:
            with self._changed:
                if self._pending:
                    self._pending[0].leads = True  # the oldest waiting caller runs the next batch
                else:
                    self._running = False
                self._changed.notify_all()
            if self.after_batch is not None:
                with contextlib.suppress(Exception):  # housekeeping: never the caller's failure
                    self.after_batch()

    def _run(self, group: list[Request]) -> None:
        for request, (ok, value) in zip(group, run_group(self.run_batch, group), strict=True):
            if ok:
                request.future.set_result(value)
            else:
                request.future.set_exception(value)


def run_group(run_batch: BatchCall, group: Sequence[R]) -> list[tuple[bool, Any]]:
    """One call of ``run_batch`` for requests sharing ``k`` and ``offset``: ``(True, result)`` for
    each, or, when the call fails (or returns too few results), ``(False, the exception)`` for every
    one of them, so that no caller of the group is left waiting."""
    try:
        results = run_batch([r.question for r in group], group[0].k, group[0].offset)
        return [(True, result) for _, result in zip(group, results, strict=True)]
    except BaseException as exc:
        return [(False, exc)] * len(group)


def group_requests(batch: Sequence[R]) -> list[list[R]]:
    """Requests with the same ``k`` and ``offset`` can share a call; keeps arrival order."""
    groups: dict[tuple[int, int], list[R]] = {}
    for request in batch:
        groups.setdefault((request.k, request.offset), []).append(request)
    return list(groups.values())


@dataclass(eq=False)
class AsyncRequest:
    question: str
    k: int
    offset: int
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class AsyncQueryBatcher:
    """Questions from an event loop answered in batches by one thread of its own.

    :class:`QueryBatcher` serves threads: each question costs a hand-off to an executor thread,
    a wake-up on the batch's condition and a ``call_soon_threadsafe`` back to the loop. Here the
    loop only appends to a list (and wakes the thread if it is idle); the thread runs everything
    waiting through ``run_batch`` (one encode) and resolves the batch's futures with one
    ``call_soon_threadsafe``: hand-offs per batch, not per question (bench/README.md, "A lean
    path"). As with :class:`QueryBatcher`, no question waits for a timer. ``run_batch`` looks up
    the current searcher on each call, so a rebuild's new searcher is used from the next batch.
    """

    def __init__(
        self,
        run_batch: BatchCall,
        *,
        max_batch: int = 32,
        name: str = "citebot-batch",
        after_batch: Callable[[], object] | None = None,
        on_start: Callable[[], object] | None = None,
    ) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.name = name
        # run in the thread before its first batch, e.g. the thread pools' per-thread limits
        # (OpenMP's number of threads is kept per thread: citebot.engine.limit_threads_here)
        self.on_start = on_start
        # run in the thread once a batch's answers are handed to their loops, e.g. returning the
        # memory the batch's forward pass freed (embeddings.memory.HeapTrimmer)
        self.after_batch = after_batch
        self._pending: list[AsyncRequest] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._idle = False  # the thread is waiting for questions: a new one must wake it

    async def search(self, question: str, k: int, offset: int) -> Any:
        """The result for one question (exceptions of its batch propagate)."""
        loop = asyncio.get_running_loop()
        request = AsyncRequest(question, k, offset, loop.create_future(), loop)
        with self._changed:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._pending.append(request)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()
            elif self._idle:
                self._changed.notify()
        return await request.future

    def close(self, timeout: float | None = None) -> None:
        """Stop the thread once what is waiting has been answered."""
        with self._changed:
            self._closed = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _serve(self) -> None:
        if self.on_start is not None:
            with contextlib.suppress(Exception):  # the libraries' defaults are slower, not wrong
                self.on_start()
        while True:
            with self._changed:
                self._idle = True
                self._changed.wait_for(lambda: self._pending or self._closed)
                self._idle = False
                if not self._pending:
                    return  # closed, nothing left
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            outcomes: list[tuple[AsyncRequest, bool, Any]] = [
                (request, ok, value)
                for group in group_requests(batch)
                for request, (ok, value) in zip(group, run_group(self.run_batch, group), strict=True)
            ]
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[AsyncRequest, bool, Any]]] = {}
            for outcome in outcomes:
                by_loop.setdefault(outcome[0].loop, []).append(outcome)
            for loop, resolved in by_loop.items():
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                    loop.call_soon_threadsafe(_resolve, resolved)
            if self.after_batch is not None:
                with contextlib.suppress(Exception):  # housekeeping: it must never stop the thread
                    self.after_batch()


def _resolve(outcomes: list[tuple[AsyncRequest, bool, Any]]) -> None:
    """On the event loop: hand each waiting caller its result (a cancelled caller is skipped)."""
    for request, ok, value in outcomes:
        if request.future.done():
            continue
        if ok:
            request.future.set_result(value)
        else:
            request.future.set_exception(value)
