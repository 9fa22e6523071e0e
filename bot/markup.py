"""Telegram HTML, measured and cut: escaping, cleaning, clipping, and the length Telegram counts.

Pure functions over strings. No message is longer than :data:`MAX_MESSAGE` UTF-16 code units *as
Telegram counts them* (the text after entity parsing); long text is cut at a sentence or word
boundary with :func:`clip`, never inside a tag, an entity or a surrogate pair, and :func:`fit_html`
is the last guard on every outgoing message (bot.formatting builds the messages).
"""

from __future__ import annotations

import html
import re
import unicodedata

MAX_MESSAGE = 4096  # UTF-16 code units of text after entity parsing
ELLIPSIS = "…"


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
