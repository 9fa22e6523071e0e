"""The emulator itself: an aiohttp server speaking the Telegram Bot API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from .actions import UserActions
from .constants import canonical_method
from .errors import ApiError, error_for_status
from .faults import FaultInjector, FaultRule, FloodControl
from .methods import BotMethods
from .params import read_params
from .recorded import RecordedCall
from .state import World, snapshot
from .updates import UpdateQueue
from .webhook import WebhookDelivery

logger = logging.getLogger("botapi_emulator")

T = TypeVar("T")
CallMatcher = str | Callable[[RecordedCall], bool]
_TOKEN_SHAPE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


class EmulatorTimeout(TimeoutError):
    """Raised by the ``wait_for*`` helpers when the bot did not do what was expected."""


@dataclass
class _Exchange:
    """Bookkeeping for one HTTP request while it is served."""

    method: str
    started: float
    client: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    injected: str | None = None


class BotApiEmulator(UserActions):
    """A Telegram Bot API server for tests, benchmarks and a terminal sandbox.

    Point python-telegram-bot at :attr:`base_url` (and :attr:`base_file_url` for file
    downloads). Simulate users with :meth:`user`, :meth:`private_chat`, :meth:`send_text`,
    :meth:`press_button`, ... and inspect what the bot did with :attr:`calls`,
    :meth:`sent_messages` and the ``wait_for*`` coroutines. All methods must be used from
    the event loop the emulator was started in; see
    :class:`~botapi_emulator.threaded.EmulatorThread` for use from other threads.

    ``strict_html`` (default) additionally rejects a ``&`` that is not part of a proper
    character reference, which real Telegram silently keeps as text.
    """

    def __init__(
        self,
        *,
        token: str = "123456:TEST-TOKEN",
        bot_username: str = "citebot_test_bot",
        host: str = "127.0.0.1",
        port: int = 0,
        bot_first_name: str = "Citebot",
        strict_html: bool = True,
    ) -> None:
        self.token = token
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 123456
        self.world = World({"id": bot_id, "is_bot": True, "first_name": bot_first_name, "username": bot_username})
        self.updates = UpdateQueue()
        self.faults = FaultInjector()
        self.flood = FloodControl()
        self.methods = BotMethods(self.world, self.updates, self.flood, strict_html=strict_html)
        self.calls: list[RecordedCall] = []
        self._listeners: list[Callable[[RecordedCall], None]] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._restarting = False
        self.updates.poll_listeners.append(self._notify)  # `polling` is something wait_until can wait for

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving (``port=0`` binds a random free port)."""
        if self._runner is not None:
            raise RuntimeError("emulator already started")
        if not self._restarting:  # waiters of refuse_connections keep their event
            self._changed = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("*", "/as/{client}/bot{token}/{method}", self._handle_api)
        app.router.add_route("*", "/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/as/{client}/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port if self._restarting else self._requested_port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        logger.info("Bot API emulator listening on %s", self.base_url)

    async def stop(self) -> None:
        """Stop serving; a held getUpdates answers immediately first."""
        if self._runner is None:
            return
        self.updates.release_poll()
        await self.methods.webhook.stop()
        await asyncio.sleep(0)
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> BotApiEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The TCP port being served."""
        if self._port is None:
            raise RuntimeError("emulator not started")
        return self._port

    @property
    def base_url(self) -> str:
        """Value for PTB's ``base_url`` (PTB appends the token), e.g. http://127.0.0.1:P/bot."""
        return f"http://{self.host}:{self.port}/bot"

    def client_base_url(self, client: str) -> str:
        """Like :attr:`base_url`, with the calls made through it recorded with ``client`` (e.g. one
        replica among several: which one sent a message)."""
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", client):
            raise ValueError(f"client names are letters, digits, '_' and '-': {client!r}")
        return f"http://{self.host}:{self.port}/as/{client}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for PTB's ``base_file_url`` (file downloads after getFile)."""
        return f"http://{self.host}:{self.port}/file/bot"

    @property
    def bot_user(self) -> dict[str, Any]:
        """The bot's User dict (as in getMe and in ``from`` of its messages)."""
        return dict(self.world.bot_user)

    # -- HTTP handlers ---------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        raw_name = request.match_info["method"]
        exchange = _Exchange(canonical_method(raw_name) or raw_name, time.monotonic(), request.match_info.get("client"))
        try:
            status, payload = await self._process(request, exchange, raw_name)
        except asyncio.CancelledError:
            self._record(exchange, 0, None)
            raise
        if payload is None:
            self._record(exchange, 0, None)
            return web.Response(status=204)
        body = json.dumps(payload, ensure_ascii=False)
        if not _utf8(body):  # a lone surrogate (from an injected text): escaped, as valid JSON carries it
            body = json.dumps(payload)
        self._record(exchange, status, json.loads(body))
        return web.Response(text=body, status=status, content_type="application/json")

    async def _process(
        self, request: web.Request, exchange: _Exchange, raw_name: str
    ) -> tuple[int, dict[str, Any] | None]:
        """Serve one API request; ``(0, None)`` means the connection was dropped."""
        try:
            self._check_token(request.match_info["token"])
            exchange.params = await read_params(request)
            if canonical_method(raw_name) is None:
                raise ApiError(404, "Not Found: method not found")
            rule = self.faults.take(exchange.method)
            if rule is not None:
                exchange.injected = rule.kind
                if rule.kind == "hold":
                    await asyncio.sleep(rule.seconds)
                if rule.kind in ("drop", "hold"):
                    return _dropped(request)
                if rule.kind == "fail" and rule.error is not None:
                    raise rule.error
                await asyncio.sleep(rule.seconds)
            result = await self.methods.call(exchange.method, exchange.params)
            if rule is not None and rule.kind == "lose_answer":
                return _dropped(request)
            return 200, {"ok": True, "result": result}
        except ApiError as exc:
            return exc.status, exc.payload()
        except Exception as exc:  # an emulator bug: make it loud but keep serving
            logger.exception("emulator failure while serving %s", exchange.method)
            error = ApiError(500, f"Internal Server Error: emulator failure: {exc!r}")
            return 500, error.payload()

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        try:
            self._check_token(request.match_info["token"])
        except ApiError as exc:
            return web.json_response(exc.payload(), status=exc.status)
        path = request.match_info["path"]
        for file in self.world.files.values():
            if file.file_path == path:
                return web.Response(body=file.data, content_type=file.mime_type or "application/octet-stream")
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _handle_unknown(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    def _check_token(self, token: str) -> None:
        if token == self.token:
            return
        if _TOKEN_SHAPE.match(token):
            raise ApiError(401, "Unauthorized")
        raise ApiError(404, "Not Found")

    def _record(self, exchange: _Exchange, status: int, response: dict[str, Any] | None) -> None:
        call = RecordedCall(
            method=exchange.method,
            params=exchange.params,
            time=exchange.started,
            status=status,
            response=response,
            duration=time.monotonic() - exchange.started,
            injected=exchange.injected,
            client=exchange.client,
        )
        self.calls.append(call)
        for listener in list(self._listeners):
            try:
                listener(call)
            except Exception:
                logger.exception("emulator listener failed")
        self._notify()

    def _notify(self) -> None:
        """Wake everything waiting in ``wait_for*``."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    # -- observing the bot -----------------------------------------------------------------

    def add_listener(self, listener: Callable[[RecordedCall], None]) -> Callable[[], None]:
        """Call ``listener(call)`` after every recorded call; returns a function removing it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def calls_to(self, method: str) -> list[RecordedCall]:
        """All recorded calls of ``method`` (case-insensitive)."""
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def clear_calls(self) -> None:
        """Forget recorded calls (long benchmarks); indexes from :meth:`mark` restart at 0."""
        self.calls.clear()

    def mark(self) -> int:
        """The current number of recorded calls, for ``wait_for(..., since=mark)``."""
        return len(self.calls)

    def sent_messages(self, chat_id: int | None = None, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Current state (after edits) of the messages the bot sent, oldest first.

        Each is a Message dict plus the convenience key ``reply_to_message_id`` (``None`` if
        not a reply); with ``include_deleted`` deleted ones are included and every dict has a
        ``deleted`` flag.
        """
        if chat_id is None:
            keys = self.world.bot_messages
        else:
            keys = [(chat_id, m) for m in self.world.bot_messages_by_chat.get(chat_id, [])]
        result = []
        for cid, message_id in keys:
            record = self.world.chats[cid]
            deleted = message_id in record.deleted
            if deleted and not include_deleted:
                continue
            message = snapshot(record.messages[message_id])
            message["reply_to_message_id"] = message.get("reply_to_message", {}).get("message_id")
            if include_deleted:
                message["deleted"] = deleted
            result.append(message)
        return result

    def chat_history(self, chat_id: int) -> list[dict[str, Any]]:
        """All non-deleted messages of a chat (users' and the bot's), in order."""
        record = self.world.chats.get(chat_id)
        if record is None:
            return []
        return [snapshot(m) for mid, m in sorted(record.messages.items()) if mid not in record.deleted]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """The current state of one message, or ``None`` if unknown or deleted."""
        found = self.world.get_message(chat_id, message_id)
        return snapshot(found) if found is not None else None

    def inline_message(self, inline_message_id: str) -> dict[str, Any] | None:
        """Current text/entities/reply_markup of an inline message (see choose_inline_result)."""
        found = self.world.inline_messages.get(inline_message_id)
        return snapshot(found) if found is not None else None

    def callback_answer(self, callback_query: dict[str, Any] | str) -> dict[str, Any] | None:
        """The bot's answerCallbackQuery parameters for a query (Update, query dict or id)."""
        record = self.world.callback_queries.get(_query_id(callback_query, "callback_query"))
        return dict(record.answer) if record and record.answer is not None else None

    def inline_answer(self, inline_query: dict[str, Any] | str) -> dict[str, Any] | None:
        """The bot's answerInlineQuery parameters for a query (Update, query dict or id)."""
        record = self.world.inline_queries.get(_query_id(inline_query, "inline_query"))
        return dict(record.answer) if record and record.answer is not None else None

    def file_content(self, file_id: str) -> bytes:
        """The bytes of a file (uploaded by the bot or sent by a simulated user)."""
        return self.world.files[file_id].data

    @property
    def webhook(self) -> WebhookDelivery:
        """Webhook delivery (after setWebhook): its ``deliveries``, ``timeout`` and ``backoff``."""
        return self.methods.webhook

    @property
    def polling(self) -> bool:
        """Whether the bot's getUpdates is being held open now: it is polling. (A call is recorded
        when it is answered, so ``wait_for("getUpdates")`` sees the first poll only when its
        timeout ends, seconds after the bot began polling.)"""
        return self.updates.polling

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by the bot."""
        return list(self.updates.pending)

    @property
    def warnings(self) -> list[str]:
        """Things the emulator could not check (e.g. MarkdownV2 texts)."""
        return self.methods.warnings

    async def wait_for(
        self,
        predicate_or_method: CallMatcher,
        *,
        count: int = 1,
        timeout: float = 10.0,
        since: int = 0,
    ) -> list[RecordedCall]:
        """Wait until ``count`` recorded calls (from index ``since``) match; return the first
        ``count`` of them. A string matches the method name (case-insensitive), a callable is
        a predicate on :class:`RecordedCall`. Raises :class:`EmulatorTimeout`."""
        matches = _call_matcher(predicate_or_method)
        found: list[RecordedCall] = []
        cursor = since

        def probe() -> list[RecordedCall] | None:
            nonlocal cursor
            found.extend(c for c in self.calls[cursor:] if matches(c))
            cursor = len(self.calls)
            return found[:count] if len(found) >= count else None

        return await self._wait_until(probe, timeout, f"{count} call(s) matching {predicate_or_method!r}")

    async def wait_for_messages(self, chat_id: int, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until the bot has ``count`` (non-deleted) messages in ``chat_id``; return all."""

        def probe() -> list[dict[str, Any]] | None:
            record = self.world.chats.get(chat_id)
            ids = self.world.bot_messages_by_chat.get(chat_id, [])
            alive = len(ids) - (len(record.deleted.intersection(ids)) if record else 0)
            return self.sent_messages(chat_id) if alive >= count else None

        return await self._wait_until(probe, timeout, f"{count} bot message(s) in chat {chat_id}")

    async def wait_until(self, condition: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
        """Wait until ``condition()`` returns something other than ``None``/``False``."""
        return await self._wait_until(lambda: condition() or None, timeout, what)

    async def _wait_until(self, probe: Callable[[], T | None], timeout: float, what: str) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = probe()
            if result is not None:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = "; ".join(c.summary() for c in self.calls[-8:]) or "none"
                raise EmulatorTimeout(f"timed out after {timeout}s waiting for {what}; recent calls: {recent}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    # -- failure injection -----------------------------------------------------------------

    def fail_next(
        self,
        method: str | None = None,
        *,
        status: int = 429,
        retry_after: int = 1,
        count: int = 1,
        description: str | None = None,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` (None: any method but getUpdates)
        with an error. 429 gives Telegram's "Too Many Requests: retry after N" with
        ``parameters.retry_after``; other statuses a standard description."""
        error = error_for_status(status, description, retry_after)
        self.faults.add(FaultRule("fail", _checked_method(method), count, error=error))

    def drop_next(self, method: str | None = None, count: int = 1) -> None:
        """Close the connection without any answer for the next ``count`` calls."""
        self.faults.add(FaultRule("drop", _checked_method(method), count))

    def lose_answer_next(self, method: str | None = None, count: int = 1) -> None:
        """Carry out the next ``count`` calls, then close each connection without the answer
        (the response was lost in transit: a retry would do the call twice)."""
        self.faults.add(FaultRule("lose_answer", _checked_method(method), count))

    def hold_next(self, method: str | None, seconds: float, count: int = 1) -> None:
        """Keep the next ``count`` connections open ``seconds`` without answering, then close
        them; the calls are not carried out (a proxy that hangs)."""
        self.faults.add(FaultRule("hold", _checked_method(method), count, seconds=seconds))

    def outage(self, seconds: float, method: str | None = None, *, status: int | None = 502) -> None:
        """For the next ``seconds``, every call of ``method`` (None: any but getUpdates) fails
        without being carried out: answered ``status`` (502: a proxy in front of a Bot API that
        is down), or with ``status=None`` its connection closed without an answer."""
        until = time.monotonic() + seconds
        if status is None:
            self.faults.add(FaultRule("drop", _checked_method(method), 1 << 62, until=until))
        else:
            self.faults.add(
                FaultRule("fail", _checked_method(method), 1 << 62, error=error_for_status(status), until=until)
            )

    async def refuse_connections(self, seconds: float) -> None:
        """Stop listening for ``seconds`` (new connections are refused, open ones closed, the
        calls in them not carried out), then listen again on the same port with the same chats,
        updates and calls: a Bot API host that is down. Returns once it listens again."""
        port = self.port
        await self.stop()
        await asyncio.sleep(seconds)
        self._port, self._restarting = port, True
        try:
            await self.start()
        finally:
            self._restarting = False

    def delay_next(self, method: str | None, seconds: float, count: int = 1) -> None:
        """Answer the next ``count`` calls of ``method`` normally but ``seconds`` late."""
        self.faults.add(FaultRule("delay", _checked_method(method), count, seconds=seconds))

    def clear_faults(self) -> None:
        """Forget all pending failure injections."""
        self.faults.clear()

    def set_flood_limits(
        self,
        *,
        global_per_second: int | None = 30,
        per_chat_per_second: int | None = None,
        group_per_minute: int | None = 20,
    ) -> None:
        """Enable Telegram-like flood control on send* methods (429 with retry_after)."""
        self.flood.configure(
            global_per_second=global_per_second,
            per_chat_per_second=per_chat_per_second,
            group_per_minute=group_per_minute,
        )

    def disable_flood_limits(self) -> None:
        """Disable flood control (the default)."""
        self.flood.disable()


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _dropped(request: web.Request) -> tuple[int, None]:
    """Close the client's connection without an answer."""
    if request.transport is not None:
        request.transport.abort()
    return 0, None


def _checked_method(method: str | None) -> str | None:
    if method is not None and canonical_method(method) is None:
        raise ValueError(f"unknown Bot API method {method!r}")
    return canonical_method(method) if method is not None else None


def _call_matcher(matcher: CallMatcher) -> Callable[[RecordedCall], bool]:
    if isinstance(matcher, str):
        name = matcher.lower()
        return lambda call: call.method.lower() == name
    return matcher


def _query_id(query: dict[str, Any] | str, key: str) -> str:
    if isinstance(query, str):
        return query
    return str(query.get(key, query)["id"])


async def run_forever(emulator: BotApiEmulator, stop: Awaitable[Any]) -> None:
    """Serve until ``stop`` completes (helper for the CLI)."""
    await emulator.start()
    try:
        await stop
    finally:
        await emulator.stop()
