"""A log that cannot grow without bound from one cause.

:class:`RepeatLimitFilter` lets through at most ``burst`` records of one kind (same logger, level
and message template, whatever the arguments) per ``period`` seconds; the next one let through
after a quiet spell says how many were held back. A loop that fails in the same way hundreds of
times a second then writes a few lines a minute instead of megabytes.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Key = tuple[str, int, str]


@dataclass
class _Window:
    start: float
    passed: int = 0
    held: int = 0


class RepeatLimitFilter(logging.Filter):
    """Rate-limits repeated log records; install on a handler (it then sees every record)."""

    def __init__(
        self,
        burst: int = 5,
        period: float = 60.0,
        *,
        max_kinds: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.period = period
        self.max_kinds = max_kinds  # kinds remembered (least recently seen forgotten): bounded memory
        self.clock = clock
        self._windows: OrderedDict[Key, _Window] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        window = self._windows.get(key)
        if window is None or now - window.start >= self.period:
            held = window.held if window is not None else 0
            window = self._windows[key] = _Window(now)
            if held:
                record.msg = f"{record.msg} [{held} similar messages held back in the last {self.period:.0f} s]"
        self._windows.move_to_end(key)
        while len(self._windows) > self.max_kinds:
            self._windows.popitem(last=False)
        if window.passed < self.burst:
            window.passed += 1
            return True
        window.held += 1
        return False


def limit_repeats(logger: logging.Logger | None = None, *, burst: int = 5, period: float = 60.0) -> RepeatLimitFilter:
    """Install one :class:`RepeatLimitFilter` on every handler of ``logger`` (the root logger by
    default) that has none yet; return it."""
    logger = logger or logging.getLogger()
    limiter = RepeatLimitFilter(burst, period)
    for handler in logger.handlers:
        if not any(isinstance(f, RepeatLimitFilter) for f in handler.filters):
            handler.addFilter(limiter)
    return limiter
