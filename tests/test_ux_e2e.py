"""End-to-end tests of issue 14 over the emulator (the real PTB stack over HTTP): 👍/👎 and the
store, /gaps, /sources, /about, the ask-in-English reply, answers in question order, /reload."""

from __future__ import annotations

import functools
import threading

import pytest

from citebot.gaps import coverage_report
from citebot.store import DOWN, Store
from tests.test_bot_e2e import ask, buttons, settle

pytestmark = pytest.mark.asyncio

ZAHIR = "Who overthrew King Zahir Shah?"
ARMS = "Is Russia arming the Taliban?"
FRANCE = "What is the capital of France?"
ADMIN = 900


async def press(emulator, chat: dict, message: dict, label: str, user: dict) -> tuple[dict, dict]:
    """Press the button labelled ``label`` (of the message as it is now); return the bot's callback
    answer and the message after it."""
    current = emulator.message(chat["id"], message["message_id"])
    query = emulator.press_button(current, buttons(current)[label], user)
    answer = await emulator.wait_until(lambda: emulator.callback_answer(query), timeout=30)
    return answer, emulator.message(chat["id"], message["message_id"])


@pytest.fixture
def store_settings(make_settings, built_index_dir, tmp_path):
    def make(**overrides):
        return make_settings(
            index_dir=built_index_dir,
            telegram_admins=f"[{ADMIN}]",
            telegram_store_file=tmp_path / "store.sqlite3",
            **overrides,
        )

    return make


async def test_votes_private_one_per_user_changeable_and_kept_with_what_was_shown(
    emulator, start_bot, tmp_path, store_settings
):
    store = Store(tmp_path / "store.sqlite3")
    await start_bot(store_settings(), store=store)
    alice = emulator.user(1401, "Alice")
    chat = emulator.private_chat(alice)
    answer = await ask(emulator, chat, alice, ZAHIR)
    assert {"👍", "👎", "More results ▶", "📖 Context 1"} <= set(buttons(answer))
    notice, after = await press(emulator, chat, answer, "👍", alice)
    assert notice["text"] == "Thanks! 👍 recorded." and "👍 ✓" in buttons(after)
    assert after["text"] == answer["text"]  # only the buttons changed
    notice, after = await press(emulator, chat, answer, "👎", alice)  # changed, not a second vote
    assert "👎 ✓" in buttons(after) and "👍" in buttons(after)
    [row] = store.feedback()
    assert row.vote == DOWN and row.question == ZAHIR and row.chat_kind == "private"
    assert row.build_id and row.build_id == running_build(emulator, store_settings)
    assert len(row.passages) == 3 and {"doc_id", "start", "end", "best_sentence"} <= set(row.passages[0])
    assert row.passages[0]["doc_id"].startswith("001_")
    assert str(alice["id"]) not in row.user
    # paging keeps the vote row (with the vote), and a vote now records the passages of that page
    _, page2 = await press(emulator, chat, answer, "More results ▶", alice)
    assert page2["text"].startswith("🔎 Passages 4–6") and "👎 ✓" in buttons(page2)
    notice, _ = await press(emulator, chat, answer, "👎 ✓", alice)
    assert notice["text"] == "Your vote was withdrawn." and store.feedback() == []
    await press(emulator, chat, answer, "👍", alice)
    shown = store.feedback()[0].passages
    assert [p["start"] for p in shown] != [p["start"] for p in row.passages]  # page 2's passages


def running_build(emulator, store_settings) -> str:
    from pathlib import Path

    return (Path(store_settings().index.dir) / "current").resolve().name


async def test_votes_in_groups_show_counts_not_names(emulator, start_bot, tmp_path, store_settings):
    await start_bot(store_settings(), store=Store(tmp_path / "store.sqlite3"))
    alice, bob, carol = emulator.user(1411, "Alice"), emulator.user(1412, "Bob"), emulator.user(1413, "Carol")
    group = emulator.group_chat(-1414, "Watchers", "supergroup")
    username = emulator.bot_user["username"]
    answer = await ask(emulator, group, alice, f"/ask@{username} {ARMS}")
    assert {"👍 0", "👎 0"} <= set(buttons(answer))
    await press(emulator, group, answer, "👍 0", alice)
    await press(emulator, group, answer, "👍 1", bob)
    _, after = await press(emulator, group, answer, "👎 0", carol)
    labels = set(buttons(after))
    assert {"👍 2", "👎 1"} <= labels
    assert not any(name in label for label in labels for name in ("Alice", "Bob", "Carol"))
    _, after = await press(emulator, group, answer, "👍 2", bob)  # Bob withdraws
    assert {"👍 1", "👎 1"} <= set(buttons(after))


async def test_feedback_survives_a_restart(emulator, start_bot, tmp_path, store_settings):
    from bot.serving import stop_bot

    path = tmp_path / "store.sqlite3"
    first_store = Store(path, store_questions=True)
    first = await start_bot(store_settings(telegram_store_questions="true"), store=first_store)
    alice = emulator.user(1421, "Alice")
    chat = emulator.private_chat(alice)
    answer = await ask(emulator, chat, alice, ZAHIR)
    await press(emulator, chat, answer, "👍", alice)
    await stop_bot(first)
    first_store.close()

    again = Store(path, store_questions=True)  # a new process: nothing in memory
    await start_bot(store_settings(telegram_store_questions="true"), store=again)
    notice, after = await press(emulator, chat, answer, "👍 ✓", alice)  # the old answer's button still works
    assert notice["text"] == "Your vote was withdrawn."
    assert again.feedback() == [] and [q.question for q in again.questions()] == [ZAHIR]
    notice, _ = await press(emulator, chat, answer, "👎", alice)
    assert notice["text"].startswith("Thanks! 👎") and again.tally(buttons(after)["👎"].split(":")[1]).down == 1


async def test_nothing_is_stored_and_no_buttons_when_the_switches_are_off(
    emulator, start_bot, tmp_path, store_settings
):
    from citebot.store import open_store

    settings = store_settings(telegram_store_feedback="false", telegram_store_questions="false")
    store = open_store(settings)
    assert store is None
    await start_bot(settings, store=store)
    alice = emulator.user(1431, "Alice")
    chat = emulator.private_chat(alice)
    answer = await ask(emulator, chat, alice, ZAHIR)
    assert "👍" not in buttons(answer) and "More results ▶" in buttons(answer)
    forged = emulator.press_button(answer, "v:whatever:u", alice, forged=True)
    result = await emulator.wait_until(lambda: emulator.callback_answer(forged), timeout=20)
    assert result["text"] == "Feedback is switched off for this bot."
    await ask(emulator, chat, alice, FRANCE)
    assert list(tmp_path.iterdir()) == []  # no store file at all


async def test_gaps_for_admins(emulator, start_bot, tmp_path, store_settings, encoder):
    settings = store_settings(telegram_store_questions="true")
    store = Store(tmp_path / "store.sqlite3", store_questions=True)
    coverage = functools.partial(coverage_report, store, encoder.encode, settings.telegram.gaps_similarity_below)
    await start_bot(settings, store=store, coverage=coverage)
    admin, alice = emulator.user(ADMIN, "Admin"), emulator.user(1441, "Alice")
    chat, admin_chat = emulator.private_chat(alice), emulator.private_chat(admin)
    for question in (
        FRANCE,
        "What's the capital city of France?",
        "How do I bake sourdough bread?",
        ZAHIR,
        "Почему Россия говорит с талибами?",
    ):
        await ask(emulator, chat, alice, question)
    assert (await ask(emulator, chat, alice, "/gaps"))["text"].startswith("Sorry, only the bot's administrators")
    report = (await ask(emulator, admin_chat, admin, "/gaps"))["text"]
    assert report.startswith("📈 Coverage: 4 of 5 stored questions")
    assert "1. 2 asked, 2 declined" in report and FRANCE in report and "sourdough" in report
    assert ZAHIR not in report  # answered well: not a gap
    assert "another language" in report and "ru: 1" in report


async def test_gaps_off_says_how_to_turn_it_on(emulator, start_bot, tmp_path, store_settings):
    await start_bot(store_settings(), store=Store(tmp_path / "store.sqlite3"))
    admin = emulator.user(ADMIN, "Admin")
    text = (await ask(emulator, emulator.private_chat(admin), admin, "/gaps"))["text"]
    assert "telegram.store_questions: true" in text


async def test_sources_about_and_start_say_what_the_index_holds(emulator, start_bot, store_settings, searcher):
    await start_bot(store_settings())
    alice, admin = emulator.user(1451, "Alice"), emulator.user(ADMIN, "Admin")
    chat, admin_chat = emulator.private_chat(alice), emulator.private_chat(admin)
    documents = searcher.documents()
    public = (await ask(emulator, chat, alice, "/sources"))["text"]
    assert public.startswith(f"📚 Sources ({len(documents)} documents)")
    assert "date: 2025-07-28 · by: Harsh V. Pant, Aleksei Zakharov" in public
    assert "by: EurAsian Times" in public
    for doc in documents:
        assert f"{doc.passages} passages" in public and doc.doc_id not in public
    admin_view = (await ask(emulator, admin_chat, admin, "/sources"))["text"]
    assert all(f"file: {doc.doc_id}" in admin_view for doc in documents)
    about = (await ask(emulator, chat, alice, "/about"))["text"]
    assert f"Build: {searcher.build_id}, built {searcher.manifest['built_at']}" in about
    start = (await ask(emulator, chat, alice, "/start"))["text"]
    assert f"{len(documents)} documents" in start and "five" not in start
    declined = (await ask(emulator, chat, alice, FRANCE))["text"]
    assert f"I can only answer from {len(documents)} documents" in declined


async def test_a_question_in_russian_gets_a_reply_in_russian(emulator, start_bot, store_settings, tmp_path):
    store = Store(tmp_path / "store.sqlite3", store_questions=True)
    await start_bot(store_settings(telegram_store_questions="true"), store=store)
    alice = emulator.user(1461, "Alice")
    chat = emulator.private_chat(alice)
    reply = await ask(emulator, chat, alice, "Почему Россия начала переговоры с талибами?")
    assert "задайте вопрос по-английски" in reply["text"] and "please ask your question in English" in reply["text"]
    assert "Passages" not in reply["text"] and not buttons(reply)
    french = await ask(emulator, chat, alice, "Pourquoi la Russie parle-t-elle avec les talibans ?")
    assert "Posez votre question en anglais" in french["text"]
    english = await ask(emulator, chat, alice, ZAHIR)
    assert english["text"].startswith("🔎 Passages")
    assert [(q.language, q.abstained) for q in store.questions()] == [("ru", True), ("fr", True), ("en", False)]


class StallingSearcher:
    """Holds the questions containing "slowly" until released: later questions finish first."""

    def __init__(self, real):
        self.real = real
        self.release = threading.Event()

    def search(self, query, *args, **kwargs):
        if "slowly" in query:
            self.release.wait(30)
        return self.real.search(query, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


async def test_answers_go_out_in_the_order_of_the_questions(emulator, start_bot, store_settings, searcher):
    stalling = StallingSearcher(searcher)
    app = await start_bot(store_settings(telegram_rate_limit_per_minute=4), custom_searcher=stalling)
    alice, bob = emulator.user(1471, "Alice"), emulator.user(1472, "Bob")
    chat, other = emulator.private_chat(alice), emulator.private_chat(bob)
    questions = ["Tell me slowly: " + ZAHIR, ARMS, FRANCE, "Do Afghans still speak Russian?", ZAHIR, ARMS]
    for question in questions:
        emulator.send_text(chat, alice, question)
    # another chat is not held up by Alice's slow question
    assert "“arming them”" in (await ask(emulator, other, bob, ARMS))["text"]
    assert emulator.sent_messages(chat["id"]) == []  # nothing overtakes the first answer
    stalling.release.set()
    sent = await emulator.wait_for_messages(chat["id"], 5, timeout=60)
    texts = [m["text"] for m in sent]
    assert "Daud Khan" in texts[0]
    assert "“arming them”" in texts[1]
    assert texts[2].startswith(f"🤷 The sources don't cover “{FRANCE}”.")
    assert "Russian" in texts[3]
    # the fifth question was over the limit: its notice comes after the four answers, the sixth is silent
    assert texts[4].startswith("⏳ You are asking faster than I can answer (4 questions a minute)")
    await settle(emulator, app)
    assert len(emulator.sent_messages(chat["id"])) == 5
