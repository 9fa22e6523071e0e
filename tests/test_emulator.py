"""Tests of the Bot API emulator, driven by the real python-telegram-bot stack over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import telegram
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot.serving import start_bot, stop_bot
from botapi_emulator import (
    BotApiEmulator,
    EmulatorThread,
    TelegramHtmlError,
    parse_telegram_html,
    utf16_len,
    validate_telegram_html,
)
from botapi_emulator.utf16 import entity_text

TOKEN = "123456:TEST-TOKEN"
# PTB 22 warns when tests read int durations (retry_after, voice.duration) that will become timedeltas.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
REPO = Path(__file__).resolve().parent.parent


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    emulator = BotApiEmulator(token=TOKEN)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest_asyncio.fixture
async def bot(emu: BotApiEmulator) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url) as client:
        yield client


@pytest.fixture
def alice(emu: BotApiEmulator) -> dict[str, Any]:
    return emu.user(111, "Alice", "alice")


@pytest.fixture
def chat(emu: BotApiEmulator, alice: dict[str, Any]) -> dict[str, Any]:
    return emu.private_chat(alice)


class RunningApp:
    """A started PTB Application polling the emulator, plus the errors its handlers raised."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.errors: list[BaseException] = []

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        self.errors.append(context.error)


@contextlib.asynccontextmanager
async def running_app(emu: BotApiEmulator, *handlers: Any) -> AsyncIterator[RunningApp]:
    app = Application.builder().token(TOKEN).base_url(emu.base_url).build()
    running = RunningApp(app)
    for handler in handlers:
        app.add_handler(handler)
    app.add_error_handler(running.on_error)
    await start_bot(app, poll_timeout=1)
    try:
        yield running
    finally:
        await stop_bot(app)
    assert running.errors == []


def last_error(emu: BotApiEmulator) -> str | None:
    """Telegram's exact description of the last call (PTB re-capitalizes its messages)."""
    return emu.calls[-1].description


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d, callback_data=d) for d in data]])


# -- pure helpers: UTF-16 and Telegram HTML ----------------------------------------------------------


def test_utf16_len_counts_astral_characters_twice() -> None:
    assert utf16_len("") == 0
    assert utf16_len("abc") == 3
    assert utf16_len("é") == 1
    assert utf16_len("😀") == 2
    assert utf16_len("a😀b") == 4
    assert utf16_len("👍🏽") == 4  # emoji + skin tone modifier: two astral code points


def test_html_entities_use_utf16_offsets() -> None:
    text, entities = validate_telegram_html("😀 <b>x</b> <i>🎉y</i>")
    assert text == "😀 x 🎉y"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 1},
        {"type": "italic", "offset": 5, "length": 3},
    ]
    assert [entity_text(text, e) for e in entities] == ["x", "🎉y"]


def test_html_escaped_text_decodes_like_telegram() -> None:
    escaped = html.escape('Tom & Jerry\'s "<3"')
    text, entities = validate_telegram_html(f"<b>{escaped}</b> &#x1F600; &#33;")
    assert text == 'Tom & Jerry\'s "<3" 😀 !'
    assert entities == [{"type": "bold", "offset": 0, "length": 18}]


@pytest.mark.parametrize(
    ("markup", "error"),
    [
        ("<br>", 'Unsupported start tag "br" at byte offset 0'),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("🏟 🏟&lt;<abacaba", "Unclosed start tag at byte offset 13"),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>test</b></i>", 'Unmatched end tag at byte offset 10, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("🏟 🏟&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("🏟 🏟&lt;<i    aba  =  190azAz-.,", "Unexpected end of name token at byte offset 27"),
        ('<tg-emoji emoji-id="x">y</tg-emoji>', "Invalid custom emoji identifier specified"),
        (
            "&#xDFDF;",
            "Text contains invalid Unicode characters after decoding HTML entities, "
            "check for unmatched surrogate code units",
        ),
    ],
)
def test_invalid_html_is_rejected_with_telegrams_message(markup: str, error: str) -> None:
    with pytest.raises(TelegramHtmlError) as caught:
        validate_telegram_html(markup)
    assert caught.value.message == error


def test_html_supported_tags_produce_telegram_entities() -> None:
    markup = (
        "<strong>b</strong><em>i</em><ins>u</ins><del>s</del><tg-spoiler>p</tg-spoiler>"
        '<span class="tg-spoiler">q</span><a href="https://example.org/x?a=1&amp;b=2">l</a>'
        '<code>c</code><pre><code class="language-python">x = 1</code></pre>'
        '<blockquote expandable>e</blockquote><tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
    )
    text, entities = validate_telegram_html(markup)
    assert text == "biuspqlcx = 1e👍"
    assert [(e["type"], e["offset"], e["length"]) for e in entities] == [
        ("bold", 0, 1),
        ("italic", 1, 1),
        ("underline", 2, 1),
        ("strikethrough", 3, 1),
        ("spoiler", 4, 1),
        ("spoiler", 5, 1),
        ("text_link", 6, 1),
        ("code", 7, 1),
        ("pre", 8, 5),
        ("expandable_blockquote", 13, 1),
        ("custom_emoji", 14, 2),
    ]
    assert entities[6]["url"] == "https://example.org/x?a=1&b=2"
    assert entities[8]["language"] == "python"


def test_html_telegram_quirks_and_strict_mode() -> None:
    # Telegram keeps a bare '&' and unknown entities literally; strict mode (default) refuses them.
    assert parse_telegram_html("R&D &nbsp; &lt", strict=False) == ("R&D &nbsp; <", [])
    with pytest.raises(TelegramHtmlError, match="strict mode"):
        validate_telegram_html("R&D")
    # Closing with </> is accepted, a link with an invalid URL is dropped, and Telegram trims.
    assert validate_telegram_html("  <i>a</>\n") == ("a", [{"type": "italic", "offset": 0, "length": 1}])
    assert validate_telegram_html('<a href="not-a-url">x</a>') == ("x", [])
    # Entities inside code/pre are dropped, as Telegram does.
    assert validate_telegram_html("<pre><code>x</code></pre><code><b>y</b></code>") == (
        "xy",
        [{"type": "pre", "offset": 0, "length": 1}, {"type": "code", "offset": 1, "length": 1}],
    )


# -- the HTTP surface ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_get_me_over_http(emu: BotApiEmulator, bot: telegram.Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "citebot_test_bot", True)
    assert me.supports_inline_queries
    assert [c.method for c in emu.calls] == ["getMe", "getMe"]  # Bot.initialize() + get_me()


@pytest.mark.asyncio
async def test_wrong_token_and_unknown_methods(emu: BotApiEmulator) -> None:
    async with httpx.AsyncClient() as client:
        root = f"http://127.0.0.1:{emu.port}"
        wrong = await client.post(f"{root}/bot999:WRONG/getMe")
        assert wrong.status_code == 401
        assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        assert (await client.post(f"{root}/botgarbage/getMe")).status_code == 404
        unknown = await client.post(f"{root}/bot{TOKEN}/sendTelepathy")
        assert unknown.status_code == 404
        assert unknown.json()["description"] == "Not Found: method not found"
        not_emulated = await client.post(f"{root}/bot{TOKEN}/sendPoll")
        assert not_emulated.status_code == 501
        harmless = await client.post(f"{root}/bot{TOKEN}/setChatMenuButton")
        assert harmless.json() == {"ok": True, "result": True}
        case_insensitive = await client.get(f"{root}/bot{TOKEN}/GETME")
        assert case_insensitive.json()["result"]["username"] == "citebot_test_bot"
    assert [c.status for c in emu.calls] == [401, 404, 404, 501, 200, 200]
    with pytest.raises(InvalidToken):
        async with telegram.Bot("999:WRONG", base_url=emu.base_url):
            pass


@pytest.mark.asyncio
async def test_json_bodies_and_string_values_are_decoded_like_telegram(
    emu: BotApiEmulator, bot: telegram.Bot, chat: dict[str, Any]
) -> None:
    # PTB form-encodes strings verbatim: a text that looks like JSON must stay a string.
    for text in ("123", "true", '{"a": 1}'):
        assert (await bot.send_message(chat["id"], text)).text == text
    async with httpx.AsyncClient() as client:
        url = f"{emu.base_url}{TOKEN}/sendMessage"
        markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
        as_object = await client.post(url, json={"chat_id": chat["id"], "text": "x", "reply_markup": markup})
        as_string = await client.post(
            url, json={"chat_id": str(chat["id"]), "text": "y", "reply_markup": json.dumps(markup)}
        )
    assert as_object.json()["result"]["reply_markup"] == markup
    assert as_string.json()["result"]["reply_markup"] == markup
    assert emu.calls[-1].params["chat_id"] == chat["id"]


# -- sending messages -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_send_message_html_is_stored_as_telegram_would(
    emu: BotApiEmulator, bot: telegram.Bot, chat: dict[str, Any]
) -> None:
    title = html.escape('Ties & "sanctions" <2021>')
    sent = await bot.send_message(
        chat["id"],
        f"<b>{title}</b>\n<i>source</i>: <a href='https://t.me/x'>link</a>",
        parse_mode="HTML",
        reply_markup=keyboard("more"),
    )
    assert sent.text == 'Ties & "sanctions" <2021>\nsource: link'
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 25),
        ("italic", 26, 6),
        ("text_link", 34, 4),
    ]
    assert sent.from_user.username == "citebot_test_bot" and sent.chat.id == chat["id"]
    [stored] = emu.sent_messages(chat["id"])
    assert stored["message_id"] == sent.message_id
    assert stored["text"] == sent.text
    assert stored["entities"][2]["url"] == "https://t.me/x"
    assert stored["reply_markup"] == {"inline_keyboard": [[{"text": "more", "callback_data": "more"}]]}
    assert stored["reply_to_message_id"] is None


@pytest.mark.asyncio
async def test_send_message_rejects_what_telegram_rejects(
    emu: BotApiEmulator, bot: telegram.Bot, chat: dict[str, Any]
) -> None:
    cases = {
        "<b>unclosed": "can't parse entities: Can't find end tag corresponding to start tag \"b\"",
        "1 < 2": 'can\'t parse entities: Unsupported start tag "" at byte offset 2',
        "line<br>break": 'can\'t parse entities: Unsupported start tag "br" at byte offset 4',
        "x" * 4097: "message is too long",
        "   ": "text must be non-empty",
    }
    for text, description in cases.items():
        with pytest.raises(BadRequest):
            await bot.send_message(chat["id"], text, parse_mode="HTML")
        assert (emu.calls[-1].status, last_error(emu)) == (400, f"Bad Request: {description}")
    for chat_id, text, parse_mode, description in [
        (chat["id"], "", None, "message text is empty"),
        (424242, "hi", None, "chat not found"),
        (chat["id"], "hi", "XML", "unsupported parse_mode"),
    ]:
        with pytest.raises(BadRequest):
            await bot.send_message(chat_id, text, parse_mode=parse_mode)
        assert last_error(emu) == f"Bad Request: {description}"
    assert emu.sent_messages() == []
    # 4096 is fine, and whitespace around the text is trimmed as Telegram does.
    assert (await bot.send_message(chat["id"], " <b>" + "x" * 4096 + "</b>\n", parse_mode="HTML")).text == "x" * 4096


@pytest.mark.asyncio
async def test_message_length_is_counted_in_utf16_units(bot: telegram.Bot, chat: dict[str, Any]) -> None:
    fits = "😀" * 2048  # 2048 characters, 4096 UTF-16 code units
    assert len(fits) == 2048 and utf16_len(fits) == 4096
    assert (await bot.send_message(chat["id"], fits)).text == fits
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(chat["id"], fits + "a")  # only 2049 characters, but 4097 units


@pytest.mark.asyncio
async def test_inline_keyboard_validation(emu: BotApiEmulator, bot: telegram.Bot, chat: dict[str, Any]) -> None:
    ok = await bot.send_message(chat["id"], "x", reply_markup=keyboard("é" * 32))  # 64 bytes
    assert ok.reply_markup.inline_keyboard[0][0].callback_data == "é" * 32
    bad_url = InlineKeyboardMarkup([[InlineKeyboardButton("go", url="localhost:8080")]])
    for markup, description in [
        (keyboard("é" * 32 + "x"), "BUTTON_DATA_INVALID"),  # 65 bytes
        (bad_url, "inline keyboard button URL 'localhost:8080' is invalid: Wrong HTTP URL"),
        (
            {"inline_keyboard": [[{"text": "t"}]]},
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
        ),
        (
            {"inline_keyboard": [[{"text": "t", "callback_data": ""}]]},
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
        ),
    ]:
        with pytest.raises(BadRequest):
            await bot.send_message(chat["id"], "x", reply_markup=markup)
        assert last_error(emu) == f"Bad Request: {description}"


@pytest.mark.asyncio
async def test_replies_need_an_existing_message(
    emu: BotApiEmulator, bot: telegram.Bot, alice: dict[str, Any], chat: dict[str, Any]
) -> None:
    question = emu.send_text(chat, alice, "question")["message"]
    answer = await bot.send_message(chat["id"], "answer", reply_to_message_id=question["message_id"])
    assert answer.reply_to_message.text == "question"
    assert emu.calls[-1].params["reply_parameters"] == {"message_id": question["message_id"]}
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(chat["id"], "answer", reply_to_message_id=999)
    lenient = await bot.send_message(chat["id"], "answer", reply_to_message_id=999, allow_sending_without_reply=True)
    assert lenient.reply_to_message is None
    assert [m["reply_to_message_id"] for m in emu.sent_messages(chat["id"])] == [question["message_id"], None]


@pytest.mark.asyncio
async def test_edit_and_delete(emu: BotApiEmulator, bot: telegram.Bot, chat: dict[str, Any]) -> None:
    sent = await bot.send_message(chat["id"], "<b>v1</b>", parse_mode="HTML", reply_markup=keyboard("a"))
    edited = await bot.edit_message_text("v2", chat["id"], sent.message_id, reply_markup=keyboard("a"))
    assert edited.text == "v2" and edited.edit_date is not None
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("v2", chat["id"], sent.message_id, reply_markup=keyboard("a"))
    await bot.edit_message_text("v2", chat["id"], sent.message_id)  # no markup: keyboard removed
    assert "reply_markup" not in emu.sent_messages(chat["id"])[0]
    await bot.edit_message_reply_markup(chat["id"], sent.message_id, reply_markup=keyboard("b"))
    assert emu.sent_messages(chat["id"])[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "b"
    assert await bot.delete_message(chat["id"], sent.message_id) is True
    assert emu.sent_messages(chat["id"]) == []
    assert emu.sent_messages(chat["id"], include_deleted=True)[0]["deleted"] is True
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("v3", chat["id"], sent.message_id)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(chat["id"], sent.message_id)


@pytest.mark.asyncio
async def test_files_round_trip(
    emu: BotApiEmulator, bot: telegram.Bot, alice: dict[str, Any], chat: dict[str, Any]
) -> None:
    sent = await bot.send_document(
        chat["id"], b"@article{x,}\n", filename="refs.bib", caption="<i>refs</i>", parse_mode="HTML"
    )
    assert sent.document.file_name == "refs.bib" and sent.caption == "refs"
    assert emu.file_content(sent.document.file_id) == b"@article{x,}\n"
    photo = emu.send_photo(chat, alice, data=b"JPEGDATA")["message"]["photo"][-1]
    downloaded = await (await bot.get_file(photo["file_id"])).download_as_bytearray()
    assert bytes(downloaded) == b"JPEGDATA"
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_photo(chat["id"], photo["file_id"], caption="x" * 1025)


@pytest.mark.asyncio
async def test_commands_chat_actions_and_bot_settings(bot: telegram.Bot, chat: dict[str, Any]) -> None:
    await bot.set_my_commands([("cite", "Find sources"), ("help", "How to use")])
    assert [(c.command, c.description) for c in await bot.get_my_commands()] == [
        ("cite", "Find sources"),
        ("help", "How to use"),
    ]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([("Cite", "uppercase is not allowed")])
    await bot.set_my_description("A bot")
    assert (await bot.get_my_description()).description == "A bot"
    assert await bot.delete_my_commands() and await bot.get_my_commands() == ()
    assert await bot.send_chat_action(chat["id"], "typing") is True
    with pytest.raises(BadRequest, match="Wrong parameter action"):
        await bot.send_chat_action(chat["id"], "dancing")


# -- failure injection ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_injected_429_raises_retry_after(emu: BotApiEmulator, bot: telegram.Bot, chat: dict[str, Any]) -> None:
    emu.fail_next("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(chat["id"], "hi")
    assert caught.value.retry_after in (7, dt.timedelta(seconds=7))
    assert emu.calls[-1].response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    assert (await bot.send_message(chat["id"], "hi")).text == "hi"  # only the next call fails


@pytest.mark.asyncio
async def test_injected_500_and_dropped_connection_raise_network_error(
    emu: BotApiEmulator, bot: telegram.Bot, chat: dict[str, Any]
) -> None:
    emu.fail_next("sendMessage", status=500)
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(chat["id"], "hi")
    emu.drop_next("sendMessage")
    with pytest.raises(NetworkError, match="Server disconnected without sending a response"):
        await bot.send_message(chat["id"], "hi")
    assert [(c.status, c.injected) for c in emu.calls_to("sendMessage")] == [(500, "fail"), (0, "drop")]
    assert emu.sent_messages() == []


@pytest.mark.asyncio
async def test_a_lost_answer_was_carried_out_and_a_held_connection_was_not(
    emu: BotApiEmulator, bot: telegram.Bot, chat: dict[str, Any]
) -> None:
    emu.lose_answer_next("sendMessage")
    with pytest.raises(NetworkError, match="Server disconnected without sending a response"):
        await bot.send_message(chat["id"], "sent, answer lost")
    assert [m["text"] for m in emu.sent_messages()] == ["sent, answer lost"]  # it went through
    emu.hold_next("sendMessage", 0.5)
    started = time.monotonic()
    with pytest.raises(NetworkError):
        await bot.send_message(chat["id"], "held")
    assert time.monotonic() - started >= 0.45
    assert [m["text"] for m in emu.sent_messages()] == ["sent, answer lost"]  # the held one did not
    assert [c.injected for c in emu.calls_to("sendMessage")] == ["lose_answer", "hold"]


@pytest.mark.asyncio
async def test_an_outage_fails_every_call_until_it_ends(
    emu: BotApiEmulator, bot: telegram.Bot, chat: dict[str, Any]
) -> None:
    emu.outage(0.6)
    for _ in range(3):
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(chat["id"], "down")
    emu.outage(0.6, status=None)  # queued behind the first: starts counting now, ends with it or later
    await asyncio.sleep(0.7)
    assert (await bot.send_message(chat["id"], "back")).text == "back"
    assert emu.faults.rules == []  # expired outages are forgotten
    assert [m["text"] for m in emu.sent_messages()] == ["back"]


@pytest.mark.asyncio
async def test_delay_makes_the_client_time_out(emu: BotApiEmulator, bot: telegram.Bot, chat: dict[str, Any]) -> None:
    emu.delay_next("sendMessage", 2.0)
    started = time.monotonic()
    with pytest.raises(TimedOut):
        await bot.send_message(chat["id"], "slow", read_timeout=0.3)
    assert time.monotonic() - started < 1.5
    [call] = await emu.wait_for("sendMessage", timeout=2)
    assert (call.status, call.injected) == (0, "delay")
    emu.delay_next("sendMessage", 0.3)
    assert (await bot.send_message(chat["id"], "slow but fine")).text == "slow but fine"
    assert emu.calls_to("sendMessage")[-1].duration >= 0.3


@pytest.mark.asyncio
async def test_blocked_user_gets_403_and_a_my_chat_member_update(
    emu: BotApiEmulator, bot: telegram.Bot, alice: dict[str, Any], chat: dict[str, Any]
) -> None:
    update = emu.block_user(alice["id"])
    assert update["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(chat["id"], "hi")
    emu.unblock_user(alice["id"], notify=False)
    assert (await bot.send_message(chat["id"], "hi")).text == "hi"


@pytest.mark.asyncio
async def test_flood_control(emu: BotApiEmulator, bot: telegram.Bot, chat: dict[str, Any]) -> None:
    emu.set_flood_limits(global_per_second=None, per_chat_per_second=2, group_per_minute=None)
    await bot.send_message(chat["id"], "1")
    await bot.send_message(chat["id"], "2")
    with pytest.raises(RetryAfter):
        await bot.send_message(chat["id"], "3")


# -- getUpdates -----------------------------------------------------------------------------------------


async def holding_a_poll(emu: BotApiEmulator, timeout: float = 5.0) -> None:
    """Wait until the emulator holds a getUpdates request open (it has arrived and is long polling):
    a held poll wakes ``wait_until`` as a recorded call does."""
    await emu.wait_until(lambda: emu.polling, timeout=timeout, what="a held getUpdates")


@pytest.mark.asyncio
async def test_long_polling_and_offset_confirmation(
    emu: BotApiEmulator, bot: telegram.Bot, alice: dict[str, Any], chat: dict[str, Any]
) -> None:
    first = emu.send_text(chat, alice, "first")
    [update] = await bot.get_updates(timeout=0)
    assert update.update_id == first["update_id"] and update.message.text == "first"
    assert len(await bot.get_updates(timeout=0)) == 1  # not confirmed yet: delivered again

    poll = asyncio.create_task(bot.get_updates(offset=update.update_id + 1, timeout=5))
    await holding_a_poll(emu)
    assert not poll.done(), "getUpdates must be held open until an update arrives"
    assert emu.pending_updates == []  # the offset confirmed "first"
    started = time.monotonic()
    second = emu.send_text(chat, alice, "/cite 😀 @bob")
    [update] = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 1.0 and not emu.polling  # answered: no longer held
    assert update.update_id == second["update_id"] == first["update_id"] + 1
    assert [(e.type, e.offset, e.length) for e in update.message.entities] == [
        ("bot_command", 0, 5),
        ("mention", 9, 4),
    ]
    empty_started = time.monotonic()
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0.5) == ()
    assert time.monotonic() - empty_started >= 0.45


@pytest.mark.asyncio
async def test_user_media_edits_and_groups_parse_in_ptb(
    emu: BotApiEmulator, bot: telegram.Bot, alice: dict[str, Any], chat: dict[str, Any]
) -> None:
    group = emu.group_chat(-1001234567890, "Researchers", "supergroup")
    emu.send_sticker(chat, alice, emoji="🔥")
    emu.send_voice(chat, alice, duration=3)
    text = emu.send_text(group, alice, "/cite@citebot_test_bot taliban")
    emu.edit_text(text, "/cite@citebot_test_bot russia")
    sticker, voice, command, edited = await bot.get_updates(timeout=0)
    assert sticker.message.sticker.emoji == "🔥"
    assert voice.message.voice.duration in (3, dt.timedelta(seconds=3))
    assert command.message.chat.type == "supergroup" and command.message.chat.title == "Researchers"
    assert [(e.type, e.length) for e in command.message.entities] == [("bot_command", 22)]
    assert edited.edited_message.text.endswith("russia") and edited.edited_message.edit_date is not None
    assert (await bot.get_chat(chat["id"])).first_name == "Alice"
    assert (await bot.get_chat(group["id"])).title == "Researchers"
    with pytest.raises(ValueError, match="own user"):
        emu.send_text(chat, emu.user(222, "Mallory"), "not my chat")


@pytest.mark.asyncio
async def test_allowed_updates_filters_new_updates(
    emu: BotApiEmulator, bot: telegram.Bot, alice: dict[str, Any], chat: dict[str, Any]
) -> None:
    sent = await bot.send_message(chat["id"], "pick", reply_markup=keyboard("a"))
    assert await bot.get_updates(timeout=0, allowed_updates=["callback_query"]) == ()
    emu.send_text(chat, alice, "ignored")
    emu.press_button(sent.to_dict(), "a", alice)
    [update] = await bot.get_updates(timeout=0)
    assert update.callback_query.data == "a"
    assert [u["message"]["text"] for u in emu.updates.discarded] == ["ignored"]


@pytest.mark.asyncio
async def test_concurrent_get_updates_conflict(emu: BotApiEmulator) -> None:
    async with (
        telegram.Bot(TOKEN, base_url=emu.base_url) as first,
        telegram.Bot(TOKEN, base_url=emu.base_url) as second,
    ):
        older = asyncio.create_task(first.get_updates(timeout=5))
        await holding_a_poll(emu)
        assert await second.get_updates(timeout=0) == ()
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await asyncio.wait_for(older, 2)


# -- a real PTB Application -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_application_echo_round_trip(emu: BotApiEmulator, alice: dict[str, Any], chat: dict[str, Any]) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(update.message.text.upper(), do_quote=True)

    async with running_app(emu, MessageHandler(filters.TEXT & ~filters.COMMAND, echo)):
        asked = emu.send_text(chat, alice, "hello 👋")
        [reply] = await emu.wait_for_messages(chat["id"], 1, timeout=5)
        assert reply["text"] == "HELLO 👋"
        assert reply["reply_to_message_id"] == asked["message"]["message_id"]
        emu.send_text(chat, alice, "again")
        replies = await emu.wait_for_messages(chat["id"], 2, timeout=5)
        assert replies[1]["text"] == "AGAIN"
    assert emu.pending_updates == []  # the updater confirmed everything on shutdown
    assert {"getMe", "deleteWebhook", "getUpdates", "sendMessage"} <= {c.method for c in emu.calls}


@pytest.mark.asyncio
async def test_application_callback_query_round_trip(
    emu: BotApiEmulator, alice: dict[str, Any], chat: dict[str, Any]
) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text("Pick a source", reply_markup=keyboard("src:1", "src:2"))

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        await query.answer(f"Opening {query.data}")
        await query.edit_message_text(f"<b>Source</b> {html.escape(query.data)}", parse_mode="HTML")

    async with running_app(emu, CommandHandler("start", start), CallbackQueryHandler(button)):
        emu.send_text(chat, alice, "/start")
        [menu] = await emu.wait_for_messages(chat["id"], 1, timeout=5)
        with pytest.raises(ValueError, match="no inline button"):
            emu.press_button(menu, "src:3", alice)
        pressed = emu.press_button(menu, "src:2", alice)
        await emu.wait_for("editMessageText", timeout=5)
        await emu.wait_for("answerCallbackQuery", timeout=5)
    assert emu.callback_answer(pressed)["text"] == "Opening src:2"
    [edited] = emu.sent_messages(chat["id"])
    assert edited["text"] == "Source src:2"
    assert edited["entities"] == [{"type": "bold", "offset": 0, "length": 6}]
    assert "reply_markup" not in edited


@pytest.mark.asyncio
async def test_callback_query_answer_rules(
    emu: BotApiEmulator, bot: telegram.Bot, alice: dict[str, Any], chat: dict[str, Any]
) -> None:
    sent = await bot.send_message(chat["id"], "x", reply_markup=keyboard("a"))
    query = emu.press_button(sent.to_dict(), "forged-data", alice, forged=True)["callback_query"]
    assert query["data"] == "forged-data" and query["message"]["message_id"] == sent.message_id
    with pytest.raises(BadRequest):
        await bot.answer_callback_query(query["id"], text="x" * 201)
    assert await bot.answer_callback_query(query["id"], text="x" * 200)
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query["id"])


@pytest.mark.asyncio
async def test_application_inline_query_round_trip(
    emu: BotApiEmulator, bot: telegram.Bot, alice: dict[str, Any]
) -> None:
    async def inline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        text = update.inline_query.query
        content = InputTextMessageContent(f"<b>{html.escape(text)}</b>", parse_mode="HTML")
        result = InlineQueryResultArticle("r1", "Quote", content, reply_markup=keyboard("like"))
        await update.inline_query.answer([result], cache_time=0)

    async with running_app(emu, InlineQueryHandler(inline)):
        asked = emu.inline_query(alice, "a<b")
        await emu.wait_for("answerInlineQuery", timeout=5)
    answer = emu.inline_answer(asked)
    assert [r["id"] for r in answer["results"]] == ["r1"]
    chosen = emu.choose_inline_result(asked, "r1")["chosen_inline_result"]
    inline_id = chosen["inline_message_id"]
    assert emu.inline_message(inline_id)["text"] == "a<b"
    assert emu.inline_message(inline_id)["entities"] == [{"type": "bold", "offset": 0, "length": 3}]
    assert await bot.edit_message_text("edited", inline_message_id=inline_id) is True
    assert emu.inline_message(inline_id)["text"] == "edited"
    assert emu.press_button(inline_id, "like", alice, forged=True)["callback_query"]["inline_message_id"] == inline_id


@pytest.mark.asyncio
async def test_answer_inline_query_validation(emu: BotApiEmulator, bot: telegram.Bot, alice: dict[str, Any]) -> None:
    query_id = emu.inline_query(alice, "q")["inline_query"]["id"]

    def article(result_id: str, text: str = "t") -> InlineQueryResultArticle:
        return InlineQueryResultArticle(result_id, "title", InputTextMessageContent(text, parse_mode="HTML"))

    with pytest.raises(BadRequest, match="Results_too_much"):
        await bot.answer_inline_query(query_id, [article(str(i)) for i in range(51)])
    with pytest.raises(BadRequest, match="Result_id_duplicate"):
        await bot.answer_inline_query(query_id, [article("1"), article("1")])
    with pytest.raises(BadRequest, match='unsupported start tag "x"'):
        await bot.answer_inline_query(query_id, [article("1", "<x>")])
    assert await bot.answer_inline_query(query_id, [article(str(i)) for i in range(50)])
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_inline_query(query_id, [article("1")])


# -- other ways to run it ---------------------------------------------------------------------------------


def test_emulator_thread_from_synchronous_code() -> None:
    with EmulatorThread(token=TOKEN) as emu:
        alice = emu.user(7, "Alice")
        chat = emu.private_chat(alice)
        calls = emu.subscribe({"sendMessage"})
        emu.send_text(chat, alice, "/start")
        with httpx.Client(base_url=f"{emu.base_url}{TOKEN}/") as client:
            updates = client.post("getUpdates", data={"timeout": "0"}).json()["result"]
            assert updates[0]["message"]["text"] == "/start"
            client.post("sendMessage", data={"chat_id": str(chat["id"]), "text": "<i>hi</i>", "parse_mode": "HTML"})
        call = calls.get(timeout=5)
        assert call.method == "sendMessage" and call.result["text"] == "hi"
        assert emu.wait_for_messages(chat["id"], 1, timeout=2)[0]["entities"][0]["type"] == "italic"
        assert [c.method for c in emu.calls()] == ["getUpdates", "sendMessage"]


def test_command_line_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "botapi_emulator", "--port", "0", "--token", "42:CLI"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        base_url = re.search(r"base_url=(\S+)", banner).group(1)
        assert base_url.startswith("http://127.0.0.1:")
        me = httpx.post(f"{base_url}42:CLI/getMe", timeout=5).json()
        assert me["ok"] and me["result"]["id"] == 42
        assert "getMe -> ok" in process.stdout.readline()
    finally:
        process.terminate()
        process.wait(5)
