"""Markdown, HTML and PDF read by real parsers into headings and paragraphs: no markup, no page
furniture, no paragraph cut at a line end. Real files written by the tests (tests/formats_data.py)."""

import io
import re

from formats_data import (
    HTML,
    HTML_JUNK,
    HTML_SENTENCES,
    LONG_PDF_INTRO,
    LONG_PDF_SECTIONS,
    MARKDOWN,
    MARKDOWN_HEADINGS,
    MARKDOWN_SENTENCES,
    SHORT_PDF_PARAGRAPHS,
    long_pdf,
    long_pdf_heading,
    long_pdf_paragraph,
    short_pdf,
)
from pdfminer.high_level import extract_text

from embeddings.chunking import make_passages, split_sentences
from embeddings.cleaning import clean_blocks
from embeddings.documents import read_documents, scan_seeds
from embeddings.formats import HEADING, PARAGRAPH, html_blocks, markdown_blocks, pdf_blocks

MARKUP = re.compile(r"(^|\s)#{1,6}\s|\*\*|__|\]\(|!\[|^\s*[-*+]\s|<[a-z/][^>]*>|^---$|^\|", re.MULTILINE)


def passages(blocks, title=None):
    clean = clean_blocks(blocks, title=title)
    spans = make_passages(clean, split_sentences(clean), 450, 600)
    return clean, [clean.text[p.start : p.end] for p in spans]


def test_markdown_is_rendered_to_text_with_its_headings_as_sections():
    assert len(MARKUP.findall(MARKDOWN)) >= 8  # the pattern sees the markup of the source
    blocks = markdown_blocks(MARKDOWN)
    headings = [text for kind, text in blocks if kind == HEADING]
    assert headings == ["Wheat for Kabul", *MARKDOWN_HEADINGS]
    paragraphs = [text for kind, text in blocks if kind == PARAGRAPH]
    assert MARKDOWN_SENTENCES[0] in paragraphs  # a paragraph wrapped over two lines is one paragraph
    # list items, nested and numbered, each on its own; link text kept, URL dropped; image by its alt text
    assert "• Wheat deliveries through the Hairatan river port." in paragraphs
    assert "1) Diesel first." in paragraphs and "2) Petrol later." in paragraphs
    assert "A barge on the Amu Darya" in paragraphs
    text = "\n\n".join(t for _, t in blocks)
    assert not MARKUP.search(text), MARKUP.search(text)
    assert "example.org" not in text and "author: someone" not in text  # no URLs, no front matter

    clean, shown = passages(blocks, title="Wheat for Kabul")
    assert [clean.text[b.start : b.end] for b in clean.blocks if b.kind == "heading"] == list(MARKDOWN_HEADINGS)
    assert any(MARKDOWN_SENTENCES[1] in p for p in shown)
    assert all(not MARKUP.search(p) for p in shown)


def test_html_keeps_the_article_and_drops_navigation_comments_and_footer():
    assert all(junk in HTML for junk in HTML_JUNK)
    blocks = html_blocks(HTML)
    text = "\n\n".join(t for _, t in blocks)
    for sentence in HTML_SENTENCES:
        assert sentence in text
    assert [t for k, t in blocks if k == HEADING] == [
        "Moscow hosts a Taliban delegation",
        "Trade and transit",
        "Security",
    ]
    for junk in HTML_JUNK:
        assert junk not in text, junk
    assert not MARKUP.search(text)


def test_a_short_pdf_keeps_its_sentences_whole():
    data = short_pdf()
    raw_lines = [line for line in extract_text(io.BytesIO(data)).splitlines() if line.strip()]
    assert len(raw_lines) < 10 and not raw_lines[1].rstrip().endswith(".")  # hard-wrapped mid-sentence
    blocks = pdf_blocks(data)
    assert blocks == [(HEADING, "The Moscow format"), *((PARAGRAPH, p) for p in SHORT_PDF_PARAGRAPHS)]
    _, shown = passages(blocks)
    assert shown and all(p.endswith(".") for p in shown), shown
    assert any(SHORT_PDF_PARAGRAPHS[0] in p for p in shown)


def test_a_long_pdf_loses_page_furniture_and_joins_paragraphs_across_page_breaks():
    data = long_pdf()
    pages = [
        [line for line in extract_text(io.BytesIO(data), page_numbers=[n]).splitlines() if line.strip()]
        for n in range(3)
    ]
    assert pages[0][0] == "Central Asia Review - Working paper 7" and pages[0][-1] == "1"  # header, page number
    assert not pages[0][-2].rstrip().endswith(".")  # a paragraph runs on to the next page
    blocks = pdf_blocks(data)
    expected = [(PARAGRAPH, LONG_PDF_INTRO)]
    for section in range(1, LONG_PDF_SECTIONS + 1):
        expected.append((HEADING, long_pdf_heading(section)))
        expected += [(PARAGRAPH, long_pdf_paragraph(section, n)) for n in range(1, 5)]
    assert blocks == expected
    text = "\n".join(t for _, t in blocks)
    assert "Working paper 7" not in text and not re.search(r"^\d+$", text, re.MULTILINE)
    _, shown = passages(blocks)
    assert all(p.endswith(".") for p in shown)


def test_the_seeds_reader_gives_each_format_its_structure(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "deal.md").write_text(MARKDOWN, encoding="utf-8")
    (seeds / "news.html").write_text(HTML, encoding="utf-8")
    (seeds / "note.pdf").write_bytes(short_pdf())
    (seeds / "plain.txt").write_text("# Not markdown\n\nA text file keeps its characters.", encoding="utf-8")
    warnings: list[str] = []
    documents = {
        d.doc_id: d
        for d in read_documents(scan_seeds(seeds, (".md", ".html", ".pdf", ".txt"), 10**7, warnings), warnings)
    }
    assert warnings == []
    assert documents["deal.md"].blocks[0] == (HEADING, "Wheat for Kabul")
    assert documents["deal.md"].text.startswith("Wheat for Kabul\n\n")  # its fallback title is the heading
    assert documents["news.html"].blocks[0] == (HEADING, "Moscow hosts a Taliban delegation")
    assert documents["note.pdf"].blocks[1] == (PARAGRAPH, SHORT_PDF_PARAGRAPHS[0])
    assert documents["plain.txt"].blocks is None and documents["plain.txt"].text.startswith("# Not markdown")
