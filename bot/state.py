"""The bot's state: :class:`BotState`, installed as ``application.bot_data`` with
``ContextTypes(bot_data=BotState)`` (python-telegram-bot's contexttypesbot.py pattern), and the
small bounded stores it holds."""

from __future__ import annotations

import asyncio
import secrets
import sys
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from telegram.ext import CallbackContext, ContextTypes, ExtBot

from citebot.config import Settings

from .ratelimit import RateLimiter
from .retriever import Keeper, Retriever


@dataclass(frozen=True)
class StoredQuery:
    """A question behind a "More results" button."""

    question: str
    per_page: int
    cut: bool = False
    compact: bool = False
    chat_id: int | None = None  # the chat that received the button: another chat's press is refused


class QueryCache:
    """Questions under short random tokens, for compact callback data; least recently used
    entries are forgotten beyond ``size`` entries or ``max_bytes`` of questions (their buttons
    then answer "expired")."""

    def __init__(self, size: int = 5000, max_bytes: int = 8 * 2**20) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, tuple[StoredQuery, int]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, query: StoredQuery) -> str:
        token = secrets.token_urlsafe(6)  # 8 characters
        weight = _weight(token, query)
        with self._lock:
            while token in self._items:
                token = secrets.token_urlsafe(6)
            self._items[token] = (query, weight)
            self.bytes += weight
            while len(self._items) > self.size or self.bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self.bytes -= dropped
        return token

    def get(self, token: str) -> StoredQuery | None:
        with self._lock:
            item = self._items.get(token)
            if item is None:
                return None
            self._items.move_to_end(token)
            return item[0]

    def __len__(self) -> int:
        return len(self._items)


def _weight(token: str, query: StoredQuery) -> int:
    """Roughly what one stored question holds: the strings, the record and its map slot."""
    return sys.getsizeof(token) + sys.getsizeof(query.question) + 200


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


@dataclass
class BotState:
    """Everything the handlers share. PTB makes it empty (``BotState()``);
    :func:`bot.application.build_application` fills it."""

    settings: Settings = field(default_factory=Settings)
    served: Retriever | None = None  # the retriever answering now; the keeper replaces it after a rebuild
    executor: ThreadPoolExecutor | None = None  # retrieval runs here, never on the event loop
    queries: QueryCache = field(default_factory=lambda: QueryCache())
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(Settings().telegram.rate_limit_per_minute))
    # inline queries and button presses, per user, apart from questions (a flood of either is refused cheaply)
    inline_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(Settings().telegram.inline_per_minute))
    button_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(Settings().telegram.buttons_per_minute))
    keeper: Keeper | None = None  # when the index follows the seeds
    refused: RecentSet = field(default_factory=RecentSet)  # private chats already told the bot is not theirs
    watch_seeds: bool = False  # whether post_init starts following the seeds
    seed_watch: tuple[asyncio.Task, asyncio.Event] | None = None  # the running watcher and its stop event

    @property
    def retriever(self) -> Retriever:
        if self.served is None:
            raise RuntimeError("no retriever: build the application with build_application()")
        return self.served


CONTEXT_TYPES = ContextTypes(bot_data=BotState)
# the type of ``context`` in the handlers: ``context.bot_data`` is the BotState
Context = CallbackContext[ExtBot, dict, dict, BotState]
