"""Turn the raw text of a source document into clean paragraphs and headings.

Every function here is pure (text in, text out) so each repair can be tested on a snippet of the
real seeds. What the seeds contain, and what is repaired:

* PDF exports: hard-wrapped lines, a blank line after every line, words hyphenated across lines,
  page breaks in the middle of a sentence, tabs and trailing spaces.
* Footnote markers glued to words: ``Alliance.i``, ``Talibanxviii``, ``9/11ii``.
* A table flattened into one word per line.
* Web page leftovers: comment forms, photo credits, "Table Of Content", image captions.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SENTENCE_END = (".", "!", "?", "…", ".”", "?”", "!”", ".’", '."', ")", "”", ":")

# Lines that are page furniture rather than content. Matched against a whole stripped line,
# case-insensitively.
BOILERPLATE_LINE_PATTERNS: tuple[str, ...] = (
    r"please enter your (comment|name|e-?mail)( here)?!?",
    r"you have entered an incorrect e-?mail address!?",
    r"no comments?!? be the first one\.?",
    r"leave a (reply|comment)",
    r"table of contents?",
    r"(share|tweet|print|e-?mail)( this( article)?)?:?",
    r"(related|recommended)( (posts?|articles?|stories))?:?",
    r"(advertisement|subscribe( now)?|read more|click here.*)",
    r".{0,120}\|\s*photo( credit)?\s*:.*",
    r"(photo|image|picture)( credit)?\s*:.*",
    r".{0,100}\(via [^)]{1,40}\)",
    r".{0,60}\s[–-]\s*wikipedia",
    r"\*{3,}|-{3,}|_{3,}",
)
_BOILERPLATE = re.compile("|".join(f"(?:{p})" for p in BOILERPLATE_LINE_PATTERNS), re.IGNORECASE)

_ROMAN_VALUES = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}


@dataclass(frozen=True)
class Block:
    """A heading or paragraph of the cleaned text: ``text[start:end]``."""

    kind: str  # "heading" or "paragraph"
    start: int
    end: int


@dataclass(frozen=True)
class CleanText:
    """The cleaned document: paragraphs separated by blank lines, and where each block is."""

    text: str
    blocks: tuple[Block, ...]

    def paragraphs(self) -> list[Block]:
        return [b for b in self.blocks if b.kind == "paragraph"]


def clean_document(raw: str, *, title: str | None = None) -> CleanText:
    """Clean a raw document. ``title``, when known, is dropped from the start of the text."""
    # Footnotes are numbered through the whole document, so their markers are found before the
    # text is cut into lines; a marker at a line end would otherwise hide a sentence end.
    text = strip_footnote_markers(normalize_characters(raw))
    lines = [line.rstrip() for line in text.split("\n")]
    lines = remove_boilerplate_lines(lines)
    if is_double_spaced(lines):
        lines = [line for line in lines if line.strip()]
    paragraphs = [tidy_punctuation(p) for p in reflow(lines)]
    if title:
        paragraphs = drop_title(paragraphs, title)
    return assemble(paragraphs)


def clean_blocks(blocks: Iterable[tuple[str, str]], *, title: str | None = None) -> CleanText:
    """Clean a document whose reader already knows its headings and paragraphs (Markdown, HTML,
    PDF by layout): characters and punctuation are repaired, the structure is kept as given.
    The line-based repairs of :func:`clean_document` are for plain-text exports only."""
    kept = [(kind, tidy_punctuation(" ".join(normalize_characters(text).split()))) for kind, text in blocks]
    kept = [(kind, text) for kind, text in kept if text]
    if title and kept and len(drop_title([kept[0][1]], title)) == 0:
        kept = kept[1:]
    return assemble((text for _, text in kept), kinds=[kind for kind, _ in kept])


def normalize_characters(raw: str) -> str:
    """Unicode NFC, one kind of newline and space, no control or replacement characters."""
    text = unicodedata.normalize("NFC", raw)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = re.sub(r"[\t\u00a0\u2000-\u200a\u202f\u205f\u3000]", " ", text)
    text = text.replace("\u00ad", "")  # soft hyphen
    return "".join(
        ch for ch in text if ch == "\n" or ch == "\u200d" or unicodedata.category(ch) not in {"Cc", "Cs", "Co"}
    ).replace("\ufffd", "")


def remove_boilerplate_lines(lines: Sequence[str]) -> list[str]:
    """Drop lines that are web page furniture (comment forms, captions, share buttons)."""
    return ["" if _BOILERPLATE.fullmatch(line.strip()) else line for line in lines]


def is_double_spaced(lines: Sequence[str]) -> bool:
    """True for PDF exports that put a blank line after (nearly) every line of text."""
    text_lines = [i for i, line in enumerate(lines) if line.strip()]
    if len(text_lines) < 10:
        return False
    followed_by_blank = sum(1 for i in text_lines if i + 1 < len(lines) and not lines[i + 1].strip())
    short_lines = sum(1 for i in text_lines if len(lines[i].strip()) < 200)
    return followed_by_blank / len(text_lines) > 0.6 and short_lines / len(text_lines) > 0.8


def reflow(lines: Sequence[str]) -> list[str]:
    """Join hard-wrapped lines into paragraphs; headings and tables become their own paragraphs.

    A paragraph ends at a blank line (unless the sentence obviously continues, as across a page
    break), before and after a heading, and after a line that ends a sentence well short of the
    document's usual line width.
    """
    width = typical_line_width(lines)
    tables = table_regions(lines, width) if width else []
    groups: list[list[str]] = []
    current: list[str] = []
    blank_before = True
    index = 0
    while index < len(lines):
        table = next((t for t in tables if t[0] == index), None)
        if table is not None:
            if current:
                groups.append(current)
            groups.append([line.strip() for line in lines[table[0] : table[1]] if line.strip()])
            current, blank_before, index = [], True, table[1]
            continue
        raw_line, line = lines[index], lines[index].strip()
        index += 1
        if not line:
            blank_before = True
            continue
        heading = is_heading(line, lines, index - 1, width)
        previous = current[-1] if current else ""
        indented = raw_line.startswith(" ") and not raw_line.startswith(" " * 8)
        new_paragraph = (
            not current
            or heading
            or ((blank_before or width is None) and not continues_sentence(previous, line))
            or (width is not None and indented and ends_sentence(previous))
            or (width is not None and ends_sentence(previous) and len(previous) < 0.8 * width)
        )
        if new_paragraph and current:
            groups.append(current)
            current = []
        current.append(line)
        blank_before = False
        if heading:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return [join_lines(group) for group in groups]


def typical_line_width(lines: Sequence[str]) -> float | None:
    """The usual width of a hard-wrapped document's lines, or None if lines are paragraphs."""
    lengths = [len(line.strip()) for line in lines if len(line.strip()) >= 40]
    if len(lengths) < 10:
        return None
    long_lines = sum(1 for n in lengths if n > 150)
    if long_lines / len(lengths) > 0.2:
        return None
    return float(statistics.quantiles(lengths, n=10)[7])


def table_regions(lines: Sequence[str], width: float, window: int = 8) -> list[tuple[int, int]]:
    """Line ranges where a table was flattened to a few words per line.

    A region starts where most of the next ``window`` lines of text are under 40% of the usual
    width, and lasts while short lines keep coming.
    """
    text_rows = [i for i, line in enumerate(lines) if line.strip()]
    short = {i for i in text_rows if len(lines[i].strip()) < 0.4 * width}
    regions: list[tuple[int, int]] = []
    k = 0
    while k < len(text_rows):
        ahead = text_rows[k : k + window]
        if len(ahead) == window and text_rows[k] in short and sum(i in short for i in ahead) >= 0.75 * window:
            end = k
            while end < len(text_rows) and (
                text_rows[end] in short or _short_share(text_rows[end : end + window], short) >= 1 / 3
            ):
                end += 1
            # Trim trailing long lines: they are prose after the table.
            while end > k and text_rows[end - 1] not in short and ends_sentence(lines[text_rows[end - 1]]):
                end -= 1
            regions.append((text_rows[k], text_rows[end - 1] + 1))
            k = end
        else:
            k += 1
    return regions


_HEADING_LAST_WORDS = {"a", "an", "and", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with"}


def is_heading(line: str, lines: Sequence[str], index: int, width: float | None = None) -> bool:
    """A short title-like line standing between sentences, e.g. "Peace initiatives"."""
    if not looks_like_heading(line) or (width is not None and len(line) > 0.7 * width):
        return False
    previous = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")
    following = next((lines[i].strip() for i in range(index + 1, len(lines)) if lines[i].strip()), "")
    starts_block = not previous or ends_sentence(previous) or looks_like_heading(previous)
    return starts_block and (not following or following[0].isupper() or following[0] in "“\"'‘")


def looks_like_heading(line: str) -> bool:
    words = line.split()
    return (
        0 < len(words) <= 12
        and len(line) <= 90
        and line[0].isupper()
        and words[-1].lower() not in _HEADING_LAST_WORDS
        and not line.rstrip().endswith((".", ",", ";", ":", "?", "!", "-", "”", "’"))
        and not re.search(r"[.!?]\s", line)
    )


def ends_sentence(line: str) -> bool:
    return line.rstrip().endswith(SENTENCE_END)


def continues_sentence(previous: str, line: str) -> bool:
    """Across a blank line (page break), does ``line`` carry on the sentence of ``previous``?"""
    if not previous or ends_sentence(previous):
        return False
    return line[0].islower() or line[0].isdigit() or previous.endswith((",", "-", "–"))


def join_lines(group: Sequence[str]) -> str:
    """Join the lines of one paragraph, mending words hyphenated at a line end."""
    text = ""
    for line in group:
        if not text:
            text = line
        elif re.search(r"[A-Za-z]-$", text) and line[:1].isalpha():
            text += line  # "Inter-" + "Services" keeps the hyphen of a compound word
        else:
            text += " " + line
    return re.sub(r" {2,}", " ", text).strip()


def roman_numeral(n: int) -> str:
    """Lowercase roman numeral for 1 <= n < 400."""
    parts = []
    for value, symbol in (
        (100, "c"),
        (90, "xc"),
        (50, "l"),
        (40, "xl"),
        (10, "x"),
        (9, "ix"),
        (5, "v"),
        (4, "iv"),
        (1, "i"),
    ):
        while n >= value:
            parts.append(symbol)
            n -= value
    return "".join(parts)


def strip_footnote_markers(text: str) -> str:
    """Strip footnote markers numbered i, ii, iii, ... glued to the end of words.

    Footnotes run in sequence through a document, so the next marker is searched for after the
    previous one. A marker counts when it ends a token (``Alliance.i``, ``Talibanxviii``,
    ``9/11ii``) or stands alone, and, for the one-letter numerals that are also word endings, when
    it follows punctuation or a digit, or leaves a word that the document uses elsewhere. A text
    with fewer than three markers in sequence is left alone.
    """
    vocabulary = {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'’-]*", text)}
    removals: list[tuple[int, int]] = []
    position = 0
    misses = 0
    n = 1
    while misses < 3 and n < 400:
        found = _find_marker(text, roman_numeral(n), position, vocabulary)
        if found is None:
            misses += 1  # tolerate a marker lost in extraction, but stop after three
        else:
            misses = 0
            removals.append(found)
            position = found[1]
        n += 1
    if len(removals) < 3:
        return text
    for start, end in reversed(removals):
        text = text[:start] + text[end:]
    return text


def _find_marker(text: str, numeral: str, position: int, vocabulary: set[str]) -> tuple[int, int] | None:
    pattern = re.compile(rf"(?<=[\w.,;:’”\")\]/-]){numeral}(?=[\s.,;:’”\")]|$)|(?<=\s){numeral}(?=\s)")
    # Search at most a few thousand characters ahead: footnotes are dense where they occur.
    for match in pattern.finditer(text, position, min(len(text), position + 6000)):
        start, end = match.span()
        before = text[start - 1] if start else " "
        token_start = start
        while token_start > 0 and not text[token_start - 1].isspace():
            token_start -= 1
        word = re.sub(r"[^A-Za-z'’-]", "", text[token_start:start]).lower()
        whole = re.sub(r"[^A-Za-z'’-]", "", text[token_start:end]).lower()
        if before.isspace():
            if len(numeral) > 1 or (end < len(text) and text[end] == "\n"):
                return start, end
            continue
        if before.isalpha() and whole in vocabulary and _count_word(text, whole) > 1:
            continue  # "Kremlin" should not lose its "in"; a word used elsewhere is real
        if len(numeral) > 1 or not before.isalpha() or word in vocabulary:
            return start, end
    return None


def _count_word(text: str, word: str) -> int:
    return len(re.findall(rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])", text, re.IGNORECASE))


def tidy_punctuation(paragraph: str) -> str:
    """Mend doubled punctuation and spacing left by the exports ("ISIS..", "April,, 2013")."""
    text = re.sub(r"(?<!\.)\.\.(?!\.)", ".", paragraph)
    text = re.sub(r",{2,}", ",", text)
    text = re.sub(r"\s+([,.;:!?])(?=\s|$)", r"\1", text)
    text = re.sub(r"\.,\s", ". ", text)
    return re.sub(r"\s{2,}", " ", text).strip()


def drop_title(paragraphs: Sequence[str], title: str) -> list[str]:
    """The document's own title line duplicates the citation; drop it from the passages."""

    def key(s: str) -> str:
        return re.sub(r"[^a-z0-9]+", " ", re.sub(r"['’]", "", s.lower())).strip()

    title_key = key(title)
    result = list(paragraphs)
    if result and title_key and key(result[0]).startswith(title_key) and len(result[0]) <= len(title) + 40:
        result.pop(0)
    return result


def assemble(paragraphs: Iterable[str], kinds: Sequence[str] | None = None) -> CleanText:
    """Join paragraphs with blank lines and record where each block is. Without ``kinds`` a
    block is a heading when it looks like one."""
    blocks: list[Block] = []
    parts: list[str] = []
    offset = 0
    for i, paragraph in enumerate(paragraphs):
        if not paragraph:
            continue
        if parts:
            offset += 2
        kind = kinds[i] if kinds is not None else "heading" if looks_like_heading(paragraph) else "paragraph"
        blocks.append(Block(kind, offset, offset + len(paragraph)))
        parts.append(paragraph)
        offset += len(paragraph)
    return CleanText("\n\n".join(parts), tuple(blocks))


def _short_share(rows: Sequence[int], short: set[int]) -> float:
    return sum(i in short for i in rows) / len(rows)
