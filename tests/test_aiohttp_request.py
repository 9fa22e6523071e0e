"""bot.aiohttp_request.AiohttpRequest against the Bot API emulator over real HTTP: the calls arrive
as python-telegram-bot's own HTTPXRequest sends them, and each failure is raised as PTB raises it,
with a cause that tells "not sent" from "maybe carried out", and without the token."""

import asyncio
import socket

import pytest
from telegram import Bot, InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import HTTPXRequest

from bot.aiohttp_request import AiohttpRequest
from bot.transport import Failure, classify_exception

pytestmark = pytest.mark.asyncio


def url(emulator, method: str) -> str:
    return f"{emulator.base_url}{emulator.token}/{method}"


async def test_a_bot_on_it_sends_what_it_sends_over_httpx(emulator):
    chat = emulator.private_chat(emulator.user(11, "Alice"))
    markup = {"inline_keyboard": [[{"text": "More results ▶", "callback_data": "m:1"}]]}
    for request in (AiohttpRequest(connection_pool_size=4), HTTPXRequest(connection_pool_size=4)):
        async with Bot(emulator.token, base_url=emulator.base_url, request=request) as bot:
            assert (await bot.get_me()).username == emulator.bot_user["username"]
            await bot.send_message(chat["id"], "<b>Кабул</b> &amp; 😀", parse_mode="HTML", reply_markup=markup)
            await bot.send_document(chat["id"], InputFile(b"passage bytes", filename="p.txt"), caption="c")
    sent = emulator.calls_to("sendMessage")
    assert len(sent) == 2 and sent[0].params == sent[1].params  # the same parameters, the same types
    assert [m["text"] for m in emulator.sent_messages(chat["id"]) if "text" in m] == ["Кабул & 😀"] * 2
    documents = [m["document"] for m in emulator.sent_messages(chat["id"]) if "document" in m]
    assert [emulator.file_content(d["file_id"]) for d in documents] == [b"passage bytes"] * 2
    assert documents[0]["file_name"] == documents[1]["file_name"] == "p.txt"


async def test_a_refused_connection_is_not_sent(emulator):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = AiohttpRequest()
    try:
        with pytest.raises(NetworkError) as raised:
            await request.do_request(f"http://127.0.0.1:{port}/bot{emulator.token}/getMe", "POST")
    finally:
        await request.shutdown()
    assert classify_exception(raised.value) is Failure.NOT_SENT
    assert "aiohttp.ClientConnectorError" in raised.value.message


async def test_no_free_connection_in_time_is_not_sent_and_the_message_holds_no_token(emulator):
    """Pool of one, held by a call the Bot API sits on: the next call gets no connection."""
    emulator.hold_next("getMe", 1.0)
    request = AiohttpRequest(connection_pool_size=1, read_timeout=5.0)
    try:
        held = asyncio.create_task(request.do_request(url(emulator, "getMe"), "POST"))
        await asyncio.wait_for(held_by_the_api(emulator), 5)
        with pytest.raises(TimedOut) as raised:
            await request.do_request(url(emulator, "getChat"), "POST", pool_timeout=0.2, connect_timeout=0.1)
        with pytest.raises(NetworkError) as dropped:  # the held call: closed without an answer
            await held
    finally:
        await request.shutdown()
    assert classify_exception(raised.value) is Failure.NOT_SENT
    assert classify_exception(dropped.value) is Failure.AMBIGUOUS
    assert "not* sent" in raised.value.message
    shown = [str(raised.value), *map(str, raised.value.__cause__.args), str(dropped.value)]
    assert "/bot<token>/getChat" in str(raised.value.__cause__)  # aiohttp named the URL: scrubbed
    assert not any(emulator.token in text or emulator.token.split(":")[1] in text for text in shown)
    assert [c.method for c in emulator.calls if c.method == "getChat"] == []  # never reached the API


async def held_by_the_api(emulator) -> None:
    """Until the hold has taken its call (a held call is recorded only when it ends)."""
    while emulator.faults.rules:
        await asyncio.sleep(0.01)


async def test_an_answer_that_comes_too_late_is_maybe_carried_out(emulator):
    emulator.delay_next("getMe", 1.0)
    request = AiohttpRequest(read_timeout=0.2)
    try:
        with pytest.raises(TimedOut) as raised:
            await request.do_request(url(emulator, "getMe"), "POST")
        status, body = await request.do_request(url(emulator, "getMe"), "POST")  # the session still works
    finally:
        await request.shutdown()
    assert classify_exception(raised.value) is Failure.AMBIGUOUS
    assert status == 200 and b'"ok":true' in body.replace(b" ", b"")


async def test_a_request_after_shutdown_opens_a_new_session(emulator):
    request = AiohttpRequest()
    await request.initialize()
    await request.shutdown()
    status, _ = await request.do_request(url(emulator, "getMe"), "POST")
    await request.shutdown()
    assert status == 200


async def test_a_proxy_set_in_the_environment_carries_the_calls_as_with_httpx(monkeypatch):
    """PTB's HTTPXRequest takes HTTPS_PROXY/HTTP_PROXY from the environment; so does this one."""
    from aiohttp import web

    seen: list[str] = []

    async def forward(request: web.Request) -> web.Response:  # a forward proxy gets the whole URL
        seen.append(str(request.url))
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    request = AiohttpRequest()  # the environment is read when the request object is made, as httpx does
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    exempt = AiohttpRequest()  # 127.0.0.1 exempt: straight to port 9, refused
    try:  # nothing listens on port 9: only the proxy can answer
        status, body = await request.do_request("http://127.0.0.1:9/bot123:abc/getMe", "POST")
        with pytest.raises(NetworkError) as direct:
            await exempt.do_request("http://127.0.0.1:9/bot123:abc/getMe", "POST")
    finally:
        await request.shutdown()
        await exempt.shutdown()
        await runner.cleanup()
    assert status == 200 and body == b'{"ok": true, "result": true}'
    assert seen == ["http://127.0.0.1:9/bot123:abc/getMe"]
    assert classify_exception(direct.value) is Failure.NOT_SENT
