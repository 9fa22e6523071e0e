"""Answers to one chat go out in the order the questions came.

Updates are handled concurrently (a slow question must not hold up other chats), so without
help a quick answer overtakes a slow one asked before it, and a rate-limit notice arrives before
the answers to the questions that used up the limit. :class:`ChatOrder` gives each question a
turn in its chat when its handler starts (before its first ``await``, so turns follow the order
in which python-telegram-bot started the handlers, which is the order of the updates); a reply
waits until every earlier turn of its chat is finished. Different chats never wait for each
other, and a turn waits at most ``max_wait`` seconds for the ones before it (a wedged handler
delays its chat by that much, never forever).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable

log = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 60.0


class Turn:
    """One question's place in its chat. ``await turn.ready()`` before replying; ``finish()``
    (also on failure) lets the next one go. Usable as ``async with order.turn(chat):``."""

    def __init__(self, order: ChatOrder, key: Hashable, before: asyncio.Future | None) -> None:
        self._order = order
        self._key = key
        self._before = before
        self._done: asyncio.Future = asyncio.get_running_loop().create_future()

    async def ready(self) -> None:
        """Wait until every earlier turn of this chat has finished (at most ``max_wait`` s)."""
        if self._before is None or self._before.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._before), self._order.max_wait)
        except TimeoutError:
            log.warning(
                "an earlier answer in chat %s took over %.0f s: not waiting for it", self._key, self._order.max_wait
            )

    def finish(self) -> None:
        if not self._done.done():
            self._done.set_result(None)
        self._order._finished(self._key, self._done)

    async def __aenter__(self) -> Turn:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.finish()


class ChatOrder:
    """Turns per chat; holds only chats with a question in flight."""

    def __init__(self, max_wait: float = MAX_WAIT_SECONDS) -> None:
        self.max_wait = max_wait
        self._last: dict[Hashable, asyncio.Future] = {}

    def turn(self, key: Hashable) -> Turn:
        """The next turn in chat ``key``. Call it synchronously, before the handler's first await."""
        turn = Turn(self, key, self._last.get(key))
        self._last[key] = turn._done
        return turn

    def _finished(self, key: Hashable, done: asyncio.Future) -> None:
        if self._last.get(key) is done:  # the last turn of the chat: forget the chat
            del self._last[key]

    def __len__(self) -> int:
        return len(self._last)
