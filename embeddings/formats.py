"""The text and structure of the formats that mark it: Markdown, HTML and PDF.

Each reader returns the document's blocks in reading order, ``("heading" | "paragraph", text)``,
each block's text on one line. The work is done by well-kept parsers (markdown-it-py for
Markdown, trafilatura for the main content of a web page, pdfminer.six for the layout of a PDF);
what is left here is turning their output into blocks:

* Markdown is rendered to plain text: no ``#``, ``**`` or ``[text](url)`` survives, a link keeps
  its text, an image its alt text; headings are sections, list items and table rows are blocks.
* HTML keeps the article only (trafilatura drops navigation, comments, footers and sidebars).
* PDF lines are grouped into paragraphs by their geometry: a paragraph ends at a vertical gap
  wider than the usual line spacing, at a change of font size, or after a short line that ends
  a sentence; a paragraph cut by a page break is joined again; page numbers and running headers
  and footers (top and bottom lines that recur on most pages) are dropped; a short line in a
  larger or bold font is a heading.
"""

from __future__ import annotations

import io
import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from .cleaning import ends_sentence, join_lines

HEADING, PARAGRAPH = "heading", "paragraph"
Block = tuple[str, str]


class FormatError(ValueError):
    """The file is not readable as its format (the message says why)."""


def blocks_text(blocks: Iterable[Block]) -> str:
    """The blocks as plain text, one block a paragraph."""
    return "\n\n".join(text for _, text in blocks)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# ------------------------------------------------------------------------------------------ Markdown

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


def markdown_blocks(source: str) -> list[Block]:
    """A Markdown document rendered to plain-text blocks (CommonMark with tables and strikethrough)."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    tokens = parser.parse(_FRONT_MATTER.sub("", source, count=1))
    blocks: list[Block] = []
    lists: list[list[int]] = []  # open lists: [next number] for ordered, [] for bullets
    row: list[str] | None = None
    item_prefix = ""
    for i, token in enumerate(tokens):
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            lists.append([int(token.attrs.get("start", 1) or 1)] if kind == "ordered_list_open" else [])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            counter = lists[-1] if lists else []
            item_prefix = f"{counter[0]}) " if counter else "• "
            if counter:
                counter[0] += 1
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and row is not None:
            if any(row):
                blocks.append((PARAGRAPH, "; ".join(cell for cell in row if cell)))
            row = None
        elif kind == "inline":
            text = _one_line(_render_inline(token.children or []))
            if row is not None:
                row.append(text)
            elif text:
                opener = tokens[i - 1].type if i else ""
                if opener == "heading_open":
                    blocks.append((HEADING, text))
                else:
                    blocks.append((PARAGRAPH, item_prefix + text))
                    item_prefix = ""
        elif kind in ("fence", "code_block"):
            text = _one_line(token.content)
            if text:
                blocks.append((PARAGRAPH, text))
        elif kind == "html_block":
            text = _one_line(_html_fragment_text(token.content))
            if text:
                blocks.append((PARAGRAPH, text))
    return blocks


def _render_inline(children: list) -> str:
    parts = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(_render_inline(child.children or []) or child.content)
        # link, emphasis and raw inline HTML contribute their text only (markup tokens are skipped)
    return "".join(parts)


def _html_fragment_text(fragment: str) -> str:
    import lxml.html

    fragment = re.sub(r"<!--.*?-->", " ", fragment, flags=re.DOTALL)
    if not fragment.strip():
        return ""
    try:
        return lxml.html.fragment_fromstring(fragment, create_parent="div").text_content()
    except Exception:  # lxml rejects some fragments outright: then the fragment carries no text we can trust
        return ""


# ---------------------------------------------------------------------------------------------- HTML


def html_blocks(markup: str | bytes) -> list[Block]:
    """The main content of a web page as blocks: the page title, then the article's headings and
    paragraphs; navigation, comments, sidebars and footers are left out."""
    import trafilatura
    from lxml import etree

    xml = trafilatura.extract(
        markup,
        output_format="xml",
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        include_links=False,
        include_images=False,
        include_formatting=False,
        deduplicate=False,
    )
    if not xml:
        return []
    root = etree.fromstring(xml.encode("utf-8"))
    main = root.find("main")
    blocks: list[Block] = []
    for element in main.iter() if main is not None else ():
        tag = element.tag
        if tag == "head":
            kind, text = HEADING, _one_line("".join(element.itertext()))
        elif tag in ("p", "quote", "code") and element.getparent().tag not in ("item", "cell", "quote"):
            kind, text = PARAGRAPH, _one_line("".join(element.itertext()))
        elif tag == "item":
            kind, text = PARAGRAPH, "• " + _one_line(_text_without(element, "list"))
        elif tag == "row":
            cells = [_one_line("".join(cell.itertext())) for cell in element.findall("cell")]
            kind, text = PARAGRAPH, "; ".join(c for c in cells if c)
        else:
            continue
        if text.strip("• "):
            blocks.append((kind, text))
    title = _one_line(root.get("title") or "")
    if title and not (blocks and blocks[0][1] == title):
        blocks.insert(0, (HEADING, title))
    return blocks


def _text_without(element: Any, nested: str) -> str:
    """The text of ``element`` without that of its ``nested`` children (a list item's sub-list)."""
    parts = [element.text or ""]
    for child in element:
        if child.tag != nested:
            parts.append("".join(child.itertext()))
        parts.append(child.tail or "")
    return "".join(parts)


# ----------------------------------------------------------------------------------------------- PDF


@dataclass(frozen=True)
class _Line:
    page: int
    text: str
    x0: float
    x1: float
    y0: float  # bottom (PDF coordinates grow upwards)
    y1: float
    size: float
    bold: bool


_ROMAN = r"(?=[ivxlc])c{0,3}(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"
_PAGE_NUMBER = re.compile(rf"[-–—]?\s*(?:page\s*)?(?:\d{{1,4}}|{_ROMAN})(?:\s*(?:of|/)\s*\d+)?\s*[-–—]?", re.IGNORECASE)


def pdf_blocks(data: bytes) -> list[Block]:
    """A PDF's text layer as headings and paragraphs (see the module notes). Raises
    :class:`FormatError` for a file pdfminer cannot read; a PDF with no text gives no blocks."""
    lines = _pdf_lines(data)
    if not lines:
        return []
    sizes: Counter[float] = Counter()
    for line in lines:
        sizes[round(line.size, 1)] += len(line.text)
    body_size = sizes.most_common(1)[0][0]  # the size most of the text is set in
    lines = _drop_page_furniture(lines, body_size)
    if not lines:
        return []
    pitch = _usual_pitch(lines, body_size)
    right_edges = _right_edges(lines)
    blocks: list[tuple[str, list[_Line]]] = []
    current: list[_Line] = []
    for line in lines:
        if current and _breaks_paragraph(current[-1], line, pitch, right_edges):
            blocks.append(_classify(current, body_size))
            current = []
        current.append(line)
    if current:
        blocks.append(_classify(current, body_size))
    return _join_across_pages(blocks)


def _pdf_lines(data: bytes) -> list[_Line]:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTChar, LTTextContainer, LTTextLine

    lines: list[_Line] = []
    try:
        for page_number, page in enumerate(extract_pages(io.BytesIO(data), laparams=LAParams())):
            for element in page:
                if not isinstance(element, LTTextContainer):
                    continue
                for line in element:
                    if not isinstance(line, LTTextLine):
                        continue
                    text = _one_line(line.get_text())
                    chars = [c for c in line if isinstance(c, LTChar)]
                    if not text or not chars:
                        continue
                    size = statistics.median(c.size for c in chars)
                    bold = sum(_is_bold(c.fontname) for c in chars) > 0.8 * len(chars)
                    lines.append(_Line(page_number, text, line.x0, line.x1, line.y0, line.y1, size, bold))
    except Exception as exc:  # pdfminer raises many kinds on a damaged or encrypted file
        raise FormatError(f"{type(exc).__name__}: {exc}"[:200]) from None
    return lines


def _is_bold(fontname: str) -> bool:
    return bool(re.search(r"bold|black|heavy|semibold", fontname or "", re.IGNORECASE))


def _drop_page_furniture(lines: list[_Line], body_size: float) -> list[_Line]:
    """Page numbers, and running headers and footers: among the top and bottom two lines of each
    page, those that are a page number or recur (digits aside) on most pages in a font no larger
    than the body's (a recurring larger line is a heading: "Chapter 3")."""
    by_page: dict[int, list[_Line]] = {}
    for line in lines:
        by_page.setdefault(line.page, []).append(line)
    edges: set[int] = set()
    for page_lines in by_page.values():
        ordered = sorted(page_lines, key=lambda li: -li.y1)
        edges.update(id(li) for li in ordered[:2] + ordered[-2:])

    def key(line: _Line) -> str:
        return re.sub(r"\d+", "#", line.text.lower())

    on_pages = Counter(
        k for k, _ in {(key(li), li.page) for li in lines if id(li) in edges and li.size <= body_size + 0.5}
    )
    repeated = {k for k, n in on_pages.items() if len(by_page) >= 3 and n > len(by_page) / 2}
    return [
        li
        for li in lines
        if id(li) not in edges
        or not (_PAGE_NUMBER.fullmatch(li.text) or (key(li) in repeated and li.size <= body_size + 0.5))
    ]


def _usual_pitch(lines: list[_Line], body_size: float) -> float:
    """The usual distance between the baselines of consecutive body lines."""
    pitches = [
        a.y0 - b.y0
        for a, b in pairwise(lines)
        if a.page == b.page
        and abs(a.size - body_size) < 0.5
        and abs(b.size - body_size) < 0.5
        and 0 < a.y0 - b.y0 < 3 * body_size
    ]
    return statistics.median(pitches) if pitches else 1.2 * body_size


def _column(line: _Line) -> tuple[int, int]:
    return line.page, round(line.x0 / 6)  # lines that start at the same left edge of a page


def _right_edges(lines: list[_Line]) -> dict[tuple[int, int], float]:
    """Where the lines of each column end when they run full width (only with enough lines to tell)."""
    ends: dict[tuple[int, int], list[float]] = {}
    for line in lines:
        ends.setdefault(_column(line), []).append(line.x1)
    return {column: max(x1s) for column, x1s in ends.items() if len(x1s) >= 3}


def _breaks_paragraph(previous: _Line, line: _Line, pitch: float, right_edges: dict[tuple[int, int], float]) -> bool:
    if line.page != previous.page:
        return True  # joined again afterwards when the sentence goes on
    gap = previous.y0 - line.y0
    if gap <= 0 or gap > 1.3 * pitch:  # a new column, or a blank line's worth of space
        return True
    if abs(line.size - previous.size) > 0.1 * previous.size or line.bold != previous.bold:
        return True
    right = right_edges.get(_column(previous))
    short = right is not None and previous.x1 < right - 0.15 * (right - previous.x0)
    return short and ends_sentence(previous.text)


def _classify(lines: list[_Line], body_size: float) -> tuple[str, list[_Line]]:
    text = " ".join(line.text for line in lines)
    larger = lines[0].size > 1.15 * body_size
    heading = (
        len(lines) <= 2
        and len(text) <= 150
        and (larger or lines[0].bold)
        and not text.rstrip().endswith((".", ",", ";", ":"))
    )
    return HEADING if heading else PARAGRAPH, lines


def _join_across_pages(blocks: list[tuple[str, list[_Line]]]) -> list[Block]:
    """One block per paragraph; a paragraph that a page break cut mid-sentence is one again."""
    merged: list[tuple[str, list[_Line]]] = []
    for kind, lines in blocks:
        if (
            merged
            and kind == PARAGRAPH
            and merged[-1][0] == PARAGRAPH
            and lines[0].page != merged[-1][1][-1].page
            and not ends_sentence(merged[-1][1][-1].text)
        ):
            merged[-1][1].extend(lines)
        else:
            merged.append((kind, list(lines)))
    return [(kind, join_lines([line.text for line in lines])) for kind, lines in merged]
