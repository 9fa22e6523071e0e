"""The bot's state: :class:`BotState`, installed as ``application.bot_data`` with
``ContextTypes(bot_data=BotState)`` (python-telegram-bot's contexttypesbot.py pattern), and the
small bounded stores it holds."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from telegram.ext import CallbackContext, ContextTypes, ExtBot

from citebot.config import Settings

from .retriever import Keeper, Retriever

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


class QueryCache:
    """Questions under short random tokens, for compact callback data; least recently used
    entries are forgotten beyond ``size`` (their buttons then answer "expired")."""

    def __init__(self, size: int = 5000) -> None:
        self.size = size
        self._items: OrderedDict[str, StoredQuery] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, query: StoredQuery) -> str:
        token = secrets.token_urlsafe(6)  # 8 characters
        with self._lock:
            while token in self._items:
                token = secrets.token_urlsafe(6)
            self._items[token] = query
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return token

    def get(self, token: str) -> StoredQuery | None:
        with self._lock:
            query = self._items.get(token)
            if query is not None:
                self._items.move_to_end(token)
            return query

    def __len__(self) -> int:
        return len(self._items)


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
    # rate limits, the questions behind "More results", refused chats, update claims: in this
    # process, or in Redis shared by every replica (bot.shared_state, telegram.state_url)
    shared: SharedState = field(default_factory=lambda: _local_state())
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
