"""What bot/ needs from the layers around it, as Protocols: a :class:`Retriever` to answer from
and, optionally, a :class:`Keeper` that replaces it when the seeds change.

:class:`embeddings.search.Searcher` is a Retriever; :class:`citebot.lifecycle.IndexKeeper` is a
Keeper. bot/ imports neither: the application layer (``citebot serve``) passes them in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from embeddings.search import Context, DocumentInfo, SearchResult


class Retriever(Protocol):
    """Search and browse one loaded index; safe to call from many threads at once."""

    def search(self, query: str, k: int = 3, offset: int = 0) -> SearchResult:
        """The passages ranked ``offset .. offset+k`` for ``query``, or an abstention."""
        ...

    def passage_context(self, doc_key: str, start: int, end: int, chars: int = 700) -> Context | None:
        """The text around passage ``start..end`` of document ``doc_key``; None when the index
        holds no such passage (removed, changed since the button was made, or forged)."""
        ...

    def documents(self) -> list[DocumentInfo]:
        """The indexed documents, with their citations and passage counts (/sources)."""
        ...

    @property
    def manifest(self) -> Mapping[str, Any]:
        """What the index was built from and when (/about)."""
        ...

    @property
    def build_id(self) -> str:
        """Which build of the index answers (/about; kept with each vote)."""
        ...


class FeedbackStore(Protocol):
    """Where votes and questions are kept (:class:`citebot.store.Store` is one)."""

    store_feedback: bool
    store_questions: bool

    def vote(self, token: str, answer: Any, user_id: int, vote: int) -> Any:
        """Record a vote (1 or -1; the same again withdraws it); the tally: up, down, mine."""
        ...

    def tally(self, token: str, user_id: int | None = None) -> Any: ...

    def answer(self, token: str) -> Any:
        """An answer voted on earlier (question, chat_kind, build_id, shown), or None."""
        ...

    def record_question(
        self, question: str, *, abstained: bool, similarity: float, chat_kind: str, language: str | None = None
    ) -> bool: ...


class RebuildResult(Protocol):
    ok: bool
    swapped: bool  # a new index was built and now answers (False: nothing had changed)

    def summary(self) -> str: ...


class Keeper(Protocol):
    """Owns the live retriever and replaces it: a rebuild from the seeds, or a build another
    builder published."""

    searcher: Any  # a Retriever
    on_swap: Callable[[Any], None] | None
    on_error: Callable[[str], Awaitable[None] | None] | None

    async def rebuild(self, *, force: bool = False) -> RebuildResult: ...

    async def watch(self, stop: asyncio.Event) -> None:
        """Rebuild whenever the seeds change, until ``stop`` is set."""
        ...

    async def follow(self, stop: asyncio.Event) -> None:
        """Swap in the build the ``current`` link points to whoever published it, until ``stop``."""
        ...


def answers_batches(retriever: object) -> bool:
    """Whether ``retriever``'s class answers batches (``search_many``, as the Searcher does): the
    bot then asks it through its batcher. Looked up on the class, so a wrapper that forwards other
    attributes to a searcher keeps its own ``search``."""
    return callable(getattr(type(retriever), "search_many", None))
