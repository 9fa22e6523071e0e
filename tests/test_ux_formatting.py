"""Pure formatting of issue 14's messages: corpus size, /sources, /about, /reload, votes, the
ask-in-English reply and the coverage report."""

from __future__ import annotations

import pytest

from bot import formatting as fmt
from bot import keyboards
from botapi_emulator import validate_telegram_html
from citebot.gaps import CoverageReport, Gap
from embeddings.search import DocumentInfo, SearchResult
from embeddings.sources import Citation


def plain(html: str) -> str:
    text, _ = validate_telegram_html(html)
    return text


@pytest.mark.parametrize(
    ("documents", "said"), [(1, "one document"), (7, "7 documents"), (None, "a small library of documents")]
)
def test_the_corpus_size_comes_from_the_index(documents, said):
    abstained = SearchResult("q", [], True)
    assert said in plain(fmt.answer_html(abstained, documents=documents))
    assert said in plain(fmt.start_html("bot", documents))
    assert "five" not in plain(fmt.answer_html(abstained, documents=documents))


def test_sources_show_date_author_or_publisher_passages_and_the_file_for_admins():
    pant = Citation("Gauntlet", ("H. Pant", "A. Zakharov"), "", "2025-07-28")
    times = Citation("India, Russia", (), "EurAsian Times", "", "https://e.x/a")
    docs = [DocumentInfo("002_x.txt", "k2", pant, 40, 9), DocumentInfo("003_y.txt", "k3", times, 12, 9)]
    public = plain(fmt.sources_html(docs))
    assert public.startswith("📚 Sources (2 documents)")
    assert "date: 2025-07-28 · by: H. Pant, A. Zakharov · 40 passages" in public
    assert "date: unknown · by: EurAsian Times · 12 passages" in public
    assert "002_x.txt" not in public
    admin = plain(fmt.sources_html(docs, admin=True))
    assert "file: 002_x.txt" in admin and "file: 003_y.txt" in admin


def test_about_shows_the_build_id_and_time():
    text = plain(
        fmt.about_html(
            "0.1.0", {"built_at": "2026-12-01T09:00:00+00:00", "model": "m"}, 5, 289, "20261201T090000123456"
        )
    )
    assert "Build: 20261201T090000123456, built 2026-12-01T09:00:00+00:00" in text
    assert "5 documents, 289 passages" in text


def test_reload_says_when_nothing_changed():
    assert plain(fmt.reload_html("index already up to date (289 passages)", True, changed=False)).startswith(
        "✅ Nothing changed"
    )
    assert plain(fmt.reload_html("index rebuilt: …", True)).startswith("🔄 Index reloaded")
    assert plain(fmt.reload_html("boom", False)).startswith("⚠️ Reload failed")


def test_vote_buttons_round_trip_and_show_counts_only_in_groups():
    assert keyboards.decode_callback(keyboards.encode_vote("AbC-_123", 1)) == keyboards.VoteData("AbC-_123", 1)
    assert keyboards.decode_callback(keyboards.encode_vote("AbC-_123", -1)) == keyboards.VoteData("AbC-_123", -1)
    for forged in ("v:tok:x", "v::u", "v:" + "a" * 30 + ":u", "v:tok:u:extra"):
        assert keyboards.decode_callback(forged) is None
    private = keyboards.vote_row(keyboards.Votes("tok", up=1, down=0, mine=1))
    assert [b.text for b in private] == ["👍 ✓", "👎"]
    group = keyboards.vote_row(keyboards.Votes("tok", up=3, down=1, mine=1, compact=True))
    assert [b.text for b in group] == ["👍 3", "👎 1"]
    keyboard = keyboards.with_votes(fmt.InlineKeyboardMarkup([private]), keyboards.Votes("tok", up=0, down=1, mine=-1))
    assert [[b.text for b in row] for row in keyboard.inline_keyboard] == [["👍", "👎 ✓"]]


@pytest.mark.parametrize("language", ["ru", "uk", "fa", "ar", "fr", "de", "es", "it", "pt", "tr", "zh"])
def test_ask_in_english_is_said_in_the_language_of_the_question(language):
    text = plain(fmt.ask_in_english_html(language))
    assert fmt.EXAMPLE_QUESTIONS[0] in text and "please ask your question in English" in text


def test_ask_in_english_in_russian_and_a_fallback_in_english():
    assert "задайте вопрос по-английски" in plain(fmt.ask_in_english_html("ru"))
    fallback = plain(fmt.ask_in_english_html("ja"))
    assert fallback.startswith("🌐 Your question seems to be in Japanese") and "please ask in English" in fallback


def test_gaps_report_lists_groups_with_counts_and_examples():
    gaps = [Gap(3, 2, ["What does China think of the Taliban?", "China <view>"]), Gap(1, 1, ["Почему?"], "other")]
    text = plain(fmt.gaps_html(CoverageReport(gaps, 10)))
    assert "4 of 10 stored questions" in text and "1. 3 asked, 2 declined" in text and "• China <view>" in text
    assert "no gaps: none of the 0 stored" in plain(fmt.gaps_html(CoverageReport([], 0)))
