"""End-to-end tests of the bot: the real python-telegram-bot Application (bot.application.build_application)
against the project's Bot API emulator over real HTTP, with the real index and model.

Every test's bot output is also checked by the ``start_bot`` fixture (conftest.check_bot_output):
valid Telegram HTML, at most 4096 UTF-16 units, no refused call.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time

import pytest

from bot import formatting as fmt
from bot import markup
from bot.redaction import install_log_redaction

pytestmark = pytest.mark.asyncio

ZAHIR = "Who overthrew King Zahir Shah?"
ARMS = "Is Russia arming the Taliban?"
FRANCE = "What is the capital of France?"


def buttons(message: dict) -> dict[str, str]:
    """Button label → callback data of a bot message."""
    keyboard = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return {b["text"]: b["callback_data"] for row in keyboard for b in row}


async def ask(emulator, chat: dict, user: dict, text: str, **kwargs) -> dict:
    """Send ``text`` and return the bot's next message in that chat."""
    before = len(emulator.sent_messages(chat["id"]))
    emulator.send_text(chat, user, text, **kwargs)
    messages = await emulator.wait_for_messages(chat["id"], before + 1, timeout=20)
    return messages[before]


async def settle(emulator, app, timeout: float = 20.0) -> None:
    """Wait until the bot has handled every update sent so far (used before asserting silence):
    the emulator saw the bot confirm them (the next getUpdates' offset moved past them, so they are
    in the Application's update queue), then PTB marked each one done after its handlers ran
    (``update_queue.task_done`` is called when an update's processing has finished)."""
    async with asyncio.timeout(timeout):
        while emulator.pending_updates:
            await asyncio.sleep(0.02)
        await app.update_queue.join()


async def until(condition, timeout: float = 20.0, step: float = 0.02):
    """Poll ``condition()`` until it is truthy; return its value (TimeoutError after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not (value := condition()):
            await asyncio.sleep(step)
        return value


# ------------------------------------------------------------------------------------ private chats


async def test_private_question_gets_cited_passages(emulator, running_bot):
    alice = emulator.user(101, "Alice")
    chat = emulator.private_chat(alice)
    answer = await ask(emulator, chat, alice, ZAHIR)
    text = answer["text"]
    assert text.startswith("🔎 Passages 1–3 of ")
    assert "Mohammed Daud Khan" in text
    assert "[Russia’s policy in Afghanistan and its outreach to the Taliban: an issue brief] — 2017" in text
    assert text.count("\n1. ") + text.count("\n2. ") + text.count("\n3. ") == 3
    # the best sentence is bold, each passage is quoted
    bold = [fmt_entity_text(text, e) for e in answer["entities"] if e["type"] == "bold"]
    assert any("Mohammed Daud Khan overthrowing King Zahir Shah" in b for b in bold)
    assert sum(e["type"] == "blockquote" for e in answer["entities"]) == 3
    labels = buttons(answer)
    assert {"📖 Context 1", "📖 Context 2", "📖 Context 3", "More results ▶"} <= set(labels)
    assert answer["reply_to_message_id"] is None  # private answers are not quoted


def fmt_entity_text(text: str, entity: dict) -> str:
    from botapi_emulator import entity_text

    return entity_text(text, entity)


async def test_more_results_and_context_buttons(emulator, running_bot):
    alice = emulator.user(102, "Alice")
    chat = emulator.private_chat(alice)
    answer = await ask(emulator, chat, alice, ARMS)
    first_page = answer["text"]

    mark = emulator.mark()
    more = emulator.press_button(answer, buttons(answer)["More results ▶"], alice)
    await emulator.wait_for("answerCallbackQuery", since=mark, timeout=20)
    edited = emulator.message(chat["id"], answer["message_id"])
    assert edited["text"].startswith("🔎 Passages 4–6 of ")
    assert edited["text"] != first_page and "\n4. " in edited["text"]
    assert {"◀ Back", "More results ▶", "📖 Context 4"} <= set(buttons(edited))
    assert emulator.callback_answer(more) is not None

    back = emulator.press_button(edited, buttons(edited)["◀ Back"], alice)
    await emulator.wait_until(lambda: emulator.callback_answer(back), timeout=20)
    assert emulator.message(chat["id"], answer["message_id"])["text"] == first_page

    # Context: the neighbouring text, as a reply to the answer, the passage inside it
    current = emulator.message(chat["id"], answer["message_id"])
    passage_start = current["text"].split("\n1. ", 1)[1].split("\n", 2)[1][:60]
    before = len(emulator.sent_messages(chat["id"]))
    emulator.press_button(current, buttons(current)["📖 Context 1"], alice)
    context = (await emulator.wait_for_messages(chat["id"], before + 1, timeout=20))[before]
    assert context["text"].startswith("📖 Context · ")
    assert passage_start in context["text"]
    assert len(context["text"]) > len(passage_start) + 200  # more than the passage itself
    assert context["reply_to_message_id"] == answer["message_id"]


async def test_stale_and_forged_buttons_get_a_polite_answer(emulator, running_bot):
    alice = emulator.user(103, "Alice")
    chat = emulator.private_chat(alice)
    answer = await ask(emulator, chat, alice, ARMS)
    for data in ("m:unknownTok:1", "c:0000000000:1:2", "garbage", "c:" + "9" * 10 + ":5:1"):
        query = emulator.press_button(answer, data, alice, forged=True)
        result = await emulator.wait_until(lambda q=query: emulator.callback_answer(q), timeout=10)
        assert result["text"] == fmt.STALE_BUTTON
    assert len(emulator.sent_messages(chat["id"])) == 1  # nothing else was sent
    assert emulator.message(chat["id"], answer["message_id"])["text"] == answer["text"]


async def test_off_topic_question_gets_no_passages(emulator, running_bot):
    alice = emulator.user(104, "Alice")
    chat = emulator.private_chat(alice)
    answer = await ask(emulator, chat, alice, FRANCE)
    assert answer["text"].startswith(f"🤷 The sources don't cover “{FRANCE}”.")  # which question it declines
    assert "Try rephrasing" in answer["text"]
    assert "Passages" not in answer["text"] and not buttons(answer)


async def test_analyst_answers_dates_newest_first_not_covered_and_junk(emulator, running_bot):
    alice = emulator.user(105, "Alice")
    chat = emulator.private_chat(alice)
    current = (await ask(emulator, chat, alice, "Has Russia recognised the Taliban government?"))["text"]
    assert "\n1. Understanding Russia’s Taliban gauntlet — Harsh V. Pant, Aleksei Zakharov, 2025-07-28\n" in current
    # older sources are marked on a current question: the 2024 piece's "not yet officially recognized"
    assert re.search(r"as of 20\d\d", current) or "· undated" in current
    assert "newest source comes first" in current
    missing = await ask(emulator, chat, alice, "What is the population of Afghanistan?")
    assert missing["text"].startswith(
        "🤷 The sources don't mention “population” (asked: “What is the population of Afghanistan?”)."
    )
    assert "do not answer your question" in missing["text"] and "More results ▶" not in buttons(missing)
    junk = await ask(emulator, chat, alice, "😀<b>&" * 3000)
    assert "couldn't find any words" in junk["text"] and "Passages" not in junk["text"]
    group = emulator.group_chat(-1003, "Analysts", "supergroup")
    username = emulator.bot_user["username"]
    emulator.send_text(group, alice, f"hey @{username}")
    hey = (await emulator.wait_for_messages(group["id"], 1, timeout=20))[0]
    assert "don't cover" in hey["text"] and "Passages" not in hey["text"]
    emulator.send_text(group, alice, f"/ask@{username} Did Russia take the Taliban off its terrorist list?")
    compact = (await emulator.wait_for_messages(group["id"], 2, timeout=20))[1]["text"]
    assert "2025-07-28" in compact and ("as of" in compact or "· undated" in compact)


async def test_commands(emulator, running_bot, searcher):
    alice = emulator.user(105, "Alice")
    chat = emulator.private_chat(alice)
    start = await ask(emulator, chat, alice, "/start")
    assert "Russia–Taliban relations" in start["text"]
    assert all(q in start["text"] for q in fmt.EXAMPLE_QUESTIONS)
    help_text = (await ask(emulator, chat, alice, "/help"))["text"]
    assert "/ask" in help_text and "/sources" in help_text and "Groups:" in help_text
    sources = (await ask(emulator, chat, alice, "/sources"))["text"]
    for doc in searcher.documents():
        assert doc.citation.title in sources
    assert "date: 2025-07-28 · by: Harsh V. Pant, Aleksei Zakharov" in sources
    about = (await ask(emulator, chat, alice, "/about"))["text"]
    import citebot

    assert citebot.__version__ in about
    assert searcher.manifest["built_at"] in about
    assert f"{sum(d.passages for d in searcher.documents())} passages" in about
    ask_answer = (await ask(emulator, chat, alice, "/ask " + ZAHIR))["text"]
    assert "Mohammed Daud Khan" in ask_answer
    usage = (await ask(emulator, chat, alice, "/ask"))["text"]
    assert usage.startswith("Usage: /ask your question")
    unknown = (await ask(emulator, chat, alice, "/frobnicate"))["text"]
    assert unknown == fmt.UNKNOWN_COMMAND
    # commands were registered at start-up
    registered = [c for c in emulator.calls_to("setMyCommands") if c.ok]
    assert registered and {"start", "help", "sources", "ask", "about"} <= {
        c["command"] for c in registered[0].params["commands"]
    }


async def test_odd_inputs(emulator, running_bot, settings):
    app = running_bot
    alice = emulator.user(106, "Alice")
    chat = emulator.private_chat(alice)
    emulator.send_sticker(chat, alice)
    sticker = (await emulator.wait_for_messages(chat["id"], 1))[0]
    assert sticker["text"] == fmt.NOT_TEXT
    emoji = await ask(emulator, chat, alice, "😀🎉 🇷🇺")
    assert emoji["text"].startswith("Please send your question as text")
    huge = ZAHIR + " " + "and what about the border " * 400  # ~10,000 characters
    assert len(huge) > 10_000
    long_answer = await ask(emulator, chat, alice, huge)
    assert "Your question was long, so I used only its beginning." in long_answer["text"]
    assert "Passages 1–" in long_answer["text"]
    assert len(long_answer["text"]) < 4096
    # an edited message is ignored: no new answer, the old one stays
    first = emulator.chat_history(chat["id"])[-2]  # the huge question
    emulator.edit_text(first, "Who overthrew whom?")
    await settle(emulator, app)
    assert len(emulator.sent_messages(chat["id"])) == 3


async def test_long_answers_stay_within_telegram_limits(emulator, start_bot, make_settings, built_index_dir):
    ten = make_settings(index_dir=built_index_dir, telegram_results_private=10)
    await start_bot(ten)
    alice = emulator.user(107, "Alice")
    chat = emulator.private_chat(alice)
    answer = await ask(emulator, chat, alice, ARMS)
    from botapi_emulator import utf16_len

    assert 3500 < utf16_len(answer["text"]) <= 4096  # ten passages, trimmed to fit
    assert answer["text"].startswith("🔎 Passages 1–10 of ")
    assert "\n10. " in answer["text"]


# ------------------------------------------------------------------------------------------- groups


async def test_groups_answer_only_when_addressed(emulator, running_bot):
    app = running_bot
    alice = emulator.user(201, "Alice")
    bob = emulator.user(202, "Bob")
    group = emulator.group_chat(-1001, "Afghanistan watchers", "supergroup")
    username = emulator.bot_user["username"]
    emulator.send_text(group, alice, "Who overthrew King Zahir Shah? Anyone?")  # chatter
    emulator.send_text(group, bob, "/ask@someotherbot " + ZAHIR)  # another bot's command
    emulator.send_sticker(group, bob)

    asked = emulator.send_text(group, alice, f"/ask@{username} {ZAHIR}")["message"]
    by_command = (await emulator.wait_for_messages(group["id"], 1, timeout=20))[0]
    assert by_command["reply_to_message_id"] == asked["message_id"]
    assert "Mohammed Daud Khan" in by_command["text"]
    assert by_command["text"].startswith("🔎 Passages 1–2 of ")  # compact: two passages
    assert "\n3. " not in by_command["text"]
    assert "More results ▶" in buttons(by_command)

    mention = emulator.send_text(group, bob, f"@{username} {ARMS}")["message"]
    by_mention = (await emulator.wait_for_messages(group["id"], 2, timeout=20))[1]
    assert by_mention["reply_to_message_id"] == mention["message_id"]
    assert "“arming them”" in by_mention["text"]

    reply = emulator.send_text(
        group, alice, "Who overthrew King Zahir Shah in 1973?", reply_to_message_id=by_command["message_id"]
    )["message"]
    by_reply = (await emulator.wait_for_messages(group["id"], 3, timeout=20))[2]
    assert by_reply["reply_to_message_id"] == reply["message_id"]
    assert "Daud Khan" in by_reply["text"]

    usage = emulator.send_text(group, bob, "/ask")["message"]
    by_usage = (await emulator.wait_for_messages(group["id"], 4, timeout=20))[3]
    assert by_usage["reply_to_message_id"] == usage["message_id"]
    assert by_usage["text"].startswith("Usage: /ask")

    # a reply to another user's message is chatter too
    emulator.send_text(group, bob, "I think it was Daud", reply_to_message_id=asked["message_id"])
    await settle(emulator, app)
    assert len(emulator.sent_messages(group["id"])) == 4


# ------------------------------------------------------------------------------------------- inline


async def test_inline_mode(emulator, running_bot, settings):
    alice = emulator.user(301, "Alice")
    query = emulator.inline_query(alice, ZAHIR)
    answer = await emulator.wait_until(lambda: emulator.inline_answer(query), timeout=20)
    results = answer["results"]
    assert 1 <= len(results) <= 10
    assert int(answer["cache_time"]) == settings.telegram.inline_cache_seconds
    titles = {doc for doc in (r["title"] for r in results)}
    assert "[Russia’s policy in Afghanistan and its outreach to the Taliban: an issue brief]" in titles
    assert all(r["type"] == "article" for r in results)
    first = results[0]
    assert "Mohammed Daud Khan" in first["input_message_content"]["message_text"]
    date, passage_start = first["description"].split(" · ", 1)  # the source's date, then the passage
    assert date == "2017" and passage_start[:30] in markup.html_to_text(first["input_message_content"]["message_text"])
    assert first["input_message_content"]["parse_mode"] == "HTML"

    empty = emulator.inline_query(alice, "")
    help_answer = await emulator.wait_until(lambda: emulator.inline_answer(empty), timeout=20)
    assert [r["id"] for r in help_answer["results"]] == ["help"]
    assert "Type @" in help_answer["results"][0]["input_message_content"]["message_text"]


# -------------------------------------------------------------------------------- errors and limits


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # raised inside PTB
async def test_flood_control_is_waited_out_and_delivered_once(emulator, running_bot):
    app = running_bot
    alice = emulator.user(401, "Alice")
    chat = emulator.private_chat(alice)
    emulator.fail_next("sendMessage", status=429, retry_after=1)
    started = time.monotonic()
    answer = await ask(emulator, chat, alice, ZAHIR)
    assert time.monotonic() - started >= 1.0
    assert "Mohammed Daud Khan" in answer["text"]
    await settle(emulator, app)
    assert len(emulator.sent_messages(chat["id"])) == 1
    statuses = [c.status for c in emulator.calls_to("sendMessage")]
    assert statuses == [429, 200]


async def test_network_errors_are_retried(emulator, start_bot):
    app = await start_bot(backoff=0.05)
    alice = emulator.user(402, "Alice")
    chat = emulator.private_chat(alice)
    emulator.drop_next("sendMessage")
    emulator.fail_next("sendMessage", status=502)
    answer = await ask(emulator, chat, alice, ZAHIR)
    assert "Mohammed Daud Khan" in answer["text"]
    await settle(emulator, app)
    assert len(emulator.sent_messages(chat["id"])) == 1
    assert [c.status for c in emulator.calls_to("sendMessage")] == [0, 502, 200]


async def test_set_my_commands_failure_is_not_fatal(emulator, start_bot, caplog):
    emulator.fail_next("setMyCommands", status=400, description="Bad Request: nope")
    await start_bot()
    alice = emulator.user(403, "Alice")
    chat = emulator.private_chat(alice)
    answer = await ask(emulator, chat, alice, "/start")
    assert "Russia–Taliban relations" in answer["text"]
    assert "could not register the bot's commands" in caplog.text


async def test_rate_limit_notice_once_then_silence(emulator, start_bot, make_settings, built_index_dir):
    app = await start_bot(make_settings(index_dir=built_index_dir, telegram_rate_limit_per_minute=2))
    alice = emulator.user(404, "Alice")
    bob = emulator.user(405, "Bob")
    chat = emulator.private_chat(alice)
    for _ in range(2):
        assert "Passages" in (await ask(emulator, chat, alice, ZAHIR))["text"]
    notice = await ask(emulator, chat, alice, ZAHIR)
    assert notice["text"].startswith("⏳ You are asking faster than I can answer (2 questions a minute)")
    emulator.send_text(chat, alice, ARMS)
    emulator.send_text(chat, alice, ARMS)
    await settle(emulator, app)
    assert len(emulator.sent_messages(chat["id"])) == 3  # silent after the notice
    other = emulator.private_chat(bob)
    assert "Passages" in (await ask(emulator, other, bob, ARMS))["text"]  # per user


async def test_blocked_user_is_skipped(emulator, running_bot, caplog):
    app = running_bot
    caplog.set_level(logging.INFO)
    alice = emulator.user(406, "Alice")
    chat = emulator.private_chat(alice)
    mark = emulator.mark()
    emulator.send_text(chat, alice, ZAHIR)
    emulator.block_user(alice["id"])
    refused = await emulator.wait_for("sendMessage", since=mark, timeout=20)
    assert refused[0].status == 403
    await settle(emulator, app)
    assert "cannot be reached" in caplog.text
    assert "error while handling" not in caplog.text
    assert len(emulator.calls_to("sendMessage")) == 1  # no retry, no "something went wrong"
    emulator.unblock_user(alice["id"])
    assert "Mohammed Daud Khan" in (await ask(emulator, chat, alice, ZAHIR))["text"]


class BrokenSearcher:
    """A searcher whose questions fail (documents still work)."""

    def __init__(self, real):
        self.real = real

    def search(self, *args, **kwargs):
        raise RuntimeError("the index exploded")

    def __getattr__(self, name):
        return getattr(self.real, name)


async def test_errors_are_logged_and_the_user_told(emulator, start_bot, searcher, caplog):
    await start_bot(custom_searcher=BrokenSearcher(searcher))
    alice = emulator.user(407, "Alice")
    chat = emulator.private_chat(alice)
    answer = await ask(emulator, chat, alice, ZAHIR)
    assert answer["text"] == fmt.SOMETHING_WRONG
    assert "the index exploded" in caplog.text
    assert emulator.token not in caplog.text


async def test_token_never_reaches_the_logs(emulator, start_bot, caplog, restore_log_factory):
    caplog.set_level(logging.DEBUG)
    install_log_redaction(emulator.token)
    await start_bot(backoff=0.01)
    alice = emulator.user(408, "Alice")
    chat = emulator.private_chat(alice)
    emulator.fail_next("sendMessage", status=500)
    assert "Daud" in (await ask(emulator, chat, alice, ZAHIR))["text"]
    logging.getLogger("test").error("failed: %s", f"{emulator.base_url}{emulator.token}/getMe")
    assert "/bot<redacted>/getMe" in caplog.text  # a URL with the token was logged, redacted
    assert "Set Bot API URL: " in caplog.text and "/bot<redacted>\n" in caplog.text  # and PTB's own
    assert emulator.token not in caplog.text
    assert emulator.token.split(":")[1] not in caplog.text
    for record in caplog.records:
        assert emulator.token not in record.getMessage()


class SlowSearcher:
    """Holds questions containing "slowly" until ``release`` is set (to show they do not block
    other chats)."""

    def __init__(self, real):
        self.real = real
        self.threads: set[str] = set()
        self.holding = threading.Event()
        self.release = threading.Event()

    def search(self, query, *args, **kwargs):
        self.threads.add(threading.current_thread().name)
        if "slowly" in query:
            self.holding.set()
            self.release.wait(20)
        return self.real.search(query, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


async def test_a_slow_question_does_not_block_other_chats(emulator, start_bot, searcher):
    slow = SlowSearcher(searcher)
    await start_bot(custom_searcher=slow)
    alice, bob = emulator.user(501, "Alice"), emulator.user(502, "Bob")
    chat_a, chat_b = emulator.private_chat(alice), emulator.private_chat(bob)
    emulator.send_text(chat_a, alice, "Tell me slowly: " + ZAHIR)
    try:
        await until(slow.holding.is_set)  # the slow question is being searched, and held there
        quick = await ask(emulator, chat_b, bob, ARMS)
        assert "“arming them”" in quick["text"]
        assert emulator.sent_messages(chat_a["id"]) == []  # the slow one is still being answered
    finally:
        slow.release.set()
    assert "Daud" in (await emulator.wait_for_messages(chat_a["id"], 1, timeout=20))[0]["text"]
    assert all(name.startswith("citebot-search") for name in slow.threads)  # off the event loop


# --------------------------------------------------------------------------------- configuration


async def test_allowed_chats(emulator, start_bot, make_settings, built_index_dir):
    """Outside the allow-list: a private chat is told once that the bot is private, then silence;
    groups and inline queries get silence; admins always pass."""
    app = await start_bot(
        make_settings(index_dir=built_index_dir, telegram_allowed_chats="[701]", telegram_admins="[703]")
    )
    allowed, stranger, admin = emulator.user(701, "Alice"), emulator.user(702, "Mallory"), emulator.user(703, "Ann")
    group = emulator.group_chat(-1702, "Strangers")
    username = emulator.bot_user["username"]
    emulator.send_text(emulator.private_chat(stranger), stranger, ZAHIR)
    emulator.send_text(emulator.private_chat(stranger), stranger, ARMS)
    emulator.send_text(emulator.private_chat(stranger), stranger, "/start")
    emulator.send_text(group, stranger, f"/ask@{username} {ZAHIR}")
    emulator.send_text(group, allowed, f"@{username} {ZAHIR}")
    emulator.inline_query(stranger, ZAHIR)
    answer = await ask(emulator, emulator.private_chat(allowed), allowed, ZAHIR)
    assert "Daud" in answer["text"]
    assert "Daud" in (await ask(emulator, emulator.private_chat(admin), admin, ZAHIR))["text"]
    await settle(emulator, app)
    assert [m["text"] for m in emulator.sent_messages(702)] == [fmt.NOT_ALLOWED]
    assert emulator.sent_messages(group["id"]) == []
    assert emulator.calls_to("answerInlineQuery") == []
