"""Pure functions that turn search results into Telegram messages (HTML parse mode) and back.

Nothing here talks to Telegram or searches: every function takes plain data and returns
strings, keyboards or small records, so all of it is unit-tested without a network.

Rules every message follows:

* all source and user text goes through :func:`esc` (``html.escape``); the only tags used are
  ``b``, ``i``, ``code``, ``a href`` and ``blockquote``, always closed in order;
* no message is longer than :data:`MAX_MESSAGE` UTF-16 code units *as Telegram counts them*
  (the text after entity parsing). Long text is cut at a sentence or word boundary with
  :func:`clip`, never inside a tag, an entity or a surrogate pair, and :func:`fit_html` is the
  last guard on every outgoing message;
* callback data is at most :data:`MAX_CALLBACK_BYTES` bytes and decoding never raises.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from embeddings.search import NO_WORDS, NOT_COVERED, Context, DocumentInfo, Hit, SearchResult
from embeddings.sources import Citation
from embeddings.temporal import as_of_label, date_value

MAX_MESSAGE = 4096  # UTF-16 code units of text after entity parsing
MAX_CALLBACK_BYTES = 64
MAX_PAGE = 9999  # pages of "More results" (callback data holds up to 4 digits)
COMPACT_PASSAGE = 420  # units per passage in group answers (the best sentence is kept whole if it fits)
MAX_INLINE_TITLE = 120
MAX_INLINE_DESCRIPTION = 140
ELLIPSIS = "…"

EXAMPLE_QUESTIONS = (
    "Why did Russia start talking to the Taliban?",
    "Who overthrew King Zahir Shah?",
    "Has Russia recognised the Taliban government?",
)


# ------------------------------------------------------------------------------------ text basics


def esc(text: str) -> str:
    """Escape text for Telegram HTML (``&``, ``<``, ``>`` and both quotes)."""
    return html.escape(text, quote=True)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` made safe to send: surrogate code points (a Python ``str`` can hold them, UTF-8 and
    Telegram cannot) are paired up into the character they encode or replaced with U+FFFD, and
    control characters other than tab, line feed and carriage return are dropped (those that count
    as white space become a space). Everything else (right-to-left text, zero-width joiners, emoji
    sequences) is kept as it is."""
    if _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return _CONTROL.sub(_control_replacement, text)


def _control_replacement(match: re.Match[str]) -> str:
    return " " if match.group().isspace() else ""


def squash(text: str) -> str:
    """Collapse every run of whitespace (line breaks of the source included) to one space."""
    return re.sub(r"\s+", " ", text)


_BREAK_RUN = re.compile(r"\s*\n\s*")  # a whole run of whitespace that holds a line break
_SPACE_RUN = re.compile(r"[^\S\n]+")


def tidy(text: str) -> str:
    """Like :func:`squash`, but a run of whitespace holding a line break becomes one line break
    (paragraphs and headings of a source stay on their own lines)."""
    # two plain substitutions: a callback per match cost about 4% of the bot's event loop under load
    return _SPACE_RUN.sub(" ", _BREAK_RUN.sub("\n", text))


_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*\s")
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}


def _unsafe_cut(text: str, i: int) -> bool:
    """True when cutting ``text`` before index ``i`` would split a character Telegram shows as one:
    a surrogate pair (in strings holding lone surrogates), an emoji ZWJ sequence, a variation
    selector or a combining mark, or a skin-tone modifier from its emoji."""
    if i <= 0 or i >= len(text):
        return False
    before, after = text[i - 1], text[i]
    if "\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff":
        return True
    if before in _JOINERS or after in _JOINERS:
        return True
    if "\U0001f3fb" <= after <= "\U0001f3ff":  # skin tone modifiers
        return True
    if "\U0001f1e6" <= before <= "\U0001f1ff" and "\U0001f1e6" <= after <= "\U0001f1ff":
        # regional indicators pair up into flags: only cut after an even number of them
        run = 0
        j = i - 1
        while j >= 0 and "\U0001f1e6" <= text[j] <= "\U0001f1ff":
            run += 1
            j -= 1
        return run % 2 == 1
    return unicodedata.combining(after) != 0


def _prefix_fitting(text: str, units: int) -> int:
    """The largest index ``i`` with ``utf16_len(text[:i]) <= units``, moved back to a safe cut."""
    if units <= 0:
        return 0
    used = 0
    i = 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > units:
            break
        used += width
        i += 1
    while i > 0 and _unsafe_cut(text, i):
        i -= 1
    return i


def clip(text: str, limit: int, *, min_keep: float = 0.5) -> str:
    """Cut ``text`` to at most ``limit`` UTF-16 units, marking the cut with "…".

    The cut falls after the last full sentence if that keeps at least ``min_keep`` of the room,
    else after the last whole word, and only as a last resort inside a word. It never splits a
    surrogate pair or an emoji sequence. ``text`` is plain text (escape it afterwards).
    """
    if utf16_len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    if limit == 1:
        return ELLIPSIS
    room = _prefix_fitting(text, limit - 1)  # keep one unit for the ellipsis
    head = text[:room]
    floor = int(len(head) * min_keep)
    sentence_end = -1
    probe = head + (" " if room < len(text) and text[room].isspace() else "")
    for match in _SENTENCE_END.finditer(probe):
        sentence_end = match.end() - 1
    if sentence_end >= floor and sentence_end > 0:
        cut = head[:sentence_end].rstrip()
        if utf16_len(cut) + 2 <= limit:
            return cut + " " + ELLIPSIS
        return cut + ELLIPSIS
    space = max(head.rfind(" "), head.rfind("\n"))
    if room < len(text) and text[room].isspace():
        space = room  # the cut already falls on a word boundary
    if space >= floor and space > 0:
        return head[:space].rstrip(" ,;:—–-\n") + ELLIPSIS
    return head + ELLIPSIS


def clip_left(text: str, limit: int, *, min_keep: float = 0.5) -> str:
    """Like :func:`clip` but keeps the *end* of ``text`` ("… rest of the text")."""
    if utf16_len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS if limit == 1 else ""
    # mirror: find the shortest suffix start so that the suffix fits in limit - 1 units
    units = limit - 1
    start = len(text)
    used = 0
    while start > 0:
        width = 2 if ord(text[start - 1]) > 0xFFFF else 1
        if used + width > units:
            break
        used += width
        start -= 1
    while start < len(text) and _unsafe_cut(text, start):
        start += 1
    tail = text[start:]
    ceiling = len(tail) - int(len(tail) * min_keep)
    # prefer starting right after a sentence end, else after a space
    best = -1
    for match in _SENTENCE_END.finditer(tail):
        best = match.end()
        break
    if 0 <= best <= ceiling:
        return (
            ELLIPSIS + " " + tail[best:].lstrip()
            if utf16_len(tail[best:].lstrip()) + 2 <= limit
            else ELLIPSIS + tail[best:].lstrip()
        )
    space = re.search(r"\s", tail)
    if space is not None and space.start() <= ceiling:
        return ELLIPSIS + tail[space.start() :].lstrip()
    return ELLIPSIS + tail


# --------------------------------------------------------------------------- HTML measuring and fitting

_TOKEN = re.compile(r"<[^>]*>|[^<]+")
_TAG = re.compile(r"<\s*(/?)\s*([a-zA-Z][\w-]*)")


def html_to_text(message: str) -> str:
    """The plain text Telegram shows for our HTML (tags dropped, character references decoded)."""
    return html.unescape(re.sub(r"<[^>]*>", "", message))


TELEGRAM_TRIMS = " \t\n\r\f\v"  # Telegram trims only these (not U+2028, U+00A0... which str.strip() drops)


def html_len(message: str) -> int:
    """Length of an HTML message as Telegram counts it (after entity parsing, trimmed)."""
    return utf16_len(html_to_text(message).strip(TELEGRAM_TRIMS))


def fit_html(message: str, limit: int = MAX_MESSAGE) -> str:
    """Return ``message`` cut to ``limit`` units of visible text, tags kept balanced.

    The cut falls in a text run, at a sentence or word boundary (see :func:`clip`); tags that
    are open at that point are closed in order; nothing after the cut is kept.
    """
    message = clean_text(message)
    if html_len(message) <= limit:
        return message
    out: list[str] = []
    stack: list[str] = []
    used = 0
    for token in _TOKEN.findall(message):
        if token.startswith("<"):
            match = _TAG.match(token)
            if match:
                closing, name = match.group(1), match.group(2).lower()
                if closing:
                    if stack and stack[-1] == name:
                        stack.pop()
                else:
                    stack.append(name)
            out.append(token)
            continue
        text = html.unescape(token)
        width = utf16_len(text)
        if used + width <= limit:
            out.append(token)
            used += width
            continue
        out.append(esc(clip(text, limit - used)))
        break
    out.extend(f"</{name}>" for name in reversed(stack))
    return "".join(out)


# ------------------------------------------------------------------------------------------ citations


def safe_url(url: str) -> str | None:
    """The URL if it can go in an ``href`` (http or https with a host), else None."""
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def citation_html(citation: Citation, *, max_title: int = 200) -> str:
    """Title (linked to the source when its URL is known), then author or publisher, then the
    date, or "undated": every citation says how old its source is."""
    title = esc(clip(squash(citation.title).strip() or "Untitled", max_title))
    url = safe_url(citation.url)
    head = f'<a href="{esc(url)}">{title}</a>' if url else f"<i>{title}</i>"
    byline = squash(citation_byline(citation)).strip()
    return f"{head} — {esc(byline)}"


def citation_byline(citation: Citation) -> str:
    """Authors or publisher and the date: "EurAsian Times, 2024"; "undated" without a date."""
    return citation.byline() if citation.date else ", ".join(filter(None, (citation.byline(), "undated")))


# -------------------------------------------------------------------------------------------- passages


def passage_html(text: str, highlight: tuple[int, int] | None, budget: int) -> str:
    """A passage with its best sentence in bold, cut to ``budget`` units around that sentence."""
    if highlight is not None:
        lo, hi = highlight
        lo, hi = max(0, min(lo, len(text))), max(0, min(hi, len(text)))
        if hi <= lo:
            lo = hi = 0
    else:
        lo = hi = 0
    before, sentence, after = tidy(text[:lo]).lstrip(), tidy(text[lo:hi]), tidy(text[hi:]).rstrip()
    if not sentence.strip():
        return esc(clip(tidy(text).strip(), budget))
    # spaces around the bold sentence stay outside the tag
    lead = sentence[: len(sentence) - len(sentence.lstrip())]
    trail = sentence[len(sentence.rstrip()) :]
    sentence = sentence.strip()
    before += lead
    after = trail + after
    budget = max(budget, 1)
    if utf16_len(sentence) >= budget:
        return f"<b>{esc(clip(sentence, budget))}</b>"
    room = budget - utf16_len(sentence)
    # the text before the sentence gets half of the room, or more when the text after is short
    before_room = min(utf16_len(before), max(room - utf16_len(after), room // 2))
    before_part = clip_left(before, before_room) if before else ""
    after_part = clip(after, room - utf16_len(before_part)) if after else ""
    return f"{esc(before_part)}<b>{esc(sentence)}</b>{esc(after_part)}"


def hit_html(hit: Hit, budget: int, *, older: bool = False) -> str:
    """One numbered passage: citation line, then the passage quoted with its best sentence bold.

    ``older``: the question is about the present and a newer source is shown first, so this
    passage is marked "as of <year>"."""
    marker = f" · <b>{esc(as_of_label(hit.date))}</b>" if older else ""
    return (
        f"<b>{hit.rank}.</b> {citation_html(hit.citation)}{marker}\n"
        f"<blockquote>{passage_html(hit.text, hit.highlight, budget)}</blockquote>"
    )


def older_hits(hits: Sequence[Hit], current: bool) -> list[bool]:
    """For a question about the present, which passages come from a source older than the
    newest one shown (to be marked "as of 2017"); all False for other questions."""
    if not current or not hits:
        return [False] * len(hits)
    newest = max(date_value(h.date) for h in hits)
    return [date_value(h.date) < newest for h in hits]


@dataclass(frozen=True)
class Answer:
    """A message ready to send: HTML text and its inline keyboard (or None)."""

    html: str
    keyboard: InlineKeyboardMarkup | None = None


def question_note(question: str, cut: bool, corrected: str | None) -> str:
    lines = []
    if cut:
        lines.append("✂️ <i>Your question was long, so I used only its beginning.</i>")
    if corrected:
        lines.append(f"Showing results for “<i>{esc(clip(squash(corrected).strip(), 300))}</i>”.")
    return "\n".join(lines)


def answer_html(
    result: SearchResult,
    *,
    question: str | None = None,
    page: int = 0,
    per_page: int = 3,
    cut: bool = False,
    limit: int = MAX_MESSAGE,
    passage_limit: int | None = None,
    documents: int | None = None,
) -> str:
    """The text of an answer: a short header, then the passages, all within ``limit``.
    ``documents``: how many documents the index holds (said when the sources don't cover it)."""
    question = squash(question if question is not None else result.query).strip()
    note = question_note(question, cut, result.corrected_query)
    if result.declined_reason == NOT_COVERED and page == 0:
        return not_covered_html(result, note, question=question, limit=limit, passage_limit=passage_limit)
    if result.abstained or not result.hits:
        return fit_html(
            abstain_html(
                question,
                note,
                paged=page > 0 and not result.abstained,
                reason=result.declined_reason,
                documents=documents,
            ),
            limit,
        )
    first = result.hits[0].rank
    last = result.hits[-1].rank
    span = f"{first}–{last}" if last > first else f"{first}"
    total = f" of {result.total}" if result.total >= last else ""
    header = f"🔎 <b>Passages {span}{total}</b> for “<i>{esc(clip(question, 200))}</i>”"
    older = older_hits(result.hits, result.current)
    if any(older):
        note = "\n".join(
            filter(
                None,
                (
                    note,
                    "🕰 <i>You asked about the present: the newest source comes first; "
                    "older ones are marked with their date.</i>",
                ),
            )
        )
    head = header + (f"\n{note}" if note else "")
    return fit_html(head + "\n\n" + passages_html(result.hits, older, limit - html_len(head), passage_limit), limit)


def passages_html(hits: Sequence[Hit], older: Sequence[bool], room: int, passage_limit: int | None) -> str:
    """The numbered passages, sharing ``room`` units left by the header and citations."""
    overhead = sum(html_len(hit_html(h, 0, older=o)) + 2 for h, o in zip(hits, older, strict=True)) + 8
    budget = max(80, (room - overhead) // max(1, len(hits)))
    if passage_limit is not None:
        budget = min(budget, passage_limit)
    return "\n\n".join(hit_html(h, budget, older=o) for h, o in zip(hits, older, strict=True))


def missing_terms_text(terms: Sequence[str]) -> str:
    """ "“population”", "“gdp” or “currency”" — the words no source uses."""
    quoted = [f"“{esc(clip(t, 60))}”" for t in terms[:4]]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def asked_html(question: str) -> str:
    """The question a decline answers, quoted as the passages' header quotes it: with several
    questions in flight, each answer says which one it is for."""
    return f"“<i>{esc(clip(question, 200))}</i>”"


def not_covered_html(
    result: SearchResult,
    note: str = "",
    *,
    question: str | None = None,
    limit: int = MAX_MESSAGE,
    passage_limit: int | None = None,
) -> str:
    """On topic, but the sources never mention what the question is about: say what is missing,
    then the closest passages, marked as not answering."""
    asked = f" (asked: {asked_html(question)})" if question else ""
    head = (note + "\n" if note else "") + (
        f"🤷 <b>The sources don't mention {missing_terms_text(result.missing_terms)}</b>{asked}."
    )
    if not result.closest:
        return fit_html(head, limit)
    head += "\nThe closest passages, which <b>do not answer</b> your question:"
    older = [False] * len(result.closest)
    return fit_html(head + "\n\n" + passages_html(result.closest, older, limit - html_len(head), passage_limit), limit)


NO_WORDS_REPLY = (
    "🤷 I couldn't find any words to search for in that. Please ask a question in words, "
    "e.g. “<i>" + esc(EXAMPLE_QUESTIONS[1]) + "</i>”."
)


def documents_phrase(documents: int | None) -> str:
    """ "3 documents", "one document"; None (not known): "a small library of documents"."""
    if documents is None:
        return "a small library of documents"
    return "one document" if documents == 1 else f"{documents} documents"


def abstain_html(
    question: str, note: str = "", *, paged: bool = False, reason: str | None = None, documents: int | None = None
) -> str:
    if paged:
        text = "That was the last of the passages for this question."
    elif reason == NO_WORDS:
        text = NO_WORDS_REPLY
    else:
        text = (
            f"🤷 <b>The sources don't cover {asked_html(question) if question else 'that'}.</b>\n"
            f"I can only answer from {documents_phrase(documents)} about Russia–Taliban relations "
            "(/sources lists them). "
            "Try rephrasing, or ask something like “<i>" + esc(EXAMPLE_QUESTIONS[0]) + "</i>”."
        )
    return (note + "\n" if note else "") + text


# -------------------------------------------------------------------------------------- callback data


@dataclass(frozen=True)
class MoreData:
    """ "More results": the question under ``token`` in the query cache, page ``page``."""

    token: str
    page: int


@dataclass(frozen=True)
class ContextData:
    """ "Context": the text around ``start..end`` of document ``doc_key``."""

    doc_key: str
    start: int
    end: int


@dataclass(frozen=True)
class VoteData:
    """A 👍 (``vote`` 1) or 👎 (-1) on the answer under ``token``."""

    token: str
    vote: int


_MORE_RE = re.compile(r"m:([A-Za-z0-9_-]{1,22}):([0-9]{1,4})")
_VOTE_RE = re.compile(r"v:([A-Za-z0-9_-]{1,22}):([ud])")
_CONTEXT_RE = re.compile(r"c:([A-Za-z0-9_.-]{1,40}):([0-9]{1,10}):([0-9]{1,10})")


def encode_more(token: str, page: int) -> str:
    return _checked(f"m:{token}:{page}")


def encode_context(doc_key: str, start: int, end: int) -> str:
    return _checked(f"c:{doc_key}:{start}:{end}")


def encode_vote(token: str, vote: int) -> str:
    return _checked(f"v:{token}:{'u' if vote > 0 else 'd'}")


def _checked(data: str) -> str:
    if len(data.encode("utf-8")) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data longer than {MAX_CALLBACK_BYTES} bytes: {data!r}")
    if decode_callback(data) is None:
        raise ValueError(f"callback data would not decode: {data!r}")
    return data


def decode_callback(data: object) -> MoreData | ContextData | VoteData | None:
    """Parse callback data; anything malformed, forged or oversized gives None (never raises)."""
    if not isinstance(data, str) or len(data.encode("utf-8", "surrogatepass")) > MAX_CALLBACK_BYTES:
        return None
    match = _MORE_RE.fullmatch(data)
    if match:
        return MoreData(match.group(1), int(match.group(2)))
    match = _VOTE_RE.fullmatch(data)
    if match:
        return VoteData(match.group(1), 1 if match.group(2) == "u" else -1)
    match = _CONTEXT_RE.fullmatch(data)
    if match:
        start, end = int(match.group(2)), int(match.group(3))
        if start < end:
            return ContextData(match.group(1), start, end)
    return None


@dataclass(frozen=True)
class Votes:
    """The 👍/👎 row of an answer: its token, the counts, and the viewer's own vote (private
    chats: shown with a tick; groups show the counts, never who pressed)."""

    token: str
    up: int = 0
    down: int = 0
    mine: int = 0
    compact: bool = False


def vote_row(votes: Votes) -> list[InlineKeyboardButton]:
    if votes.compact:
        labels = (f"👍 {votes.up}", f"👎 {votes.down}")
    else:
        labels = ("👍 ✓" if votes.mine > 0 else "👍", "👎 ✓" if votes.mine < 0 else "👎")
    return [
        InlineKeyboardButton(labels[0], callback_data=encode_vote(votes.token, 1)),
        InlineKeyboardButton(labels[1], callback_data=encode_vote(votes.token, -1)),
    ]


def with_votes(keyboard: InlineKeyboardMarkup | None, votes: Votes) -> InlineKeyboardMarkup:
    """``keyboard`` with its vote row replaced (or added as the last row)."""
    rows = [
        list(row)
        for row in (keyboard.inline_keyboard if keyboard else ())
        if not any(isinstance(b.callback_data, str) and b.callback_data.startswith("v:") for b in row)
    ]
    return InlineKeyboardMarkup([*rows, vote_row(votes)])


def answer_keyboard(
    hits: Sequence[Hit],
    *,
    token: str | None,
    page: int,
    has_more: bool,
    compact: bool = False,
    votes: Votes | None = None,
) -> InlineKeyboardMarkup | None:
    """Context buttons (one per passage), the paging buttons and the 👍/👎 row."""
    rows: list[list[InlineKeyboardButton]] = []
    context_row = [
        InlineKeyboardButton(
            f"📖 {h.rank}" if compact else f"📖 Context {h.rank}",
            callback_data=encode_context(h.doc_key, h.start, h.end),
        )
        for h in hits
    ]
    if context_row:
        rows.append(context_row)
    paging = []
    if token is not None and page > 0:
        paging.append(InlineKeyboardButton("◀ Back", callback_data=encode_more(token, page - 1)))
    if token is not None and has_more and page + 1 <= MAX_PAGE:
        paging.append(InlineKeyboardButton("More results ▶", callback_data=encode_more(token, page + 1)))
    if paging:
        rows.append(paging)
    if votes is not None:
        rows.append(vote_row(votes))
    return InlineKeyboardMarkup(rows) if rows else None


def build_answer(
    result: SearchResult,
    *,
    question: str,
    token: str | None,
    page: int,
    per_page: int,
    cut: bool = False,
    compact: bool = False,
    votes: Votes | None = None,
    documents: int | None = None,
) -> Answer:
    """The full answer message for one page of a result (``votes``: with a 👍/👎 row)."""
    text = answer_html(
        result,
        question=question,
        page=page,
        per_page=per_page,
        cut=cut,
        passage_limit=COMPACT_PASSAGE if compact else None,
        documents=documents,
    )
    if result.declined_reason == NOT_COVERED and result.closest and page == 0:
        return Answer(text, answer_keyboard(result.closest, token=None, page=0, has_more=False, compact=compact))
    if result.abstained or not result.hits:
        back = answer_keyboard([], token=token, page=page, has_more=False) if page > 0 else None
        return Answer(text, back)
    has_more = result.total > result.hits[-1].rank
    keyboard = answer_keyboard(result.hits, token=token, page=page, has_more=has_more, compact=compact, votes=votes)
    return Answer(text, keyboard)


# ---------------------------------------------------------------------------------------- context


def context_html(context: Context, limit: int = MAX_MESSAGE) -> str:
    """The text around a passage, the passage itself in bold, under its citation."""
    lo, hi = context.passage
    header = f"📖 <b>Context</b> · {citation_html(context.citation)}\n"
    room = max(200, limit - html_len(header) - 4)
    body = passage_html(context.text, (lo, hi), room)
    return fit_html(f"{header}<blockquote>{body}</blockquote>", limit)


# ---------------------------------------------------------------------------------------- commands


def start_html(bot_username: str | None, documents: int | None = None) -> str:
    mention = f"@{bot_username}" if bot_username else "this bot"
    examples = "\n".join(f"• <i>{esc(q)}</i>" for q in EXAMPLE_QUESTIONS)
    library = "a small library of documents" if documents is None else f"a library of {documents_phrase(documents)}"
    return (
        "👋 <b>Hello!</b> I answer questions about <b>Russia–Taliban relations</b> with the most relevant "
        f"passages from {library} (/sources), each with its citation. I quote my sources; "
        "I don't make anything up. The sources are in English: please ask in English.\n\n"
        f"Just send me a question, for example:\n{examples}\n\n"
        f"In groups, use /ask or mention {esc(mention)}. /help tells you more."
    )


def help_html(bot_username: str | None, *, results_private: int, results_group: int) -> str:
    mention = f"@{bot_username}" if bot_username else "@botname"
    return (
        "ℹ️ <b>How to use me</b>\n\n"
        f"<b>Private chat:</b> send any question. I reply with the {results_private} best passages, "
        "the sentence that matches best in bold. <b>More results</b> shows the next passages, "
        "<b>Context</b> shows the text around a passage.\n\n"
        f"<b>Groups:</b> <code>/ask your question</code>, mention {esc(mention)} in a message, or reply to "
        f"one of my messages. I answer with the {results_group} best passages and stay quiet otherwise.\n\n"
        f"<b>Any chat:</b> type {esc(mention)} and a question to pick a passage to share.\n\n"
        "<b>Commands</b>\n"
        "/ask <i>question</i> — ask a question\n"
        "/sources — the documents I quote\n"
        "/about — version and index\n"
        "/help — this message\n\n"
        "Edited messages are ignored: send a corrected question as a new message."
    )


def sources_html(documents: Iterable[DocumentInfo], *, admin: bool = False) -> str:
    """Each document: title (linked when its URL is known), date, author or publisher, passage
    count; for administrators also the file name in the seeds folder."""
    documents = list(documents)
    lines = [f"📚 <b>Sources</b> ({documents_phrase(len(documents))})"]
    for n, doc in enumerate(documents, start=1):
        citation = doc.citation
        title = esc(clip(squash(citation.title).strip() or "Untitled", 200))
        url = safe_url(citation.url)
        head = f'<a href="{esc(url)}">{title}</a>' if url else f"<i>{title}</i>"
        who = ", ".join(citation.authors) if citation.authors else citation.publisher
        if citation.authors and citation.publisher:
            who = f"{who} ({citation.publisher})"
        details = [
            f"date: {esc(citation.date or 'unknown')}",
            f"by: {esc(squash(who).strip() or 'unknown')}",
            f"{doc.passages} passages",
        ]
        if admin:
            details.append(f"file: <code>{esc(doc.doc_id)}</code>")
        lines.append(f"\n{n}. {head}\n   " + " · ".join(details))
    if not documents:
        lines.append("The index holds no documents.")
    return fit_html("\n".join(lines))


def about_html(version: str, manifest: dict, documents: int, passages: int, build_id: str | None = None) -> str:
    built = str(manifest.get("built_at") or "unknown")
    model = str(manifest.get("model") or "unknown")
    return fit_html(
        "🤖 <b>citebot</b> " + esc(version) + "\n"
        "Cited answers about Russia–Taliban relations.\n\n"
        f"<b>Index:</b> {documents_phrase(documents)}, {passages} passages\n"
        f"<b>Build:</b> <code>{esc(build_id or 'unknown')}</code>, built {esc(built)}\n"
        f"<b>Model:</b> {esc(model)}"
    )


USAGE_ASK = "Usage: <code>/ask your question</code>, e.g. <code>/ask " + esc(EXAMPLE_QUESTIONS[0]) + "</code>"
EMPTY_QUESTION = (
    "Please send your question as text, e.g. “<i>" + esc(EXAMPLE_QUESTIONS[1]) + "</i>”. /help explains more."
)
NOT_TEXT = "I can only read text. Send me your question as a message — /help explains how."
RATE_LIMITED = (
    "⏳ You are asking faster than I can answer ({limit} questions a minute). "
    "Please wait about {seconds} seconds — I'll answer new questions then."
)
SOMETHING_WRONG = "⚠️ Sorry, something went wrong on my side. Please try again in a moment."
STALE_BUTTON = "This button has expired. Please ask your question again."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
NO_MORE = "No more passages for this question."
NOT_ALLOWED = (
    "Sorry, this is a private bot: it only answers in the chats its owner has allowed. It won't reply here again."
)
RELOAD_REFUSED = "Sorry, only the bot's administrators can reload the index."
RELOAD_UNAVAILABLE = "This bot was started without an index keeper, so it cannot reload the index."


def reload_html(summary: str, ok: bool, changed: bool = True) -> str:
    """The answer to /reload: the rebuild's one-line summary (``changed`` False: nothing to do)."""
    if not ok:
        head = "⚠️ <b>Reload failed</b>"
    elif changed:
        head = "🔄 <b>Index reloaded</b>"
    else:
        head = "✅ <b>Nothing changed</b>: the index already matches the seeds (/reload force re-embeds all)."
    return fit_html(f"{head}\n{esc(summary)}")


def admin_alert_html(message: str) -> str:
    """What the administrators are sent when the index could not follow the seeds."""
    return fit_html(f"⚠️ <b>citebot: the index could not be updated</b>\n{esc(message)}")


def rate_limited_html(limit: int, seconds: float) -> str:
    return RATE_LIMITED.format(limit=limit, seconds=max(1, round(seconds)))


def slow_down_text(seconds: float) -> str:
    """The answer to a button pressed too often (a callback answer: plain text, at most 200 characters)."""
    return f"Too many presses: try again in {max(1, round(seconds))} s."


# ------------------------------------------------------------------------------------------ inline


@dataclass(frozen=True)
class InlineArticle:
    id: str
    title: str
    description: str
    html: str


def inline_article(hit: Hit) -> InlineArticle:
    """One inline result: title = document, description = start of the passage, message = passage
    with its citation."""
    body = passage_html(hit.text, hit.highlight, 3000)
    message = fit_html(f"<blockquote>{body}</blockquote>\n— {citation_html(hit.citation)}")
    return InlineArticle(
        id=f"{hit.doc_key}:{hit.start}:{hit.end}"[:64],
        title=clip(squash(clean_text(hit.citation.title)).strip() or "Untitled", MAX_INLINE_TITLE),
        description=clip(squash(clean_text(f"{hit.date or 'undated'} · {hit.text}")).strip(), MAX_INLINE_DESCRIPTION),
        html=message,
    )


def inline_help_article(bot_username: str | None) -> InlineArticle:
    mention = f"@{bot_username}" if bot_username else "@botname"
    return InlineArticle(
        id="help",
        title="Ask about Russia–Taliban relations",
        description=f"Type a question after {mention} to find a cited passage",
        html=(
            f"Type {esc(mention)} followed by a question about Russia–Taliban relations to share a cited "
            f"passage, e.g. <i>{esc(mention)} {esc(EXAMPLE_QUESTIONS[1])}</i>"
        ),
    )


def inline_nothing_article(query: str, missing_terms: Sequence[str] = ()) -> InlineArticle:
    """The one inline result of a declined question; with ``missing_terms`` (on topic, not
    covered) it names what the sources never mention."""
    quoted = esc(clip(squash(clean_text(query)).strip(), 300))
    if missing_terms:
        missing = missing_terms_text([clean_text(t) for t in missing_terms])
        return InlineArticle(
            id="none",
            title=clip(f"The sources don't mention {html_to_text(missing)}", MAX_INLINE_TITLE),
            description="On topic, but none of the documents says it",
            html=fit_html(f"🤷 The sources don't mention {missing} (asked: “<i>{quoted}</i>”)."),
        )
    return InlineArticle(
        id="none",
        title="The sources don't cover that",
        description="Try rephrasing your question about Russia–Taliban relations",
        html=fit_html(f"🤷 The sources don't cover “<i>{quoted}</i>”."),
    )


# ----------------------------------------------------------------------------------- questions


def clean_question(text: str, max_chars: int) -> tuple[str, bool]:
    """The question to search for and whether it had to be cut to ``max_chars`` (made safe with
    :func:`clean_text` first: whatever a client sends, the question can be searched and quoted)."""
    text = squash(clean_text(text)).strip()
    if len(text) <= max_chars:
        return text, False
    return clip(text, max_chars).rstrip(ELLIPSIS).rstrip(), True


def has_words(text: str) -> bool:
    """True if ``text`` holds at least one letter or digit (not only emoji or punctuation)."""
    return any(ch.isalnum() for ch in text)


def entity_text(text: str, offset: int, length: int) -> str:
    """The part of ``text`` a message entity covers (``offset``, ``length`` in UTF-16 code units),
    also when ``text`` holds a lone surrogate (which a strict UTF-16 encoding refuses)."""
    units = text.encode("utf-16-le", "surrogatepass")
    return units[2 * offset : 2 * (offset + length)].decode("utf-16-le", "surrogatepass")


def strip_mention(text: str, username: str | None) -> str:
    """The message text without ``@username`` mentions of the bot."""
    if not username:
        return text
    return re.sub(rf"(?<![\w@])@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE)


# -------------------------------------------------------------------------------------- languages

# "Ask in English", in the language of the question. The example stays English: it is what to type.
ASK_IN_ENGLISH = {
    "ru": "🌐 Источники, из которых я отвечаю, написаны на английском, и я понимаю только вопросы на "
    "английском. Пожалуйста, задайте вопрос по-английски, например: «{example}»",
    "uk": "🌐 Джерела, з яких я відповідаю, написані англійською, і я розумію лише запитання англійською. "
    "Будь ласка, поставте запитання англійською, наприклад: «{example}»",
    "fa": "🌐 منابعی که از آن‌ها پاسخ می‌دهم به زبان انگلیسی هستند و من فقط پرسش‌های انگلیسی را می‌فهمم. "
    "لطفاً پرسش خود را به انگلیسی بنویسید، مثلاً: «{example}»",
    "ar": "🌐 المصادر التي أجيب منها مكتوبة باللغة الإنجليزية، ولا أفهم إلا الأسئلة بالإنجليزية. "
    "يُرجى كتابة سؤالك بالإنجليزية، مثلًا: «{example}»",
    "fr": "🌐 Mes sources sont en anglais et je ne comprends que les questions en anglais. "
    "Posez votre question en anglais, par exemple : « {example} »",
    "de": "🌐 Meine Quellen sind auf Englisch, und ich verstehe nur Fragen auf Englisch. "
    "Bitte stellen Sie Ihre Frage auf Englisch, zum Beispiel: „{example}“",
    "es": "🌐 Mis fuentes están en inglés y solo entiendo preguntas en inglés. "
    "Por favor, haz tu pregunta en inglés, por ejemplo: «{example}»",
    "it": "🌐 Le mie fonti sono in inglese e capisco solo domande in inglese. "
    "Per favore, fai la tua domanda in inglese, per esempio: «{example}»",
    "pt": "🌐 As minhas fontes estão em inglês e só entendo perguntas em inglês. "
    "Por favor, faça a sua pergunta em inglês, por exemplo: «{example}»",
    "tr": "🌐 Kaynaklarım İngilizce ve yalnızca İngilizce soruları anlıyorum. "
    "Lütfen sorunuzu İngilizce sorun, örneğin: “{example}”",
    "zh": "🌐 我引用的资料都是英文的，我也只能理解英文问题。请用英文提问，例如：“{example}”",
}
LANGUAGE_NAMES = {
    "ja": "Japanese",
    "ko": "Korean",
    "hi": "Hindi",
    "el": "Greek",
    "he": "Hebrew",
    "th": "Thai",
    "ka": "Georgian",
    "hy": "Armenian",
    "bn": "Bengali",
    "ta": "Tamil",
    "ps": "Pashto",
}


def ask_in_english_html(language: str) -> str:
    """The reply to a question in another language: the sources are English, ask in English; in
    the question's language where we have the text, with the same in English below."""
    example = esc(EXAMPLE_QUESTIONS[0])
    name = LANGUAGE_NAMES.get(language, "another language")
    english = (
        f"🌐 Your question seems to be in {name}. The sources I quote are in English and I understand "
        f"questions in English only: please ask in English, e.g. “<i>{example}</i>”."
    )
    local = ASK_IN_ENGLISH.get(language)
    if local is None:
        return english
    return (
        local.format(example=f"<i>{example}</i>") + "\n\n"
        "<i>The sources are in English: please ask your question in English.</i>"
    )


# ------------------------------------------------------------------------------------------ feedback

VOTE_THANKS = {1: "Thanks! 👍 recorded.", -1: "Thanks! 👎 recorded: it helps us improve the sources."}
VOTE_WITHDRAWN = "Your vote was withdrawn."
VOTES_OFF = "Feedback is switched off for this bot."


def vote_answer(mine: int) -> str:
    """The notice after a vote button: thanks, or that the vote was withdrawn."""
    return VOTE_THANKS.get(mine, VOTE_WITHDRAWN)


# ------------------------------------------------------------------------------------------ gaps

GAPS_REFUSED = "Sorry, only the bot's administrators can see the coverage report."
GAPS_OFF = (
    "No questions are stored, so there is no coverage report: set <code>telegram.store_questions: "
    "true</code> (see config/citebot.yaml for what that keeps) to collect them."
)


def gaps_html(report: Any, limit: int = MAX_MESSAGE) -> str:
    """The coverage report for administrators (a ``citebot.gaps.CoverageReport``: ``summary()``
    and ``gaps`` with their counts, note and examples): what the corpus lacks."""
    lines = [f"📈 <b>Coverage</b>: {esc(report.summary())}"]
    for n, gap in enumerate(report.gaps, 1):
        lines += [f"\n<b>{n}.</b> {gap.counts()}" + (f" — <i>{esc(gap.note)}</i>" if gap.note else "")]
        lines += [f"• {esc(clip(squash(q).strip(), 200))}" for q in gap.examples]
    return fit_html("\n".join(lines), limit)


def shown_passages(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """The passages of a page of an answer as a vote records them: document, offsets, score and
    the sentence shown in bold."""
    return [
        {
            "doc_id": h.doc_id,
            "start": h.start,
            "end": h.end,
            "score": round(float(h.score), 4),
            "best_sentence": h.text[h.highlight[0] : h.highlight[1]].strip(),
        }
        for h in hits
    ]
