"""Answer concurrent questions with one model call: the batch forms while the model is busy.

Threads call :meth:`QueryBatcher.submit`. The first caller becomes the leader: in its own thread
it runs every question waiting through ``search_many`` (one encode for all of them), hands each
caller its result, and repeats until nothing waits. Callers arriving meanwhile just wait for
their result. No question waits for a timer and no thread is handed work: a lone question runs
straight through in its caller's thread, and questions that arrive while a batch is being encoded
make up the next batch. Encoding 16 questions at once costs far
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

    def __init__(self, run_batch: BatchCall, *, max_batch: int = 32) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self._pending: list[tuple[str, int, int, Future]] = []
        self._lock = threading.Lock()
        self._leading = False

    def submit(self, question: str, k: int, offset: int) -> Any:
        """The result for one question; blocks until its batch is done (exceptions propagate)."""
        future: Future = Future()
        with self._lock:
            self._pending.append((question, k, offset, future))
            lead = not self._leading
            self._leading = True
        if lead:
            self._lead()
        return future.result()

    def _lead(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._leading = False
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
