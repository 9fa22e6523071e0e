"""The bot's HTTP layer: retries and flood-control waits, through python-telegram-bot's own hooks.

PTB's ``BaseRequest.post`` is ``@final``: it calls ``do_request`` (the HTTP exchange, returning
the status and the body) and turns the answer into a result or an exception. The classes here are
request objects that wrap another (an :class:`~telegram.request.HTTPXRequest`) and override only
``do_request``, so the library's own parsing and error mapping stay in charge.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import sys
from http import HTTPStatus
from typing import Any

import orjson
from telegram._utils.types import JSONDict
from telegram.error import NetworkError, TelegramError
from telegram.request import BaseRequest, HTTPXRequest, RequestData

log = logging.getLogger(__name__)

# the answers of ``do_request`` that PTB turns into an error that is not a NetworkError
_CLIENT_ERRORS = (
    HTTPStatus.BAD_REQUEST,
    HTTPStatus.UNAUTHORIZED,
    HTTPStatus.FORBIDDEN,
    HTTPStatus.NOT_FOUND,
    HTTPStatus.CONFLICT,
)
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


class RetryingRequest(WrappedRequest):
    """Waits out flood control (429 ``retry_after``) and retries network errors, timeouts and 5xx
    answers with exponential backoff (by default 5 retries, 0.5 s doubling: an answer survives
    about 15 s of trouble before the question is given up).

    Delivery is at least once. A request refused by flood control or a 5xx was not carried out,
    and a connection that could not be made never reached Telegram, so retrying those delivers a
    message exactly once. A connection lost or a read timing out *after* the request was sent is
    ambiguous: Telegram may have carried it out, and the Bot API has no idempotency key, so the
    retry may send a message twice. We retry anyway: a rare duplicate answer is better than a
    question left without one. (The project's emulator drops connections and cuts slow answers
    before carrying the call out, so in tests every failed attempt is a clean one.) Where the
    duplicate is detectable it is absorbed: answering a callback or inline query that the lost
    attempt already answered returns "query is too old"/"query ID is invalid", which a retry
    takes as success.
    """

    _ANSWERED = ("query is too old", "query id is invalid")
    _QUERY_METHODS = ("answerCallbackQuery", "answerInlineQuery")

    def __init__(
        self,
        inner: BaseRequest,
        *,
        retries: int = 5,
        backoff: float = 0.5,
        max_flood_wait: float = 120.0,
        flood_retries: int = 5,
    ) -> None:
        super().__init__(inner)
        self.retries = retries
        self.backoff = backoff
        self.max_flood_wait = max_flood_wait
        self.flood_retries = flood_retries

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        failures = floods = 0
        name = _method(url)
        while True:
            try:
                code, payload = await super().do_request(url, method, request_data, *args, **kwargs)
            except TelegramError as exc:
                if not isinstance(exc, NetworkError) or failures >= self.retries:  # includes TimedOut
                    raise
                problem = exc.message
            except Exception as exc:  # PTB makes any other failure of the HTTP layer a NetworkError
                if failures >= self.retries:
                    raise
                problem = f"Unknown error in HTTP implementation: {exc!r}"
            else:
                if HTTPStatus.OK <= code <= 299:
                    return code, payload
                answer = _answer(payload)
                parameters = answer.get("parameters") or {}
                description = str(answer.get("description") or _phrase(code))
                if parameters.get("migrate_to_chat_id"):
                    return code, payload
                if parameters.get("retry_after"):
                    wait = float(parameters["retry_after"])
                    floods += 1
                    if floods > self.flood_retries or wait > self.max_flood_wait:
                        return code, payload  # PTB raises RetryAfter
                    log.warning("flood control: waiting %.1f s before retrying %s", wait, name)
                    await asyncio.sleep(wait + 0.05)
                    continue
                if code in _CLIENT_ERRORS:
                    if (
                        code == HTTPStatus.BAD_REQUEST
                        and failures
                        and name in self._QUERY_METHODS
                        and any(text in description.lower() for text in self._ANSWERED)
                    ):
                        log.info("%s: the attempt that failed had gone through (%s)", name, description)
                        return _ANSWERED_OK
                    return code, payload  # a client error: retrying gives the same answer
                if failures >= self.retries:
                    return code, payload  # PTB raises NetworkError
                problem = description
            delay = self.backoff * 2**failures
            failures += 1
            log.warning("%s failed (%s): retry %d/%d in %.1f s", name, problem, failures, self.retries, delay)
            await asyncio.sleep(delay)


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


class PollingRequest(FastJsonPayload, HTTPXRequest):
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
