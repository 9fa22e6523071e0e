"""The sandbox's terminal: a Bot API message as a person reads it in a terminal.

Pure functions over the message dicts the emulator records. Bold, italic, code, links and
quotes are kept as :class:`rich.text.Text` styles, so a terminal shows the best-matching
sentence in bold and quotes with a bar; printed through a :class:`rich.console.Console` on a pipe
or file they become plain text. Buttons get numbers that do not move between pages: the
Context buttons are #1.. by position, then Back, More, 👍 and 👎 have fixed numbers of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.text import Text

STYLES = {
    "bold": "bold",
    "italic": "italic",
    "underline": "underline",
    "strikethrough": "strike",
    "code": "cyan",
    "pre": "cyan",
    "text_link": "underline blue",
    "url": "underline blue",
    "spoiler": "reverse",
}
QUOTE_BAR = "▌ "


@dataclass(frozen=True)
class NumberedButton:
    number: int
    label: str
    callback_data: str


def make_console(stream: Any, *, terminal: bool | None = None) -> Console:
    """A console writing to ``stream``: ANSI styles when it is a terminal (or ``terminal``),
    plain text otherwise. No wrapping or highlighting of its own: the text is shown as sent."""
    if terminal is None:
        try:
            terminal = bool(stream.isatty())
        except (AttributeError, ValueError, OSError):
            terminal = False
    return Console(
        file=stream,
        force_terminal=terminal,
        color_system="standard" if terminal else None,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=True,
    )


def _python_offsets(text: str) -> list[int]:
    """UTF-16 offset → index into ``text`` (Telegram counts entity offsets in UTF-16 units)."""
    table = []
    for i, ch in enumerate(text):
        table.append(i)
        if ord(ch) > 0xFFFF:
            table.append(i)
    table.append(len(text))
    return table


def message_text(message: dict[str, Any], *, edited: bool = False) -> Text:
    """The text of a bot message with its entities as styles; links followed by their URL, quoted
    lines behind a bar."""
    raw = message.get("text", "")
    offsets = _python_offsets(raw)

    def span(entity: dict[str, Any]) -> tuple[int, int]:
        lo = int(entity["offset"])
        hi = lo + int(entity["length"])
        return offsets[min(lo, len(offsets) - 1)], offsets[min(hi, len(offsets) - 1)]

    entities = message.get("entities") or []
    quotes = [span(e) for e in entities if e.get("type") in ("blockquote", "expandable_blockquote")]
    text = Text(raw)
    for entity in entities:
        style = STYLES.get(entity.get("type", ""))
        if style:
            text.stylize(style, *span(entity))
    # which lines are quoted, by where each line starts in the raw text
    starts = [0] + [i + 1 for i, ch in enumerate(raw) if ch == "\n"]
    quoted = [any(lo <= start < hi for lo, hi in quotes) for start in starts]
    # links: their URL after the text (inserted from the end, so earlier offsets stay valid)
    links = sorted((span(e)[1], e["url"]) for e in entities if e.get("type") == "text_link" and e.get("url"))
    for end, url in reversed(links):
        text = text[:end] + Text(f" ({url})", style="dim") + text[end:]
    out = Text()
    for n, line in enumerate(text.split("\n", allow_blank=True)):
        if n:
            out.append("\n")
        if n < len(quoted) and quoted[n]:
            out.append(QUOTE_BAR, style="dim")
        out.append_text(line)
    if edited:
        out = Text("(edited) ", style="dim") + out
    return out


def number_buttons(keyboard: Sequence[Sequence[dict[str, Any]]], slots: int) -> list[NumberedButton]:
    """Callback buttons with numbers that stay put from page to page: Context buttons #1..#slots
    by position, then ◀ Back #slots+1, More #slots+2, 👍 #slots+3, 👎 #slots+4, anything else after."""
    numbered = []
    contexts = 0
    others = slots + 5
    for row in keyboard:
        for button in row:
            data = button.get("callback_data")
            if not isinstance(data, str):
                continue
            label = str(button.get("text", ""))
            if data.startswith("c:"):
                contexts += 1
                number = contexts if contexts <= slots else others
            elif data.startswith("m:"):
                number = slots + (1 if "Back" in label else 2)
            elif data.startswith("v:"):
                number = slots + (3 if data.endswith(":u") else 4)
            else:
                number = others
            if number == others:
                others += 1
            numbered.append(NumberedButton(number, label, data))
    return numbered


def buttons_line(buttons: Sequence[NumberedButton]) -> Text:
    line = Text("Buttons: ", style="dim")
    for n, button in enumerate(buttons):
        if n:
            line.append("  ")
        line.append(f"#{button.number}", style="bold")
        line.append(f" [{button.label}]")
    return line
