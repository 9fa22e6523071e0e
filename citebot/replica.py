"""A replica's index: read-only, following the build that one builder publishes.

With ``index.replica: true`` (``citebot serve --replica``) the bot never builds: no seeds
watcher, no rebuild on /reload or SIGHUP. One builder (``citebot index --watch``, or
``citebot index`` from cron) writes each build into ``builds/<id>/`` and then moves the
``current`` link; every replica checks the link every ``index.follow_seconds`` and, when it
points elsewhere, loads that build (validated by ``load_index``, search artifacts memory-mapped)
in a worker thread and swaps it in with one assignment. A question in flight finishes on the
build it started with (its files stay readable while it holds them, even if the builder prunes
the folder); the next one is answered from the new build. A build that cannot be loaded is
logged once and the replica keeps serving the one it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from embeddings.index import current_build

from . import engine
from .config import Settings

log = logging.getLogger(__name__)


def live_build(index_dir: Path) -> str | None:
    """Where ``current`` points now (a resolved path), or None when there is no build."""
    link = current_build(index_dir)
    try:
        return os.path.realpath(link, strict=True)
    except OSError:
        return None


class IndexFollower:
    """Swaps in each build the builder publishes; ``on_swap(searcher)`` is told of every swap."""

    def __init__(
        self, settings: Settings, encoder: Any, searcher: Any, on_swap: Callable[[Any], None] | None = None
    ) -> None:
        self.settings = settings
        self.encoder = encoder
        self.searcher = searcher
        self.on_swap = on_swap
        self.index_dir = settings.path(settings.index.dir)
        self.serving = str(Path(searcher.data.path).resolve()) if getattr(searcher, "data", None) else None
        self.swaps = 0
        self._failed: str | None = None

    def _open(self, build: str) -> Any:
        data = engine.open_index(self.settings)
        if str(Path(data.path).resolve()) != build:  # moved again meanwhile: take what is live now
            log.info("the index moved on while loading; serving %s", data.path)
        return engine.make_searcher(self.settings, self.encoder, data)

    async def check(self) -> bool:
        """Swap in the live build if it is not the one served; True when it swapped."""
        build = live_build(self.index_dir)
        if build is None or build == self.serving or build == self._failed:
            return False
        try:
            searcher = await asyncio.to_thread(self._open, build)
        except Exception as exc:  # keep serving what we have
            self._failed = build
            log.error(
                "cannot load the new build %s (%s: %s); still serving %s", build, type(exc).__name__, exc, self.serving
            )
            return False
        self.searcher, self.serving, self._failed = searcher, str(Path(searcher.data.path).resolve()), None
        self.swaps += 1
        if self.on_swap is not None:
            self.on_swap(searcher)
        log.info("now serving build %s (%d passages)", Path(self.serving).name, len(searcher.passages))
        return True

    async def follow(self, stop: asyncio.Event) -> None:
        """Check every ``index.follow_seconds`` until ``stop`` is set."""
        seconds = self.settings.index.follow_seconds
        log.info("replica: following %s (read-only, checked every %.1f s)", current_build(self.index_dir), seconds)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
            if not stop.is_set():
                try:
                    await self.check()
                except Exception:  # never let following end: log and try again next time
                    log.exception("checking for a new build failed")
