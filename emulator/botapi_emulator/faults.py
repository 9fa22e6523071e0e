"""Failure injection (errors, dropped connections, slow answers) and flood control."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, too_many_requests


@dataclass
class FaultRule:
    """Applies to the next ``remaining`` calls of ``method`` (``None``: any but getUpdates),
    and, with ``until`` (a ``time.monotonic()`` deadline), only to calls made before it.

    ``kind`` is "fail" (answer with ``error``), "drop" (close the connection without an
    answer, the call not carried out), "delay" (wait ``seconds`` and then answer normally),
    "lose_answer" (carry the call out, then close the connection without an answer: the
    client cannot tell it from "drop") or "hold" (keep the connection open ``seconds`` without
    an answer, then close it, the call not carried out).
    """

    kind: str
    method: str | None
    remaining: int
    error: ApiError | None = None
    seconds: float = 0.0
    until: float | None = None

    def matches(self, method: str) -> bool:
        """Whether this rule applies to a call of ``method``."""
        if self.until is not None and time.monotonic() >= self.until:
            return False
        if self.method is None:
            return method != "getUpdates"
        return self.method.lower() == method.lower()


class FaultInjector:
    """An ordered list of :class:`FaultRule`; the oldest matching rule is used first."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        """Queue a rule."""
        if rule.remaining < 1:
            raise ValueError("count must be at least 1")
        self.rules.append(rule)

    def take(self, method: str) -> FaultRule | None:
        """Consume one use of the first rule matching ``method`` and return it."""
        now = time.monotonic()
        self.rules = [rule for rule in self.rules if rule.until is None or rule.until > now]
        for rule in self.rules:
            if rule.matches(method):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self.rules.remove(rule)
                return rule
        return None

    def clear(self) -> None:
        """Forget all queued rules."""
        self.rules.clear()


class _Window:
    """Sliding-window counter: at most ``limit`` events per ``period`` seconds."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.events: deque[float] = deque()

    def retry_after(self, now: float) -> int:
        """Seconds to wait before one more event fits (0 if it fits now)."""
        while self.events and self.events[0] <= now - self.period:
            self.events.popleft()
        if len(self.events) < self.limit:
            return 0
        return max(1, math.ceil(self.events[0] + self.period - now))


class FloodControl:
    """Optional emulation of Telegram's sending limits (disabled until configured).

    Limits: ``global_per_second`` messages per second overall, ``per_chat_per_second``
    messages per second in one chat, and ``group_per_minute`` messages per minute in one
    group. Exceeding one answers 429 with ``retry_after`` like Telegram's flood control.
    """

    def __init__(self) -> None:
        self.enabled = False
        self._limits: dict[str, tuple[int, float]] = {}
        self._windows: dict[tuple[str, Any], _Window] = {}

    def configure(
        self,
        *,
        global_per_second: int | None = 30,
        per_chat_per_second: int | None = None,
        group_per_minute: int | None = 20,
    ) -> None:
        """Enable flood control with the given limits (``None`` disables that limit)."""
        self._limits = {}
        if global_per_second:
            self._limits["global"] = (global_per_second, 1.0)
        if per_chat_per_second:
            self._limits["chat"] = (per_chat_per_second, 1.0)
        if group_per_minute:
            self._limits["group"] = (group_per_minute, 60.0)
        self._windows.clear()
        self.enabled = bool(self._limits)

    def disable(self) -> None:
        """Turn flood control off."""
        self.enabled = False
        self._windows.clear()

    def check(self, chat: dict[str, Any]) -> None:
        """Count one message sent to ``chat``; raise 429 if a limit would be exceeded."""
        if not self.enabled:
            return
        now = time.monotonic()
        windows = [self._window("global", None)]
        windows.append(self._window("chat", chat["id"]))
        if chat.get("type") in ("group", "supergroup"):
            windows.append(self._window("group", chat["id"]))
        active = [w for w in windows if w is not None]
        wait = max((w.retry_after(now) for w in active), default=0)
        if wait:
            raise too_many_requests(wait)
        for window in active:
            window.events.append(now)

    def _window(self, scope: str, key: Any) -> _Window | None:
        if scope not in self._limits:
            return None
        window = self._windows.get((scope, key))
        if window is None:
            window = self._windows[(scope, key)] = _Window(*self._limits[scope])
        return window
