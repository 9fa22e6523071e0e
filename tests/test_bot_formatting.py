"""Unit tests of the bot's pure functions: formatting, trimming, callback data, rate limit, redaction."""

from __future__ import annotations

import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import formatting as fmt
from bot import keyboards, markup
from bot.ratelimit import RateLimiter, Verdict
from bot.redaction import RedactingFilter
from bot.state import QueryCache, StoredQuery
from botapi_emulator import utf16_len, validate_telegram_html
from embeddings.search import Context, DocumentInfo, Hit, SearchResult
from embeddings.sources import Citation

FULL = Citation(
    "Russia & the <Taliban>",
    ("Harsh V. Pant", "Aleksei Zakharov"),
    "ORF",
    "2025-07-28",
    "https://example.org/a?x=1&y=2",
)
BARE = Citation("[An issue brief]")


def valid(message: str) -> str:
    """The plain text Telegram would show; fails the test if Telegram would refuse the HTML."""
    plain, _ = validate_telegram_html(message)
    assert utf16_len(plain) <= markup.MAX_MESSAGE
    return plain


def hit(
    rank: int = 1,
    text: str = "First sentence. The best sentence here. Last one.",
    citation=FULL,
    highlight: tuple[int, int] | None = None,
    doc_key: str = "71d372cd23",
) -> Hit:
    if highlight is None:
        lo = text.find("The best")
        highlight = (lo, lo + len("The best sentence here.")) if lo >= 0 else (0, len(text))
    return Hit(rank, 1.0, "doc.txt", doc_key, citation, text, 100 * rank, 100 * rank + len(text), highlight)


# --------------------------------------------------------------------------------------- escaping


def test_escape_round_trips_through_telegram_html():
    text = "a < b && c > \"d\" 'e'"
    assert markup.esc(text) == "a &lt; b &amp;&amp; c &gt; &quot;d&quot; &#x27;e&#x27;"
    assert valid(markup.esc(text)) == text


def test_utf16_len_counts_astral_characters_twice():
    assert markup.utf16_len("abc") == 3
    assert markup.utf16_len("a😀") == 3
    assert markup.utf16_len("🇷🇺") == 4


# ------------------------------------------------------------------------------------------ clipping


def test_clip_keeps_short_text():
    assert markup.clip("Short.", 10) == "Short."


def test_clip_prefers_a_sentence_boundary():
    text = "One two three. Four five six seven. Eight nine ten eleven twelve."
    out = markup.clip(text, 40)
    assert out == "One two three. Four five six seven. …"
    assert utf16_len(out) <= 40


def test_clip_falls_back_to_a_word_boundary():
    text = "alpha beta gamma delta epsilon zeta eta theta"
    out = markup.clip(text, 20)
    assert out.endswith("…") and utf16_len(out) <= 20
    assert text.startswith(out[:-1])
    assert out[:-1].split()[-1] in text.split()  # no word cut in half


def test_clip_never_splits_an_emoji_at_the_boundary():
    text = "😀" * 10
    for limit in range(1, 22):
        out = markup.clip(text, limit)
        assert utf16_len(out) <= limit
        out.encode("utf-8")  # raises on a lone surrogate
        assert set(out) <= {"😀", "…"}


def test_clip_never_splits_surrogate_pairs_written_as_two_code_units():
    pair = "\ud83d\ude00"  # a surrogate pair kept as two code units (e.g. from surrogatepass)
    text = "ab" + pair * 5
    for limit in range(1, 14):
        out = markup.clip(text, limit)
        assert utf16_len(out) <= limit
        assert not out.rstrip("…").endswith("\ud83d")


def test_clip_keeps_emoji_sequences_whole():
    family = "👨\u200d👩\u200d👧"
    text = "x " + family * 3
    for limit in range(2, 26):
        out = markup.clip(text, limit).rstrip("…")
        assert not out.endswith("\u200d")
        assert out.count("\u200d") % 2 == 0


def test_clip_left_keeps_the_end():
    text = "One two three. Four five six. Seven eight nine."
    out = markup.clip_left(text, 30)
    assert out.startswith("…") and text.endswith(out.lstrip("… "))
    assert utf16_len(out) <= 30


@given(st.text(max_size=300), st.integers(min_value=0, max_value=320))
@settings(max_examples=300, deadline=None)
def test_clip_property(text, limit):
    out = markup.clip(text, limit)
    assert utf16_len(out) <= max(limit, 0)
    if utf16_len(text) <= limit:
        assert out == text
    else:
        kept = out.removesuffix("…").rstrip(" ")
        assert text.startswith(kept.rstrip(" ,;:—–-\n")) or kept == ""


# ------------------------------------------------------------------------------------ fitting HTML


def test_fit_html_cuts_text_not_tags_or_entities():
    message = "<b>Title</b>\n<blockquote>" + "fish &amp; chips &lt;3 " * 400 + "</blockquote>"
    out = markup.fit_html(message, 500)
    plain = valid(out)
    assert utf16_len(plain) <= 500
    assert out.endswith("</blockquote>")
    assert "&amp" not in out.replace("&amp;", "")  # no entity cut in half


def test_fit_html_leaves_short_messages_alone():
    assert markup.fit_html("<b>hi</b>", 10) == "<b>hi</b>"


@given(
    st.lists(st.tuples(st.sampled_from(["", "b", "i", "blockquote"]), st.text(max_size=80)), max_size=30),
    st.integers(min_value=1, max_value=400),
)
@settings(max_examples=200, deadline=None)
def test_fit_html_property(parts, limit):
    message = "".join(f"<{tag}>{markup.esc(text)}</{tag}>" if tag else markup.esc(text) for tag, text in parts)
    out = markup.fit_html(message, limit)
    plain, _ = validate_telegram_html(out) if out.strip() else ("", [])
    assert utf16_len(plain) <= limit


# ---------------------------------------------------------------------------------------- citations


def test_citation_with_url_authors_publisher_and_date():
    html = fmt.citation_html(FULL)
    assert html.startswith('<a href="https://example.org/a?x=1&amp;y=2">Russia &amp; the &lt;Taliban&gt;</a>')
    assert valid(html) == "Russia & the <Taliban> — Harsh V. Pant, Aleksei Zakharov (ORF), 2025-07-28"


def test_citation_without_url_or_authors():
    assert fmt.citation_html(BARE) == "<i>[An issue brief]</i> — undated"  # every citation dates its source
    publisher_only = Citation("Title", (), "EurAsian Times", "2024", "")
    assert valid(fmt.citation_html(publisher_only)) == "Title — EurAsian Times, 2024"


def test_citation_never_links_an_unsafe_url():
    for url in ("javascript:alert(1)", "ftp://x.org/f", "not a url", "http://"):
        html = fmt.citation_html(Citation("T", url=url))
        assert "href" not in html
        valid(html)


# ------------------------------------------------------------------------------------------- answers


def test_answer_bolds_the_best_sentence_and_cites():
    result = SearchResult("q", [hit(1), hit(2, citation=BARE)], False, None, 9, 0.8)
    html = fmt.answer_html(result, question="What <is> this?")
    plain = valid(html)
    assert "<b>The best sentence here.</b>" in html
    assert "Passages 1–2 of 9" in plain and "What <is> this?" in plain
    assert "Harsh V. Pant" in plain and "[An issue brief]" in plain
    assert "Showing results for" not in plain


def test_answer_says_when_spelling_was_corrected_or_question_cut():
    result = SearchResult("talibn", [hit()], False, "taliban", 1, 0.8)
    plain = valid(fmt.answer_html(result, question="talibn", cut=True))
    assert "Showing results for “taliban”" in plain
    assert "only its beginning" in plain


def test_abstention_has_no_passages_and_a_hint():
    result = SearchResult("What is the capital of France?", [], True)
    answer = fmt.build_answer(result, question=result.query, token=None, page=0, per_page=3)
    plain = valid(answer.html)
    assert "don't cover" in plain and "Try" in plain
    assert answer.keyboard is None


OLD = Citation("[An issue brief]", (), "", "2017")
NEW = Citation("Understanding Russia's Taliban gauntlet", ("Harsh V. Pant",), "ORF", "2025-07-28")


def test_every_citation_shows_its_date_and_older_sources_are_marked_on_current_questions():
    hits = [hit(1, citation=NEW), hit(2, citation=OLD), hit(3, citation=BARE)]
    current = valid(
        fmt.answer_html(
            SearchResult("q", hits, False, None, 3, 0.8, current=True),
            question="Has Russia recognised the Taliban yet?",
        )
    )
    assert "Harsh V. Pant (ORF), 2025-07-28\n" in current
    assert "[An issue brief] — 2017 · as of 2017" in current and "[An issue brief] — undated · undated" in current
    assert "newest source comes first" in current
    past = valid(fmt.answer_html(SearchResult("q", hits, False, None, 3, 0.8), question="When did it start?"))
    assert "as of" not in past and "newest source" not in past
    assert "— 2017\n" in past and "— undated\n" in past  # the dates are there all the same
    group = valid(
        fmt.build_answer(
            SearchResult("q", hits[:2], False, None, 3, 0.8, current=True),
            question="q",
            token=None,
            page=0,
            per_page=2,
            compact=True,
        ).html
    )
    assert "2025-07-28" in group and "as of 2017" in group
    article = fmt.inline_article(hit(1, citation=OLD))
    assert article.description.startswith("2017 · ") and "2017" in valid(article.html)


def test_not_covered_names_the_missing_word_and_marks_the_closest_passages():
    result = SearchResult(
        "What is the population of Afghanistan?",
        [],
        True,
        declined_reason="not_covered",
        missing_terms=("population",),
        closest=[hit(1, citation=OLD), hit(2, citation=NEW)],
    )
    answer = fmt.build_answer(result, question=result.query, token=None, page=0, per_page=3)
    plain = valid(answer.html)
    # the decline names its question, as the passages' header does
    assert plain.startswith(
        "🤷 The sources don't mention “population” (asked: “What is the population of Afghanistan?”)."
    )
    assert "do not answer your question" in plain and "The best sentence here." in plain
    assert "1. [An issue brief] — 2017" in plain
    assert answer.keyboard is not None  # the closest passages' context is one tap away
    bare = SearchResult("q", [], True, declined_reason="not_covered", missing_terms=("gdp", "currency"))
    assert "“gdp” or “currency”" in valid(fmt.answer_html(bare, question="q"))
    article = fmt.inline_nothing_article("What currency?", ("currency",))
    assert article.title == "The sources don't mention “currency”" and "currency" in valid(article.html)


def test_input_without_words_gets_a_short_friendly_reply():
    result = SearchResult("😀<b>&" * 3000, [], True, declined_reason="no_words")
    plain = valid(fmt.answer_html(result, question=result.query[:500]))
    assert "couldn't find any words" in plain and "don't cover" not in plain
    assert len(plain) < 700


def test_long_answers_are_trimmed_to_4096_units_around_the_highlight():
    body = (
        "Filler words about nothing in particular 😀. " * 60
        + "The best sentence here. "
        + "More trailing filler text 🇷🇺. " * 60
    )
    hits = [hit(i, text=body) for i in range(1, 11)]
    html = fmt.answer_html(SearchResult("q", hits, False, None, 10, 0.8), question="q" * 400)
    plain = valid(html)
    assert utf16_len(plain) <= 4096
    assert plain.count("The best sentence here.") == 10  # every highlight survives the cut


def test_answer_keyboard_callback_data_fits_64_bytes():
    hits = [hit(i, doc_key="f" * 10) for i in range(28, 31)]
    hits = [
        Hit(h.rank, h.score, h.doc_id, h.doc_key, h.citation, h.text, 9_999_999, 10_000_000, h.highlight) for h in hits
    ]
    keyboard = keyboards.answer_keyboard(hits, token="A" * 8, page=9998, has_more=True)
    data = [b.callback_data for row in keyboard.inline_keyboard for b in row]
    assert len(data) == 5  # three Context, Back, More
    last = keyboards.answer_keyboard(hits, token="A" * 8, page=keyboards.MAX_PAGE, has_more=True)
    assert [b.text for b in last.inline_keyboard[-1]] == ["◀ Back"]
    assert all(len(d.encode()) <= 64 for d in data)
    assert all(keyboards.decode_callback(d) is not None for d in data)


# --------------------------------------------------------------------------------------- callback data


def test_callback_data_round_trip():
    assert keyboards.decode_callback(keyboards.encode_more("abc_-123", 4)) == keyboards.MoreData("abc_-123", 4)
    assert keyboards.decode_callback(keyboards.encode_context("71d372cd23", 107, 357)) == keyboards.ContextData(
        "71d372cd23", 107, 357
    )


@pytest.mark.parametrize(
    "forged",
    [
        "",
        "m:",
        "m:tok",
        "m:tok:",
        "m:tok:-1",
        "m:tok:1:2",
        "m:to k:1",
        "m:tok:99999",
        "c:key:5:2",
        "c:key:5:5",
        "c:key:1",
        "c:ke/y:1:2",
        "c::1:2",
        "x:1",
        "m:" + "a" * 70 + ":1",
        None,
        42,
        "m:tok:１",
    ],
)
def test_forged_callback_data_decodes_to_none(forged):
    assert keyboards.decode_callback(forged) is None


@given(st.text(max_size=100))
def test_decode_callback_never_raises(data):
    decoded = keyboards.decode_callback(data)
    assert decoded is None or len(data.encode()) <= 64


def test_encoding_refuses_oversized_data():
    with pytest.raises(ValueError):
        keyboards.encode_context("k" * 45, 10**9, 10**9 + 1)
    with pytest.raises(ValueError):
        keyboards.encode_more("bad token", 1)


# --------------------------------------------------------------------------------------- other texts


def test_context_message_bolds_the_passage():
    context = Context("doc.txt", FULL, "Before it. The passage <itself>. After it.", (11, 32))
    html = fmt.context_html(context)
    plain = valid(html)
    assert "<b>The passage &lt;itself&gt;.</b>" in html
    assert plain.startswith("📖 Context") and "Harsh V. Pant" in plain


def test_command_texts_are_valid():
    start = valid(fmt.start_html("citebot_bot"))
    assert all(q in start for q in fmt.EXAMPLE_QUESTIONS)
    assert "/ask" in valid(fmt.help_html("citebot_bot", results_private=3, results_group=2))
    docs = [DocumentInfo("a.txt", "k1", FULL, 10, 1000), DocumentInfo("b.txt", "k2", BARE, 5, 500)]
    sources = valid(fmt.sources_html(docs))
    assert "1. Russia & the <Taliban>" in sources and "2. [An issue brief]" in sources
    about = valid(fmt.about_html("0.1.0", {"built_at": "2026-01-01T00:00:00+00:00"}, 5, 289))
    assert "0.1.0" in about and "2026-01-01T00:00:00+00:00" in about and "289 passages" in about
    for text in (
        fmt.USAGE_ASK,
        fmt.EMPTY_QUESTION,
        fmt.NOT_TEXT,
        fmt.SOMETHING_WRONG,
        fmt.UNKNOWN_COMMAND,
        fmt.rate_limited_html(20, 12.3),
    ):
        valid(text)


def test_inline_article():
    article = fmt.inline_article(hit(text="A passage & more. The best sentence here. " + "x " * 500))
    assert article.title == "Russia & the <Taliban>"
    assert article.description.startswith("2025-07-28 · A passage & more.") and len(article.description) <= 140
    assert len(article.id.encode()) <= 64
    plain = valid(article.html)
    assert "Harsh V. Pant" in plain and "The best sentence here." in plain
    valid(fmt.inline_help_article("citebot_bot").html)
    valid(fmt.inline_nothing_article("<script>").html)
    # a lone surrogate in the sources file's date (found by hypothesis) is replaced, not sent
    odd = fmt.inline_article(hit(citation=Citation("T", (), "", "\ud800", "")))
    assert odd.description.startswith("\ufffd · ") and odd.description.encode("utf-8")


def test_questions_are_cleaned_and_cut():
    assert fmt.clean_question("  who\n overthrew   Zahir? ", 500) == ("who overthrew Zahir?", False)
    question, cut = fmt.clean_question("word " * 300, 100)
    assert cut and len(question) <= 100 and question.endswith("word")
    assert not fmt.has_words("😀 🎉 !!") and not fmt.has_words("   ")
    assert fmt.has_words("Кто? 2021")
    assert fmt.strip_mention("@Citebot_Bot who are you? @other", "citebot_bot").split() == [
        "who",
        "are",
        "you?",
        "@other",
    ]


# ------------------------------------------------------------------------------- rate limit and stores


def test_rate_limiter_sliding_window_with_one_notice():
    now = [0.0]
    limiter = RateLimiter(3, 60.0, clock=lambda: now[0])
    verdicts = []
    for t in (0, 10, 20, 30, 40, 59.9):
        now[0] = t
        verdicts.append(limiter.check("u").verdict)
    assert verdicts == [Verdict.ALLOW] * 3 + [Verdict.NOTICE, Verdict.SILENT, Verdict.SILENT]
    now[0] = 60.0  # the first question leaves the window
    assert limiter.check("u").verdict is Verdict.ALLOW
    now[0] = 61.0
    decision = limiter.check("u")
    assert decision.verdict is Verdict.NOTICE and decision.retry_in == pytest.approx(9.0)
    assert limiter.check("other").verdict is Verdict.ALLOW


def test_query_cache_is_a_bounded_lru():
    cache = QueryCache(size=2)
    a = cache.put(StoredQuery("a", 3))
    b = cache.put(StoredQuery("b", 3))
    assert cache.get(a).question == "a"  # a becomes the most recent
    c = cache.put(StoredQuery("c", 3))
    assert cache.get(b) is None and cache.get(a) is not None and cache.get(c) is not None
    assert len(a) <= 16 and len(cache) == 2


# --------------------------------------------------------------------------------------- redaction


def test_redacting_filter_hides_the_token_everywhere():
    token = "123456:SECRET-token_abc"
    redactor = RedactingFilter([token])
    try:
        raise RuntimeError(f"connect failed for https://api.telegram.org/bot{token}/getUpdates")
    except RuntimeError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "x",
        logging.ERROR,
        __file__,
        1,
        "url %s and %s",
        (f"http://127.0.0.1:8081/bot{token}/sendMessage", token),
        exc_info,
    )
    assert redactor.filter(record)
    text = logging.Formatter().format(record)
    assert token not in text and "SECRET" not in text
    assert "/bot<redacted>/sendMessage" in text and "/bot<redacted>/getUpdates" in text
    # a different token in a URL is redacted too
    other = RedactingFilter([])
    assert other.redact("GET /bot999:zzz/getMe") == "GET /bot<redacted>/getMe"


def test_redaction_covers_secrets_token_shapes_and_handlers_added_later(restore_log_factory):
    import io

    from bot.redaction import RedactingFilter, install_log_redaction

    token, secret = "5550123456:AAE-abcdefghijklmnopqrstuvwxyz0123456", "hook-secret-1"
    assert RedactingFilter(["abc", "abcdef"]).redact("abcdef") == "<redacted>"  # the longer one first
    assert (
        RedactingFilter().redact(f"token={token} /bot{token}/getMe /botapi_emulator/x /bot/app.py")
        == "token=<redacted> /bot<redacted>/getMe /botapi_emulator/x /bot/app.py"
    )
    install_log_redaction("1:short", secret)
    # a logger with its own handler, added afterwards and not propagating to the root's handlers
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("test.added_later")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("%s %s %s", "1:short", secret, token)
        logger.error("failed", exc_info=RuntimeError(f"bad {secret}"))
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    text = stream.getvalue()
    assert text == "<redacted> <redacted> <redacted>\nfailed\nRuntimeError: bad <redacted>\n"
    assert "1:short" not in text and secret not in text and token not in text


def test_group_answers_are_compact():
    body = "Some context before the point. " * 20 + "The best sentence here. " + "And more after it. " * 20
    result = SearchResult("q", [hit(1, text=body), hit(2, text=body)], False, None, 5, 0.8)
    full = fmt.build_answer(result, question="q", token="tok", page=0, per_page=2)
    compact = fmt.build_answer(result, question="q", token="tok", page=0, per_page=2, compact=True)
    assert utf16_len(valid(compact.html)) < utf16_len(valid(full.html)) - 500
    assert valid(compact.html).count("The best sentence here.") == 2
    assert [b.text for b in compact.keyboard.inline_keyboard[0]] == ["📖 1", "📖 2"]
    assert [b.text for b in compact.keyboard.inline_keyboard[1]] == ["More results ▶"]


# --------------------------------------------------------------------------------- request retries


class ScriptedRequest:
    """A RetryingRequest whose HTTP answers (or exceptions) follow a script."""

    @staticmethod
    def make(script, **kwargs):
        from telegram.request import HTTPXRequest

        from bot.transport import RetryingRequest, RetrySchedule

        class Scripted(HTTPXRequest):
            async def do_request(self, url, method, request_data=None, **_):
                self.seen.append(url)
                step = script.pop(0)
                if isinstance(step, Exception):
                    raise step
                return step

        inner = Scripted()
        inner.seen = []
        request = RetryingRequest(inner, schedule=RetrySchedule(first=0.001), **kwargs)
        request.seen = inner.seen
        return request


@pytest.mark.asyncio
async def test_timeouts_and_network_errors_are_retried():
    """(Giving up, over a fake clock: tests/test_delivery.py.)"""
    from telegram.error import TimedOut

    ok = (200, b'{"ok": true, "result": {"message_id": 1}}')
    request = ScriptedRequest.make([TimedOut(), (502, b'{"ok": false, "description": "Bad Gateway"}'), ok])
    assert await request.post("http://127.0.0.1/botT/sendMessage") == {"message_id": 1}
    assert len(request.seen) == 3


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_waits_are_honoured_and_client_errors_are_not_retried():
    from telegram.error import BadRequest, RetryAfter

    flood = (429, b'{"ok": false, "description": "Too Many Requests", "parameters": {"retry_after": 1}}')
    ok = (200, b'{"ok": true, "result": true}')
    request = ScriptedRequest.make([flood, ok])
    assert await request.post("http://127.0.0.1/botT/sendMessage") is True
    too_long = ScriptedRequest.make([(429, flood[1].replace(b'"retry_after": 1', b'"retry_after": 3600'))])
    with pytest.raises(RetryAfter):
        await too_long.post("http://127.0.0.1/botT/sendMessage")
    bad = ScriptedRequest.make([(400, b'{"ok": false, "description": "Bad Request: message is too long"}')])
    with pytest.raises(BadRequest):
        await bad.post("http://127.0.0.1/botT/sendMessage")
    assert len(bad.seen) == 1


@pytest.mark.asyncio
async def test_a_query_answered_by_an_attempt_whose_reply_was_lost_counts_as_answered():
    """A connection lost after Telegram answered the callback query: the retry is refused with
    "query is too old", which means the first attempt went through."""
    from telegram.error import BadRequest, NetworkError

    too_old = (
        400,
        b'{"ok": false, "description": "Bad Request: query is too old and response timeout expired '
        b'or query ID is invalid"}',
    )
    request = ScriptedRequest.make([NetworkError("connection reset"), too_old])
    assert await request.post("http://127.0.0.1/botT/answerCallbackQuery") is True
    fresh = ScriptedRequest.make([too_old])  # no earlier attempt: really too old
    with pytest.raises(BadRequest):
        await fresh.post("http://127.0.0.1/botT/answerCallbackQuery")
    other = ScriptedRequest.make([NetworkError("reset"), too_old])  # other methods are not second-guessed
    with pytest.raises(BadRequest):
        await other.post("http://127.0.0.1/botT/sendMessage")


def test_tidy_keeps_one_line_break_per_broken_run_and_one_space_otherwise():
    assert markup.tidy("a  \t b \n\n  c\r\n d\u00a0 e") == "a b\nc\nd e"
    assert markup.tidy(" \n x \n ") == "\nx\n"


@given(st.text(alphabet=st.sampled_from("ab \t\n\r\u00a0\u2028.")))
def test_tidy_replaces_every_whitespace_run_as_a_whole(text):
    expected = re.sub(r"\s+", lambda m: "\n" if "\n" in m.group() else " ", text)  # the definition
    assert markup.tidy(text) == expected
