"""MessageEntity helpers: Telegram's ordering and clean-up rules, validation of entities a
bot passes explicitly, and detection of the entities Telegram adds to users' messages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .urls import UrlError, check_url
from .utf16 import utf16_len

# TDLib's type priorities: entities with equal span are listed in this order.
_PRIORITY = {
    "blockquote": 0,
    "expandable_blockquote": 0,
    "pre": 11,
    "code": 20,
    "text_link": 49,
    "text_mention": 49,
    "bold": 90,
    "italic": 91,
    "underline": 92,
    "strikethrough": 93,
    "spoiler": 94,
    "custom_emoji": 99,
}
ENTITY_TYPES = frozenset(
    {
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "url",
        "email",
        "phone_number",
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
    }
)
_CODE_TYPES = frozenset({"code", "pre"})
_QUOTE_TYPES = frozenset({"blockquote", "expandable_blockquote"})
_TRIM_CHARS = " \t\n\r\f\v"

_URL_RE = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_COMMAND_RE = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")
_MENTION_RE = re.compile(r"(?<![\w@/])@[A-Za-z0-9_]{3,32}(?![\w@])")
_HASHTAG_RE = re.compile(r"(?<![\w#])#(?=\w*[^\W\d_])\w{1,256}")
_URL_TRAILING = ".,;:!?)]}'\""


class EntityError(ValueError):
    """Entities Telegram refuses; ``message`` is the description after "Bad Request: "."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def sort_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return entities in Telegram's order: by offset, longer first, then type priority."""
    return sorted(entities, key=lambda e: (e["offset"], -e["length"], _PRIORITY.get(e["type"], 50)))


def fix_nesting(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop entities Telegram does not allow to be nested.

    Nothing but blockquotes may contain or share the span of code/pre, and blockquotes may
    not be nested in each other. ``entities`` must be sorted (see :func:`sort_entities`).
    """
    return [e for i, e in enumerate(entities) if not _is_forbidden_nesting(i, entities)]


def _is_forbidden_nesting(index: int, entities: list[dict[str, Any]]) -> bool:
    inner = entities[index]
    for j, outer in enumerate(entities):
        if j == index or not _contains(outer, inner, outer_first=j < index):
            continue
        if outer["type"] in _CODE_TYPES and inner["type"] not in _QUOTE_TYPES:
            return True
        if outer["type"] in _QUOTE_TYPES and inner["type"] in _QUOTE_TYPES:
            return True
    return False


def _contains(outer: dict[str, Any], inner: dict[str, Any], *, outer_first: bool) -> bool:
    start, end = outer["offset"], outer["offset"] + outer["length"]
    inner_start, inner_end = inner["offset"], inner["offset"] + inner["length"]
    if (start, end) == (inner_start, inner_end):
        return outer_first
    return start <= inner_start and inner_end <= end


def trim_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip leading/trailing whitespace as Telegram does, shifting and clipping entities."""
    stripped = text.strip(_TRIM_CHARS)
    if stripped == text:
        return text, entities
    shift = utf16_len(text[: len(text) - len(text.lstrip(_TRIM_CHARS))])
    new_len = utf16_len(stripped)
    result = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, new_len)
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return stripped, result


def validate_entities(
    text: str,
    entities: Any,
    resolve_user: Callable[[int], dict[str, Any] | None] | None = None,
) -> list[dict[str, Any]]:
    """Validate entities passed explicitly by a bot (the ``entities`` parameter).

    Returns cleaned, sorted entity dicts; raises :class:`EntityError` with Telegram's
    wording. ``resolve_user`` maps a user id to a User dict for ``text_mention``.
    """
    if not isinstance(entities, list):
        raise EntityError("can't parse entities JSON object")
    length = utf16_len(text)
    cleaned = [_validate_entity(e, length, resolve_user) for e in entities]
    return sort_entities([e for e in cleaned if e["length"] > 0])


def _validate_entity(
    raw: Any, text_length: int, resolve_user: Callable[[int], dict[str, Any] | None] | None
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise EntityError("can't parse MessageEntity: expected an Object")
    for field in ("type", "offset", "length"):
        if field not in raw:
            raise EntityError(f"can't parse MessageEntity: Can't find field \"{field}\"")
    kind, offset, length = raw["type"], raw["offset"], raw["length"]
    if kind not in ENTITY_TYPES:
        raise EntityError("can't parse MessageEntity: Unsupported type specified")
    if not isinstance(offset, int) or offset < 0:
        raise EntityError(f"receive an entity with incorrect offset {offset}")
    if not isinstance(length, int) or length < 0:
        raise EntityError(f"receive an entity with incorrect length {length}")
    if offset > text_length:
        raise EntityError(f"entity begins after the end of the text at UTF-16 offset {offset}")
    if offset + length > text_length:
        raise EntityError(
            f"entity beginning at UTF-16 offset {offset} ends after the end of the text at "
            f"UTF-16 offset {offset + length}"
        )
    entity: dict[str, Any] = {"type": kind, "offset": offset, "length": length}
    entity.update(_entity_extras(raw, kind, resolve_user))
    return entity


def _entity_extras(
    raw: dict[str, Any], kind: str, resolve_user: Callable[[int], dict[str, Any] | None] | None
) -> dict[str, Any]:
    """Validate and return the type-specific fields (url, user, language, emoji id)."""
    if kind == "text_link":
        url = _required(raw, "url")
        try:
            return {"url": check_url(str(url))}
        except UrlError as exc:
            raise EntityError(f"entity URL '{url}' is invalid: {exc.reason}") from None
    if kind == "text_mention":
        user = _required(raw, "user")
        user_id = user.get("id") if isinstance(user, dict) else None
        resolved = resolve_user(user_id) if resolve_user and isinstance(user_id, int) else None
        if resolved is None:
            raise EntityError("user not found")
        return {"user": resolved}
    if kind == "custom_emoji":
        emoji_id = str(_required(raw, "custom_emoji_id"))
        if not (emoji_id.isdigit() and 0 < int(emoji_id) < 2**63):
            raise EntityError('can\'t parse MessageEntity: Field "custom_emoji_id" must be a valid Number')
        return {"custom_emoji_id": emoji_id}
    if kind == "pre" and isinstance(raw.get("language"), str) and raw["language"]:
        return {"language": raw["language"]}
    return {}


def _required(raw: dict[str, Any], field: str) -> Any:
    if field not in raw:
        raise EntityError(f"can't parse MessageEntity: Can't find field \"{field}\"")
    return raw[field]


def detect_entities(text: str) -> list[dict[str, Any]]:
    """Find the entities Telegram adds to a user's message: url, bot_command, mention,
    hashtag (offsets/lengths in UTF-16 code units)."""
    spans: list[tuple[int, int, str]] = []
    for match in _URL_RE.finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1] in _URL_TRAILING:
            end -= 1
        spans.append((match.start(), end, "url"))
    for kind, regex in (("bot_command", _COMMAND_RE), ("mention", _MENTION_RE), ("hashtag", _HASHTAG_RE)):
        for match in regex.finditer(text):
            if not any(s < match.end() and match.start() < e for s, e, _ in spans):
                spans.append((match.start(), match.end(), kind))
    entities = [
        {"type": kind, "offset": utf16_len(text[:start]), "length": utf16_len(text[start:end])}
        for start, end, kind in spans
    ]
    return sort_entities(entities)
