"""Wiring: from one :class:`Settings` to a model, an up-to-date index and a searcher.

The CLI and the bot both start here; the retrieval code itself takes plain arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

from embeddings.fusion import Weights
from embeddings.index import BuildParams, BuildReport, IndexData, build_index, load_index
from embeddings.model import Encoder
from embeddings.search import Searcher
from embeddings.sources import load_catalog

from .config import Settings

if TYPE_CHECKING:
    import numpy as np

    from embeddings.vector_index import VectorIndex

log = logging.getLogger(__name__)


def build_params(settings: Settings) -> BuildParams:
    return BuildParams(settings.embeddings.model, settings.chunking.target_chars, settings.chunking.max_chars,
                       settings.embeddings.title_prefix)


@lru_cache(maxsize=4)
def _cached_encoder(model: str, offline: bool, device: str, batch_size: int, root: str) -> Encoder:
    from pathlib import Path

    return Encoder(model, offline=offline, device=device, batch_size=batch_size, root=Path(root))


def limit_search_threads() -> None:
    """One thread per FAISS search and per numpy matrix product; torch keeps its own threads.

    Questions already run concurrently in worker threads. Two-thread FAISS searches of tiny
    batches were measured 100× slower on a busy 2-core machine, and OpenBLAS's spinning second
    thread made each question's scoring cost 4× the CPU time (8 ms instead of 2), CPU the
    model's encode needs under load (bench/README.md)."""
    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(1)
    threadpool_limits(1, user_api="blas")  # numpy's and FAISS's OpenBLAS; not torch's OpenMP


def load_encoder(settings: Settings) -> Encoder:
    """The embedding model, loaded once per process (loading takes seconds)."""
    e = settings.embeddings
    return _cached_encoder(e.model, e.offline, e.device, e.batch_size, str(settings.root))


def update_index(settings: Settings, encoder: Encoder, *, force: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Bring the index in line with the seeds folder (incremental unless ``force``)."""
    corpus = settings.corpus
    return build_index(
        seeds_dir=settings.path(corpus.seeds_dir),
        index_dir=settings.path(settings.index.dir),
        catalog=load_catalog(settings.path(corpus.sources_file)),
        encoder=encoder,
        params=build_params(settings),
        extensions=tuple(corpus.extensions),
        max_bytes=int(corpus.max_file_mb * 1_000_000),
        force=force,
        keep_builds=settings.index.keep_builds,
        progress=progress,
    )


def open_index(settings: Settings) -> IndexData:
    return load_index(settings.path(settings.index.dir), build_params(settings))


def make_searcher(settings: Settings, encoder: Encoder, data: IndexData, *,
                  vector_index: Callable[[np.ndarray], VectorIndex] | None = None) -> Searcher:
    """The searcher the settings describe; ``vector_index`` builds a non-FAISS vector backend."""
    r = settings.retrieval
    limit_search_threads()
    from embeddings.lexical import english_words

    known = english_words() | {w for w in encoder.model.tokenizer.get_vocab() if w.isalpha()}
    return Searcher(
        data, encoder,
        weights=Weights(**r.weights.model_dump()),
        abstain_below=r.abstain_below,
        candidates=r.candidates,
        max_results=r.max_results,
        spelling_correction=r.spelling_correction,
        known_words=known,
        exact_below=r.exact_search_below,
        vector_index=vector_index,
    )


def open_searcher(settings: Settings, progress: Callable[[int, int], None] | None = None) -> Searcher:
    """Load the model and the index, building the index first if there is none usable
    (``progress`` gets the build's (done, total) texts)."""
    from embeddings.index import IndexError_, IndexMissing

    encoder = load_encoder(settings)
    try:
        data = open_index(settings)
    except IndexError_ as exc:
        # this is the build the hint in the message asks for: don't tell the user to run it
        reason = "first start" if isinstance(exc, IndexMissing) else str(exc).split(": run `", 1)[0]
        log.info("building the index from %s (%s); this takes a minute or so",
                 settings.corpus.seeds_dir, reason)
        report = update_index(settings, encoder, progress=progress)
        log.info("index built: %d passages in %.1f s", report.passages, report.seconds)
        data = open_index(settings)
    return make_searcher(settings, encoder, data)
