"""The composition root: one :class:`Settings` in, the application's objects out.

:func:`open_service` loads the model, opens the index (building it first when there is none
usable), makes the searcher and the keeper that replaces it when the seeds change. The CLI,
``citebot serve``, the sandbox, the benchmarks and the tests' fixtures all start here.

:func:`configure_process` makes the process-wide settings, once per entry point (the CLI, the
benchmarks, the test session): thread limits, the hub libraries' offline switches, log levels.
No constructor does any of that on its own.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from embeddings.memory import limit_arenas
from embeddings.model import Encoder
from embeddings.search import Searcher

from . import engine
from .config import Settings
from .lifecycle import IndexKeeper

log = logging.getLogger(__name__)

# third-party loggers that chatter at INFO (httpx/httpcore log request URLs, which hold the bot token)
NOISY_LOGGERS = ("httpx", "httpcore", "urllib3", "sentence_transformers", "transformers", "faiss", "filelock", "bm25s")


@dataclass
class Service:
    """The model, the live searcher and its keeper: everything ``citebot`` serves from."""

    settings: Settings
    keeper: IndexKeeper

    @classmethod
    def around(cls, settings: Settings, searcher: Searcher) -> Service:
        """The service of a searcher already made (tests hand in the session's searcher)."""
        return cls(settings, IndexKeeper(settings, searcher.encoder, searcher))

    @property
    def searcher(self) -> Searcher:
        """The searcher answering now (a rebuild replaces it)."""
        return self.keeper.searcher

    @property
    def encoder(self) -> Encoder:
        return self.keeper.encoder


def open_service(
    settings: Settings,
    *,
    encoder: Encoder | None = None,
    build: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Service:
    """Load the model (or take ``encoder``) and the index, building the index first if there is
    none usable (unless ``build`` is false: then IndexError_ says so; ``progress`` gets the
    build's (done, total) texts); the searcher and its keeper, ready to serve."""
    from embeddings.index import IndexError_, IndexMissing

    encoder = encoder or engine.load_encoder(settings)
    try:
        data = engine.open_index(settings)
    except IndexError_ as exc:
        if not build:
            raise
        # this is the build the hint in the message asks for: don't tell the user to run it
        reason = "first start" if isinstance(exc, IndexMissing) else str(exc).split(": run `", 1)[0]
        log.info("building the index from %s (%s); this takes a minute or so", settings.corpus.seeds_dir, reason)
        report = engine.update_index(settings, encoder, progress=progress)
        log.info("index built: %d passages in %.1f s", report.passages, report.seconds)
        data = engine.open_index(settings)
    return Service.around(settings, engine.make_searcher(settings, encoder, data))


def configure_process(settings: Settings | None = None, *, verbose: bool = False, logs: bool = True) -> None:
    """The process-wide settings, made once by each entry point (calling it again changes nothing).

    * the hub libraries read ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` at call time: with
      ``embeddings.offline`` (the default) every call stays local;
    * at most ``embeddings.malloc_arenas`` malloc arenas (:func:`embeddings.memory.limit_arenas`),
      before the model's threads allocate;
    * one thread per FAISS search and per BLAS product (:func:`citebot.engine.limit_search_threads`);
    * logging to stderr (unless the process already logs somewhere; not with ``logs=False``: the
      benchmarks and the test session keep their own output), chatty libraries at WARNING.
    """
    if settings is None or settings.embeddings.offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if settings is not None:
        limit_arenas(settings.embeddings.malloc_arenas)
    engine.limit_search_threads()
    if logs:
        logging.basicConfig(
            level=logging.DEBUG if verbose else logging.INFO,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
