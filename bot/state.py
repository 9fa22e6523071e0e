"""The bot's state: :class:`BotState`, installed as ``application.bot_data`` with
``ContextTypes(bot_data=BotState)`` (python-telegram-bot's contexttypesbot.py pattern), and the
small bounded stores it holds."""

from __future__ import annotations

import asyncio
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from telegram.ext import CallbackContext, ContextTypes, ExtBot

from citebot.config import Settings
from embeddings.batching import AsyncQueryBatcher

from .ordering import ChatOrder
from .ratelimit import RateLimiter
from .retriever import FeedbackStore, Keeper, Retriever

V = TypeVar("V")

if TYPE_CHECKING:
    from citebot.replica import IndexFollower

    from .shared_state import SharedState


@dataclass(frozen=True)
class StoredQuery:
    """A question behind a "More results" button."""

    question: str
    per_page: int
    cut: bool = False
    compact: bool = False
    votes: bool = False  # the answer has a 👍/👎 row (under the same token)
    chat_id: int | None = None  # the chat that received the button: another chat's press is refused


@dataclass
class VotedAnswer:
    """An answer behind 👍/👎: what a vote records (the store takes any object of this shape)."""

    question: str
    chat_kind: str  # "private" or "group"
    build_id: str
    shown: list[dict[str, Any]]  # formatting.shown_passages of the page on screen
    asked_at: float = field(default_factory=time.time)


class QueryCache(Generic[V]):
    """Values (questions behind "More results", answers behind 👍/👎) under short random tokens,
    for compact callback data; least recently used entries are forgotten beyond ``size`` entries
    or ``max_bytes`` (their buttons then answer "expired")."""

    def __init__(self, size: int = 5000, max_bytes: int = 8 * 2**20) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, query: V) -> str:
        token = secrets.token_urlsafe(6)  # 8 characters
        with self._lock:
            while token in self._items:
                token = secrets.token_urlsafe(6)
        self.set(token, query)
        return token

    def set(self, token: str, value: V) -> None:
        weight = _weight(token, value)
        with self._lock:
            old = self._items.pop(token, None)
            if old is not None:
                self.bytes -= old[1]
            self._items[token] = (value, weight)
            self.bytes += weight
            while len(self._items) > self.size or self.bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self.bytes -= dropped

    def get(self, token: str) -> V | None:
        with self._lock:
            item = self._items.get(token)
            if item is None:
                return None
            self._items.move_to_end(token)
            return item[0]

    def __len__(self) -> int:
        return len(self._items)


def _weight(token: str, value: Any) -> int:
    """Roughly what one stored value holds: the token, the question, what an answer shows (its
    passages), the record and its map slot."""
    shown = getattr(value, "shown", None) or []
    return (
        sys.getsizeof(token)
        + sys.getsizeof(getattr(value, "question", ""))
        + 200
        + sum(sum(sys.getsizeof(v) for v in passage.values()) for passage in shown if isinstance(passage, dict))
    )


class RecentSet:
    """A bounded set of ids (the oldest are forgotten beyond ``size``)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._items: dict[int, None] = {}

    def add(self, item: int) -> bool:
        """Add ``item``; True if it was not there yet."""
        if item in self._items:
            return False
        self._items[item] = None
        while len(self._items) > self.size:
            del self._items[next(iter(self._items))]
        return True

    def __contains__(self, item: int) -> bool:
        return item in self._items


@dataclass
class BotState:
    """Everything the handlers share. PTB makes it empty (``BotState()``);
    :func:`bot.application.build_application` fills it."""

    settings: Settings = field(default_factory=Settings)
    served: Retriever | None = None  # the retriever answering now; the keeper replaces it after a rebuild
    executor: ThreadPoolExecutor | None = None  # retrieval runs here, never on the event loop
    # questions answered in batches by one thread (handlers.search); None: through ``executor``
    searches: AsyncQueryBatcher | None = None
    # rate limits, the questions behind "More results", refused chats, update claims: in this
    # process, or in Redis shared by every replica (bot.shared_state, telegram.state_url)
    shared: SharedState = field(default_factory=lambda: _local_state())
    # the answers behind 👍/👎, by the answer's token (in this process: a vote pressed on another
    # replica's answer finds nothing and is answered "expired")
    answers: QueryCache[VotedAnswer] = field(default_factory=lambda: QueryCache())
    store: FeedbackStore | None = None  # votes and questions, when telegram.store_* ask for it
    coverage: Callable[[], Any] | None = None  # makes the /gaps report (citebot.gaps.CoverageReport)
    order: ChatOrder = field(default_factory=ChatOrder)  # replies to one chat in the order of its questions
    # inline queries and button presses, per user, apart from questions (a flood of either is refused cheaply)
    inline_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(Settings().telegram.inline_per_minute))
    button_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(Settings().telegram.buttons_per_minute))
    keeper: Keeper | None = None  # when the index follows the seeds
    watch_seeds: bool = False  # whether post_init starts following the seeds
    seed_watch: tuple[asyncio.Task, asyncio.Event] | None = None  # the running watcher and its stop event
    follower: IndexFollower | None = None  # a read-only replica: follows the builder's `current` build
    following: tuple[asyncio.Task, asyncio.Event] | None = None  # the running follower and its stop event

    @property
    def retriever(self) -> Retriever:
        if self.served is None:
            raise RuntimeError("no retriever: build the application with build_application()")
        return self.served


def _local_state() -> SharedState:
    from .shared_state import LocalState

    return LocalState(Settings().telegram.rate_limit_per_minute)


CONTEXT_TYPES = ContextTypes(bot_data=BotState)
# the type of ``context`` in the handlers: ``context.bot_data`` is the BotState
Context = CallbackContext[ExtBot, dict, dict, BotState]
