"""Abuse paths over the real bot and the emulator: floods of inline queries and button presses are
refused cheaply per user, "More results" tokens work only in the chat that received them, inline
answers are personal when ``telegram.allowed_chats`` is set, and a group message holding a lone
surrogate and a mention is answered, never with "something went wrong"."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot import formatting as fmt

pytestmark = pytest.mark.asyncio
ARMS = "Is Russia arming the Taliban?"
ZAHIR = "Who overthrew King Zahir Shah?"


def buttons(message: dict) -> dict[str, str]:
    keyboard = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return {b["text"]: b["callback_data"] for row in keyboard for b in row}


async def ask(emulator, chat: dict, user: dict, text: str) -> dict:
    before = len(emulator.sent_messages(chat["id"]))
    emulator.send_text(chat, user, text)
    return (await emulator.wait_for_messages(chat["id"], before + 1, timeout=30))[before]


async def test_a_flood_of_inline_queries_and_presses_is_refused_without_slowing_other_users(
    emulator, start_bot, make_settings, built_index_dir, searcher
):
    searches = []

    class Counting:
        def search(self, *args, **kwargs):
            searches.append(args[0])
            return searcher.search(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(searcher, name)

    settings = make_settings(index_dir=built_index_dir, telegram_inline_per_minute=5, telegram_buttons_per_minute=5)
    await start_bot(settings, Counting())
    mallory, alice = emulator.user(9301, "Mallory"), emulator.user(9302, "Alice")
    m_chat, a_chat = emulator.private_chat(mallory), emulator.private_chat(alice)
    answer = await ask(emulator, m_chat, mallory, ARMS)
    more = buttons(answer)["📖 Context 1"]
    searches.clear()
    queries = [emulator.inline_query(mallory, f"Russia Taliban {n}") for n in range(40)]
    presses = [emulator.press_button(answer, more, mallory) for _ in range(40)]
    started = time.monotonic()
    alice_answer = await ask(emulator, a_chat, alice, ZAHIR)  # asked in the middle of the flood
    took = time.monotonic() - started
    assert "Mohammed Daud Khan" in alice_answer["text"]
    await emulator.wait_until(lambda: all(emulator.callback_answer(p) for p in presses[:5]), timeout=30)
    await asyncio.sleep(1.0)
    answered_inline = [q for q in queries if emulator.inline_answer(q)]
    assert len(answered_inline) == 5  # the rest ignored
    slowed = [emulator.callback_answer(p) for p in presses]
    assert sum(1 for a in slowed if a and a.get("text", "").startswith("Too many presses")) == 1  # told once
    # only the allowed ones were searched: 5 inline queries, 5 pages, and Alice's question
    assert len(searches) <= 11, len(searches)
    print(f"\nAlice answered in {took:.2f} s during a flood of 40 inline queries and 40 presses")


async def test_a_more_results_token_works_only_in_the_chat_that_received_it(emulator, running_bot):
    alice, mallory = emulator.user(9401, "Alice"), emulator.user(9402, "Mallory")
    a_chat, m_chat = emulator.private_chat(alice), emulator.private_chat(mallory)
    answer = await ask(emulator, a_chat, alice, "Alice's secret question: " + ARMS)
    token_data = buttons(answer)["More results ▶"]
    bait = await ask(emulator, m_chat, mallory, "hello there")
    pressed = emulator.press_button(bait, token_data, mallory, forged=True)  # Alice's token, Mallory's chat
    reply = await emulator.wait_until(lambda: emulator.callback_answer(pressed), timeout=30)
    assert reply["text"] == fmt.STALE_BUTTON
    await asyncio.sleep(0.5)
    for message in emulator.sent_messages(m_chat["id"]):
        assert "secret" not in message["text"]
    # in Alice's own chat it still pages
    mark = emulator.mark()
    emulator.press_button(answer, token_data, alice)
    await emulator.wait_for("editMessageText", since=mark, timeout=30)
    assert "secret" in emulator.message(a_chat["id"], answer["message_id"])["text"]


async def test_inline_answers_are_personal_when_the_bot_is_private(emulator, start_bot, make_settings, built_index_dir):
    await start_bot(make_settings(index_dir=built_index_dir, telegram_allowed_chats="[9501]"))
    alice = emulator.user(9501, "Alice")
    query = emulator.inline_query(alice, ARMS)
    await emulator.wait_until(lambda: emulator.inline_answer(query), timeout=30)
    call = emulator.calls_to("answerInlineQuery")[-1]
    assert call.params.get("is_personal") is True and call.params["results"]


async def test_inline_answers_are_shared_when_the_bot_is_public(emulator, running_bot):
    query = emulator.inline_query(emulator.user(9502, "Bob"), ARMS)
    await emulator.wait_until(lambda: emulator.inline_answer(query), timeout=30)
    assert not emulator.calls_to("answerInlineQuery")[-1].params.get("is_personal")


async def test_a_group_message_with_a_lone_surrogate_and_a_mention_is_answered(emulator, running_bot, caplog):
    caplog.set_level(logging.INFO)
    username = emulator.bot_user["username"]
    user, group = emulator.user(9601, "Eve"), emulator.group_chat(-9602, "Chaos")
    for text in (f"Russia \ud83d Taliban arms @{username}", f"@{username} Is Russia \udc00 arming the Taliban?"):
        before = len(emulator.sent_messages(group["id"]))
        emulator.send_text(group, user, text)  # delivered over getUpdates as JSON with the \\ud83d escape
        reply = (await emulator.wait_for_messages(group["id"], before + 1, timeout=30))[before]
        assert reply["text"] != fmt.SOMETHING_WRONG
        assert reply["text"].startswith("🔎 Passages") and reply["reply_to_message_id"]
    assert "error while handling an update" not in caplog.text
