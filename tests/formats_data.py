"""Real small files of each structured format, written by the tests: a Markdown file with headings,
lists and links; an HTML article inside navigation, comments and a footer; a short and a long PDF
(generated with fpdf2, so pdfminer reads a real text layer with real line geometry)."""

from __future__ import annotations

from fpdf import FPDF

MARKDOWN = """---
author: someone
---
# Wheat for Kabul

Russia agreed to deliver **one million tonnes** of wheat to Afghanistan, according to
[the ministry's statement](https://example.org/statement), and *fuel* at a discount.

## What the deal covers

- Wheat deliveries through the [Hairatan](https://example.org/hairatan) river port.
- Diesel and petrol for the winter months.
  1. Diesel first.
  2. Petrol later.

![A barge on the Amu Darya](barge.png)

## Payment

Payment is made in roubles through a bank in Tashkent, the statement says.
"""
MARKDOWN_SENTENCES = (
    "Russia agreed to deliver one million tonnes of wheat to Afghanistan, according to the ministry's statement, "
    "and fuel at a discount.",
    "Payment is made in roubles through a bank in Tashkent, the statement says.",
)
MARKDOWN_HEADINGS = ("What the deal covers", "Payment")

HTML = """<!doctype html><html><head><meta charset="utf-8">
<title>Moscow hosts a Taliban delegation | Steppe News</title>
<script>window.tracker = {id: 42};</script><style>nav { color: red }</style></head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/world">World news</a></li>
<li><a href="/subscribe">Subscribe to our newsletter</a></li></ul></nav></header>
<main><article>
<h1>Moscow hosts a Taliban delegation</h1>
<p>Russia hosted a delegation of the Taliban in Moscow on Tuesday, the foreign ministry said. The talks covered
trade, transit and security along the Amu Darya river.</p>
<h2>Trade and transit</h2>
<p>Both sides discussed wheat and fuel deliveries, and a railway corridor through Uzbekistan that would carry
Russian goods to Kabul and beyond.</p>
<h2>Security</h2>
<p>The delegation promised to act against the Islamic State in Khorasan Province, which Moscow regards as the main
threat coming from Afghanistan.</p>
</article>
<section class="comments" id="comments"><h3>12 comments</h3>
<div class="comment"><p>Spam spam visit my casino site for free spins!</p></div>
<div class="comment"><p>Completely unrelated remark about football transfers.</p></div>
<form><label>Leave a reply</label><textarea></textarea><button>Post comment</button></form></section>
</main>
<aside><h3>Most read</h3><ul><li><a href="/x">Ten facts about the weather in Oslo</a></li></ul></aside>
<footer><p>Copyright 2024 Steppe News. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>"""
HTML_SENTENCES = (
    "Russia hosted a delegation of the Taliban in Moscow on Tuesday, the foreign ministry said.",
    "Both sides discussed wheat and fuel deliveries, and a railway corridor through Uzbekistan that would carry "
    "Russian goods to Kabul and beyond.",
)
HTML_JUNK = (
    "Home",
    "World news",
    "Subscribe",
    "casino",
    "football",
    "Leave a reply",
    "Post comment",
    "Oslo",
    "Copyright",
    "Privacy policy",
    "tracker",
    "color: red",
)

SHORT_PDF_PARAGRAPHS = (
    "Russia hosted the third round of the Moscow format talks in April 2017, inviting Iran, Pakistan, China, India "
    "and the five Central Asian republics, while Washington chose not to take part in the conference.",
    "Later rounds included a Taliban delegation, which Moscow presented as a step towards an inclusive peace "
    "process in Afghanistan.",
)
LONG_PDF_SECTIONS = 6
LONG_PDF_INTRO = (
    "This working paper follows the envoys' meetings over one year. It was written for readers who "
    "know the region, and it quotes no one by name."
)


_TOPICS = (
    "the grain corridor",
    "the border posts on the Panj",
    "payments for fuel",
    "the Termez railway",
    "water rights on the Amu Darya",
    "visas for traders",
)
_PLACES = ("Moscow", "Kabul", "Tashkent", "Termez", "Mazar-i-Sharif", "Kazan", "Kunduz", "Samarkand")


def long_pdf_heading(section: int) -> str:
    return f"Section {section}: {_TOPICS[section - 1]}"


def long_pdf_paragraph(section: int, n: int) -> str:
    topic, place = _TOPICS[section - 1], _PLACES[(section + n) % len(_PLACES)]
    return (
        f"Meeting {section}.{n} took place in {place}, where envoys discussed {topic} at length. "
        + "The delegations "
        + ["agreed on a timetable", "disagreed about the costs", "asked for more time", "signed a short memorandum"][
            n - 1
        ]
        + f" and described the outcome to their own press in careful terms, each stressing {topic} as a "
        f"shared interest. Observers counted {section * 10 + n} such meetings by the end of the year."
    )


def _pdf() -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=20)
    pdf.set_margins(25, 20, 25)
    return pdf


def _heading(pdf: FPDF, text: str) -> None:
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(0, 9, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _paragraph(pdf: FPDF, text: str) -> None:
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)


def short_pdf() -> bytes:
    """One page, six lines of text: a heading and two paragraphs hard-wrapped by the PDF writer."""
    pdf = _pdf()
    pdf.add_page()
    _heading(pdf, "The Moscow format")
    for paragraph in SHORT_PDF_PARAGRAPHS:
        _paragraph(pdf, paragraph)
    return bytes(pdf.output())


def long_pdf() -> bytes:
    """Several pages with section headings, a running header and page numbers; paragraphs run across
    page breaks."""
    pdf = _pdf()

    def header() -> None:
        pdf.set_font("Helvetica", "I", 8)
        pdf.cell(0, 5, "Central Asia Review - Working paper 7", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)

    def footer() -> None:
        pdf.set_y(-15)
        pdf.set_font("Helvetica", size=8)
        pdf.cell(0, 5, str(pdf.page_no()), align="C")

    pdf.header = header
    pdf.footer = footer
    pdf.add_page()
    _paragraph(pdf, LONG_PDF_INTRO)
    for section in range(1, LONG_PDF_SECTIONS + 1):
        _heading(pdf, long_pdf_heading(section))
        for n in range(1, 5):
            _paragraph(pdf, long_pdf_paragraph(section, n))
    return bytes(pdf.output())


def blank_pdf() -> bytes:
    pdf = _pdf()
    pdf.add_page()
    return bytes(pdf.output())
