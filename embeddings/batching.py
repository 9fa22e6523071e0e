"""Answer concurrent questions with one model call: the batch forms while the model is busy.

Threads call :meth:`QueryBatcher.submit`; one worker takes every question waiting, runs them
through ``search_many`` (one encode for all of them), and hands each caller its result. No
question waits for a timer: a lone question goes straight through, and questions that arrive
while a batch is being encoded make up the next batch. Encoding 16 questions at once costs far
less than 16 encodes (bench/README.md), which is where throughput under load comes from.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

Result = TypeVar("Result")
BatchCall = Callable[[Sequence[str], int, int], list[Any]]


class QueryBatcher:
    """Groups concurrent ``(question, k, offset)`` requests into calls of ``run_batch``."""

    def __init__(self, run_batch: BatchCall, *, max_batch: int = 32, idle_exit: float = 5.0) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.idle_exit = idle_exit  # the worker ends when idle this long (a swapped-out index leaks no thread)
        self._pending: list[tuple[str, int, int, Future]] = []
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None

    def submit(self, question: str, k: int, offset: int) -> Any:
        """The result for one question; blocks until its batch is done (exceptions propagate)."""
        future: Future = Future()
        with self._cond:
            self._pending.append((question, k, offset, future))
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="citebot-batcher", daemon=True)
                self._worker.start()
            self._cond.notify()
        return future.result()

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._pending and not self._cond.wait_for(lambda: self._pending, timeout=self.idle_exit):
                    self._worker = None
                    return
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            for group in group_requests(batch):
                self._run(group)

    def _run(self, group: list[tuple[str, int, int, Future]]) -> None:
        _, k, offset, _ = group[0]
        try:
            results = self.run_batch([question for question, *_ in group], k, offset)
        except BaseException as exc:  # every caller of the batch learns of the failure
            for *_, future in group:
                future.set_exception(exc)
            return
        for (*_, future), result in zip(group, results, strict=True):
            future.set_result(result)


def group_requests(batch: Sequence[tuple[str, int, int, Future]]) -> list[list[tuple[str, int, int, Future]]]:
    """Requests with the same ``k`` and ``offset`` can share a call; keeps arrival order."""
    groups: dict[tuple[int, int], list[tuple[str, int, int, Future]]] = {}
    for request in batch:
        groups.setdefault((request[1], request[2]), []).append(request)
    return list(groups.values())
