"""Where the bot's CPU goes per question: py-spy samples, grouped by stage of the path.

Two profiles, each recorded by py-spy (from PyPI, the bench extra) attached to this process:
sampling, ``--nonblocking`` (the process is never paused), every thread, idle threads left out,
so the samples are where CPU time went.

* ``bot``: the real bot at saturation, as ``bench.lean`` runs it: USERS users in a closed loop
  (each asks again as soon as it is answered) against the load generator's emulator;
* ``search``: the searcher alone, ``Searcher.search_many`` over distinct questions in batches of
  ``bench.lean.BATCH``, as the bot's batcher calls it.

Each sample's stack is given to the first stage of STAGES whose marks it holds (the model's
forward pass before the searcher that called it, the HTTP client before the handler that sent).
Reported per stage: its share of the samples and that share of the run's CPU time per question.
The shares are of the threads py-spy saw running Python: a thread waiting for a core on a loaded
machine may count as running, and native threads (MKL's OpenMP workers) are not seen at all, so
the ms per stage are an estimate; compare shares of one run, and a change by ``bench.lean``.

    python -m bench.profile [--quick] [--seconds S] [--without CHANGE ...]

``--without CHANGE`` profiles with that change of ``bench.lean`` undone (all of them given: the
"before" profile); the result is ``profile_without_<changes>.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .common import bench_settings, open_searcher, parser, write_result
from .lean import BATCH, CHANGES, USERS, as_in
from .questions import questions as make_questions
from .roundtrip import BotSide, assign, command, one_run

RATE = 97  # samples per second (not a divisor of common timer rates)
# stage -> marks (substrings of a frame "function (path:line)"); the first stage with a mark in
# the stack takes the sample
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tokenisation", ("tokenization_utils", "tokenizers.", "Tokenizer.")),
    ("model forward (torch)", ("torch/nn/", "modeling_bert", "sentence_transformers/", "torch/")),
    ("MaxSim (token vectors)", ("maxsim",)),
    ("BM25", ("bm25s/", "LexicalIndex.scores")),
    ("spelling correction", ("Vocabulary.correct",)),
    ("FAISS", ("faiss/", "vector_index.py")),
    ("coverage checks (not covered, anchored)", ("coverage.py", "Searcher._anchored", "missing_")),
    ("cues, attribution, temporal rules", ("cues.py", "attribution.py", "temporal.py")),
    ("fusion and the rest of ranking", ("Searcher.rank", "fusion.py", "Searcher._candidates")),
    ("searcher, other", ("embeddings/",)),
    ("answer formatting", ("bot/formatting.py",)),
    (
        "HTTP client (aiohttp, yarl, multidict; httpx, httpcore, h11, anyio)",
        ("aiohttp/", "yarl/", "multidict/", "httpx/", "httpcore/", "h11/", "anyio/"),
    ),
    ("JSON", ("orjson", "json/")),
    ("Bot API objects (de_json, to_dict)", ("de_json", "de_list", "to_dict", "_get_attrs")),
    ("python-telegram-bot dispatch", ("telegram/",)),
    ("handlers", ("bot/",)),
    ("event loop and hand-offs", ("asyncio/", "selectors.py", "concurrent/futures/", "batching.py", "threading.py")),
)
OTHER = "other"


def stage(stack: str) -> str:
    """The stage of one sample's stack (frames joined by ``;``, py-spy's collapsed format)."""
    for name, marks in STAGES:
        if any(mark in stack for mark in marks):
            return name
    return OTHER


def stage_samples(lines: Iterable[str]) -> Counter[str]:
    """Samples per stage from py-spy's raw output: one ``stack count`` per line."""
    counts: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            counts[stage(stack)] += int(count)
    return counts


def breakdown(counts: Counter[str], cpu_ms_per_question: float) -> list[dict[str, Any]]:
    """Each stage's share of the samples and its CPU ms per question, largest first."""
    total = sum(counts.values()) or 1
    return [
        {"stage": name, "share": n / total, "cpu_ms_per_question": cpu_ms_per_question * n / total}
        for name, n in counts.most_common()
    ]


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: make install (the bench extra)")
    return found


@contextlib.contextmanager
def recorded(seconds: float, out: Path) -> Iterator[None]:
    """py-spy records this process for ``seconds`` while the block runs; waits for it to write."""
    spy = subprocess.Popen(
        [
            *(py_spy(), "record", "--pid", str(os.getpid()), "--duration", str(max(1, round(seconds)))),
            *("--rate", str(RATE), "--nonblocking", "--threads", "--format", "raw", "--output", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # attached
    try:
        yield
    finally:
        spy.wait(timeout=seconds + 60)


@contextlib.contextmanager
def without(names: list[str], searcher: Any) -> Iterator[None]:
    """``bench.lean``'s changes ``names`` undone for the block."""
    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(as_in("without", name, searcher))
        yield


async def bot_profile(settings: Any, searcher: Any, seconds: float, out: Path) -> dict[str, Any]:
    from bench.loadgen import LoadGenerator

    pool = make_questions(800)
    async with LoadGenerator() as users:
        bot = BotSide(settings, searcher)
        await bot.start(users.base_url, users.token)
        try:
            await users.run(command("closed", assign(pool[::-1], 4, 0), 1.0, seed=0))  # warm-up
            with recorded(seconds, out):
                run = await one_run(users, bot, command("closed", assign(pool, USERS, 0), seconds, seed=0), None)
        finally:
            await bot.stop()
    return {
        "questions": run["asked"],
        "questions_per_second": run["answers_per_second"],
        "cpu_ms_per_question": 1000 * run["bot_cpu_seconds"] / max(1, run["asked"]),
        "lost": run["lost"],
        "duplicated": run["duplicated"],
    }


def search_profile(searcher: Any, seconds: float, out: Path) -> dict[str, Any]:
    pool = make_questions(800)
    asked, start = 0, time.process_time()
    with recorded(seconds, out):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batch = [pool[(asked + i) % len(pool)] for i in range(BATCH)]
            searcher.forget_questions()
            searcher.search_many(batch, k=3)
            asked += BATCH
    return {"questions": asked, "cpu_ms_per_question": 1000 * (time.process_time() - start) / max(1, asked)}


def run(seconds: float, changes: list[str]) -> dict[str, Any]:
    settings = bench_settings()
    settings = settings.model_copy(
        update={"telegram": settings.telegram.model_copy(update={"rate_limit_per_minute": 1_000_000})}
    )
    searcher = open_searcher(settings)
    data: dict[str, Any] = {"users": USERS, "batch": BATCH, "seconds": seconds, "without": changes, "rate": RATE}
    with tempfile.TemporaryDirectory() as tmp, without(changes, searcher):
        for name in ("bot", "search"):
            raw = Path(tmp) / f"{name}.txt"
            if name == "bot":
                figures = asyncio.run(bot_profile(settings, searcher, seconds, raw))
            else:
                figures = search_profile(searcher, seconds, raw)
            counts = stage_samples(raw.read_text().splitlines() if raw.exists() else [])
            data[name] = {
                **figures,
                "samples": sum(counts.values()),
                "stages": breakdown(counts, figures["cpu_ms_per_question"]),
            }
            print(f"profile: {name}: {figures['cpu_ms_per_question']:.1f} ms CPU/question", flush=True)
    return data


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=None, help="seconds per profile (default 20, quick 4)")
    p.add_argument("--without", action="append", choices=sorted(CHANGES), default=[], help="undo this change")
    args = p.parse_args(argv)
    seconds = args.seconds or (4.0 if args.quick else 20.0)
    name = "_".join(["profile", *(["without", *sorted(args.without)] if args.without else [])])
    write_result(name, run(seconds, args.without), args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
