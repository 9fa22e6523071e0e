"""Webhook mode (bot/webhook.py): the real bot's webhook server, fed by the emulator's webhook
delivery, and the abuse paths of issue 12 part 7: the secret is checked before the body is read,
bodies are capped, ``application/json; charset=utf-8`` is accepted, malformed JSON gets 400.
A re-delivered update is acknowledged, not answered twice."""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx
import pytest
import pytest_asyncio

from bot.application import build_application
from bot.serving import stop_bot
from bot.webhook import MAX_BODY_BYTES, SECRET_HEADER, start_webhook
from deploy.local import free_port

pytestmark = pytest.mark.asyncio
SECRET = "s3cret-Token_1"
ZAHIR = "Who overthrew King Zahir Shah?"


@pytest_asyncio.fixture
async def webhook_bot(emulator, make_settings, built_index_dir, searcher):
    """The real bot serving by webhook on 127.0.0.1, registered with the emulator."""
    port = free_port()
    settings = make_settings(
        index_dir=built_index_dir,
        telegram_webhook_url=f"http://127.0.0.1:{port}/citebot-hook",
        telegram_webhook_port=port,
        telegram_webhook_secret=SECRET,
    )
    app = build_application(settings, searcher, base_url=emulator.base_url, token=emulator.token)
    server = await start_webhook(app, settings)
    try:
        yield server, f"http://127.0.0.1:{port}/citebot-hook"
    finally:
        await server.stop()
        await stop_bot(app)


async def test_the_emulator_delivers_by_webhook_and_the_bot_answers(emulator, webhook_bot):
    server, url = webhook_bot
    assert emulator.world.webhook["url"] == url
    assert emulator.world.webhook["params"]["secret_token"] == SECRET
    alice = emulator.user(801, "Alice")
    chat = emulator.private_chat(alice)
    emulator.send_text(chat, alice, ZAHIR)
    answer = (await emulator.wait_for_messages(chat["id"], 1, timeout=30))[0]
    assert "Mohammed Daud Khan" in answer["text"]
    await emulator.wait_until(lambda: not emulator.pending_updates, timeout=10)
    delivery = emulator.webhook.deliveries[-1]
    assert delivery.ok and delivery.status == 200
    # the webhook request ended after the answer was sent: it was held while the bot answered
    sent = emulator.calls_to("sendMessage")[-1]
    assert delivery.started < sent.time < delivery.started + delivery.seconds
    assert server.counts["answered"] == 1


async def test_a_redelivered_update_is_acknowledged_not_answered_again(emulator, webhook_bot):
    server, url = webhook_bot
    await emulator.methods.delete_webhook({})  # the test posts the update itself, twice
    alice = emulator.user(802, "Alice")
    chat = emulator.private_chat(alice)
    update = emulator.send_text(chat, alice, ZAHIR)
    async with httpx.AsyncClient(trust_env=False) as client:
        headers = {SECRET_HEADER: SECRET}
        first, second = await asyncio.gather(
            client.post(url, json=update, headers=headers, timeout=30),
            client.post(url, json=update, headers=headers, timeout=30),
        )
        assert sorted([first.status_code, second.status_code]) == [200, 503]  # one answers, one is told to retry
        again = await client.post(url, json=update, headers=headers, timeout=30)
        assert again.status_code == 200 and again.text == "already answered"
    assert len(emulator.sent_messages(chat["id"])) == 1
    assert server.counts == {**server.counts, "answered": 1, "duplicate": 1, "busy": 1}


def raw_request(port: int, head: str, body: bytes = b"", timeout: float = 5.0) -> int:
    """Send ``head`` and the start of a body only; the status the server answers without the rest."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(head.encode() + b"\r\n\r\n" + body)
        answer = conn.recv(4096).decode("latin-1")
    return int(answer.split()[1])


async def test_abuse_paths(webhook_bot, emulator):
    server, url = webhook_bot
    port = int(url.split(":")[2].split("/")[0])
    huge = MAX_BODY_BYTES * 100
    # a wrong secret with a 100 MB body announced: refused from the headers alone (the body never sent)
    head = (
        f"POST /citebot-hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"{SECRET_HEADER}: wrong\r\nContent-Length: {huge}"
    )
    status = await asyncio.to_thread(raw_request, port, head, b"{")
    assert status == 403
    # the right secret and a body over the cap: 413 before it is read
    head = head.replace(f"{SECRET_HEADER}: wrong", f"{SECRET_HEADER}: {SECRET}")
    status = await asyncio.to_thread(raw_request, port, head, b"{")
    assert status == 413
    alice = emulator.user(803, "Alice")
    chat = emulator.private_chat(alice)
    update = emulator.send_text(chat, alice, ZAHIR)
    await emulator.methods.delete_webhook({"drop_pending_updates": True})
    async with httpx.AsyncClient(trust_env=False) as client:
        headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
        assert (await client.post(url, content=b"{not json", headers=headers)).status_code == 400
        assert (await client.post(url, content=b'{"update_id": "1"}', headers=headers)).status_code == 400
        assert (await client.post(url, content=b"[1, 2]", headers=headers)).status_code == 400
        assert (await client.post(url, content=b"\xff\xfe", headers=headers)).status_code == 400

        async def too_long():
            yield b" " * (MAX_BODY_BYTES + 1)

        chunked = await client.post(url, content=too_long(), headers=headers)
        assert chunked.status_code == 413  # no Content-Length: the cap holds while reading
        assert (await client.get(url)).status_code == 405
        plain = await client.post(url, json=update, headers={SECRET_HEADER: SECRET, "Content-Type": "text/plain"})
        assert plain.status_code == 415
        missing = await client.post(url, json=update)
        assert missing.status_code == 403
        charset = {SECRET_HEADER: SECRET, "Content-Type": "application/json; charset=utf-8"}
        accepted = await client.post(url, json=update, headers=charset, timeout=30)
        assert accepted.status_code == 200
    answer = (await emulator.wait_for_messages(chat["id"], 1, timeout=30))[0]
    assert "Mohammed Daud Khan" in answer["text"]
    assert server.counts["refused"] >= 4


async def test_an_update_the_library_cannot_parse_is_skipped_once(webhook_bot, caplog):
    server, url = webhook_bot
    bad = {"update_id": 424242, "message": {"message_id": "not-a-number", "chat": "nonsense", "date": "x"}}
    async with httpx.AsyncClient(trust_env=False) as client:
        headers = {SECRET_HEADER: SECRET}
        response = await client.post(url, json=bad, headers=headers)
        assert response.status_code == 200
        again = await client.post(url, json=bad, headers=headers)
        assert again.text == "already answered"
    assert server.counts["unparsable"] == 1
    assert "424242 cannot be parsed" in caplog.text


async def test_a_button_answered_already_is_not_an_error(emulator, webhook_bot, caplog):
    """A callback delivered again after its first delivery was answered (by a replica that died
    before recording it) meets "query is too old": logged as such, no error, no traceback."""
    _, url = webhook_bot
    alice = emulator.user(804, "Alice")
    chat = emulator.private_chat(alice)
    emulator.send_text(chat, alice, ZAHIR)
    answer = (await emulator.wait_for_messages(chat["id"], 1, timeout=30))[0]
    data = answer["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    press = emulator.press_button(answer, data, alice)
    await emulator.wait_until(lambda: emulator.callback_answer(press), timeout=30)
    await emulator.methods.delete_webhook({})
    again = {**press, "update_id": press["update_id"] + 1000}  # as if its first answer was never recorded
    caplog.set_level(logging.INFO, logger="bot.handlers")
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(url, json=again, headers={SECRET_HEADER: SECRET}, timeout=30)
    assert response.status_code == 200
    assert "cannot be answered any more" in caplog.text
    assert "error while handling an update" not in caplog.text


async def test_which_updates_are_counted_against_a_rate_limit_with_their_claim():
    from bot.handlers import question_rate_key

    def message(text, chat_type="private", sender=True):
        chat = {"id": 5 if chat_type == "private" else -100, "type": chat_type}
        body = {"message_id": 1, "date": 0, "chat": chat, "text": text}
        if sender:
            body["from"] = {"id": 7, "is_bot": False, "first_name": "A"}
        return {"update_id": 1, "message": body}

    assert question_rate_key(message("Who met the Taliban?")) == 7  # its sender, in one Redis step
    assert question_rate_key(message("Who met the Taliban?", sender=False)) == 5  # the chat
    assert question_rate_key(message("/start")) is None  # commands: the handler counts what it answers
    assert question_rate_key(message("@bot who?", chat_type="group")) is None  # maybe not for the bot
    assert question_rate_key({"update_id": 2, "callback_query": {"id": "1"}}) is None
    assert question_rate_key({"update_id": 3, "message": {"chat": "x", "text": "q"}}) is None  # malformed
    assert question_rate_key({"update_id": 4, "message": {"chat": {"type": "private"}, "photo": []}}) is None
