"""Give the memory a forward pass freed back to the operating system.

torch's CPU tensors come from glibc's ``malloc``. A batch of long questions needs tens of MiB of
activations; freed, they stay in the C heap (glibc raises its mmap threshold after the first big
free, so later tensors of that size come from the heap, and a heap only shrinks from its top),
and the process's resident memory climbs by the largest batches it has seen: about 100–150 MiB
on the seeds (bench/README.md, "Memory"). ``malloc_trim(0)`` returns the free pages of every
arena at once; it takes a few ms, and the next batch faults the pages it uses back in, which
costs far less than keeping glibc from reusing its heap (a fixed mmap threshold: every large
tensor mapped and unmapped, ~15% more CPU per batch). So the batchers trim after a batch has
been answered, at most once per ``every_seconds``.

Each thread that allocates gets a glibc arena of its own, up to 8 per core, and every arena keeps
its own free memory: :func:`limit_arenas` caps their number (``embeddings.malloc_arenas``; 2 kept
the soak's RSS ~25 MiB lower after a minute, bench/README.md "Memory").

On a C library without ``malloc_trim`` or ``mallopt`` (musl, macOS) these functions do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
import time
from collections.abc import Callable
from functools import lru_cache

M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def freeze_long_lived() -> None:
    """Move every object the garbage collector tracks now into its permanent generation
    (``gc.freeze``): once serving, these are the model, the libraries and the index, about 470k
    objects built once and kept. A full collection walks every tracked object, 250–300 ms with
    them on 2 cores, and no thread runs Python meanwhile: the event loop and the search thread
    both stop (7 such pauses, up to 245 ms, in one 30 s ``bench.roundtrip --quick``). Frozen
    objects are still freed when their last reference goes; only a reference cycle among them is
    never collected."""
    gc.freeze()


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # ctypes releases the GIL during the call: other threads run meanwhile


def limit_arenas(arenas: int) -> bool:
    """At most ``arenas`` glibc malloc arenas from now on (0: leave glibc's default). Call it early,
    before threads allocate: arenas made already stay. Whether the C library took it."""
    mallopt = getattr(_libc(), "mallopt", None)
    if arenas <= 0 or mallopt is None:
        return False
    return bool(mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(arenas)))


def trim_heap() -> bool:
    """Return the C heap's free pages to the OS (glibc ``malloc_trim(0)``). False when the C
    library has no such call; otherwise whether it released anything."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


class HeapTrimmer:
    """:func:`trim_heap`, at most once per ``every_seconds`` (0 or less: never). Thread-safe;
    a call that comes too soon returns at once."""

    def __init__(self, every_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_seconds = every_seconds
        self.clock = clock
        self.trims = 0  # how many times it trimmed (tests, benchmarks)
        self._last = float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> None:
        if self.every_seconds <= 0:
            return
        with self._lock:
            now = self.clock()
            if now - self._last < self.every_seconds:
                return
            self._last = now
            self.trims += 1
        trim_heap()
