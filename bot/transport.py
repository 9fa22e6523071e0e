"""The bot's HTTP layer: retries and flood-control waits, through python-telegram-bot's own hooks.

PTB's ``BaseRequest.post`` is ``@final``: it calls ``do_request`` (the HTTP exchange, returning
the status and the body) and turns the answer into a result or an exception. The classes here are
request objects that wrap another (an :class:`~telegram.request.HTTPXRequest`) and override only
``do_request``, so the library's own parsing and error mapping stay in charge.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from typing import Any

import aiohttp
import httpx
import orjson
from telegram._utils.types import JSONDict
from telegram.error import NetworkError, TelegramError
from telegram.request import BaseRequest, RequestData

from .aiohttp_request import AiohttpRequest

log = logging.getLogger(__name__)

_ANSWERED_OK = (200, b'{"ok": true, "result": true}')


class WrappedRequest(BaseRequest):
    """A request object that hands the HTTP exchange to ``inner`` (its pool, its timeouts)."""

    def __init__(self, inner: BaseRequest) -> None:
        self.inner = inner

    @property
    def read_timeout(self) -> float | None:
        return self.inner.read_timeout

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def shutdown(self) -> None:
        await self.inner.shutdown()

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        return await self.inner.do_request(url, method, request_data, *args, **kwargs)


class Failure(Enum):
    """Why an attempt failed, which decides whether repeating it is safe (see :class:`RetryingRequest`)."""

    NOT_SENT = "not sent"  # no connection (refused, connect or pool timeout) or (httpx) the request not written
    REFUSED = "refused"  # the Bot API, or a proxy in front of it, answered 5xx (or 408): not carried out
    AMBIGUOUS = "no answer"  # sent, and no answer came (closed, read timeout): maybe carried out


_NOT_SENT_CAUSES = (
    aiohttp.ClientConnectorError,  # refused, unreachable: no connection
    aiohttp.ConnectionTimeoutError,  # no connection in time (a free one from the pool, or a new one)
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.UnsupportedProtocol,
)


def classify_exception(exc: BaseException) -> Failure:
    """:attr:`Failure.NOT_SENT` when the HTTP layer shows the request never reached the API (the
    aiohttp or httpx error that PTB's exception wraps says so), else :attr:`Failure.AMBIGUOUS`
    (aiohttp does not tell a write that failed from a read: either is "maybe carried out")."""
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 5:
        if isinstance(cause, _NOT_SENT_CAUSES):
            return Failure.NOT_SENT
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return Failure.AMBIGUOUS


@dataclass(frozen=True)
class RetrySchedule:
    """When to try again: ``first`` seconds after the first failure, doubling up to ``cap``; an
    answer (a ``send*``/``edit*``/``answer*``/``delete*`` call) is retried for ``patience`` seconds
    after its first attempt, any other call (getMe, setMyCommands...) for ``short_patience``."""

    first: float = 0.5
    factor: float = 2.0
    cap: float = 10.0
    patience: float = 600.0
    short_patience: float = 15.0

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1, 2, ...)."""
        return min(self.cap, self.first * self.factor ** max(0, failures - 1))

    def patience_for(self, method: str) -> float:
        return self.patience if method.startswith(_DELIVERIES) else self.short_patience


_DELIVERIES = ("send", "edit", "answer", "delete", "copy", "forward")


class QueueFull(Exception):
    """More requests are waiting out an outage than the queue holds."""


class OutageQueue:
    """Requests waiting out an outage of the Bot API, oldest first, bounded.

    After ``failures_to_close`` failures in a row (any requests, no success between them) the
    API is taken as down: one request (the oldest still trying, the *probe*) keeps retrying on its
    schedule and every other one waits here, in arrival order, instead of hammering the API;
    the first success opens the queue and the waiting requests go in the order they came (they
    begin their attempts in that order; over separate connections, new ones after an outage closed
    the old, the Bot API may receive them in another: no client can order that). A
    request whose patience runs out leaves (the next oldest becomes the probe); a request that
    finds ``limit`` requests waiting is refused at once (:class:`QueueFull`). One event loop.
    """

    def __init__(self, limit: int = 1000, failures_to_close: int = 3) -> None:
        self.limit = limit
        self.failures_to_close = failures_to_close
        self.closed = False
        self._failures = 0
        self._probe: object | None = None
        self._trying: dict[object, None] = {}  # every request between its first turn and leave, oldest first
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed_at = 0.0

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def turn(self, ticket: object, timeout: float) -> bool:
        """Return when ``ticket`` may make an attempt (at once while the API answers); True if it
        had to wait. Raises TimeoutError after ``timeout`` seconds of waiting, QueueFull."""
        waited = False
        self._trying.setdefault(ticket)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.closed and self._probe is not None and self._probe is not ticket:
            if len(self._waiters) >= self.limit:
                raise QueueFull(f"{len(self._waiters)} requests are already waiting out the outage")
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append(future)
            waited = True
            try:
                await asyncio.wait_for(future, max(0.0, deadline - loop.time()))
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(future)
        if self.closed:
            self._probe = ticket
        return waited

    def went_through(self, ticket: object) -> None:
        """The API answered (a success or a client error): the outage, if any, is over."""
        self._failures = 0
        if self._probe is ticket:
            self._probe = None
        if self.closed:
            self.closed = False
            log.warning(
                "the Bot API answers again after %.0f s: %d waiting requests go now, oldest first",
                time.monotonic() - self._closed_at,
                len(self._waiters),
            )
            while self._waiters:
                future = self._waiters.popleft()
                if not future.done():
                    future.set_result(None)

    def failed(self, ticket: object) -> None:
        """An attempt failed in a way worth retrying."""
        self._failures += 1
        if not self.closed and self._failures >= self.failures_to_close:
            # the probe is the oldest request still trying, not the one whose failure was the last
            # straw: the answers then go in the order they were first tried
            self.closed, self._closed_at = True, time.monotonic()
            self._probe = next(iter(self._trying), ticket)
            log.warning(
                "the Bot API is failing (%d failures in a row): answers wait in order until it is back", self._failures
            )

    def leave(self, ticket: object) -> None:
        """``ticket`` is done (answered, refused or out of patience): if it was the probe, the
        oldest waiting request takes over."""
        self._trying.pop(ticket, None)
        if self._probe is not ticket:
            return
        self._probe = None
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                return


class RetryingRequest(WrappedRequest):
    """Every call the bot makes (but getUpdates) goes through here: flood-control waits, and
    retries that let an answer wait out an outage of the Bot API (:class:`RetrySchedule`: 0.5 s
    doubling up to 10 s, for 10 minutes by default), waiting in order in an :class:`OutageQueue`.

    Delivery semantics, by what a failure shows (the Bot API has no idempotency key and no way to
    ask whether a message was sent):

    * **not carried out, repeated**: connection refused, connect or pool timeout, the request not
      written (:attr:`Failure.NOT_SENT`); a 429 (after its ``retry_after``); an error answered by the
      API or a proxy in front of it, 5xx/502/408 (:attr:`Failure.REFUSED`). These are delivered
      exactly once.
    * **ambiguous, repeated (at least once)**: the request was sent and no answer came (connection
      closed, read timeout; :attr:`Failure.AMBIGUOUS`). Telegram may have carried it out. Not
      repeating would lose the answer whenever it was not; repeating sends a second copy when the
      answer was carried out and only its response lost. We repeat: a rare duplicate beats a
      question left unanswered. Where the API lets a repeat tell, the duplicate is absorbed:
      answerCallbackQuery/answerInlineQuery repeated after a success are refused "query is too
      old"/"query ID is invalid", taken here as success; an edit repeated gives "message is not
      modified", which the handlers take as success. Only sendMessage can duplicate.
    * **final, not repeated**: any other 4xx (a client error: repeating gives the same answer).

    While the outage lasts the user is not told anything failed: the handler is still waiting on
    its answer. Only when an answer's patience runs out does PTB raise (NetworkError or TimedOut)
    and the error handler apologise.
    """

    _ANSWERED = ("query is too old", "query id is invalid")
    _QUERY_METHODS = ("answerCallbackQuery", "answerInlineQuery")

    def __init__(
        self,
        inner: BaseRequest,
        *,
        schedule: RetrySchedule | None = None,
        queue: OutageQueue | None = None,
        max_flood_wait: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        super().__init__(inner)
        self.schedule = schedule or RetrySchedule()
        self.queue = queue or OutageQueue()
        self.max_flood_wait = max_flood_wait
        self.clock = clock
        self.sleep = sleep

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        name = _method(url)
        patience = self.schedule.patience_for(name)
        deadline = self.clock() + patience
        ticket = object()
        failures = 0
        waited = False
        try:
            while True:
                try:
                    waited |= await self.queue.turn(ticket, max(0.0, deadline - self.clock()))
                except (TimeoutError, QueueFull) as exc:
                    raise NetworkError(
                        f"{name} not sent: the Bot API has been failing ({exc or f'waited {patience:.0f} s'})"
                    ) from None
                error: Exception | None = None
                try:
                    code, payload = await super().do_request(url, method, request_data, *args, **kwargs)
                except TelegramError as exc:
                    if not isinstance(exc, NetworkError):  # includes TimedOut
                        raise
                    kind, problem, error = classify_exception(exc), exc.message, exc
                except Exception as exc:  # PTB makes any other failure of the HTTP layer a NetworkError
                    problem = f"Unknown error in HTTP implementation: {exc!r}"
                    kind, error = classify_exception(exc), NetworkError(problem)
                    error.__cause__ = exc
                else:
                    if HTTPStatus.OK <= code <= 299:
                        self.queue.went_through(ticket)
                        return code, payload
                    answer = _answer(payload)
                    parameters = answer.get("parameters") or {}
                    description = str(answer.get("description") or _phrase(code))
                    if parameters.get("retry_after") or code == HTTPStatus.TOO_MANY_REQUESTS:
                        self.queue.went_through(ticket)  # flood control: the API is up
                        wait = float(parameters.get("retry_after") or 1)
                        if wait > self.max_flood_wait or self.clock() + wait > deadline:
                            return code, payload  # PTB raises RetryAfter
                        log.warning("flood control: waiting %.1f s before repeating %s", wait, name)
                        await self.sleep(wait + 0.05)
                        continue
                    if code < HTTPStatus.INTERNAL_SERVER_ERROR and code != HTTPStatus.REQUEST_TIMEOUT:
                        self.queue.went_through(ticket)
                        if (
                            code == HTTPStatus.BAD_REQUEST
                            and (failures or waited)
                            and name in self._QUERY_METHODS
                            and any(text in description.lower() for text in self._ANSWERED)
                        ):
                            log.info("%s: an earlier attempt had gone through (%s)", name, description)
                            return _ANSWERED_OK
                        return code, payload  # a client error (or migrate_to_chat_id): the same again
                    kind, problem = Failure.REFUSED, description
                self.queue.failed(ticket)
                failures += 1
                delay = self.schedule.delay(failures)
                if self.clock() + delay > deadline:
                    log.error(
                        "%s failed (%s: %s) for %.0f s: given up after %d attempts",
                        name,
                        kind.value,
                        problem,
                        patience,
                        failures,
                    )
                    if error is not None:
                        raise error
                    return code, payload  # PTB raises NetworkError
                note = ", repeated (it may have been carried out)" if kind is Failure.AMBIGUOUS else ""
                log.warning(
                    "%s failed (%s: %s)%s: attempt %d in %.1f s", name, kind.value, problem, note, failures + 1, delay
                )
                await self.sleep(delay)
        finally:
            self.queue.leave(ticket)


class FastJsonPayload:
    """Bot API answers parsed by orjson instead of the standard library's json (PTB's own override
    point, ``BaseRequest.parse_json_payload``): every getUpdates batch and every answer to a
    sendMessage is parsed on the event loop's thread (bench/README.md, "A lean path")."""

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:  # not UTF-8, or not JSON: the library's parser has the last word
            return BaseRequest.parse_json_payload(payload)


class BotRequest(FastJsonPayload, RetryingRequest):
    """The bot's request object: retries (:class:`RetryingRequest`) and orjson parsing."""


class PollingRequest(FastJsonPayload, AiohttpRequest):
    """getUpdates' own request object (PTB keeps it apart from the others), with orjson parsing."""


def _method(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _answer(payload: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(payload.decode("utf-8", "replace"))
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _phrase(code: int) -> str:
    try:
        return f"{HTTPStatus(code).phrase} ({code})"
    except ValueError:
        return f"Unknown HTTPError ({code})"


def skip_missing_sniffio() -> None:
    """Make ``import sniffio`` fail at once when sniffio is not installed.

    httpcore asks ``import sniffio`` (to tell asyncio from trio) each time a connection-pool lock
    is set up: about ten times per answer. A failed import is not remembered, so each one searched
    every folder of ``sys.path`` again, dozens of ``stat`` calls on the event loop per answer
    (about 2 ms of it per question at 20 users, bench/roundtrip.py --profile). With ``None`` in
    ``sys.modules`` the import fails immediately and httpcore takes asyncio, as it did anyway."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def file_url(base_url: str) -> str:
    """The file URL that goes with a Bot API base URL (``.../bot`` → ``.../file/bot``)."""
    if base_url.endswith("/bot"):
        return base_url[: -len("bot")] + "file/bot"
    return base_url
