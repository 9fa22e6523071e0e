"""Per-user rate limit: a sliding window of questions, with one polite notice per window."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    ALLOW = "allow"
    NOTICE = "notice"  # over the limit: tell the user once
    SILENT = "silent"  # over the limit and already told: say nothing


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    retry_in: float = 0.0  # seconds until the next question fits

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW


class RateLimiter:
    """At most ``limit`` accepted events per ``window`` seconds per key (a sliding window).

    A refused event is not counted. The first refusal returns :attr:`Verdict.NOTICE`, the
    following ones :attr:`Verdict.SILENT`, until an event is accepted again.
    """

    def __init__(
        self, limit: int, window: float = 60.0, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._events: dict[Hashable, deque[float]] = {}
        self._noticed: set[Hashable] = set()
        self._lock = threading.Lock()

    def check(self, key: Hashable) -> Decision:
        """Count one event for ``key`` if it fits, and say what to do."""
        now = self.clock()
        with self._lock:
            events = self._events.get(key)
            if events is None:
                if len(self._events) >= self.max_keys:
                    self._purge(now)
                events = self._events[key] = deque()
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) < self.limit:
                events.append(now)
                self._noticed.discard(key)
                return Decision(Verdict.ALLOW)
            retry_in = events[0] + self.window - now
            if key in self._noticed:
                return Decision(Verdict.SILENT, retry_in)
            self._noticed.add(key)
            return Decision(Verdict.NOTICE, retry_in)

    def _purge(self, now: float) -> None:
        for key in [k for k, ev in self._events.items() if not ev or ev[-1] <= now - self.window]:
            del self._events[key]
            self._noticed.discard(key)
