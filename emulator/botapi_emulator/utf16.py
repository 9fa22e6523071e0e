"""UTF-16 helpers: Telegram measures text lengths and entity offsets in UTF-16 code units."""

from __future__ import annotations

from typing import Any


def utf16_len(s: str) -> int:
    """Return the length of ``s`` in UTF-16 code units, as Telegram counts it.

    Characters outside the Basic Multilingual Plane (most emoji) count as two units.
    """
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def utf16_slice(s: str, offset: int, length: int) -> str:
    """Return the part of ``s`` that starts ``offset`` UTF-16 units in and is ``length`` long."""
    data = s.encode("utf-16-le", "surrogatepass")
    return data[2 * offset : 2 * (offset + length)].decode("utf-16-le", "surrogatepass")


def entity_text(text: str, entity: dict[str, Any]) -> str:
    """Return the piece of ``text`` a MessageEntity dict (offset/length in UTF-16) covers."""
    return utf16_slice(text, int(entity["offset"]), int(entity["length"]))


def char_width(ch: str) -> int:
    """Return how many UTF-16 code units the single character ``ch`` takes."""
    return 2 if ord(ch) > 0xFFFF else 1
