"""A corpus of Markdown, HTML and PDF files, indexed with the real model and served by the real bot:
answers and inline results hold the documents' text, never their markup, navigation or page
furniture; headings are sections; a short PDF's passages end with their sentences."""

from __future__ import annotations

import re

import pytest
from formats_data import (
    HTML,
    HTML_JUNK,
    MARKDOWN,
    MARKDOWN_HEADINGS,
    SHORT_PDF_PARAGRAPHS,
    long_pdf,
    long_pdf_heading,
    short_pdf,
)

from citebot import engine

MARKUP = re.compile(r"(^|\s)#{1,6}\s|\*\*|\]\(|!\[|https?://example")


@pytest.fixture(scope="module")
def formats_corpus(tmp_path_factory, make_settings, encoder):
    root = tmp_path_factory.mktemp("formats")
    seeds = root / "seeds"
    seeds.mkdir()
    (seeds / "deal.md").write_text(MARKDOWN, encoding="utf-8")
    (seeds / "news.html").write_text(HTML, encoding="utf-8")
    (seeds / "note.pdf").write_bytes(short_pdf())
    (seeds / "paper.pdf").write_bytes(long_pdf())
    settings = make_settings(index_dir=root / "index", corpus_seeds_dir=seeds, index_verify_every_seconds=0)
    report = engine.update_index(settings, encoder)
    assert report.built and report.warnings == [] and len(report.added) == 4
    data = engine.open_index(settings)
    return settings, data, engine.make_searcher(settings, encoder, data)


def test_every_passage_is_text_without_markup_and_pdf_passages_end_with_a_sentence(formats_corpus):
    _, data, _ = formats_corpus
    for i in range(len(data.passages)):
        text = data.passage_text(i)
        doc = data.documents[data.passages[i]["doc"]]
        assert not MARKUP.search(text), (doc.doc_id, text)
        assert not any(junk in text for junk in HTML_JUNK), (doc.doc_id, text)
        if doc.doc_id.endswith(".pdf"):
            assert text.endswith("."), (doc.doc_id, text)
            assert "Working paper 7" not in text
    headings = {d.doc_id: [h for _, h in d.headings] for d in data.documents}
    assert headings["deal.md"] == list(MARKDOWN_HEADINGS)  # the title heading became the citation's title
    assert headings["paper.pdf"][:2] == [long_pdf_heading(1), long_pdf_heading(2)]
    deal = next(d for d in data.documents if d.doc_id == "deal.md")
    assert deal.citation.title == "Wheat for Kabul"
    offset = deal.text.index("Payment is made in roubles")
    assert deal.heading_at(offset) == "Payment"


@pytest.mark.parametrize(
    ("question", "doc_id", "says"),
    [
        ("Is the payment made in roubles through a bank in Tashkent?", "deal.md", "Payment is made in roubles"),
        (
            "Which railway corridor would carry Russian goods to Kabul?",
            "news.html",
            "railway corridor through Uzbekistan",
        ),
        ("Who did Russia invite to the Moscow format talks in April 2017?", "note.pdf", SHORT_PDF_PARAGRAPHS[0]),
    ],
)
def test_questions_find_the_documents_text(formats_corpus, question, doc_id, says):
    _, _, searcher = formats_corpus
    hit = searcher.search(question).hits[0]
    assert hit.doc_id == doc_id and says in hit.text
    assert not MARKUP.search(hit.text)


@pytest.mark.asyncio
async def test_answers_and_inline_results_show_no_markup(formats_corpus, emulator, start_bot):
    settings, _, searcher = formats_corpus
    await start_bot(settings, searcher)
    user = emulator.user(1601, "Reader")
    chat = emulator.private_chat(user)
    emulator.send_text(chat, user, "Is the payment made in roubles through a bank in Tashkent?")
    answer = (await emulator.wait_for_messages(chat["id"], 1, timeout=60))[0]["text"]
    assert "Payment is made in roubles" in answer and "Wheat for Kabul" in answer
    assert not MARKUP.search(answer), answer
    query = emulator.inline_query(user, "wheat deliveries Hairatan river port")
    results = (await emulator.wait_until(lambda: emulator.inline_answer(query), timeout=60))["results"]
    shown = [r["input_message_content"]["message_text"] for r in results]
    assert any("Hairatan river port" in text for text in shown)
    for result, text in zip(results, shown, strict=True):
        assert not MARKUP.search(text) and not MARKUP.search(result.get("description", "")), text
