"""Webhook delivery, as Telegram does it: each pending update is POSTed to the webhook URL.

After ``setWebhook`` the updates no longer wait for getUpdates (which answers 409 Conflict): each
is sent as a JSON POST with ``X-Telegram-Bot-Api-Secret-Token`` (when a secret was set), up to
``max_connections`` at once. A 2xx answer delivers it; anything else (another status, a refused
or dropped connection, no answer within :attr:`WebhookDelivery.timeout`) leaves it pending and it
is sent again later, the wait doubling from :attr:`WebhookDelivery.backoff` up to
:attr:`WebhookDelivery.max_backoff`, as Telegram retries "after a reasonable amount of time".
``getWebhookInfo`` reports the pending count and the last error (date and message).

Only 127.0.0.1 / localhost is ever contacted: ``setWebhook`` refuses any other host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .errors import bad_request
from .updates import UpdateQueue

logger = logging.getLogger("botapi_emulator.webhook")

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass(frozen=True)
class Delivery:
    """One POST of an update to the webhook, and how it ended."""

    update_id: int
    attempt: int  # 1 for the first delivery of this update
    started: float  # time.monotonic()
    seconds: float
    status: int | None  # the HTTP status, None when there was no answer
    error: str | None  # why it did not count as delivered; None when it did

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret_token: str | None
    max_connections: int


def check_webhook_params(params: dict[str, Any]) -> WebhookConfig:
    """The setWebhook parameters, checked as Telegram does (plus: loopback hosts only)."""
    url = str(params.get("url") or "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    if parts.hostname not in LOOPBACK:
        raise bad_request("bad webhook: the emulator delivers only to 127.0.0.1 or localhost")
    secret = params.get("secret_token")
    if secret is not None and secret != "" and not SECRET_TOKEN.match(str(secret)):
        raise bad_request("bad webhook: secret token contains unallowed characters")
    try:
        connections = int(params.get("max_connections") or 40)
    except (TypeError, ValueError):
        raise bad_request("bad webhook: max_connections must be a number") from None
    return WebhookConfig(url, str(secret) if secret else None, min(max(connections, 1), 100))


class WebhookDelivery:
    """Sends the update queue's pending updates to the webhook while one is set."""

    def __init__(
        self, updates: UpdateQueue, *, timeout: float = 30.0, backoff: float = 0.25, max_backoff: float = 8.0
    ) -> None:
        self.updates = updates
        self.timeout = timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.config: WebhookConfig | None = None
        self.deliveries: list[Delivery] = []
        self.last_error_date: int | None = None
        self.last_error_message: str | None = None
        self._attempts: dict[int, int] = {}
        self._retry_at: dict[int, float] = {}
        self._in_flight: dict[int, asyncio.Task] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None
        updates.listeners.append(self._wakeup.set)

    @property
    def active(self) -> bool:
        return self.config is not None

    def configure(self, config: WebhookConfig) -> None:
        """Deliver to ``config`` from now on (setWebhook); starts the delivery loop."""
        self.config = config
        self._retry_at.clear()  # a new webhook gets every pending update at once
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="emulator-webhook")
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop delivering (deleteWebhook, shutdown); requests in flight are abandoned."""
        self.config = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def info(self) -> dict[str, Any]:
        """The webhook fields of getWebhookInfo."""
        info: dict[str, Any] = {}
        if self.config is not None:
            info["max_connections"] = self.config.max_connections
        if self.last_error_date is not None:
            info["last_error_date"] = self.last_error_date
            info["last_error_message"] = self.last_error_message
        return info

    # ------------------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        self._session = aiohttp.ClientSession(connector=connector)
        try:
            while self.config is not None:
                self._wakeup.clear()
                now = loop.time()
                free = self.config.max_connections - len(self._in_flight)
                for update in list(self.updates.pending):
                    if free <= 0:
                        break
                    update_id = update["update_id"]
                    if update_id in self._in_flight or self._retry_at.get(update_id, 0.0) > now:
                        continue
                    task = loop.create_task(self._deliver(update, self.config))
                    self._in_flight[update_id] = task
                    task.add_done_callback(lambda _, uid=update_id: self._done(uid))
                    free -= 1
                waits = [at - now for uid, at in self._retry_at.items() if uid not in self._in_flight]
                timeout = max(0.0, min(waits)) if waits and free > 0 else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout)
        finally:
            for task in list(self._in_flight.values()):
                task.cancel()
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
            self._in_flight.clear()
            session, self._session = self._session, None
            if session is not None:
                await session.close()

    def _done(self, update_id: int) -> None:
        self._in_flight.pop(update_id, None)
        self._wakeup.set()

    async def _deliver(self, update: dict[str, Any], config: WebhookConfig) -> None:
        update_id = update["update_id"]
        attempt = self._attempts.get(update_id, 0) + 1
        self._attempts[update_id] = attempt
        headers = {"Content-Type": "application/json"}
        if config.secret_token:
            headers[SECRET_HEADER] = config.secret_token
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            assert self._session is not None
            async with self._session.post(
                config.url,
                data=json.dumps(update, ensure_ascii=False).encode(),
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                status = response.status
                await response.read()
                if not 200 <= status < 300:
                    error = f"Wrong response from the webhook: {status} {response.reason or ''}".rstrip()
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            error = "Read timeout expired"
        except aiohttp.ClientConnectorError:
            error = "Connection refused"
        except aiohttp.ClientError as exc:
            error = f"Connection failed: {type(exc).__name__}"
        self.deliveries.append(Delivery(update_id, attempt, started, time.monotonic() - started, status, error))
        if error is None:
            self.updates.remove(update_id)
            self._attempts.pop(update_id, None)
            self._retry_at.pop(update_id, None)
            return
        self.last_error_date, self.last_error_message = int(time.time()), error
        wait = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        self._retry_at[update_id] = asyncio.get_running_loop().time() + wait
        logger.debug("update %d not delivered (%s): again in %.2f s", update_id, error, wait)
