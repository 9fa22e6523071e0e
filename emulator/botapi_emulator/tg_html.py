"""Telegram's HTML parse mode.

The scanner reproduces the behaviour of TDLib's ``parse_html`` (which the Bot API server
uses): the same accepted tags and attributes, the same lenient attribute syntax, and the
same error messages with UTF-8 byte offsets. The stdlib ``html.parser`` is deliberately not
used: it silently accepts markup that Telegram rejects (``a < b``, ``<br>``, unclosed tags),
which would hide exactly the bugs the emulator exists to reveal.

Differences from Telegram, all opt-in through ``strict=True`` (the default of
:func:`validate_telegram_html` and of the emulator): a ``&`` that does not start one of
``&lt; &gt; &amp; &quot; &#N; &#xH;`` (with the semicolon) is an error, whereas Telegram
keeps such text literally. That catches text that was never passed through ``html.escape``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from .entities import fix_nesting, sort_entities, trim_text
from .urls import check_link, link_user_id
from .utf16 import char_width

SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_EOF = "\0"
_SPACES = frozenset(" \t\r\n\f\v\0")
_ATTR_NAME_END = _SPACES | {"=", ">", "/", '"', "'"}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_NAME_TOKEN = frozenset(string.ascii_letters + string.digits + ".-")
_SURROGATE_ERROR = (
    "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units"
)


class TelegramHtmlError(ValueError):
    """Markup Telegram refuses; ``message`` is the text after "can't parse entities: "."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def validate_telegram_html(text: str, *, strict: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse ``text`` as Telegram HTML and return what Telegram would store.

    Returns the plain text and its MessageEntity dicts (offsets/lengths in UTF-16 code
    units), after Telegram's clean-up: entities nested inside code/pre and nested
    blockquotes are dropped, and leading/trailing whitespace is trimmed. ``text_mention``
    entities (from ``tg://user?id=`` links) carry ``{"user": {"id": N}}`` only.
    Raises :class:`TelegramHtmlError` for markup Telegram rejects (see module docstring
    for ``strict``). Length limits are not checked here; compare ``utf16_len`` of the
    returned text with 4096 (messages) or 1024 (captions).
    """
    plain, entities = parse_telegram_html(text, strict=strict)
    return trim_text(plain, fix_nesting(entities))


def parse_telegram_html(text: str, *, strict: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """Parse ``text`` exactly like TDLib's ``parse_html``, without trimming or clean-up."""
    return _HtmlScanner(text, strict).run()


@dataclass
class _OpenTag:
    """A start tag waiting for its end tag."""

    name: str
    argument: str
    utf16_start: int
    text_start: int


class _HtmlScanner:
    """Single-use scanner turning Telegram HTML into plain text and entities."""

    def __init__(self, source: str, strict: bool) -> None:
        self.src = source
        self.n = len(source)
        self.strict = strict
        self.out: list[str] = []
        self.utf16 = 0
        self.entities: list[dict[str, Any]] = []
        self.stack: list[_OpenTag] = []
        self.bad_surrogate = False

    def run(self) -> tuple[str, list[dict[str, Any]]]:
        """Scan the whole source and return (plain text, sorted entities)."""
        i = 0
        while i < self.n:
            ch = self.src[i]
            if ch == "&":
                decoded = self._entity(i)
                if decoded is not None:
                    self._emit(decoded[0])
                    i = decoded[1]
                    continue
            if ch != "<":
                self._emit(ch)
                i += 1
            elif self._at(i + 1) == "/":
                i = self._end_tag(i)
            else:
                i = self._start_tag(i)
        if self.stack:
            raise TelegramHtmlError(f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"')
        if self.bad_surrogate:
            raise TelegramHtmlError(_SURROGATE_ERROR)
        for entity in self.entities:
            entity.pop("_language", None)
        return "".join(self.out), sort_entities(self.entities)

    # -- low level helpers -------------------------------------------------------------

    def _at(self, i: int) -> str:
        return self.src[i] if i < self.n else _EOF

    def _bo(self, i: int) -> int:
        """UTF-8 byte offset of source index ``i`` (Telegram reports byte offsets)."""
        return len(self.src[:i].encode("utf-8", "surrogatepass"))

    def _skip_spaces(self, i: int) -> int:
        while i < self.n and self.src[i] in _SPACES:
            i += 1
        return i

    def _emit(self, ch: str) -> None:
        self.out.append(ch)
        self.utf16 += char_width(ch)
        if 0xD800 <= ord(ch) <= 0xDFFF:
            self.bad_surrogate = True

    def _entity(self, i: int) -> tuple[str, int] | None:
        """The character reference at ``i`` decoded, or None for a bare '&' (an error in strict mode)."""
        decoded = self._decode_entity(i)
        if decoded is None and self.strict:
            raise TelegramHtmlError(
                f"Unsupported HTML entity at byte offset {self._bo(i)} (strict mode: escape '&' as &amp;)"
            )
        return decoded

    def _decode_entity(self, i: int) -> tuple[str, int] | None:
        """Decode the character reference at ``i``; return (char, next index) or None."""
        j = i + 1
        if self._at(j) == "#":
            j += 1
            code = 0
            if self._at(j) == "x":
                j += 1
                while self._at(j) in string.hexdigits:
                    code = code * 16 + int(self.src[j], 16)
                    j += 1
            else:
                while self._at(j) in string.digits:
                    code = code * 10 + int(self.src[j])
                    j += 1
            if code == 0 or code >= 0x10FFFF or j - i >= 10:
                return None
            char = chr(code)
        else:
            while self._at(j) in string.ascii_letters:
                j += 1
            name = self.src[i + 1 : j]
            if name not in _NAMED_ENTITIES:
                return None
            char = _NAMED_ENTITIES[name]
        if self._at(j) == ";":
            return char, j + 1
        return None if self.strict else (char, j)

    # -- tags --------------------------------------------------------------------------

    def _start_tag(self, begin: int) -> int:
        """Parse a start tag at ``begin`` and return the index after its ``>``."""
        i = begin + 1
        while self._at(i) not in _SPACES and self._at(i) != ">":
            i += 1
        if i >= self.n:
            raise TelegramHtmlError(f"Unclosed start tag at byte offset {self._bo(begin)}")
        name = _ascii_lower(self.src[begin + 1 : i])
        if name not in SUPPORTED_TAGS:
            raise TelegramHtmlError(f'Unsupported start tag "{name}" at byte offset {self._bo(begin)}')
        argument = ""
        while self._at(i) != ">":
            i = self._skip_spaces(i)
            if self._at(i) == ">":
                break
            i, attr, value = self._attribute(i, name, begin)
            if value is not None:
                argument = _tag_argument(name, attr, value, argument)
            elif name == "blockquote" and attr == "expandable":
                argument = "1"
        if name == "span" and argument != "spoiler":
            raise TelegramHtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {self._bo(begin)}')
        self.stack.append(_OpenTag(name, argument, self.utf16, len(self.out)))
        return i + 1

    def _attribute(self, i: int, tag: str, begin: int) -> tuple[int, str, str | None]:
        """Parse one attribute at ``i``; return (next index, name, value or None)."""
        name_start = i
        while self._at(i) not in _ATTR_NAME_END:
            i += 1
        attr = self.src[name_start:i]
        if not attr:
            raise TelegramHtmlError(f'Empty attribute name in the tag "{tag}" at byte offset {self._bo(begin)}')
        i = self._skip_spaces(i)
        if self._at(i) != "=":
            if i >= self.n:
                raise TelegramHtmlError(f'Unclosed start tag "{tag}" at byte offset {self._bo(begin)}')
            return i, attr, None
        i = self._skip_spaces(i + 1)
        if i >= self.n:
            raise TelegramHtmlError(f'Unclosed start tag "{tag}" at byte offset {self._bo(begin)}')
        if self.src[i] in "'\"":
            i, value = self._quoted_value(i)
        else:
            i, value = self._name_token(i)
        if i >= self.n:
            raise TelegramHtmlError(f"Unclosed start tag at byte offset {self._bo(begin)}")
        return i, attr, value

    def _quoted_value(self, i: int) -> tuple[int, str]:
        """Read a quoted attribute value (entities decoded) starting at the quote ``i``."""
        quote = self.src[i]
        i += 1
        chars: list[str] = []
        while i < self.n and self.src[i] != quote:
            if self.src[i] == "&":
                decoded = self._entity(i)
                if decoded is not None:
                    chars.append(decoded[0])
                    i = decoded[1]
                    continue
            chars.append(self.src[i])
            i += 1
        if i < self.n:
            i += 1
        return i, "".join(chars)

    def _name_token(self, i: int) -> tuple[int, str]:
        """Read an unquoted attribute value: letters, digits, '.' and '-', lower-cased."""
        start = i
        while self._at(i) in _NAME_TOKEN and i < self.n:
            i += 1
        if self._at(i) not in _SPACES and self._at(i) != ">":
            raise TelegramHtmlError(f"Unexpected end of name token at byte offset {self._bo(start)}")
        return i, _ascii_lower(self.src[start:i])

    def _end_tag(self, begin: int) -> int:
        """Parse an end tag at ``begin``, close the innermost open tag, return next index."""
        if not self.stack:
            raise TelegramHtmlError(f"Unexpected end tag at byte offset {self._bo(begin)}")
        i = begin + 2
        while self._at(i) not in _SPACES and self._at(i) != ">":
            i += 1
        end_name = _ascii_lower(self.src[begin + 2 : i])
        i = self._skip_spaces(i)
        if self._at(i) != ">":
            raise TelegramHtmlError(f"Unclosed end tag at byte offset {self._bo(begin)}")
        open_tag = self.stack[-1]
        if end_name and end_name != open_tag.name:
            raise TelegramHtmlError(
                f"Unmatched end tag at byte offset {self._bo(begin)}, "
                f'expected "</{open_tag.name}>", found "</{end_name}>"'
            )
        if self.utf16 > open_tag.utf16_start:
            self._close(open_tag)
        self.stack.pop()
        return i + 1

    def _close(self, tag: _OpenTag) -> None:
        """Record the entity a non-empty closed tag produces."""
        offset, length = tag.utf16_start, self.utf16 - tag.utf16_start
        base = {"offset": offset, "length": length}
        if tag.name in _SIMPLE_TAGS:
            self.entities.append({"type": _SIMPLE_TAGS[tag.name], **base})
        elif tag.name == "tg-emoji":
            if not _valid_custom_emoji_id(tag.argument):
                raise TelegramHtmlError("Invalid custom emoji identifier specified")
            self.entities.append({"type": "custom_emoji", **base, "custom_emoji_id": tag.argument})
        elif tag.name == "a":
            self._close_link(tag, base)
        elif tag.name == "blockquote":
            kind = "expandable_blockquote" if tag.argument else "blockquote"
            self.entities.append({"type": kind, **base})
        else:
            self._close_code(tag, base)

    def _close_link(self, tag: _OpenTag, base: dict[str, int]) -> None:
        url = tag.argument or "".join(self.out[tag.text_start :])
        user_id = link_user_id(url)
        if user_id is not None:
            self.entities.append({"type": "text_mention", **base, "user": {"id": user_id}})
            return
        normalized = check_link(url)
        if normalized is not None:
            self.entities.append({"type": "text_link", **base, "url": normalized})

    def _close_code(self, tag: _OpenTag, base: dict[str, int]) -> None:
        """Handle ``pre`` and ``code``; ``<pre><code class="language-x">`` makes one pre."""
        last = self.entities[-1] if self.entities else None
        same_span = last is not None and (last["offset"], last["length"]) == (
            base["offset"],
            base["length"],
        )
        if tag.name == "pre":
            if same_span and last["type"] == "code" and last.get("_language"):
                self.entities[-1] = {"type": "pre", **base, "language": last["_language"]}
            else:
                self.entities.append({"type": "pre", **base})
        elif same_span and last["type"] == "pre" and "language" not in last and tag.argument:
            last["language"] = tag.argument
        else:
            self.entities.append({"type": "code", **base, "_language": tag.argument})


def _tag_argument(tag: str, attr: str, value: str, current: str) -> str:
    """Return the tag argument an attribute sets (href, language, spoiler class...)."""
    if tag == "a" and attr == "href":
        return value
    if tag == "code" and attr == "class" and value.startswith("language-"):
        return value[len("language-") :]
    if tag == "span" and attr == "class" and value.startswith("tg-"):
        return value[len("tg-") :]
    if tag == "tg-emoji" and attr == "emoji-id":
        return value
    if tag == "blockquote" and attr == "expandable":
        return "1"
    return current


def _valid_custom_emoji_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and 0 < int(value) < 2**63


def _ascii_lower(value: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in value)
