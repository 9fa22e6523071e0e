"""The webhook server of one replica: Telegram (through the load balancer) POSTs each update here.

Unlike python-telegram-bot's own webhook server, which answers 200 as soon as an update is
queued, this one answers once the update has been *answered*: a replica that dies mid-answer
never acknowledged the update, so Telegram delivers it again (to another replica, through the
load balancer), and the shared state (:mod:`bot.shared_state`) makes sure an update already
answered is acknowledged without being answered twice. Telegram holds at most
``max_connections`` requests open at once, which also bounds the questions in flight.

Each request, in order, before anything else is done with it:

1. wrong path: 404; not POST: 405;
2. the ``X-Telegram-Bot-Api-Secret-Token`` header must equal ``telegram.webhook_secret``
   (compared in constant time): otherwise 403, before the body is read;
3. a declared body larger than :data:`MAX_BODY_BYTES`: 413, unread; a body that turns out larger
   while it is read: 413 as well (never more than that is held in memory);
4. the content type must be ``application/json`` (parameters such as ``charset=utf-8`` are fine):
   otherwise 415;
5. a body that is not a JSON object with an integer ``update_id``: 400;
6. the update is claimed (answered already: 200 at once; another replica holds it: 503, and
   Telegram retries) — a question is counted against its user's rate limit in the same Redis
   step — handled by the bot, marked answered: 200. An update python-telegram-bot
   cannot parse is logged once, with a short prefix, and acknowledged (200), so that it is not
   re-delivered for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from embeddings.memory import freeze_long_lived

from .shared_state import REDIS_TIMEOUT_SECONDS, Claim, SharedState

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY_BYTES = 1 << 20  # Telegram's updates are a few KiB
SHUTDOWN_SECONDS = 20.0  # at SIGTERM, how long the answers in flight may take to finish


@dataclass(frozen=True)
class WebhookOptions:
    listen: str
    port: int
    path: str  # e.g. "/citebot/hook"
    secret: str | None
    max_body_bytes: int = MAX_BODY_BYTES


class WebhookServer:
    """An aiohttp server handing each update to ``application.process_update``."""

    def __init__(
        self,
        application: Application,
        state: SharedState,
        options: WebhookOptions,
        *,
        lease_seconds: float = 10.0,
        rate_key: Callable[[dict[str, Any]], int | None] | None = None,
    ) -> None:
        self.application = application
        self.state = state
        self.options = options
        self.lease_seconds = lease_seconds
        # whose rate limit an update counts against, counted with its claim (one Redis round trip)
        self.rate_key = rate_key or (lambda data: None)
        self.runner: web.AppRunner | None = None
        self.counts = {"answered": 0, "duplicate": 0, "busy": 0, "refused": 0, "unparsable": 0, "lease_lost": 0}
        self._secret = options.secret.encode() if options.secret else None

    async def start(self) -> None:
        app = web.Application(client_max_size=self.options.max_body_bytes)
        app.router.add_route("*", self.options.path, self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS, handle_signals=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.options.listen, self.options.port, reuse_address=True).start()

    async def stop(self) -> None:
        """Stop listening, then let the updates in flight be answered (up to SHUTDOWN_SECONDS)."""
        runner, self.runner = self.runner, None
        if runner is not None:
            await runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "POST"})
        if self._secret is not None:
            given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, self._secret):
                self.counts["refused"] += 1
                return web.Response(status=403, text="wrong secret token")
        if request.content_length is not None and request.content_length > self.options.max_body_bytes:
            self.counts["refused"] += 1
            return web.Response(status=413, text="update too large")
        if request.content_type != "application/json":
            return web.Response(status=415, text="expected application/json")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.counts["refused"] += 1
            return web.Response(status=413, text="update too large")
        data = parse_update(body)
        if data is None:
            return web.Response(status=400, text="not a Telegram update")
        return await self._answer(data)

    async def _answer(self, data: dict[str, Any]) -> web.Response:
        update_id = data["update_id"]
        claim = await self.state.claim(update_id, self.rate_key(data))
        if claim is Claim.ANSWERED:
            self.counts["duplicate"] += 1
            return web.Response(text="already answered")
        if claim is Claim.BUSY:
            self.counts["busy"] += 1
            return web.Response(status=503, text="being answered elsewhere")
        try:
            update = Update.de_json(data, self.application.bot)
        except Exception as exc:  # a shape python-telegram-bot cannot read: skip it, once
            self.counts["unparsable"] += 1
            log.error("update %s cannot be parsed (%s: %.120s); skipped", update_id, type(exc).__name__, exc)
            await self.state.answered(update_id)
            return web.Response(text="skipped")
        finished = asyncio.Event()
        renewing = asyncio.get_running_loop().create_task(self._renew(update_id, finished))
        try:
            await self.application.process_update(update)
        except BaseException:
            # the answer was not made (cancelled at shutdown): another delivery may answer at once
            await self._stop_renewing(renewing, finished)
            with contextlib.suppress(Exception):
                await asyncio.shield(self.state.release(update_id))
            raise
        await self._stop_renewing(renewing, finished)
        await self.state.answered(update_id)
        self.counts["answered"] += 1
        return web.Response(text="ok")

    async def _renew(self, update_id: int, finished: asyncio.Event) -> None:
        """Renew the lease every third of its length until ``finished`` (a heartbeat: a slow but
        alive replica keeps its update; only a dead one loses it)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), self.lease_seconds / 3)
            if finished.is_set():
                return
            if not await self.state.renew(update_id):  # it said why, in one WARNING line
                self.counts["lease_lost"] += 1
                return

    @staticmethod
    async def _stop_renewing(renewing: asyncio.Task, finished: asyncio.Event) -> None:
        """End the heartbeat before the update is marked answered or released, so that no renewal
        in flight reaches Redis after the mark (it would see it, or take a released lease again)."""
        finished.set()
        await asyncio.wait({renewing}, timeout=2 * REDIS_TIMEOUT_SECONDS)  # a Redis call times out by then
        renewing.cancel()


def parse_update(body: bytes) -> dict[str, Any] | None:
    """The JSON object of an update, or None for anything else (not JSON, not UTF-8, no integer
    ``update_id``)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return None
    return data


def webhook_server_options(settings: Any) -> WebhookOptions:
    """Where this replica listens (``telegram.webhook_listen``/``webhook_port``, at the path of
    ``telegram.webhook_url``; TLS ends at the load balancer) and the secret it checks."""
    from urllib.parse import urlsplit

    telegram = settings.telegram
    secret = telegram.webhook_secret.get_secret_value() if telegram.webhook_secret else None
    path = urlsplit(telegram.webhook_url or "").path or "/"
    return WebhookOptions(telegram.webhook_listen, telegram.webhook_port, path, secret or None)


async def start_webhook(application: Application, settings: Any) -> WebhookServer:
    """Start the application and this replica's webhook server (initialize, post_init, setWebhook,
    start, listen). Every replica registers the same webhook; that is idempotent."""
    from .handlers import question_rate_key
    from .serving import ALLOWED_UPDATES

    telegram = settings.telegram
    options = webhook_server_options(settings)
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    if not options.secret:
        log.warning("telegram.webhook_secret is not set: anyone who finds the webhook URL can send updates")
    await application.bot.set_webhook(
        telegram.webhook_url,
        secret_token=options.secret,
        max_connections=telegram.webhook_max_connections,
        allowed_updates=ALLOWED_UPDATES,
    )
    await application.start()
    freeze_long_lived()  # as start_bot does
    state = application.bot_data.shared
    server = WebhookServer(
        application, state, options, lease_seconds=telegram.update_lease_seconds, rate_key=question_rate_key
    )
    await server.start()
    log.info(
        "serving by webhook on %s:%d%s (%s)",
        options.listen,
        options.port,
        options.path,
        "shared state" if state.shared else "state in this process",
    )
    return server
