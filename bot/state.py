"""Small bounded stores kept in ``application.bot_data``."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass


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
