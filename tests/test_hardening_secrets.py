"""The bot token and the webhook secret never appear in logs, messages or output.

A representative scenario (webhook mode, so that the secret is really used): questions, buttons,
inline mode, a group, /about and /sources, failures injected (a failing setMyCommands whose error
text even quotes the token, 500s, a dropped connection, a handler exception mentioning the
token), a forged webhook call; with every logger at DEBUG, including httpx and python-telegram-bot
(which logs each call's parameters, the webhook secret among them). ``citebot serve``'s output is
checked by tests/test_hardening_conflict.py.
"""

from __future__ import annotations

import logging
import socket

import httpx
import pytest

from bot import formatting as fmt
from bot.application import build_application
from bot.redaction import protect_logs
from bot.serving import stop_bot
from bot.webhook import start_webhook
from botapi_emulator import BotApiEmulator

TOKEN = "7098765432:AAF-knownToken_SecretPart0123456789abcd"
SECRET = "known-Webhook_Secret-42"
ARMS = "Is Russia arming the Taliban?"
ZAHIR = "Who overthrew King Zahir Shah?"
LOUD = (
    "",
    "aiohttp",
    "httpx",
    "httpcore",
    "telegram",
    "telegram.ext",
    "tornado",
    "tornado.access",
    "botapi_emulator",
    "aiohttp",
    "asyncio",
    "bot",
    "citebot",
)


class Exploding:
    """A searcher that fails, mentioning the token, on questions containing "explode"."""

    def __init__(self, real):
        self.real = real

    def search(self, query, *args, **kwargs):
        if "explode" in query:
            raise RuntimeError(f"cannot reach https://api.telegram.org/bot{TOKEN}/getMe (secret {SECRET})")
        return self.real.search(query, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


def buttons(message: dict) -> dict[str, str]:
    keyboard = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return {b["text"]: b["callback_data"] for row in keyboard for b in row}


@pytest.fixture
def loud_logging(caplog):
    """Every logger at DEBUG (after protect_logs, which quiets httpx), restored afterwards."""
    saved = {name: logging.getLogger(name).level for name in LOUD}
    yield lambda: [logging.getLogger(name).setLevel(logging.DEBUG) for name in LOUD] and caplog.set_level(logging.DEBUG)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_the_token_and_the_webhook_secret_never_leak(
    make_settings, built_index_dir, searcher, caplog, capfd, loud_logging, restore_log_factory
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with BotApiEmulator(token=TOKEN) as emulator:
        settings = make_settings(
            index_dir=built_index_dir,
            telegram_token=TOKEN,
            telegram_base_url=emulator.base_url,
            telegram_webhook_url=f"http://127.0.0.1:{port}/citebot-hook",
            telegram_webhook_port=port,
            telegram_webhook_secret=SECRET,
        )
        protect_logs(settings)  # what serve() does first
        loud_logging()
        emulator.fail_next("setMyCommands", status=400, description=f"Bad Request: bot{TOKEN} may not use {SECRET}")
        app = build_application(settings, Exploding(searcher), backoff=0.05)
        server = await start_webhook(app, settings)
        await emulator.methods.delete_webhook({})  # the test delivers each update itself
        hook = f"http://127.0.0.1:{port}/citebot-hook"
        client = httpx.AsyncClient(trust_env=False, timeout=30)
        header = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

        async def deliver(update: dict) -> None:
            assert (await client.post(hook, json=update, headers=header)).status_code == 200

        async def ask(chat: dict, user: dict, text: str) -> dict:
            before = len(emulator.sent_messages(chat["id"]))
            await deliver(emulator.send_text(chat, user, text))
            return (await emulator.wait_for_messages(chat["id"], before + 1, timeout=30))[before]

        try:
            alice = emulator.user(4001, "Alice")
            chat = emulator.private_chat(alice)
            answer = await ask(chat, alice, ARMS)
            assert answer["text"].startswith("🔎 Passages 1–3 of ")
            mark = emulator.mark()
            await deliver(emulator.press_button(answer, buttons(answer)["More results ▶"], alice))
            await emulator.wait_for("answerCallbackQuery", since=mark, timeout=30)
            current = emulator.message(chat["id"], answer["message_id"])
            await deliver(emulator.press_button(current, buttons(current)["📖 Context 4"], alice))
            await emulator.wait_for_messages(chat["id"], 2, timeout=30)
            emulator.fail_next("sendMessage", status=500)
            emulator.drop_next("sendMessage")
            emulator.fail_next("sendMessage", status=429, retry_after=1)
            assert "Daud" in (await ask(chat, alice, ZAHIR))["text"]
            query = emulator.inline_query(alice, ZAHIR)
            await deliver(query)
            assert (await emulator.wait_until(lambda: emulator.inline_answer(query), timeout=30))["results"]
            about = (await ask(chat, alice, "/about"))["text"]
            assert "citebot" in about
            await ask(chat, alice, "/sources")
            assert (await ask(chat, alice, "please explode"))["text"] == fmt.SOMETHING_WRONG
            group = emulator.group_chat(-4002, "Group")
            assert "Daud" in (await ask(group, alice, f"/ask@{emulator.bot_user['username']} {ZAHIR}"))["text"]
            forged = await client.post(
                hook, json=emulator.send_text(chat, alice, ARMS), headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}
            )
            assert forged.status_code == 403
        finally:
            await client.aclose()
            await server.stop()
            await stop_bot(app)

    out, err = capfd.readouterr()
    records = "\n".join(f"{r.getMessage()}\n{r.exc_text or ''}\n{r.stack_info or ''}" for r in caplog.records)
    logged = caplog.text + records
    # what the bot sent to Telegram, and the messages as stored (the texts users see); setWebhook
    # carries the secret to Telegram by design, and injected failures hold what the test put there
    sent = "\n".join(
        str(c.params) + str(c.response) for c in emulator.calls if c.method != "setWebhook" and c.injected is None
    )
    # the scenario did log what would leak: the Bot API URL, the webhook secret sent to setWebhook,
    # the setMyCommands error and the handler's exception
    assert "Set Bot API URL: " in logged and "/bot<redacted>\n" in logged
    assert "'secret_token': '<redacted>'" in logged
    assert "could not register the bot's commands" in logged
    assert "error while handling an update" in logged and "Traceback" in logged
    for secret in (TOKEN, TOKEN.split(":")[1], SECRET):
        assert secret not in logged
        assert secret not in out + err
        assert secret not in sent  # nothing the bot sent to Telegram (the texts users see) holds it


def test_a_refused_token_is_reported_without_being_shown(
    make_settings, built_index_dir, caplog, capfd, restore_log_factory
):
    """python-telegram-bot puts the token in the text of InvalidToken ("The token `...` was
    rejected by the server."); serve() says the token was refused, exits 1, and shows no token."""
    from bot.serving import EXIT_FAILED
    from botapi_emulator import EmulatorThread
    from citebot.serve import serve

    caplog.set_level(logging.DEBUG)
    with EmulatorThread(token="111:another-bot") as emu:  # this Telegram does not know TOKEN
        settings = make_settings(
            index_dir=built_index_dir,
            telegram_token=TOKEN,
            telegram_base_url=emu.base_url,
            telegram_webhook_secret=SECRET,
        )
        assert serve(settings) == EXIT_FAILED
    out, err = capfd.readouterr()
    logged = caplog.text + "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "was rejected by the server" in logged and "the bot stopped" in logged
    for secret in (TOKEN, TOKEN.split(":")[1], SECRET):
        assert secret not in logged and secret not in out + err
