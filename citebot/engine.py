"""Settings → the plain arguments of embeddings/: the corpus (seeds, catalog, index folder, build
parameters), the model, the index build, the searcher. Written once, here; the composition root
(:mod:`citebot.service`) and the index keeper (:mod:`citebot.lifecycle`) use these functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

from embeddings import coverage
from embeddings.artifacts import load_artifacts, save_artifacts
from embeddings.fusion import Weights
from embeddings.index import BuildParams, BuildReport, IndexData, build_index, load_index
from embeddings.memory import HeapTrimmer, trim_heap
from embeddings.model import Encoder
from embeddings.search import Searcher
from embeddings.sources import SourceCatalog, load_catalog

from .config import Settings

if TYPE_CHECKING:
    import numpy as np

    from embeddings.vector_index import VectorIndex

log = logging.getLogger(__name__)


def build_params(settings: Settings) -> BuildParams:
    return BuildParams(
        settings.embeddings.model,
        settings.chunking.target_chars,
        settings.chunking.max_chars,
        settings.embeddings.title_prefix,
    )


@dataclass(frozen=True)
class Corpus:
    """Where the documents and the index are, and how the index is built, as embeddings/ takes them."""

    seeds_dir: Path
    sources_file: Path
    index_dir: Path
    extensions: tuple[str, ...]
    max_bytes: int
    params: BuildParams
    mmap_above_bytes: int  # a build this large is memory-mapped, a smaller one read into memory

    def catalog(self) -> SourceCatalog:
        return load_catalog(self.sources_file)


def corpus(settings: Settings) -> Corpus:
    """The corpus arguments of ``settings`` (relative paths resolved against the project root)."""
    c = settings.corpus
    return Corpus(
        settings.path(c.seeds_dir),
        settings.path(c.sources_file),
        settings.path(settings.index.dir),
        tuple(c.extensions),
        int(c.max_file_mb * 1_000_000),
        build_params(settings),
        int(settings.index.mmap_above_mb * 2**20),
    )


@lru_cache(maxsize=4)
def _cached_encoder(model: str, offline: bool, device: str, batch_size: int, root: str, pack: bool) -> Encoder:
    return Encoder(model, offline=offline, device=device, batch_size=batch_size, root=Path(root), pack=pack)


def limit_search_threads() -> None:  # called by citebot.service.configure_process
    """One thread per FAISS search and per numpy matrix product; torch keeps its own threads.

    Questions already run concurrently in worker threads. Two-thread FAISS searches of tiny
    batches were measured 100× slower on a busy 2-core machine, and OpenBLAS's spinning second
    thread made each question's scoring cost 4× the CPU time (8 ms instead of 2), CPU the
    model's encode needs under load (bench/README.md)."""
    import faiss
    import scipy.linalg  # noqa: F401  # loads scipy's own OpenBLAS (sentence-transformers imports scipy), limited below
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(1)
    threadpool_limits(1, user_api="blas")  # numpy's and FAISS's OpenBLAS; not torch's OpenMP


def limit_threads_here(model_threads: int) -> None:
    """:func:`limit_search_threads`' and :func:`limit_model_threads`' limits in the calling
    thread, for a thread that runs searches (the bot's batcher and workers).

    OpenMP keeps its number of threads per thread: ``faiss.omp_set_num_threads(1)`` in the main
    thread also gives torch one thread there (they share libgomp), and a thread started later
    has OpenMP's default, one per core. The bot's search thread ran torch's parallel loops (and
    FAISS searches) on two threads, competing with the event loop for the two cores, where the
    main thread (citebot eval, the builds, the benchmarks' bare model) runs them on one
    (bench/README.md, "A lean path")."""
    import faiss

    faiss.omp_set_num_threads(1)
    limit_model_threads(model_threads)


def load_encoder(settings: Settings) -> Encoder:
    """The embedding model, loaded once per process (loading takes seconds), with
    ``embeddings.threads`` threads for its forward passes (:func:`limit_model_threads`)."""
    e = settings.embeddings
    limit_model_threads(e.threads)
    return _cached_encoder(e.model, e.offline, e.device, e.batch_size, str(settings.root), e.pack_texts)


def limit_model_threads(threads: int) -> None:
    """torch's intra-op threads, in every thread (0: leave torch's default, one per core, except
    in a thread that limited OpenMP itself, as :func:`limit_threads_here` does).

    Replicas sharing a machine each default to one thread per core: three replicas on two cores
    run six threads, and OpenMP threads that miss their core at a barrier spin, so the CPU time
    per question grew with the number of replicas (bench/README.md, replicas). ``cores // N``
    threads for each of N replicas keeps it flat."""
    if threads <= 0:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def update_index(
    settings: Settings, encoder: Encoder, *, force: bool = False, progress: Callable[[int, int], None] | None = None
) -> BuildReport:
    """Bring the index in line with the seeds folder (incremental unless ``force``)."""
    c = corpus(settings)
    return build_index(
        seeds_dir=c.seeds_dir,
        index_dir=c.index_dir,
        catalog=c.catalog(),
        encoder=encoder,
        params=c.params,
        extensions=c.extensions,
        max_bytes=c.max_bytes,
        force=force,
        keep_builds=settings.index.keep_builds,
        progress=progress,
        artifacts=partial(save_artifacts, exact_below=settings.retrieval.exact_search_below),
    )


def open_index(settings: Settings) -> IndexData:
    c = corpus(settings)
    return load_index(c.index_dir, c.params, mmap_above_bytes=c.mmap_above_bytes)


def make_searcher(
    settings: Settings,
    encoder: Encoder,
    data: IndexData,
    *,
    vector_index: Callable[[np.ndarray], VectorIndex] | None = None,
) -> Searcher:
    """The searcher the settings describe; ``vector_index`` builds a non-FAISS vector backend."""
    r = settings.retrieval
    from embeddings.lexical import common_english_words, english_words

    known = english_words() | {w for w in encoder.model.tokenizer.get_vocab() if w.isalpha()}
    saved = (
        None
        if vector_index is not None
        else load_artifacts(
            data.path,
            exact_below=r.exact_search_below,
            rows=(len(data.passages), len(data.sentences)),
            known_words=known,
        )
    )
    searcher = Searcher(
        data,
        encoder,
        weights=Weights(**r.weights.model_dump()),
        abstain_below=r.abstain_below,
        candidates=r.candidates,
        rerank=r.maxsim_candidates,
        max_results=r.max_results,
        spelling_correction=r.spelling_correction,
        known_words=known,
        exact_below=r.exact_search_below,
        vector_index=vector_index,
        recency_margin=r.recency_margin,
        history_years=r.history_years,
        newest_ratio=r.newest_ratio,
        kind_weights=r.kind_boosts.model_dump(),
        source_weights=r.source_boosts.model_dump(),
        common_words=common_english_words(),
        everyday_words=common_english_words(coverage.EVERYDAY_WORDS),
        abstain_margin=r.abstain_margin,
        artifacts=saved,
        question_cache_bytes=int(r.question_cache_mb * 2**20),
        after_batch=HeapTrimmer(settings.embeddings.trim_heap_seconds),
    )
    # one forward pass per question where the encoder can pool its token states
    searcher.focus_from_tokens = searcher.focus_from_tokens and r.focus_pass == "pooled"
    searcher.focus_topic_weight = r.focus_topic_weight
    if settings.embeddings.trim_heap_seconds > 0:
        trim_heap()  # what loading, a build's encodes and the probes' freed (20-40 MiB at start-up)
    return searcher
