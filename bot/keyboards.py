"""The inline keyboards under an answer and the callback data of their buttons.

Callback data is at most :data:`MAX_CALLBACK_BYTES` bytes, and decoding never raises: anything
malformed, forged or oversized decodes to None.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from embeddings.search import Hit

MAX_CALLBACK_BYTES = 64
MAX_PAGE = 9999  # pages of "More results" (callback data holds up to 4 digits)


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
