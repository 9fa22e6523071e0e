"""Keep the served index in step with the seeds folder, with no gap in service.

:class:`IndexKeeper` owns the live :class:`~embeddings.search.Searcher`. A rebuild runs in a worker
thread (incremental: only changed documents are re-embedded); when it succeeds, a new searcher is
made and swapped in with one assignment, so a question asked meanwhile is answered by the old
one and never waits. A failed rebuild (a disk full, a read-only folder, a bad file, a broken
``config/sources.yaml``) keeps the old index serving and is reported through ``on_error``.

While :meth:`IndexKeeper.watch` runs, the seeds watcher is restarted after any error (with
backoff, one log line, then a catch-up rebuild for changes it may have missed), and the live
build's files are checked against their checksums every ``index.verify_every_seconds``: a build
damaged on disk is replaced by a fresh rebuild, and the admins are told.

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

from embeddings.index import BuildReport, IndexError_, current_build, verify_build
from embeddings.search import Searcher

from . import engine
from .config import Settings

log = logging.getLogger(__name__)

# Seeds are often copied in several steps (an editor's temp file, then the rename):
# wait this long after the last change before rebuilding.
DEBOUNCE_MS = 1500
# A failed watcher is restarted after this many seconds, doubling up to the second figure; a
# watcher that ran this long before failing starts again from the first.
RESTART_SECONDS = (1.0, 60.0)
HEALTHY_SECONDS = 120.0
DAMAGE_RETRY_SECONDS = 600.0  # a damaged live build whose rebuild failed is rebuilt again after this


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
        return {
            "ok": self.ok,
            "error": self.error,
            "seconds": round(self.seconds, 2),
            "swapped": self.swapped,
            "adopted": self.adopted,
            **(self.report.as_dict() if self.report else {}),
        }


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
    _damage: str | None = None  # the damage last reported by check_index
    _retry_at: float = 0.0  # when check_index may try again to rebuild after a failed attempt
    _unloadable: str | None = None  # a build of another builder that failed to load: not tried again

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
            adopted = None
            if searcher is not None:
                if not report.built:
                    adopted = os.path.basename(serving_build(searcher) or "")
                self._swap(searcher)
            outcome = RebuildOutcome(
                True, report, seconds=time.perf_counter() - started, swapped=searcher is not None, adopted=adopted
            )
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
                message = (
                    f"cannot load the build `current` points to ({os.path.basename(live)}: "
                    f"{type(exc).__name__}: {exc}); still serving the previous index"
                )
                log.error("%s", message)
                await self._notify_error(message)
                return False
            self._swap(searcher)
        log.info(
            "now serving build %s, published by another builder (%d passages)",
            os.path.basename(serving_build(searcher) or ""),
            len(searcher.passages),
        )
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

    async def check_index(self) -> RebuildOutcome | None:
        """Verify the files of the build being served; when they were changed or damaged on disk
        (what the next load would meet), rebuild from the seeds and swap. None when intact."""
        build = self.searcher.data.path
        try:
            await asyncio.to_thread(verify_build, build)
            self._damage = None
            return None
        except IndexError_ as exc:
            problem = str(exc)
        if problem == self._damage and time.monotonic() < self._retry_at:
            return None  # the last rebuild for this damage failed (and said so): don't retry at every check
        if problem != self._damage:  # one alert per damage
            self._damage = problem
            log.error("the live index is damaged: %s; rebuilding it from the seeds", problem)
            await self._notify_error(f"the live index was damaged on disk ({problem}); rebuilding it from the seeds")
        outcome = await self.rebuild(force=True)
        if not outcome.ok:
            self._retry_at = time.monotonic() + DAMAGE_RETRY_SECONDS
        return outcome

    async def watch(self, stop: asyncio.Event, on_rebuild: Callable[[RebuildOutcome], Any] | None = None) -> None:
        """Until ``stop`` is set: rebuild whenever the seeds folder (or the sources file) changes, and
        check the live build every ``index.verify_every_seconds``. Never raises: a watcher that
        fails is restarted."""
        tasks = [asyncio.create_task(self._follow_seeds(stop, on_rebuild), name="citebot-seeds-watcher")]
        if self.settings.index.verify_every_seconds > 0:
            tasks.append(asyncio.create_task(self._check_periodically(stop, on_rebuild), name="citebot-index-check"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)

    async def _follow_seeds(self, stop: asyncio.Event, on_rebuild: Callable[[RebuildOutcome], Any] | None) -> None:
        delay = RESTART_SECONDS[0]
        restarted = False
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self._watch_seeds(stop, on_rebuild, catch_up=restarted)
                return
            except Exception as exc:  # a watcher error (a file name it cannot decode, a folder gone) is not fatal
                if stop.is_set():
                    return
                if time.monotonic() - started > HEALTHY_SECONDS:
                    delay = RESTART_SECONDS[0]
                log.error("watching the seeds failed (%s); restarting the watcher in %.0f s", _reason(exc), delay)
                log.debug("the watcher's failure", exc_info=exc)
            if await _wait(stop, delay):
                return
            delay = min(2 * delay, RESTART_SECONDS[1])
            restarted = True

    async def _watch_seeds(
        self, stop: asyncio.Event, on_rebuild: Callable[[RebuildOutcome], Any] | None, *, catch_up: bool
    ) -> None:
        from watchfiles import awatch

        async def rebuild() -> None:
            outcome = await self.rebuild()
            if on_rebuild is not None:
                on_rebuild(outcome)

        where = engine.corpus(self.settings)
        seeds, sources = where.seeds_dir, where.sources_file
        paths = [p for p in (seeds, sources.parent) if p.exists()]
        if not paths:
            raise FileNotFoundError(f"neither {seeds} nor {sources.parent} exists")
        log.info("watching %s for changes", ", ".join(str(p) for p in paths))
        catching_up = None
        if catch_up:  # changes made while no watcher was running; the watcher is in place by the time it runs
            catching_up = asyncio.create_task(_after(DEBOUNCE_MS / 1000, rebuild))
        try:
            async for changes in awatch(
                *paths,
                debounce=DEBOUNCE_MS,
                step=200,
                stop_event=stop,
                watch_filter=lambda _, path: _relevant(path, seeds, sources),
            ):
                log.info("seeds changed (%d files); rebuilding", len(changes))
                await rebuild()
        finally:
            if catching_up is not None:
                await asyncio.wait([catching_up])
                failure = None if catching_up.cancelled() else catching_up.exception()
                if failure is not None:
                    log.error("the catch-up rebuild failed: %s", _reason(failure))

    async def _check_periodically(
        self, stop: asyncio.Event, on_rebuild: Callable[[RebuildOutcome], Any] | None
    ) -> None:
        while not await _wait(stop, self.settings.index.verify_every_seconds):
            try:
                outcome = await self.check_index()
                if outcome is not None and on_rebuild is not None:
                    on_rebuild(outcome)
            except Exception as exc:  # the check must not end the watch; the next one tries again
                log.error("checking the live index failed: %s", _reason(exc))


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop`` is set; True when it is."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def _after(seconds: float, action: Callable[[], Awaitable[None]]) -> None:
    await asyncio.sleep(seconds)
    await action()


def _reason(exc: BaseException) -> str:
    """One line for a log: the first real error inside exception groups, undecodable names escaped."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}".encode("utf-8", "backslashreplace").decode("utf-8")


def _relevant(path: str, seeds: Any, sources: Any) -> bool:
    from pathlib import Path

    p = Path(path)
    if any(part.startswith(".") for part in p.parts[-1:]):
        return False  # editors' swap and temp files
    return p == sources or p.is_relative_to(seeds)
