"""Soak: ``citebot serve`` as a real process, a steady rate of distinct questions, its memory watched.

    python -m bench.soak [--minutes 10] [--quick] [--users 8] [--think 2.0] [--json]

Starts the users and the Bot API emulator in a process of their own (:mod:`bench.loadgen`), then
``citebot serve`` as a subprocess polling it (the real serving path, the default index, built first
if missing), and asks distinct questions (no two alike, a third of them long: every one is a miss of
every cache) at a steady rate for ``--minutes``. Every ``--sample`` seconds it reads VmRSS and Threads
of the bot process from /proc/<pid>/status, and reports the RSS at each minute, the least-squares
slopes (MiB/min, threads/min) after the first minute of warm-up (the model's own allocations settle
there; ``--quick`` runs one minute and fits all of it) and over the second half alone (caches fill
up to their byte budgets early, a leak goes on), the RSS at start and end, and the answers
lost and duplicated. 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from .loadgen import REPO_ROOT, LoadGenerator
from .questions import questions as question_pool

CHUNK_SECONDS = 20.0  # one load-generator scenario; the samples run meanwhile
FILLER = (
    "and what do the documents say about the consequences of this for the wider region, for Central Asia, "
    "for the neighbours and for Moscow's relations with Kabul over the following years"
)


def distinct_questions(seed: int = 7) -> itertools.chain[str]:
    """An endless stream of distinct questions: the benchmark pool, each with a running number,
    every third one made long (about 300 characters)."""
    pool = question_pool(400, seed)
    for n in itertools.count():
        question = f"{pool[n % len(pool)].rstrip('?')} (case {n})"
        yield f"{question} {FILLER}?" if n % 3 == 0 else f"{question}?"


def read_status(pid: int) -> tuple[float, int]:
    """(RSS in MiB, thread count) of process ``pid``, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) pairs, per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return 0.0
    return 60.0 * sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread


def rss_by_minute(samples: list[tuple[float, float, int]]) -> list[float]:
    """The RSS (MiB) of the first sample at or after each whole minute of the run."""
    marks: list[float] = []
    for t, rss, _ in samples:
        if t >= 60 * len(marks):
            marks.append(round(rss, 1))
    return marks


async def start_bot(users: LoadGenerator) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITEBOT_", "TELEGRAM_"))}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        TELEGRAM_BOT_TOKEN=users.token,
        CITEBOT_TELEGRAM_BASE_URL=users.base_url,
        CITEBOT_TELEGRAM_MODE="telegram",
        CITEBOT_TELEGRAM_RATE_LIMIT_PER_MINUTE="100000",
    )
    citebot = Path(sys.executable).with_name("citebot")
    return await asyncio.create_subprocess_exec(
        str(citebot),
        "serve",
        env=env,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def soak(minutes: float, users: int, think: float, sample_seconds: float, warmup: float) -> dict[str, Any]:
    stream = distinct_questions()
    samples: list[tuple[float, float, int]] = []
    totals = {"asked": 0, "answered": 0, "lost": 0, "duplicated": 0, "timeouts": 0}
    async with LoadGenerator() as generator:
        bot = await start_bot(generator)
        try:
            # the first answer: the bot is up (the model loaded, the index opened or built)
            first = await generator.run(
                {
                    "kind": "closed",
                    "questions": [["Is Russia arming the Taliban?"]],
                    "timeout_seconds": 600,
                    "grace_seconds": 0.5,
                }
            )
            if first["answered"] != 1:
                raise RuntimeError(f"the bot did not answer: {first}")
            started = time.monotonic()

            async def sample() -> None:
                while True:
                    rss, threads = read_status(bot.pid)
                    samples.append((time.monotonic() - started, rss, threads))
                    await asyncio.sleep(sample_seconds)

            sampler = asyncio.create_task(sample())
            try:
                while time.monotonic() - started < minutes * 60:
                    per_user = max(2, int(CHUNK_SECONDS / max(think, 0.1)) + 2)
                    chunk = [[next(stream) for _ in range(per_user)] for _ in range(users)]
                    result = await generator.run(
                        {
                            "kind": "thinking",
                            "questions": chunk,
                            "think_seconds": think,
                            "duration_seconds": CHUNK_SECONDS,
                            "timeout_seconds": 60,
                            "grace_seconds": 1.0,
                            "seed": len(samples),
                        }
                    )
                    for key in totals:
                        totals[key] += result[key] if key != "asked" else result["asked"]
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            elapsed = time.monotonic() - started
        finally:
            with contextlib.suppress(ProcessLookupError):
                bot.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(bot.wait(), 30)
            except TimeoutError:
                bot.kill()
                await bot.wait()
    fitted = [s for s in samples if s[0] >= warmup] or samples
    return {
        "minutes": round(elapsed / 60, 2),
        "users": users,
        "think_seconds": think,
        "questions_per_minute": round(totals["asked"] / (elapsed / 60), 1),
        **totals,
        "rss_start_mib": round(samples[0][1], 1),
        "rss_end_mib": round(samples[-1][1], 1),
        "rss_max_mib": round(max(s[1] for s in samples), 1),
        "rss_slope_mib_per_min": round(slope_per_minute([(t, r) for t, r, _ in fitted]), 2),
        # the second half alone: caches filling up to their byte budgets rise early and then stop; a leak does not
        "rss_slope_last_half_mib_per_min": round(
            slope_per_minute([(t, r) for t, r, _ in samples if t >= elapsed / 2]), 2
        ),
        "rss_by_minute_mib": rss_by_minute(samples),
        "threads_start": samples[0][2],
        "threads_end": samples[-1][2],
        "threads_slope_per_min": round(slope_per_minute([(t, float(n)) for t, _, n in fitted]), 2),
        "fitted_from_seconds": round(fitted[0][0], 1),
        "samples": len(samples),
        "bot_exit_code": bot.returncode,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs (default 10)")
    parser.add_argument("--quick", action="store_true", help="one minute, slopes over all of it")
    parser.add_argument("--users", type=int, default=8, help="simulated users (default 8)")
    parser.add_argument("--think", type=float, default=2.0, help="mean seconds between a user's questions")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--json", action="store_true", help="one JSON object on standard output")
    args = parser.parse_args(argv)
    minutes = 1.0 if args.quick else args.minutes
    warmup = 0.0 if args.quick else 60.0
    report = asyncio.run(soak(minutes, args.users, args.think, args.sample, warmup))
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>24}: {value}")
    return 0 if report["lost"] == 0 and report["duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
