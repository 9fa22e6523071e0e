"""The emulator delivers updates by webhook as Telegram does: POSTs with the secret header, up to
max_connections at once, re-delivered with backoff after a non-2xx answer, a refused connection
or a timeout; getWebhookInfo reports what is pending and the last error."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from botapi_emulator import BotApiEmulator
from deploy.local import free_port

pytestmark = pytest.mark.asyncio
SECRET = "webhook-Secret_123"


class Receiver:
    """A webhook endpoint on 127.0.0.1 whose answers the test decides."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[tuple[dict, dict]] = []  # (update, headers)
        self.status = 200
        self.hold: asyncio.Event | None = None  # while set to an unset event, requests wait
        self.delay = 0.0
        self.active = self.most_active = 0
        self.runner: web.AppRunner | None = None
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            self.received.append((await request.json(), dict(request.headers)))
            self.arrived.set()
            if self.hold is not None:
                await self.hold.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
            return web.Response(status=self.status)
        finally:
            self.active -= 1

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def ids(self) -> list[int]:
        return [update["update_id"] for update, _ in self.received]


@pytest_asyncio.fixture
async def emu():
    emulator = BotApiEmulator()
    emulator.webhook.backoff = 0.05
    emulator.webhook.max_backoff = 0.4
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest_asyncio.fixture
async def receiver():
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


async def api(emu: BotApiEmulator, method: str, **params) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{emu.base_url}{emu.token}/{method}", json=params, timeout=10)


async def until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def ask(emu: BotApiEmulator, n: int) -> list[dict]:
    user = emu.user(1001, "Ann")
    chat = emu.private_chat(user)
    return [emu.send_text(chat, user, f"question {i}") for i in range(n)]


async def test_updates_are_posted_with_the_secret_and_getupdates_conflicts(emu, receiver):
    assert (await api(emu, "setWebhook", url=receiver.url, secret_token=SECRET, max_connections=5)).json()["ok"]
    updates = ask(emu, 3)
    await until(lambda: len(receiver.received) == 3)
    assert sorted(receiver.ids()) == [u["update_id"] for u in updates]
    for update, headers in receiver.received:
        assert headers["X-Telegram-Bot-Api-Secret-Token"] == SECRET
        assert headers["Content-Type"].startswith("application/json")
        assert update["message"]["text"].startswith("question")
    await until(lambda: not emu.pending_updates)
    info = (await api(emu, "getWebhookInfo")).json()["result"]
    assert info["url"] == receiver.url and info["pending_update_count"] == 0 and info["max_connections"] == 5
    assert "last_error_date" not in info
    conflict = await api(emu, "getUpdates")
    assert conflict.status_code == 409 and "webhook is active" in conflict.json()["description"]


async def test_at_most_max_connections_requests_at_once(emu, receiver):
    receiver.hold = asyncio.Event()
    await api(emu, "setWebhook", url=receiver.url, max_connections=3)
    ask(emu, 10)
    await until(lambda: receiver.active == 3)
    await asyncio.sleep(0.2)  # nothing more arrives while three are held
    assert receiver.most_active == 3 and len(receiver.received) == 3
    info = (await api(emu, "getWebhookInfo")).json()["result"]
    assert info["pending_update_count"] == 10
    receiver.hold.set()
    await until(lambda: not emu.pending_updates)
    assert sorted(receiver.ids()) == list(range(1, 11))
    assert receiver.most_active == 3


async def test_a_non_2xx_answer_is_retried_with_backoff_and_reported(emu, receiver):
    receiver.status = 502
    await api(emu, "setWebhook", url=receiver.url)
    (update,) = ask(emu, 1)
    await until(lambda: len(receiver.received) >= 4)
    info = (await api(emu, "getWebhookInfo")).json()["result"]
    assert info["pending_update_count"] == 1
    assert info["last_error_message"] == "Wrong response from the webhook: 502 Bad Gateway"
    assert isinstance(info["last_error_date"], int)
    attempts = [d for d in emu.webhook.deliveries if d.update_id == update["update_id"]]
    gaps = [b.started - (a.started + a.seconds) for a, b in itertools.pairwise(attempts)]
    # the wait doubles (0.05, 0.1, 0.2 s): each gap is at least its wait, a busy machine only adds to it
    assert all(gap >= 0.05 * 2**i - 0.005 for i, gap in enumerate(gaps[:3])), gaps
    assert gaps[2] > gaps[0] + 0.1, gaps
    receiver.status = 200
    await until(lambda: not emu.pending_updates)
    assert set(receiver.ids()) == {update["update_id"]}
    assert emu.webhook.deliveries[-1].ok


async def test_a_refused_connection_and_a_timeout_are_retried(emu):
    port = free_port()
    await api(emu, "setWebhook", url=f"http://127.0.0.1:{port}/hook")
    (update,) = ask(emu, 1)
    await until(lambda: len(emu.webhook.deliveries) >= 2)
    assert (await api(emu, "getWebhookInfo")).json()["result"]["last_error_message"] == "Connection refused"
    late = Receiver(port)
    late.delay = 1.0
    emu.webhook.timeout = 0.3
    await late.start()
    try:
        await until(lambda: len(late.received) >= 1)
        await until(lambda: emu.webhook.deliveries[-1].error == "Read timeout expired")
        assert emu.pending_updates
        late.delay = 0.0
        await until(lambda: not emu.pending_updates)
        assert set(late.ids()) == {update["update_id"]}
    finally:
        await late.stop()


async def test_delete_webhook_stops_delivery_and_only_loopback_is_accepted(emu, receiver):
    bad = await api(emu, "setWebhook", url="https://example.org/hook")
    assert bad.status_code == 400 and "127.0.0.1" in bad.json()["description"]
    bad = await api(emu, "setWebhook", url=receiver.url, secret_token="no spaces allowed")
    assert bad.status_code == 400
    await api(emu, "setWebhook", url=receiver.url)
    ask(emu, 1)
    await until(lambda: len(receiver.received) == 1)
    assert (await api(emu, "deleteWebhook")).json()["result"] is True
    ask(emu, 1)
    await asyncio.sleep(0.2)
    assert len(receiver.received) == 1  # waits for getUpdates again
    polled = (await api(emu, "getUpdates", timeout=0)).json()["result"]
    assert [u["message"]["text"] for u in polled] == ["question 0"]
