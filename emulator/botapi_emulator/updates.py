"""The queue of pending updates and getUpdates long polling."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from .constants import DEFAULT_EXCLUDED_UPDATES, UPDATE_TYPES
from .errors import ApiError

CONFLICT_DESCRIPTION = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)


def update_type(update: dict[str, Any]) -> str:
    """Return the kind of an Update dict ("message", "callback_query", ...)."""
    for key in update:
        if key != "update_id":
            return key
    raise ValueError("update has no payload")


class _Poll:
    """One getUpdates request being held open."""

    def __init__(self) -> None:
        self.wakeup = asyncio.Event()
        self.terminated = False
        self.released = False


class UpdateQueue:
    """Pending updates, offset confirmation, allowed_updates and long polling.

    Like Telegram, updates stay queued until a getUpdates call confirms them with a higher
    ``offset``; a newer getUpdates terminates a held older one with 409 Conflict; updates of
    types excluded by the last ``allowed_updates`` are not created at all.
    """

    def __init__(self) -> None:
        self.pending: list[dict[str, Any]] = []
        self.discarded: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._allowed: frozenset[str] | None = None
        self._poll: _Poll | None = None
        self.listeners: list[Callable[[], None]] = []  # called after each queued update (webhook delivery)
        self.poll_listeners: list[Callable[[], None]] = []  # called when a getUpdates starts being held

    # -- producing -------------------------------------------------------------------------

    def push(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Create an update from ``payload`` (e.g. ``{"message": {...}}``) and queue it.

        Returns the Update dict with its ``update_id``. Updates of a type the bot excluded
        via ``allowed_updates`` are recorded in :attr:`discarded` instead of being queued.
        """
        update = {"update_id": self._next_update_id, **payload}
        self._next_update_id += 1
        if self.is_allowed(update_type(update)):
            self.pending.append(update)
            if self._poll is not None:
                self._poll.wakeup.set()
            for listener in self.listeners:
                listener()
        else:
            self.discarded.append(update)
        return update

    def is_allowed(self, kind: str) -> bool:
        """Whether updates of ``kind`` are currently delivered to the bot."""
        if self._allowed is None:
            return kind not in DEFAULT_EXCLUDED_UPDATES
        return kind in self._allowed

    def set_allowed(self, kinds: Iterable[str] | None) -> None:
        """Apply an ``allowed_updates`` parameter ([] means the default set)."""
        kinds = list(kinds or [])
        self._allowed = frozenset(k for k in kinds if k in UPDATE_TYPES) if kinds else None

    @property
    def allowed_updates(self) -> list[str]:
        """The update types currently delivered."""
        return [kind for kind in UPDATE_TYPES if self.is_allowed(kind)]

    # -- consuming -------------------------------------------------------------------------

    def confirm(self, offset: int) -> None:
        """Forget updates confirmed by ``offset`` (negative: keep only the last -offset)."""
        if offset < 0:
            self.pending = self.pending[offset:]
        elif offset > 0:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]

    def remove(self, update_id: int) -> None:
        """Forget one update (delivered to the webhook)."""
        self.pending = [u for u in self.pending if u["update_id"] != update_id]

    def drop_pending(self) -> None:
        """Forget all pending updates (deleteWebhook/setWebhook drop_pending_updates)."""
        self.pending.clear()

    @property
    def polling(self) -> bool:
        """Whether a getUpdates call is being held open now (the bot is waiting for updates)."""
        return self._poll is not None

    def terminate_poll(self) -> None:
        """Make a held getUpdates answer 409 Conflict (a newer request took over)."""
        if self._poll is not None:
            self._poll.terminated = True
            self._poll.wakeup.set()
            self._poll = None

    def release_poll(self) -> None:
        """Make a held getUpdates answer right away with what is pending (shutdown)."""
        if self._poll is not None:
            self._poll.released = True
            self._poll.wakeup.set()

    async def get_updates(self, offset: int, limit: int, timeout: float) -> list[dict[str, Any]]:
        """Serve one getUpdates call: confirm, then wait up to ``timeout`` for updates."""
        self.confirm(offset)
        self.terminate_poll()
        poll = self._poll = _Poll()
        for listener in self.poll_listeners:
            listener()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        try:
            while True:
                if poll.terminated:
                    raise ApiError(409, CONFLICT_DESCRIPTION)
                remaining = deadline - loop.time()
                if self.pending or remaining <= 0 or poll.released:
                    return list(self.pending[:limit])
                poll.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(poll.wakeup.wait(), remaining)
        finally:
            if self._poll is poll:
                self._poll = None
