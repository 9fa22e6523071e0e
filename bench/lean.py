"""A lean path from update to answer: the effect of each change, measured A/B in the same run.

The machine is shared and noisy, so a change is never judged against a figure from another run:
for each change the bot is started with it and without it, alternately (the order flipping each
repeat), each time for a closed loop of USERS users (no think time: saturation) against the load
generator's emulator, as in ``bench.roundtrip``. Reported per variant: questions/s and the bot's
CPU ms per question, median and spread (min–max) over the repeats, and the lost/duplicated count.

    python -m bench.lean [--quick] [--repeats N] [--change NAME ...] [--in-process]

``--in-process``: no bot, no HTTP: the searcher alone answers the pool's questions in batches of
BATCH (``Searcher.search_many``, as the bot's batcher calls it), with and without the change,
alternately; reported: CPU ms per question (this process, every thread). A change to the search
shows there without the noise of the bot's HTTP and the emulator's process.

The code runs with every change; "without" undoes one change for the duration of a run. A change
that is a setting (``one_pass``: ``retrieval.focus_pass``) is set both ways, whatever the config says.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from .common import bench_settings, open_searcher, parser, scalar_over_runs, write_result
from .questions import questions as make_questions
from .roundtrip import BotSide, assign, command, one_run

USERS = 20
SECONDS = 4.0
BATCH = 8  # questions per search_many call in-process: about what 20 users' answers come in
IN_PROCESS_QUESTIONS = 160


@contextlib.contextmanager
def stdlib_json() -> Iterator[None]:
    """Without orjson: PTB's own ``parse_json_payload`` (the standard library's json)."""
    from telegram.request import BaseRequest

    from bot.transport import FastJsonPayload

    own = FastJsonPayload.__dict__["parse_json_payload"]
    FastJsonPayload.parse_json_payload = staticmethod(BaseRequest.parse_json_payload)
    try:
        yield
    finally:
        FastJsonPayload.parse_json_payload = own


@contextlib.contextmanager
def thread_pool_searches() -> Iterator[None]:
    """Without the bot's batcher: each question to the thread pool (``run_in_executor``), where the
    searcher's QueryBatcher forms the batch, and back with its own ``call_soon_threadsafe``."""
    from bot import handlers

    own = handlers.search

    async def pooled(context: Any, question: str, k: int, offset: int) -> Any:
        return await handlers.run_blocking(context, context.bot_data.retriever.search, question, k, offset)

    handlers.search = pooled  # type: ignore[assignment]
    try:
        yield
    finally:
        handlers.search = own  # type: ignore[assignment]


@contextlib.contextmanager
def focus_pass(searcher: Any, pooled: bool) -> Iterator[None]:
    """The focus vector pooled from the question's one forward pass, or the stripped text encoded
    as well (``retrieval.focus_pass``); the question cache emptied, so every question is encoded."""
    configured = searcher.focus_from_tokens
    searcher.focus_from_tokens = pooled
    searcher.forget_questions()
    try:
        yield
    finally:
        searcher.focus_from_tokens = configured
        searcher.forget_questions()


@contextlib.contextmanager
def untrimmed_heap() -> Iterator[None]:
    """Without returning the batches' freed memory to the OS (embeddings.trim_heap_seconds: 0)."""
    from embeddings.memory import HeapTrimmer

    own = HeapTrimmer.__call__
    HeapTrimmer.__call__ = lambda self: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        HeapTrimmer.__call__ = own  # type: ignore[method-assign]


def repeated_texts() -> contextlib.AbstractContextManager:
    """Without encoding a repeated text once: every question's focus text encoded, also when it is
    the question again (embeddings.search.distinct_within_batch)."""
    from embeddings import search

    return mock.patch.object(search, "distinct_within_batch", lambda texts, size: (texts, list(range(len(texts)))))


def unlimited_search_threads() -> contextlib.AbstractContextManager:
    """Without the main thread's limits in the bot's search threads: OpenMP's default there, two
    torch (and FAISS) threads per forward pass on two cores."""
    from bot import application

    return mock.patch.object(application, "limit_threads_here", lambda threads: None)


@contextlib.contextmanager
def httpx_requests() -> Iterator[None]:
    """Without aiohttp: the Bot API calls and getUpdates through PTB's HTTPXRequest (httpx)."""
    from telegram.request import HTTPXRequest

    from bot import application
    from bot.transport import FastJsonPayload

    class HttpxPolling(FastJsonPayload, HTTPXRequest):
        pass

    with (
        mock.patch.object(application, "AiohttpRequest", HTTPXRequest),
        mock.patch.object(application, "PollingRequest", HttpxPolling),
    ):
        yield


def per_call_setup() -> contextlib.AbstractContextManager:
    """Without the model set up once: every forward pass through ``SentenceTransformer.encode``,
    which puts the model in eval mode and finds its device again on each call (and pads every
    text to its batch's longest: compare with ``packed_rows`` undone)."""
    from embeddings.model import Encoder

    def library_loop(self: Any, texts: list[str]) -> list[dict[str, Any]]:
        return self.model.encode(texts, output_value=None, batch_size=self.batch_size)

    return mock.patch.object(Encoder, "forward", library_loop)


@contextlib.contextmanager
def encoder_attribute(searcher: Any, name: str, value: Any) -> Iterator[None]:
    """The searcher's encoder with ``name`` set to ``value`` for the block; as configured after:
    ``packs`` (``embeddings.pack_texts``: texts several to a row of a forward pass, or the
    library's batches, each text padded to the longest)."""
    encoder = searcher.encoder
    configured = getattr(encoder, name)
    setattr(encoder, name, value)
    try:
        yield
    finally:
        setattr(encoder, name, configured)


@contextlib.contextmanager
def model_threads(threads: int) -> Iterator[None]:
    """torch's threads (MKL's matrix products included) set to ``threads`` for the block, 0 meaning
    torch's default of one per core, as ``embeddings.threads`` sets them; as configured after. The
    main thread keeps FAISS's one OpenMP thread, as configure_process leaves it."""
    import faiss
    import torch

    def use(n: int) -> None:
        torch.set_num_threads(n or os.cpu_count() or 1)
        faiss.omp_set_num_threads(1)

    use(threads)
    try:
        yield
    finally:
        use(bench_settings().embeddings.threads)


# change name -> (what it is, a context manager undoing it); a change that is a setting also has
# one applying it (the "with" runs), given the searcher like the undoing one
CHANGES: dict[str, tuple[str, Callable[..., contextlib.AbstractContextManager]]] = {
    "orjson": ("Bot API answers parsed with orjson (bot.transport.FastJsonPayload)", stdlib_json),
    "batcher": (
        "questions batched by one thread, futures resolved once per batch (embeddings.batching.AsyncQueryBatcher)",
        thread_pool_searches,
    ),
    "one_pass": (
        "one forward pass per question: the focus vector pooled (retrieval.focus_pass: pooled vs encoded)",
        lambda searcher: focus_pass(searcher, False),
    ),
    "distinct_texts": (
        "a focus text that is the question again encoded once (embeddings.search.distinct_within_batch)",
        repeated_texts,
    ),
    "thread_limits": (
        "the search threads get the main thread's limits: one OpenMP thread (citebot.engine.limit_threads_here)",
        unlimited_search_threads,
    ),
    "aiohttp": (
        "Bot API calls and getUpdates over aiohttp, not httpx (bot.aiohttp_request.AiohttpRequest)",
        httpx_requests,
    ),
    "setup_once": (
        "the model set up once, not by SentenceTransformer.encode on every call (embeddings.model.Encoder.forward)",
        per_call_setup,
    ),
    "packed_rows": (
        "short texts packed several to a row of a forward pass, not each padded to the longest (embeddings.pack_texts)",
        lambda searcher: encoder_attribute(searcher, "packs", False),
    ),
    "one_model_thread": (
        "the model's forward passes on one thread (embeddings.threads: 1 against 0, torch's default of one per core)",
        lambda searcher: model_threads(0),
    ),
    "trim_heap": (
        "the heap trimmed after a batch, at most once a second (embeddings.memory.HeapTrimmer)",
        untrimmed_heap,
    ),
}

# changes that are settings: how to apply one for the "with" runs, whatever the config says
SETTINGS_CHANGES: dict[str, Callable[[Any], contextlib.AbstractContextManager]] = {
    "one_pass": lambda searcher: focus_pass(searcher, True),
    "one_model_thread": lambda searcher: model_threads(1),
    "packed_rows": lambda searcher: encoder_attribute(searcher, "packs", True),
}


def as_in(variant: str, name: str, searcher: Any) -> contextlib.AbstractContextManager:
    """Change ``name`` as in ``variant``: undone ("without") or applied ("with"; only a change that
    is a setting needs applying, the code runs with every other change)."""
    if variant == "without":
        undo = CHANGES[name][1]
        return undo(searcher) if name in SETTINGS_CHANGES else undo()
    apply = SETTINGS_CHANGES.get(name)
    return apply(searcher) if apply else contextlib.nullcontext()


async def ab(
    settings: Any, searcher: Any, name: str, repeats: int, seconds: float, users_n: int = USERS
) -> dict[str, Any]:
    """The closed loop with and without change ``name``, alternately, ``repeats`` times each."""
    from bench.loadgen import LoadGenerator

    pool = make_questions(800)
    runs: dict[str, list[dict[str, Any]]] = {"with": [], "without": []}
    async with LoadGenerator() as users:
        for r in range(repeats):
            for variant in ("with", "without") if r % 2 == 0 else ("without", "with"):
                with as_in(variant, name, searcher):
                    searcher.forget_questions()  # every run encodes its questions: no answers from earlier runs
                    bot = BotSide(settings, searcher)
                    await bot.start(users.base_url, users.token)
                    try:
                        await users.run(command("closed", assign(pool[::-1], 4, r), 0.5, seed=0))  # warm-up
                        run = command("closed", assign(pool, users_n, 97 * r), seconds, seed=r)
                        runs[variant].append(await one_run(users, bot, run, None))
                    finally:
                        await bot.stop()
                last = runs[variant][-1]
                print(
                    f"lean: {name} {variant}: {last['answers_per_second']:.0f} q/s, "
                    f"bot {1000 * last['bot_cpu_seconds'] / max(1, last['asked']):.1f} ms CPU/question",
                    flush=True,
                )
    return {"change": name, "what": CHANGES[name][0], **{variant: summarise(rs) for variant, rs in runs.items()}}


def ab_in_process(searcher: Any, name: str, repeats: int, n_questions: int) -> dict[str, Any]:
    """``Searcher.search_many`` over ``n_questions`` in batches of BATCH with and without change
    ``name``, alternately, ``repeats`` times each: CPU ms per question."""
    pool = make_questions(n_questions)
    runs: dict[str, list[float]] = {"with": [], "without": []}
    for r in range(repeats):
        for variant in ("with", "without") if r % 2 == 0 else ("without", "with"):
            with as_in(variant, name, searcher):
                searcher.forget_questions()
                start = time.process_time()
                for i in range(0, len(pool), BATCH):
                    searcher.search_many(pool[i : i + BATCH], k=3)
                runs[variant].append(1000 * (time.process_time() - start) / len(pool))
            print(f"lean: {name} {variant} (in process): {runs[variant][-1]:.1f} ms CPU/question", flush=True)
    return {
        "change": name,
        "what": CHANGES[name][0],
        **{variant: {"cpu_ms_per_question": scalar_over_runs(values)} for variant, values in runs.items()},
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "questions_per_second": scalar_over_runs([r["answers_per_second"] for r in runs]),
        "bot_cpu_ms_per_question": scalar_over_runs([1000 * r["bot_cpu_seconds"] / max(1, r["asked"]) for r in runs]),
        "lost": sum(r["lost"] for r in runs),
        "duplicated": sum(r["duplicated"] for r in runs),
    }


def run(
    changes: list[str], repeats: int, seconds: float, in_process: bool = False, users: int = USERS
) -> dict[str, Any]:
    settings = bench_settings()
    settings = settings.model_copy(
        update={"telegram": settings.telegram.model_copy(update={"rate_limit_per_minute": 1_000_000})}
    )
    searcher = open_searcher(settings)
    if in_process:
        n = IN_PROCESS_QUESTIONS if seconds >= SECONDS else BATCH * 4
        rows = [ab_in_process(searcher, name, repeats, n) for name in changes]
        return {"in_process": True, "batch": BATCH, "questions": n, "repeats": repeats, "changes": rows}
    rows = [asyncio.run(ab(settings, searcher, name, repeats, seconds, users)) for name in changes]
    return {"users": users, "seconds": seconds, "repeats": repeats, "changes": rows}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--change", action="append", choices=sorted(CHANGES), help="which change (default: all)")
    p.add_argument("--in-process", action="store_true", help="the searcher alone, no bot (CPU per question)")
    p.add_argument("--users", type=int, default=USERS, help=f"users in the closed loop (default {USERS})")
    args = p.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    data = run(args.change or list(CHANGES), repeats, 2.0 if args.quick else SECONDS, args.in_process, args.users)
    name = "lean_in_process" if args.in_process else "lean" if args.users == USERS else f"lean_{args.users}_users"
    write_result(name, data, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
