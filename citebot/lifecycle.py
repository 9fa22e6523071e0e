"""Keep the served index in step with the seeds folder, with no gap in service.

:class:`IndexKeeper` owns the live :class:`~embeddings.search.Searcher`. A rebuild runs in a worker
thread (incremental: only changed documents are re-embedded); when it succeeds, a new searcher is
made and swapped in with one assignment, so a question asked meanwhile is answered by the old
one and never waits. A failed rebuild (a disk full, a read-only folder, a bad file) keeps the old
index serving and is reported through ``on_error``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from embeddings.index import BuildReport
from embeddings.search import Searcher

from . import engine
from .config import Settings

log = logging.getLogger(__name__)

# Seeds are often copied in several steps (an editor's temp file, then the rename):
# wait this long after the last change before rebuilding.
DEBOUNCE_MS = 1500


@dataclass
class RebuildOutcome:
    ok: bool
    report: BuildReport | None = None
    error: str | None = None
    seconds: float = 0.0
    swapped: bool = False

    def summary(self) -> str:
        if not self.ok:
            return f"rebuild failed, still serving the previous index: {self.error}"
        r = self.report
        assert r is not None
        if not r.built:
            return f"index already up to date ({r.passages} passages)"
        parts = [f"{len(r.added)} added", f"{len(r.updated)} updated", f"{len(r.removed)} removed"]
        names = [f"+{d}" for d in r.added] + [f"~{d}" for d in r.updated] + [f"-{d}" for d in r.removed]
        detail = f" ({', '.join(names)})" if names else ""
        return f"index rebuilt: {', '.join(parts)}{detail}; {r.passages} passages; {self.seconds:.1f} s"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error": self.error,
            "seconds": round(self.seconds, 2),
            "swapped": self.swapped,
            **(self.report.as_dict() if self.report else {}),
        }


@dataclass
class IndexKeeper:
    """The live searcher, and the one way to replace it."""

    settings: Settings
    encoder: Any
    searcher: Searcher
    on_swap: Callable[[Searcher], None] | None = None
    on_error: Callable[[str], Awaitable[None] | None] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def rebuild(self, *, force: bool = False) -> RebuildOutcome:
        """Bring the index up to date in a worker thread and swap it in. Never raises."""
        async with self._lock:  # one rebuild at a time; a second request waits and then finds nothing to do
            started = time.perf_counter()
            try:
                report, searcher = await asyncio.to_thread(self._build_and_open, force)
            except Exception as exc:  # any failure keeps the old index serving
                outcome = RebuildOutcome(
                    False, error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - started
                )
                log.error("%s", outcome.summary())
                await self._notify_error(outcome.summary())
                return outcome
            if searcher is not None:
                self.searcher = searcher
                if self.on_swap is not None:
                    self.on_swap(searcher)
            outcome = RebuildOutcome(True, report, seconds=time.perf_counter() - started, swapped=searcher is not None)
            log.info("%s", outcome.summary())
            return outcome

    def _build_and_open(self, force: bool) -> tuple[BuildReport, Searcher | None]:
        report = engine.update_index(self.settings, self.encoder, force=force)
        if not report.built:
            return report, None
        return report, engine.make_searcher(self.settings, self.encoder, engine.open_index(self.settings))

    async def _notify_error(self, message: str) -> None:
        if self.on_error is None:
            return
        try:
            result = self.on_error(message)
            if asyncio.iscoroutine(result):
                await result
        except Exception:  # telling the admins must never take the keeper down
            log.exception("could not report a failed rebuild")

    async def watch(self, stop: asyncio.Event, on_rebuild: Callable[[RebuildOutcome], Any] | None = None) -> None:
        """Rebuild whenever the seeds folder (or the sources file) changes, until ``stop`` is set."""
        from watchfiles import awatch

        where = engine.corpus(self.settings)
        seeds, sources = where.seeds_dir, where.sources_file
        paths = [p for p in (seeds, sources.parent) if p.exists()]
        log.info("watching %s for changes", ", ".join(str(p) for p in paths))
        async for changes in awatch(
            *paths,
            debounce=DEBOUNCE_MS,
            step=200,
            stop_event=stop,
            watch_filter=lambda _, path: _relevant(path, seeds, sources),
        ):
            log.info("seeds changed (%d files); rebuilding", len(changes))
            outcome = await self.rebuild()
            if on_rebuild is not None:
                on_rebuild(outcome)


def _relevant(path: str, seeds: Any, sources: Any) -> bool:
    from pathlib import Path

    p = Path(path)
    if any(part.startswith(".") for part in p.parts[-1:]):
        return False  # editors' swap and temp files
    return p == sources or p.is_relative_to(seeds)
