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

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

Result = TypeVar("Result")
BatchCall = Callable[[Sequence[str], int, int], list[Any]]


@dataclass(eq=False)
class Request:
    question: str
    k: int
    offset: int
    future: Future = field(default_factory=Future)
    leads: bool = False  # set when this caller is to run the next batch


class QueryBatcher:
    """Groups concurrent ``(question, k, offset)`` requests into calls of ``run_batch``."""

    def __init__(self, run_batch: BatchCall, *, max_batch: int = 32) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
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

    def _run(self, group: list[Request]) -> None:
        try:
            results = self.run_batch([r.question for r in group], group[0].k, group[0].offset)
        except BaseException as exc:  # every caller of the batch learns of the failure
            for request in group:
                request.future.set_exception(exc)
            return
        for request, result in zip(group, results, strict=True):
            request.future.set_result(result)


def group_requests(batch: Sequence[Request]) -> list[list[Request]]:
    """Requests with the same ``k`` and ``offset`` can share a call; keeps arrival order."""
    groups: dict[tuple[int, int], list[Request]] = {}
    for request in batch:
        groups.setdefault((request.k, request.offset), []).append(request)
    return list(groups.values())
