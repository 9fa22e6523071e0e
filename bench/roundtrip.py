"""Bot round trip: from an update offered by the Bot API emulator to the bot's sendMessage,
with 1, 20 and 100 simulated users.

Two processes, as in production where Telegram is not on the bot's machine:

* the bot — this process: the real application (``bot.application.build_application`` with the real
  searcher, started by ``bot.serving.start_bot`` exactly as ``citebot serve`` starts it: post_init,
  long polling with ``allowed_updates``), its ``base_url`` pointing at the emulator;
* Telegram and the users — a child process (``python -m bench.loadgen``): the emulator on
  127.0.0.1 and the simulated users. Both ends of every timing are taken there with
  ``time.monotonic()``: just before the question is queued as an update, and when the bot's
  sendMessage request reaches the emulator.

Scenarios, for each number of users (each user has its own private chat; every question distinct
within a run; the query cache cleared before each run):

* ``thinking`` — users at a (brisk) human pace: ask, wait for the answer, think an exponentially
  distributed time of mean THINK_SECONDS (seeded), ask again. 1 s is far quicker than anyone reads a
  cited answer, so N users offer at most about N questions per second;
* ``closed`` — no think time: each user asks again as soon as the answer arrives. This saturates
  the bot; its questions/s is the throughput at saturation;
* ``burst`` — every user asks at the same instant, round after round (rounds 0.3 s apart).

The limit: in the same run, before and after the scenarios, the bare model (``Encoder.encode``,
no search, no bot) encodes the same questions in batches of LIMIT_BATCH, and one by one. Its
batched questions/s is the most any bot on this model could answer on this machine; the bot's
saturation throughput is reported as a share of it, and the latency targets are multiples of
the bare single-question encode.

Every question must get exactly one sendMessage in its chat: lost and duplicated answers are
counted, and the script exits with 1 if there were any. The rate limit is lifted for the run.

    python -m bench.roundtrip [--quick] [--repeats N] [--profile FILE]
    python -m bench.roundtrip --replicas [--quick]    (bench/replicas.py: 1-3 replicas behind nginx)

``--profile FILE`` runs cProfile on the bot's event-loop thread during the measured scenarios (the
search threads are not profiled: what is left is the per-update overhead) and writes pstats.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import time
from collections.abc import Iterator
from typing import Any

from .common import (
    bench_settings,
    latency_summary,
    library_encode,
    open_searcher,
    over_runs,
    parser,
    rss_mib,
    scalar_over_runs,
    write_result,
)
from .questions import questions as make_questions

USERS = (1, 20, 100)
THINK_SECONDS = 1.0  # mean think time of the "thinking" users
TIMEOUT_SECONDS = 30.0  # an answer later than this counts as a timeout (and, if it never comes, as lost)
KINDS = ("thinking", "closed", "burst")
# seconds per run (burst: rounds per run); users start no question after the run's time is up
PLAN = {"thinking": {1: 20, 20: 10, 100: 8}, "closed": {1: 4, 20: 5, 100: 6}, "burst": {1: 10, 20: 5, 100: 3}}
QUICK_PLAN = {"thinking": {1: 2, 20: 2}, "closed": {1: 1, 20: 1}, "burst": {1: 2, 20: 1}}
MARKERS = {"passages": "Passages", "errors": "went wrong"}  # answers with passages; "Something went wrong"
# targets relative to the bare model measured in the same run: p50 at 20 thinking users within
# 2 x one bare encode, saturation at least half (aim: three quarters) of the batched encode rate
TARGETS = {"users": 20, "p50_encodes": 2.0, "p99_ms": 100.0, "share_of_limit": 0.5, "aim_share_of_limit": 0.75}
LIMIT_BATCH = 32
LIMIT_QUESTIONS = 320  # questions of the pool the bare model encodes, per measurement


def assign(pool: list[str], users: int, shift: int) -> list[list[str]]:
    """Each user its own slice of the pool (rotated by ``shift`` so that repeats differ): no question
    is asked twice in a run unless a user gets through its whole slice."""
    rotated = pool[shift % len(pool) :] + pool[: shift % len(pool)]
    per_user = max(1, len(rotated) // users)
    return [rotated[u * per_user : (u + 1) * per_user] for u in range(users)]


def command(kind: str, questions: list[list[str]], amount: float, seed: int) -> dict[str, Any]:
    """The load generator's command for one run: ``amount`` is seconds, or rounds of a burst."""
    if kind == "burst":
        questions = [qs[: int(amount)] for qs in questions]
    return {
        "kind": kind,
        "questions": questions,
        "duration_seconds": amount,
        "think_seconds": THINK_SECONDS,
        "seed": seed,
        "timeout_seconds": TIMEOUT_SECONDS,
        "grace_seconds": 1.0,
        "pause_seconds": 0.3,
        "markers": MARKERS,
    }


@contextlib.contextmanager
def profiled(profiler: cProfile.Profile | None) -> Iterator[None]:
    """Profile the block on this (the event loop's) thread when a profiler is given."""
    if profiler is None:
        yield
        return
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()


class BotSide:
    """The real bot, long-polling the load generator's emulator, in this process."""

    def __init__(self, settings: Any, searcher: Any) -> None:
        self.settings = settings
        self.searcher = searcher
        self.application: Any = None

    async def start(self, base_url: str, token: str) -> None:
        from bot.application import build_application
        from bot.serving import start_bot

        self.application = build_application(self.settings, self.searcher, base_url=base_url, token=token)
        await start_bot(self.application)

    async def stop(self) -> None:
        from bot.serving import stop_bot

        if self.application is not None:
            await stop_bot(self.application)

    def forget(self) -> None:
        """Empty the searcher's query cache, so that no run is flattered by an earlier one."""
        self.searcher.forget_questions()


async def one_run(users: Any, bot: BotSide, run: dict[str, Any], profiler: cProfile.Profile | None) -> dict[str, Any]:
    """One scenario run; adds the bot process's CPU time (every thread) to the generator's result."""
    bot.forget()
    cpu = time.process_time()
    with profiled(profiler):
        result = await users.run(run)
    result["bot_cpu_seconds"] = time.process_time() - cpu
    return result


def summarise(kind: str, n_users: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and spread over repeated runs of one scenario, and the answer counts of all runs."""
    per_run = [
        {
            "q": r["answers_per_second"],
            "asked": r["asked"],
            "bot": 1000 * r["bot_cpu_seconds"] / max(1, r["asked"]),
            "users": 1000 * r["cpu_seconds"] / max(1, r["asked"]),
        }
        for r in runs
    ]
    rates = over_runs(per_run)
    asked = sum(r["asked"] for r in runs)
    return {
        "scenario": kind,
        "users": n_users,
        "questions": rates["asked"]["median"],
        "latency_ms": over_runs([latency_summary(r["latencies"]) for r in runs]),
        "questions_per_second": rates["q"],
        "cpu_ms_per_question": {"bot": rates["bot"], "telegram_and_users": rates["users"]},
        "asked": asked,
        **{k: sum(r[k] for r in runs) for k in ("timeouts", "lost", "duplicated", "failed_sends")},
        "answers_with_passages": sum(r["marker_counts"]["passages"] for r in runs) / max(1, asked),
        "error_answers": sum(r["marker_counts"]["errors"] for r in runs),
        "sample_answer": runs[0]["sample_answer"],
    }


def model_limit(encoder: Any, questions: list[str], repeats: int = 3) -> dict[str, list[float]]:
    """The bare model on ``questions``: questions/s in batches of LIMIT_BATCH, and ms per single
    question (median over the questions), ``repeats`` times each, alternating."""
    batches = [questions[i : i + LIMIT_BATCH] for i in range(0, len(questions), LIMIT_BATCH)]
    library_encode(encoder, batches[0])  # warm
    out: dict[str, list[float]] = {"batched_questions_per_second": [], "single_encode_ms": []}
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            library_encode(encoder, batch)
        out["batched_questions_per_second"].append(len(questions) / (time.perf_counter() - start))
        single = []
        for q in questions[:100]:
            start = time.perf_counter()
            library_encode(encoder, [q])
            single.append(time.perf_counter() - start)
        out["single_encode_ms"].append(1000 * sorted(single)[len(single) // 2])
    return out


async def measure(
    settings: Any,
    searcher: Any,
    plan: dict[str, dict[int, int]],
    repeats: int,
    profiler: cProfile.Profile | None = None,
    limit: dict[str, list[float]] | None = None,
    limit_questions: int = LIMIT_QUESTIONS,
    limit_repeats: int = 3,
) -> list[dict[str, Any]]:
    """Every scenario of ``plan`` ``repeats`` times; one summary per scenario and number of users.
    With ``limit``, the bare model is measured (:func:`model_limit`) before and after, into it."""
    from bench.loadgen import LoadGenerator

    pool = make_questions(800)
    bot = BotSide(settings, searcher)

    def bare_model() -> None:
        if limit is not None:
            for key, values in model_limit(searcher.encoder, pool[:limit_questions], limit_repeats).items():
                limit.setdefault(key, []).extend(values)

    async with LoadGenerator() as users:
        await bot.start(users.base_url, users.token)
        try:
            await users.run(command("closed", assign(pool[::-1], 4, 0), 1.0, seed=0))  # warm-up, not reported
            bare_model()
            rows = []
            for n_users in USERS:
                for kind in KINDS:
                    if n_users not in plan[kind]:
                        continue
                    runs = [
                        await one_run(
                            users,
                            bot,
                            command(kind, assign(pool, n_users, 97 * r), plan[kind][n_users], seed=r),
                            profiler,
                        )
                        for r in range(repeats)
                    ]
                    rows.append(summarise(kind, n_users, runs))
                    print(
                        f"roundtrip: {n_users} users, {kind}: p50 {rows[-1]['latency_ms']['p50']['median']:.0f} ms, "
                        f"{rows[-1]['questions_per_second']['median']:.0f} q/s",
                        flush=True,
                    )
            bare_model()
        finally:
            await bot.stop()
        return rows


def target_row(rows: list[dict[str, Any]], users: int) -> dict[str, Any] | None:
    """The summary the latency targets are judged on: ``users`` users at a human pace."""
    return next((r for r in rows if r["scenario"] == "thinking" and r["users"] == users), None)


def verdicts(rows: list[dict[str, Any]], limit: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """The issue's targets against the figures: latency at 20 thinking users (p50 against the
    bare single-question encode), throughput at saturation (the best closed-loop questions/s) as
    a share of the bare model's batched rate, and not one lost or duplicated answer."""
    at = target_row(rows, TARGETS["users"])
    saturation = max((r["questions_per_second"]["median"] for r in rows if r["scenario"] == "closed"), default=0.0)
    lost, duplicated = sum(r["lost"] for r in rows), sum(r["duplicated"] for r in rows)
    out: dict[str, Any] = {
        "saturation_questions_per_second": saturation,
        "lost": lost,
        "duplicated": duplicated,
        "targets": TARGETS,
    }
    met = {"no_lost_or_duplicated": lost == duplicated == 0}
    if limit:
        share = saturation / limit["batched_questions_per_second"]["median"]
        out["share_of_limit"] = share
        met["share_of_limit"] = share >= TARGETS["share_of_limit"]
        met["aim_share_of_limit"] = share >= TARGETS["aim_share_of_limit"]
    if at is not None:
        if limit:
            encodes = at["latency_ms"]["p50"]["median"] / limit["single_encode_ms"]["median"]
            out["p50_in_encodes"] = encodes
            met["p50"] = encodes <= TARGETS["p50_encodes"]
        met["p99"] = at["latency_ms"]["p99"]["median"] <= TARGETS["p99_ms"]
    out["met"] = met
    return out


def run(
    repeats: int,
    quick: bool,
    profile: str | None = None,
    *,
    plan: dict[str, dict[int, int]] | None = None,
    settings: Any = None,
    searcher: Any = None,
    limit_questions: int | None = None,
) -> dict[str, Any]:
    """Measure every scenario of ``plan`` (default: the full or the quick plan); the tests pass a
    tiny plan, their own settings and searcher, and fewer questions for the model's limit."""
    settings = settings or bench_settings()
    settings = settings.model_copy(
        update={"telegram": settings.telegram.model_copy(update={"rate_limit_per_minute": 1_000_000})}
    )
    searcher = searcher or open_searcher(settings)
    plan = plan or (QUICK_PLAN if quick else PLAN)
    profiler = cProfile.Profile() if profile else None
    measured: dict[str, list[float]] = {}
    limit_questions = limit_questions or (2 * LIMIT_BATCH if quick else LIMIT_QUESTIONS)
    rows = asyncio.run(
        measure(settings, searcher, plan, repeats, profiler, measured, limit_questions, 1 if quick else 3)
    )
    if profiler is not None:
        profiler.dump_stats(profile)
    limit = {k: scalar_over_runs(v) for k, v in measured.items()}
    data = {
        "repeats": repeats,
        "workers": settings.telegram.workers,
        "think_seconds": THINK_SECONDS,
        "plan": plan,
        "timeout_seconds": TIMEOUT_SECONDS,
        "scenarios": rows,
        "limit": {**limit, "batch": LIMIT_BATCH, "questions": limit_questions},
        "bot_process_rss_mib": rss_mib(),
        **verdicts(rows, limit),
    }
    print(
        f"roundtrip: limit (bare model, batches of {LIMIT_BATCH}) "
        f"{limit['batched_questions_per_second']['median']:.0f} q/s, one bare encode "
        f"{limit['single_encode_ms']['median']:.1f} ms; bot at saturation "
        f"{data['saturation_questions_per_second']:.0f} q/s = {data['share_of_limit']:.2f} of the limit; "
        f"bot process RSS {data['bot_process_rss_mib']:.0f} MiB",
        flush=True,
    )
    return data


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--profile", default=None, help="write a cProfile of the bot's event-loop thread here")
    p.add_argument(
        "--replicas",
        action="store_true",
        help="the replicas scenario instead (bench/replicas.py): 1, 2, 3 replicas behind nginx with Redis",
    )
    args = p.parse_args(argv)
    if args.replicas:
        from .replicas import run as run_replicas

        data = run_replicas(bench_settings(), args.quick)
        write_result("replicas", data, args.quick)
        return 1 if data["lost"] or data["duplicated"] else 0
    data = run(args.repeats or (1 if args.quick else 3), args.quick, args.profile)
    write_result("roundtrip", data, args.quick)
    if data["lost"] or data["duplicated"]:
        print(f"roundtrip: {data['lost']} lost and {data['duplicated']} duplicated answers", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
