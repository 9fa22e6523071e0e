"""Whatever comes from outside: arbitrary Unicode through the real handlers (hypothesis), forged and
stale callback data, deep-link payloads, and the formatting functions over arbitrary input.

Every reply must be valid Telegram HTML within 4096 UTF-16 units (the emulator refuses anything
else, and ``check_bot_output`` checks it again), and nothing may raise: no "something went wrong"
reply, no error logged.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from telegram import Update

from bot import formatting as fmt
from bot import keyboards, markup
from botapi_emulator import utf16_len, validate_telegram_html
from embeddings.search import Context, DocumentInfo, Hit, SearchResult
from embeddings.sources import Citation

REPO = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------------- strategies

NASTY = [
    "<b>",
    "</b>",
    "<a href='javascript:alert(1)'>x</a>",
    "&amp;",
    "&",
    "&#0;",
    "&#xD800;",
    "&lt",
    "<",
    ">",
    '"',
    "'",
    "*bold*",
    "_it_",
    "`code`",
    "```py\n",
    "[link](http://x.org)",
    "||spoiler||",
    "\\",
    "~~s~~",
    "\u202e",
    "\u200f",
    "\u200d",
    "\u200b",
    "\ufeff",
    "\u2028",
    "\x00",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\ud800",
    "\udfff",
    "\ud83d",
    "\ude00",
    "👩\u200d👩\u200d👧",
    "🇷🇺🇦🇫",
    "👍🏽",
    "e\u0301",
    "\ufffe",
    "\U0010ffff",
    "مرحبا طالبان روسيا",
    "שלום",
    "Россия и талибы",
    "Russia Taliban",
    "Zahir Shah",
    "/start",
    "/ask",
    "@",
    "#",
    "@citebot_test_bot",
    "\n",
    "\t",
    "\r\n",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "ﷺ",
    "  ",
]
ANY_CHAR = st.characters(exclude_categories=())  # surrogates and control characters included
TEXTS = st.one_of(
    st.text(ANY_CHAR, min_size=1, max_size=300),
    st.lists(st.one_of(st.sampled_from(NASTY), st.text(ANY_CHAR, max_size=12)), min_size=1, max_size=40).map("".join),
    st.builds(
        lambda piece, n: (piece * n)[:20_000],
        st.sampled_from([*NASTY, "Russia Taliban arms "]),
        st.integers(min_value=1_000, max_value=20_000),
    ),
)


def utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def transportable(text: str) -> str:
    """``text`` as a Telegram client could send it (no lone surrogates), never empty."""
    return text.encode("utf-8", "replace").decode("utf-8") or "x"


def cut_bytes(text: str, limit: int) -> str:
    """The longest prefix of ``text`` within ``limit`` UTF-8 bytes (callback data, deep links)."""
    raw = text.encode("utf-8")[:limit]
    return raw.decode("utf-8", "ignore")


def message_update(chat: dict, user: dict, text: str, message_id: int, command: str | None = None) -> dict:
    """A message Update as the Bot API would deliver it (used for texts the emulator cannot
    carry: lone surrogates cannot be encoded as UTF-8 in its JSON)."""
    message = {"message_id": message_id, "date": int(time.time()), "chat": chat, "from": user, "text": text}
    if command:
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": markup.utf16_len(command)}]
    return {"update_id": 10**9 + message_id, "message": message}


# ------------------------------------------------------------------------- through the real bot


@pytest.mark.timeout(300)
def test_arbitrary_unicode_through_the_real_handlers(threaded_bot, make_settings, built_index_dir, caplog):
    caplog.set_level(logging.WARNING)
    bot = threaded_bot(make_settings(index_dir=built_index_dir, telegram_rate_limit_per_minute=100_000))
    emulator, application = bot.emulator, bot.application
    user = bot.call(emulator.user, 3001, "Eve")
    chat = bot.call(emulator.private_chat, user)
    group = bot.call(emulator.group_chat, -3002, "Chaos")
    username = emulator.bot_user["username"]
    injected_ids = iter(range(500_000, 10**6))
    seen = {"examples": 0, "injected": 0, "long": 0}

    async def one_reply(chat_id: int, before: int) -> dict:
        return (await emulator.wait_for_messages(chat_id, before + 1, timeout=60))[before]

    async def exercise(text: str) -> None:
        # 1. a private message (a question, a command, or not a question at all)
        before = len(emulator.sent_messages(chat["id"]))
        if utf8(text):
            emulator.send_text(chat, user, text)
        else:
            command = text.split()[0] if text.startswith("/") and text.split() else None
            await application.update_queue.put(
                Update.de_json(message_update(chat, user, text, next(injected_ids), command), application.bot)
            )
            seen["injected"] += 1
        private = await one_reply(chat["id"], before)
        # 2. /ask in a group
        before = len(emulator.sent_messages(group["id"]))
        asked = f"/ask@{username} {text}"
        if utf8(asked):
            emulator.send_text(group, user, asked)
        else:
            await application.update_queue.put(
                Update.de_json(
                    message_update(group, user, asked, next(injected_ids), f"/ask@{username}"), application.bot
                )
            )
        in_group = await one_reply(group["id"], before)
        assert any(
            part in in_group["text"] for part in ("🔎 Passages", "🤷", "🌐", "Please send your question", "Usage: /ask")
        ), in_group["text"][:200]
        # 3. inline mode (Telegram cuts inline queries at 256 characters)
        query = emulator.inline_query(user, transportable(text)[:256])
        answer = await emulator.wait_until(lambda: emulator.inline_answer(query), timeout=60)
        for result in answer["results"]:
            plain, _ = validate_telegram_html(result["input_message_content"]["message_text"])
            assert 0 < utf16_len(plain) <= 4096 and result["title"].strip() and utf8(result["title"])
        # 4. a deep link: /start PAYLOAD, whatever the payload, is the welcome
        before = len(emulator.sent_messages(chat["id"]))
        emulator.send_text(chat, user, "/start " + cut_bytes(transportable(text), 64))
        assert (await one_reply(chat["id"], before))["text"].startswith("👋 Hello!")
        # 5. forged callback data (1-64 bytes) on one of the bot's messages: a polite answer
        pressed = emulator.press_button(private, cut_bytes(transportable(text), 64) or "x", user, forged=True)
        assert (await emulator.wait_until(lambda: emulator.callback_answer(pressed), timeout=60))[
            "text"
        ] == fmt.STALE_BUTTON

    @settings(
        max_examples=int(os.environ.get("HARDENING_EXAMPLES", 40)),
        deadline=None,
        derandomize=not os.environ.get("HARDENING_EXAMPLES"),
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(TEXTS)
    @example("Russia \ud83d Taliban")  # a lone surrogate: only an injected update carries it
    @example("Russia Taliban arms " * 300)  # longer than one Telegram message
    def check(text: str) -> None:
        seen["examples"] += 1
        seen["long"] += len(text) > 4096
        bot.run(exercise(text), timeout=240)

    check()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or "error while handling" in r.getMessage()]
    assert not errors, "\n".join(r.getMessage() for r in errors[:5])
    texts = [m["text"] for m in emulator.sent_messages()]
    assert fmt.SOMETHING_WRONG not in texts
    assert all(c.ok for c in emulator.calls if c.method != "getUpdates"), [
        c.summary() for c in emulator.calls if not c.ok
    ][:5]
    assert seen["examples"] >= 30 and seen["injected"] >= 1 and seen["long"] >= 1, seen
    print(f"\n{seen}")


# ------------------------------------------------------------- callback data and deep links from outside


class FileOpens:
    """Every file opened (or folder listed) in this process while recording (an audit hook)."""

    installed = False
    recording: list[str] | None = None

    @classmethod
    def hook(cls, event: str, args: tuple) -> None:
        if cls.recording is not None and event in ("open", "os.listdir", "os.scandir") and args:
            cls.recording.append(str(args[0]))

    def __enter__(self) -> list[str]:
        if not FileOpens.installed:
            sys.addaudithook(FileOpens.hook)  # audit hooks cannot be removed: it only records while asked
            FileOpens.installed = True
        FileOpens.recording = []
        return FileOpens.recording

    def __exit__(self, *exc: object) -> None:
        FileOpens.recording = None


FORGED = [
    "c:../../etc/passwd:0:10",
    "c:..%2F..%2Fetc%2Fpasswd:1:2",
    "c:/etc/passwd:1:2",
    "c:..:0:100",
    "c:f3ccc30c34:0:9999999999",
    "c:f3ccc30c34:5:4",
    "c:f3ccc30c34:0:1",
    "c:0000000000:0:100",
    "m:AAAAAAAA:1",
    "m:AAAAAAAA:9999",
    "m:../../etc/passwd:1",
    "m::1",
    "c:f3ccc30c34:-1:5",
    "x" * 64,
    "c:" + "a" * 40 + ":1:2",
    "m:tok:1:extra",
    "💥" * 16,
    "\u202ec:key:1:2",
    "c:key:1:2\n",
    "__import__('os').system('id')",
    "{{7*7}}",
    "%s%s%s%n",
    "null",
    "",
]
DEEP_LINKS = [
    "../../etc/passwd",
    "A" * 64,
    "q_UnVzc2lhIFRhbGliYW4",
    "-1",
    "%2e%2e%2f",
    "<b>x</b>",
    "file:///etc/passwd",
    "c:f3ccc30c34:0:100",
    "ZWNobyBoaQ",
    "_" * 64,
]


@pytest.mark.asyncio
async def test_forged_and_stale_callback_data_and_deep_links_get_polite_answers(
    emulator, running_bot, settings, caplog
):
    caplog.set_level(logging.INFO)
    alice = emulator.user(3101, "Alice")
    chat = emulator.private_chat(alice)
    emulator.send_text(chat, alice, "Is Russia arming the Taliban?")
    answer = (await emulator.wait_for_messages(chat["id"], 1, timeout=30))[0]
    welcome = None
    index_dir = str(settings.path(settings.index.dir))
    with FileOpens() as opened:
        for data in FORGED:
            query = emulator.press_button(answer, data or "x", alice, forged=True)
            result = await emulator.wait_until(lambda q=query: emulator.callback_answer(q), timeout=30)
            assert result["text"] == fmt.STALE_BUTTON, data
        for payload in DEEP_LINKS:
            before = len(emulator.sent_messages(chat["id"]))
            emulator.send_text(chat, alice, f"/start {payload}")
            reply = (await emulator.wait_for_messages(chat["id"], before + 1, timeout=30))[before]
            welcome = welcome or reply["text"]
            assert reply["text"] == welcome and reply["text"].startswith("👋 Hello!")
    assert len(emulator.sent_messages(chat["id"])) == 1 + len(DEEP_LINKS)  # buttons sent nothing
    assert emulator.message(chat["id"], answer["message_id"])["text"] == answer["text"]
    outside = [
        p for p in opened if not p.startswith((index_dir, sys.prefix, sys.base_prefix, str(REPO))) and not p.isdigit()
    ]
    assert not [p for p in opened if "passwd" in p or "etc" in Path(p).parts], opened
    assert not outside, outside
    assert "error while handling" not in caplog.text


@pytest.mark.asyncio
async def test_a_context_button_into_a_changed_document_is_stale(
    emulator, start_bot, private_index_settings, make_keeper
):
    """A document edited after an answer was sent: its old passage offsets may still fall inside
    the new text, but that passage is gone, so the button answers politely instead of quoting
    whatever text now sits there."""
    settings = private_index_settings(telegram_admins="[3201]")
    keeper = make_keeper(settings)
    app = await start_bot(settings, keeper.searcher, keeper=keeper, watch_seeds=False)
    admin = emulator.user(3201, "Ann")
    chat = emulator.private_chat(admin)
    emulator.send_text(chat, admin, "Russia recognition of the Taliban symbolic gesture")
    answer = (await emulator.wait_for_messages(chat["id"], 1, timeout=30))[0]
    keyboard = answer["reply_markup"]["inline_keyboard"][0]
    doc_key = next(d.doc_key for d in keeper.searcher.documents() if d.doc_id == "002_d73ef1872804ed67.txt")
    into = [b["callback_data"] for b in keyboard if b["callback_data"].startswith(f"c:{doc_key}:")]
    assert into
    seed = settings.path(settings.corpus.seeds_dir) / "002_d73ef1872804ed67.txt"
    seed.write_text(
        "A new first paragraph, added by the editors, shifts every passage.\n\n" + seed.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    emulator.send_text(chat, admin, "/reload")
    reloaded = (await emulator.wait_for_messages(chat["id"], 2, timeout=120))[1]
    assert "1 updated" in reloaded["text"]
    assert app.bot_data.retriever.document(doc_key) is not None  # same document, new text
    for data in into:
        end = data.rsplit(":", 1)[1]
        assert int(end) <= len(app.bot_data.retriever.document(doc_key).text)  # offsets still "fit"
        query = emulator.press_button(answer, data, admin)
        assert (await emulator.wait_until(lambda q=query: emulator.callback_answer(q), timeout=30))[
            "text"
        ] == fmt.STALE_BUTTON
    assert len(emulator.sent_messages(chat["id"])) == 2


# ------------------------------------------------------------------------- formatting, pure functions

CITATIONS = st.builds(
    Citation,
    st.text(ANY_CHAR, max_size=300),
    st.lists(st.text(ANY_CHAR, max_size=40), max_size=4).map(tuple),
    st.text(ANY_CHAR, max_size=60),
    st.text(ANY_CHAR, max_size=20),
    st.one_of(st.just(""), st.just("https://example.org/a?b=1&c=<2>"), st.text(ANY_CHAR, max_size=60)),
)


@st.composite
def hits(draw, rank: int) -> Hit:
    text = draw(st.text(ANY_CHAR, min_size=1, max_size=1500))
    lo = draw(st.integers(-5, len(text) + 5))
    hi = draw(st.integers(-5, len(text) + 5))
    return Hit(rank, 1.0, "doc.txt", "k", draw(CITATIONS), text, 0, len(text), (lo, hi))


def valid(message: str) -> str:
    plain, _ = validate_telegram_html(message)
    assert utf16_len(plain) <= markup.MAX_MESSAGE
    return plain


@settings(max_examples=150, deadline=None)
@given(st.data(), st.text(ANY_CHAR, max_size=3000), st.integers(1, 10), st.booleans(), st.booleans())
def test_answers_are_valid_html_for_any_passage_question_and_citation(data, question, n, cut, compact):
    found = [data.draw(hits(rank)) for rank in range(1, n + 1)]
    corrected = data.draw(st.one_of(st.none(), st.text(ANY_CHAR, max_size=200)))
    result = SearchResult(question, found, False, corrected, n + data.draw(st.integers(0, 30)))
    clean, _ = fmt.clean_question(question, 500)
    answer = fmt.build_answer(result, question=clean, token="tok", page=0, per_page=n, cut=cut, compact=compact)
    valid(answer.html)
    for h in found:
        article = fmt.inline_article(h)
        valid(article.html)
        assert utf8(article.title) and utf8(article.description) and article.title.strip()
        assert utf16_len(article.title) <= fmt.MAX_INLINE_TITLE


@settings(max_examples=150, deadline=None)
@given(TEXTS, st.integers(20, 1000))
def test_clean_question_makes_any_text_safe(text, limit):
    question, cut = fmt.clean_question(text, limit)
    assert utf8(question) and len(question) <= limit
    assert not any(ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F for ch in question)
    assert cut == (len(markup.squash(markup.clean_text(text)).strip()) > limit)
    valid(fmt.inline_nothing_article(question).html)
    valid(fmt.abstain_html(markup.esc(question)))


@settings(max_examples=100, deadline=None)
@given(TEXTS, st.text(ANY_CHAR, max_size=300), st.integers(0, 4000))
def test_other_messages_are_valid_html_for_any_text(text, title, offset):
    lo = min(offset, len(text))
    context = Context("doc.txt", Citation(title), text + "x", (lo, lo + 1))
    valid(fmt.context_html(context))
    valid(fmt.sources_html([DocumentInfo("d", "k", Citation(title), 3, 10)] * 3))
    valid(fmt.about_html(text[:50], {"built_at": title, "model": text[:100]}, 5, 100))
    valid(fmt.reload_html(text, ok=True))
    valid(fmt.admin_alert_html(text))
    valid(markup.fit_html(markup.esc(text), 100))
    valid(fmt.inline_nothing_article(text).html)


@settings(max_examples=200, deadline=None)
@given(st.text(ANY_CHAR, max_size=100))
def test_callback_data_and_mentions_never_raise(data):
    decoded = keyboards.decode_callback(data)
    assert decoded is None or isinstance(decoded, keyboards.MoreData | keyboards.ContextData)
    fmt.strip_mention(data, "citebot_test_bot")
    fmt.has_words(data)
