"""Long polling that cannot die or wedge silently.

python-telegram-bot's ``Updater`` runs getUpdates in a retry loop with backoff, but two answers
stop it for good:

- **401/404** on getUpdates becomes ``InvalidToken`` and ends the loop while the process lives
  on, answering nobody. A proxy or a Bot API hiccup is enough. :class:`PollingBot` turns such a
  refusal into a retriable error (the loop then backs off: 1 s, 1.5 s, … up to 30 s) and only
  when getUpdates has been refused for ``refused_grace_seconds`` without one success in between
  does :class:`PollingGuard` declare it fatal: it logs why and stops ``serve``, which exits
  non-zero, so that a supervisor restarts the process or a person sees it.
- **One update the library cannot parse** (e.g. a poll from a Bot API server older than the
  library expects) makes ``Bot.get_updates`` raise for the whole batch; the Updater logs it
  and fetches the same batch again, forever. :class:`PollingBot` parses each update on its own,
  skips one that fails with one bounded log line, passes the rest on, and moves the offset past
  the skipped one.

:class:`PollingGuard` also tells a second instance polling the same token from a transient
409 Conflict (see its docstring).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from telegram import Update
from telegram._utils.defaultvalue import DEFAULT_NONE, DefaultValue
from telegram._utils.types import JSONDict, ODVInput, TimePeriod
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError
from telegram.ext import ExtBot
from telegram.request import BaseRequest

from .aiohttp_request import AiohttpRequest

log = logging.getLogger(__name__)

# A 409 Conflict this soon after this instance began polling means that it is the newcomer:
# it says so and exits. An instance that has been serving for longer keeps serving and logs the
# conflict (the newcomer, if it runs this code, exits within seconds).
CONFLICT_STARTUP_SECONDS = 30.0
CONFLICT_REPEAT_LOG_SECONDS = 60.0
REFUSED_GRACE_SECONDS = 300.0  # telegram.polling_refused_grace_seconds
UPDATE_PREFIX_CHARS = 120  # how much of an unparsable update is logged (user text beyond it is not)


class PollingRefused(NetworkError):
    """getUpdates was answered 401/404 recently enough to be worth retrying."""


class PollingGuard:
    """What the polling loop reports to ``serve``: conflicts, refusals and successes.

    **Conflicts.** Telegram lets one getUpdates wait per token: a newer request ends the older
    one with 409 Conflict, so two instances keep knocking each other off and both see Conflicts.
    The newcomer is the one that meets a Conflict within :data:`CONFLICT_STARTUP_SECONDS` of
    starting to poll: it logs what is wrong and stops (``serve`` exits 3). An instance that has
    been serving longer keeps serving and logs the conflict (once a minute), since the
    newcomer, if it runs this code, goes away by itself. A Conflict can also mean a webhook is
    set for the token; the message says which.

    **Refusals.** :meth:`refused` is asked by :class:`PollingBot` on each 401/404: retry until
    getUpdates has been refused for ``refused_grace_seconds`` in a row, then :attr:`fatal` says
    why and ``stop`` is set (``serve`` exits 1).

    Use it as ``start_polling(error_callback=guard)`` and give it to :class:`PollingBot`.
    """

    def __init__(
        self,
        stop: asyncio.Event | None = None,
        *,
        startup_seconds: float | None = None,
        refused_grace_seconds: float = REFUSED_GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stop = stop
        self.startup_seconds = CONFLICT_STARTUP_SECONDS if startup_seconds is None else startup_seconds
        self.refused_grace_seconds = refused_grace_seconds
        self.clock = clock
        self.started: float | None = None
        self.conflict: str | None = None  # why this instance must stop (exit 3)
        self.fatal: str | None = None  # why polling cannot go on (exit 1)
        self.conflicts = 0
        self.refusals = 0
        self._logged_at: float | None = None
        self._refused_since: float | None = None

    def polling_started(self) -> None:
        self.started = self.clock()

    def polled(self) -> None:
        """A getUpdates went through: any conflict or refusal is over."""
        if self._logged_at is not None:
            log.info("polling works again: the other instance has stopped")
        if self._refused_since is not None:
            log.info("getUpdates works again after %.0f s of refusals", self.clock() - self._refused_since)
        self._logged_at = None
        self._refused_since = None

    def refused(self, error: TelegramError) -> bool:
        """getUpdates was answered 401/404: True to retry it, False when it has lasted too long
        (then :attr:`fatal` is set and the stop event too)."""
        self.refusals += 1
        now = self.clock()
        if self._refused_since is None:
            self._refused_since = now
        lasted = now - self._refused_since
        if lasted < self.refused_grace_seconds:
            return True
        if self.fatal is None:
            self.fatal = (
                f"Telegram has refused getUpdates for {lasted:.0f} s ({error.message}): the bot token "
                "was revoked or telegram.base_url is wrong. Exiting."
            )
            log.error("%s", self.fatal)
            if self.stop is not None:
                self.stop.set()
        return False

    def __call__(self, error: TelegramError) -> None:
        """``error_callback`` of ``start_polling``: must never raise."""
        try:
            if isinstance(error, Conflict):
                self._on_conflict(error)
            else:
                log.warning("fetching updates failed (%s); retrying", error)
        except Exception:  # pragma: no cover - never break PTB's polling loop
            log.exception("polling error callback failed")

    def _on_conflict(self, error: Conflict) -> None:
        self.conflicts += 1
        now = self.clock()
        webhook = "webhook" in error.message.lower()
        what = (
            "a webhook is set for this token (is another instance serving it by webhook?)"
            if webhook
            else "another instance is polling this token"
        )
        if self.started is None or now - self.started < self.startup_seconds:
            if self.conflict is None:
                self.conflict = what
                log.error(
                    "%s (Telegram: %s). Only one instance may serve a bot token: stop the other "
                    "instance or give this one its own token. Exiting.",
                    what,
                    error.message,
                )
                if self.stop is not None:
                    self.stop.set()
            return
        if self._logged_at is None or now - self._logged_at >= CONFLICT_REPEAT_LOG_SECONDS:
            self._logged_at = now
            log.error(
                "%s (Telegram: %s). This instance has been serving for %.0f s and keeps serving; stop the other one.",
                what,
                error.message,
                now - self.started,
            )


class UpdateSkipper:
    """Parses a getUpdates batch update by update, and remembers the ones it had to skip so that
    the next getUpdates does not fetch them again."""

    def __init__(self) -> None:
        self.skipped = 0
        self._highest_skipped: int | None = None

    def next_offset(self, offset: int | None) -> int | None:
        """The offset to ask for: past every skipped update. (Every update up to the highest
        skipped one was either handed on or skipped, since update ids rise within a batch.)"""
        if self._highest_skipped is None or (offset is not None and offset > self._highest_skipped):
            return offset
        return self._highest_skipped + 1

    def parse(self, batch: Sequence[JSONDict], bot: ExtBot) -> list[Update]:
        updates = []
        for data in batch:
            try:
                updates.append(Update.de_json(data, bot))
            except Exception as exc:
                self._skip(data, exc)
        return updates

    def _skip(self, data: Any, exc: Exception) -> None:
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if isinstance(update_id, int):
            self._highest_skipped = max(update_id, self._highest_skipped or update_id)
        self.skipped += 1
        log.error(
            "skipped update %s that python-telegram-bot cannot read (%s: %s); it begins %s",
            update_id,
            type(exc).__name__,
            str(exc)[:200],
            describe_update(data),
        )


def describe_update(data: Any, limit: int = UPDATE_PREFIX_CHARS) -> str:
    """A bounded description of a raw update for the log: its first ``limit`` characters of
    JSON, so that no more of a user's text than that prefix is written."""
    try:
        text = json.dumps(data, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(data)
    return text if len(text) <= limit else text[:limit] + "…"


class PollingBot(ExtBot):
    """The ExtBot of ``serve`` and the sandbox: getUpdates that a 401/404 or an unreadable
    update cannot stop or wedge (see the module docstring). Everything else is ExtBot's."""

    def __init__(
        self,
        token: str,
        *,
        guard: PollingGuard | None = None,
        get_updates_request: BaseRequest | None = None,
        **kwargs: Any,
    ) -> None:
        # made here, not by ExtBot, so that its read timeout is known (see _poll_read_timeout)
        self._polling_request = get_updates_request or AiohttpRequest()
        super().__init__(token, get_updates_request=self._polling_request, **kwargs)
        # Bot objects are frozen after __init__; only underscored attributes may still be set
        self._guard = guard or PollingGuard()
        self._skipper = UpdateSkipper()

    @property
    def guard(self) -> PollingGuard:
        return self._guard

    @property
    def skipper(self) -> UpdateSkipper:
        return self._skipper

    async def get_updates(
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: TimePeriod | None = None,
        allowed_updates: Sequence[str] | None = None,
        *,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
        api_kwargs: JSONDict | None = None,
    ) -> tuple[Update, ...]:
        # Bot.get_updates parses the whole batch at once, so one unreadable update fails all of
        # it; here the raw batch is fetched the way Bot.get_updates fetches it, then parsed one
        # update at a time.
        data: JSONDict = {
            "timeout": timeout,
            "offset": self.skipper.next_offset(offset),
            "limit": limit,
            "allowed_updates": allowed_updates,
        }
        try:
            batch = await self._post(
                "getUpdates",
                data,
                read_timeout=self._poll_read_timeout(read_timeout, timeout),
                write_timeout=write_timeout,
                connect_timeout=connect_timeout,
                pool_timeout=pool_timeout,
                api_kwargs=api_kwargs,
            )
        except InvalidToken as exc:
            if self.guard.refused(exc):
                raise PollingRefused(f"getUpdates was refused ({exc.message})") from None
            raise
        self.guard.polled()
        updates = self.skipper.parse(batch or [], self)
        for update in updates:
            self.insert_callback_data(update)
        return tuple(updates)

    def _poll_read_timeout(self, read_timeout: ODVInput[float], timeout: TimePeriod | None) -> float:
        """Like Bot.get_updates: the request's read timeout plus the long-polling wait."""
        base = self._polling_request.read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        wait = timeout.total_seconds() if isinstance(timeout, timedelta) else (timeout or 0)
        return (base or 0) + wait
