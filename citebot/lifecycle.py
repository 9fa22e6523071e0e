"""Keep the served index in step with the seeds folder, with no gap in service.

:class:`IndexKeeper` owns the live :class:`~embeddings.search.Searcher`. A rebuild runs in a worker
thread (incremental: only changed documents are re-embedded); when it succeeds, a new searcher is
made and swapped in with one assignment, so a question asked meanwhile is answered by the old
one and never waits. A failed rebuild (a disk full, a read-only folder, a bad file) keeps the old
index serving and is reported through ``on_error``.

The keeper also follows the ``current`` link whoever moves it: a build written by another builder
(``citebot index`` by hand or from cron, which may take the build lock first, so that the
keeper's own rebuild finds "already up to date") is adopted at the next rebuild attempt and by
:meth:`IndexKeeper.follow`, which compares the build ``current`` points to with the one in memory
every ``index.follow_seconds``. (A read-only replica has no keeper: it only follows the link.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from embeddings.index import BuildReport, current_build
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
    adopted: str | None = None  # the build of another builder swapped in (its folder name)

    def summary(self) -> str:
        if not self.ok:
            return f"rebuild failed, still serving the previous index: {self.error}"
        r = self.report
        assert r is not None
        if not r.built and self.adopted:
            return f"index already up to date; now serving build {self.adopted} ({r.passages} passages)"
        if not r.built:
            return f"index already up to date ({r.passages} passages)"
        parts = [f"{len(r.added)} added", f"{len(r.updated)} updated", f"{len(r.removed)} removed"]
        names = [f"+{d}" for d in r.added] + [f"~{d}" for d in r.updated] + [f"-{d}" for d in r.removed]
        detail = f" ({', '.join(names)})" if names else ""
        return f"index rebuilt: {', '.join(parts)}{detail}; {r.passages} passages; {self.seconds:.1f} s"

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "error": self.error, "seconds": round(self.seconds, 2), "swapped": self.swapped,
                "adopted": self.adopted, **(self.report.as_dict() if self.report else {})}


def live_build(index_dir: Any) -> str | None:
    """Where the ``current`` link of ``index_dir`` points now (a resolved path), None without one."""
    try:
        return os.path.realpath(current_build(index_dir), strict=True)
    except OSError:
        return None


def serving_build(searcher: Any) -> str | None:
    """The build folder ``searcher`` answers from (a resolved path), None if it has none."""
    path = getattr(getattr(searcher, "data", None), "path", None)
    return os.path.realpath(path) if path else None


@dataclass
class IndexKeeper:
    """The live searcher, and the one way to replace it."""

    settings: Settings
    encoder: Any
    searcher: Searcher
    on_swap: Callable[[Searcher], None] | None = None
    on_error: Callable[[str], Awaitable[None] | None] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _unloadable: str | None = None  # a build of another builder that failed to load: not tried again

    async def rebuild(self, *, force: bool = False) -> RebuildOutcome:
        """Bring the index up to date in a worker thread and swap it in. Never raises."""
        async with self._lock:  # one rebuild at a time; a second request waits and then finds nothing to do
            started = time.perf_counter()
            try:
                report, searcher = await asyncio.to_thread(self._build_and_open, force)
            except Exception as exc:  # any failure keeps the old index serving
                outcome = RebuildOutcome(False, error=f"{type(exc).__name__}: {exc}",
                                         seconds=time.perf_counter() - started)
                log.error("%s", outcome.summary())
                await self._notify_error(outcome.summary())
                return outcome
            adopted = None
            if searcher is not None:
                if not report.built:
                    adopted = os.path.basename(serving_build(searcher) or "")
                self._swap(searcher)
            outcome = RebuildOutcome(True, report, seconds=time.perf_counter() - started, swapped=searcher is not None,
                                     adopted=adopted)
            log.info("%s", outcome.summary())
            return outcome

    def _build_and_open(self, force: bool) -> tuple[BuildReport, Searcher | None]:
        report = engine.update_index(self.settings, self.encoder, force=force)
        if not report.built and not self._behind():
            return report, None
        # a new build of ours, or one another builder published (we found the seeds up to date)
        return report, self._open_live()

    # ------------------------------------------------------------------ following `current`

    def _behind(self) -> bool:
        """Whether ``current`` points to another build than the one in memory."""
        live = live_build(self.settings.path(self.settings.index.dir))
        return live is not None and live != serving_build(self.searcher)

    def _open_live(self) -> Searcher:
        return engine.make_searcher(self.settings, self.encoder, engine.open_index(self.settings))

    def _swap(self, searcher: Searcher) -> None:
        self.searcher = searcher
        self._unloadable = None
        if self.on_swap is not None:
            self.on_swap(searcher)

    async def adopt_current(self) -> bool:
        """Swap in the build ``current`` points to if it is not the one served (another builder
        moved the link); True when it swapped. A build that cannot be loaded is logged (and the
        admins told) once and the served one kept; a rebuild in progress is not waited for."""
        live = live_build(self.settings.path(self.settings.index.dir))
        if live is None or live == serving_build(self.searcher) or live == self._unloadable or self._lock.locked():
            return False
        async with self._lock:
            if not self._behind():
                return False
            try:
                searcher = await asyncio.to_thread(self._open_live)
            except Exception as exc:  # keep serving what we have
                self._unloadable = live
                message = (f"cannot load the build `current` points to ({os.path.basename(live)}: "
                           f"{type(exc).__name__}: {exc}); still serving the previous index")
                log.error("%s", message)
                await self._notify_error(message)
                return False
            self._swap(searcher)
        log.info("now serving build %s, published by another builder (%d passages)",
                 os.path.basename(serving_build(searcher) or ""), len(searcher.passages))
        return True

    async def follow(self, stop: asyncio.Event) -> None:
        """:meth:`adopt_current` every ``index.follow_seconds`` until ``stop`` is set."""
        seconds = self.settings.index.follow_seconds
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
            if stop.is_set():
                return
            try:
                await self.adopt_current()
            except Exception:  # following must never end: log and try again next time
                log.exception("checking the current build failed")

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
        async for changes in awatch(*paths, debounce=DEBOUNCE_MS, step=200, stop_event=stop,
                                    watch_filter=lambda _, path: _relevant(path, seeds, sources)):
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
