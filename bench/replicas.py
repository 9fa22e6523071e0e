"""Replicas behind nginx: 1, 2 and 3 ``citebot serve --replica`` processes sharing Redis, fed by
the emulator's webhook delivery (``python -m bench.roundtrip --replicas``).

Processes, all on 127.0.0.1: the load generator (``bench.loadgen``: the emulator delivering by
webhook, and the users), nginx with deploy/nginx.conf as is, Redis with deploy/redis.conf, and the
replicas. For each number of replicas: a warm-up, the replicas' idle CPU for a few seconds, then
a closed loop (every user asks again as soon as the answer arrives: saturation) of ``USERS``
users. Reported: questions/s, p50/p99, CPU milliseconds per question of each process (from /proc:
user + system time of every replica, of nginx with its workers, of Redis, of the load generator),
lost and duplicated answers, and the load average when each setup started.

Each number of replicas runs with torch's default threads in every replica (one per core) and
with ``embeddings.threads`` = cores // replicas (docs/deploy.md), back to back; and, more than one
replica, also with ``USERS`` users *per replica*: with the same 20 users split over N replicas each
replica's encode batches are N times smaller, and a smaller batch costs more CPU per question
(bench/README.md, section 1), which is no waste of the replicas but a lighter load on each.

What Redis adds to a question is measured three ways: end to end at saturation (one replica with
the state in Redis against one with the state in its own memory, 20 users: mostly queueing, so
noisy); end to end with one user asking one question at a time, *paired*: both setups (each its
own load generator, nginx and replica) run side by side and take turns, in short rounds of the
same questions, alternating which goes first, so that the machine's drift (it is shared) falls
on both alike; and directly (p50 of each shared-state call a question makes, from one client, and
of those an answer waits for).
On one machine the total cannot grow much with replicas (they share the cores); what must hold
is that the CPU per question does not grow with their number.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import latency_summary

USERS = 20
SECONDS = {"quick": 3.0, "full": 8.0}
IDLE_SECONDS = {"quick": 1.0, "full": 4.0}  # each setup's idle CPU, measured after its warm-up
# the paired one-user comparison of Redis and local state: rounds, and seconds per setup per round
ROUNDS = {"quick": 2, "full": 8}
ROUND_SECONDS = 2.0
ROUND_SHIFT = 100  # each round's questions start this far on in the pool: no repeats (query cache)
SECRET = "bench-Replicas_secret"


def child_environment() -> dict[str, str]:
    """This environment without the developer's CITEBOT_*/Telegram settings, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITEBOT_", "TELEGRAM_"))}
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children still alive (nginx's workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


async def measure_state_calls(url: str, n: int = 500) -> dict[str, Any]:
    """p50/p99 (ms) of the shared-state calls of one private question against Redis at ``url``, one
    client: each call, all of them, and those the answer waits for (claim with the rate limit,
    the handler's rate check, the paging question; the answered mark is made after the answer)."""
    from bot.shared_state import RedisState
    from bot.state import StoredQuery

    state = RedisState(url, 1_000_000, bot_id="bench")
    await state.start()
    calls: dict[str, list[float]] = {"claim": [], "check_rate": [], "put_query": [], "answered": []}
    path, total = [], []
    try:
        for i in range(n):
            update_id = 10_000_000 + i
            # as the webhook and the handler make them for a private question
            steps: tuple[tuple[str, Any, tuple[Any, ...]], ...] = (
                ("claim", state.claim, (update_id, i % 50)),  # counted against the rate limit with it
                ("check_rate", state.check_rate, (i % 50, update_id)),
                ("put_query", state.put_query, (StoredQuery(f"question {i}", 3),)),
                ("answered", state.answered, (update_id,)),
            )
            for name, call, arguments in steps:
                if name == "answered":  # in the bot the answer's sendMessage comes between: the paging
                    await asyncio.gather(*state._writes)  # question's own write has landed by then
                start = time.perf_counter()
                await call(*arguments)
                calls[name].append(1000 * (time.perf_counter() - start))
            path.append(calls["claim"][-1] + calls["check_rate"][-1] + calls["put_query"][-1])
            total.append(path[-1] + calls["answered"][-1])
    finally:
        await state.close()
    return {
        **_p50_p99(total),
        "answer_waits_for": _p50_p99(path),
        "calls": {name: _p50_p99(times) for name, times in calls.items()},
    }


def _p50_p99(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"p50_ms": round(statistics.median(ordered), 3), "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 3)}


class Setup:
    """nginx and ``replicas`` replicas for one load generator (``users``), started and stopped."""

    def __init__(
        self,
        users: Any,
        folder: Path,
        replicas: int,
        redis: Any,
        index_dir: Path,
        *,
        shared: bool = True,
        threads: int = 0,
        tag: str = "",
    ) -> None:
        self.users, self.replicas, self.redis, self.shared, self.threads = users, replicas, redis, shared, threads
        self.name = f"{replicas}{'' if shared else '-local'}-t{threads}{tag}"  # this setup's folders
        self.folder, self.index_dir = folder, index_dir
        self.running: list[Any] = []
        self.nginx: Any = None

    async def start(self, questions: list[list[str]]) -> None:
        """Start nginx and the replicas; a warm-up run, so that every replica has answered."""
        from deploy.local import Nginx, Replica, free_port, replica_environment

        self.load_average = [round(x, 2) for x in os.getloadavg()]
        ports = [free_port() for _ in range(self.replicas)]
        self.nginx = Nginx(self.folder / f"nginx{self.name}", ports)
        self.nginx.start()
        extra = {"CITEBOT_TELEGRAM_RATE_LIMIT_PER_MINUTE": "1000000"}
        if self.threads:
            extra["CITEBOT_EMBEDDINGS_THREADS"] = str(self.threads)
        env = replica_environment(
            child_environment(),
            token=self.users.token,
            api_url=self.users.base_url,
            webhook_url=f"{self.nginx.url}/citebot/hook",
            secret=SECRET,
            state_url=self.redis.url if self.shared else "",
            index_dir=self.index_dir,
            extra=extra,
        )
        if not self.shared:
            env.pop("CITEBOT_TELEGRAM_STATE_URL")
        citebot = str(Path(sys.executable).with_name("citebot"))
        self.running = [
            Replica(self.folder / f"r{self.name}-{i}", env, port, citebot=citebot, number=i)
            for i, port in enumerate(ports)
        ]
        for replica in self.running:
            replica.start()
        for replica in self.running:
            await asyncio.to_thread(replica.wait_ready)
        await self.users.run(_closed(questions, 1.0, grace=0.5))

    def pids(self) -> dict[str, int]:
        pids = {**{f"replica{i}": r.process.pid for i, r in enumerate(self.running)}, "nginx": self.nginx.process.pid}
        if self.shared:
            pids["redis"] = self.redis.process.pid
        return pids

    async def idle_cpu(self, seconds: float) -> float:
        """CPU milliseconds per second the replicas use together while no question comes."""
        pids = [p for name, p in self.pids().items() if name.startswith("replica")]
        before = sum(map(cpu_seconds, pids))
        await asyncio.sleep(seconds)
        return round(1000 * (sum(map(cpu_seconds, pids)) - before) / seconds, 2)

    async def run(self, questions: list[list[str]], seconds: float) -> dict[str, Any]:
        """One measured closed-loop run."""
        pids = self.pids()
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        result = await self.users.run(_closed(questions, seconds, grace=1.0))
        after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        asked = max(1, result["asked"])
        cpu = {name: round(1000 * (after[name] - before[name]) / asked, 2) for name in pids}
        cpu["replicas_total"] = round(sum(v for k, v in cpu.items() if k.startswith("replica")), 2)
        cpu["telegram_and_users"] = round(1000 * result["cpu_seconds"] / asked, 2)
        return {
            "replicas": self.replicas,
            "shared_state": self.shared,
            "threads": self.threads,
            "users": len(questions),
            "asked": result["asked"],
            "questions_per_second": round(result["answers_per_second"], 1),
            "latency_ms": latency_summary(result["latencies"]),
            "latencies_s": result["latencies"],
            "cpu_ms_per_question": cpu,
            "lost": result["lost"],
            "duplicated": result["duplicated"],
            "timeouts": result["timeouts"],
            "load_average_at_start": self.load_average,
        }

    async def stop(self) -> None:
        for replica in self.running:
            await asyncio.to_thread(replica.stop)
        if self.nginx is not None:
            self.nginx.stop()


@dataclasses.dataclass(frozen=True)
class _Database:
    """One database of the benchmark's Redis server, as a Setup takes it."""

    url: str
    process: Any


def _closed(questions: list[list[str]], seconds: float, *, grace: float) -> dict[str, Any]:
    return {
        "kind": "closed",
        "questions": questions,
        "duration_seconds": seconds,
        "timeout_seconds": 30.0,
        "grace_seconds": grace,
    }


async def one_setup(
    users: Any,
    folder: Path,
    replicas: int,
    redis: Any,
    questions: list[list[str]],
    seconds: float,
    index_dir: Path,
    *,
    shared: bool = True,
    threads: int = 0,
    idle_seconds: float = 0.0,
) -> dict[str, Any]:
    """Start a setup, warm it up, measure its idle CPU and one closed-loop run, stop it."""
    setup = Setup(users, folder, replicas, redis, index_dir, shared=shared, threads=threads)
    try:
        await setup.start(questions)
        idle = await setup.idle_cpu(idle_seconds) if idle_seconds else None
        row = await setup.run(questions, seconds)
    finally:
        await setup.stop()
    row.pop("latencies_s")
    row["idle_cpu_ms_per_second"] = idle
    return row


async def paired_one_user(redis: Any, folder: Path, pool: list[str], index_dir: Path, rounds: int) -> dict[str, Any]:
    """One user, one replica: Redis against local state, side by side, in alternating rounds."""
    from bench.loadgen import LoadGenerator

    from .roundtrip import assign

    async with LoadGenerator() as users_redis, LoadGenerator() as users_local:
        # a Redis database of its own: this load generator numbers its updates from 1 again, and
        # the earlier setups' "answered" marks of those numbers would have them acknowledged unanswered
        database = _Database(redis.url.rsplit("/", 1)[0] + "/1", redis.process)
        setups = {
            True: Setup(users_redis, folder, 1, database, index_dir, shared=True, tag="-paired"),
            False: Setup(users_local, folder, 1, redis, index_dir, shared=False, tag="-paired"),
        }
        latencies: dict[bool, list[float]] = {True: [], False: []}
        per_round = []
        lost = duplicated = 0
        try:
            for setup in setups.values():
                await setup.start(assign(pool, 1, 7919))
            for k in range(rounds):
                questions = assign(pool, 1, ROUND_SHIFT * k)  # the same questions for both setups
                p50 = {}
                for shared in (True, False) if k % 2 == 0 else (False, True):
                    row = await setups[shared].run(questions, ROUND_SECONDS)
                    latencies[shared] += row["latencies_s"]
                    lost, duplicated = lost + row["lost"], duplicated + row["duplicated"]
                    p50[shared] = row["latency_ms"]["p50"]
                per_round.append({"redis_p50_ms": p50[True], "local_p50_ms": p50[False]})
                print(f"paired round {k}: Redis p50 {p50[True]:.1f} ms, local {p50[False]:.1f} ms", flush=True)
        finally:
            for setup in setups.values():
                await setup.stop()
    redis_p50 = latency_summary(latencies[True])["p50"]
    local_p50 = latency_summary(latencies[False])["p50"]
    return {
        "rounds": per_round,
        "round_seconds": ROUND_SECONDS,
        "lost": lost,
        "duplicated": duplicated,
        "load_average_at_start": setups[True].load_average,
        "questions": {"redis": len(latencies[True]), "local": len(latencies[False])},
        "redis_p50_ms": round(redis_p50, 2),
        "local_p50_ms": round(local_p50, 2),
        "redis_added_p50_ms": round(redis_p50 - local_p50, 2),  # over every question of every round
        "redis_added_median_of_rounds_ms": round(
            statistics.median(r["redis_p50_ms"] - r["local_p50_ms"] for r in per_round), 2
        ),
    }


async def measure(settings: Any, quick: bool, counts: tuple[int, ...] = (1, 2, 3)) -> dict[str, Any]:
    from bench.loadgen import LoadGenerator
    from deploy.local import RedisServer, ensure_installed

    from .questions import questions as make_questions
    from .roundtrip import assign

    ensure_installed()
    index_dir = settings.path(settings.index.dir)
    mode = "quick" if quick else "full"
    seconds, idle = SECONDS[mode], IDLE_SECONDS[mode]
    cores = os.cpu_count() or 1
    pool = make_questions(800)
    rows = []
    with tempfile.TemporaryDirectory(prefix="citebot-replicas-") as tmp:
        folder = Path(tmp)
        redis = RedisServer(folder / "redis")
        redis.start()
        try:
            state_calls = await measure_state_calls(redis.url)
            async with LoadGenerator() as users:
                for n, replicas in enumerate(counts):
                    # torch's default threads, then cores // replicas, back to back (the order flips);
                    # one replica: cores // 1 is the default, run once
                    share = max(1, cores // replicas)
                    variants = (0,) if share == cores else (0, share)
                    runs = [(threads, USERS) for threads in (variants if n % 2 == 0 else variants[::-1])]
                    if replicas > 1:  # and as loaded as one replica is: the same users per replica
                        runs.append((share, USERS * replicas))
                    for threads, people in runs:
                        questions = assign(pool, people, 97 * n + 31 * threads + people)
                        rows.append(
                            await one_setup(
                                users,
                                folder,
                                replicas,
                                redis,
                                questions,
                                seconds,
                                index_dir,
                                threads=threads,
                                idle_seconds=idle,
                            )
                        )
                        _say(rows[-1])
                local = await one_setup(
                    users, folder, 1, redis, assign(pool, USERS, 991), seconds, index_dir, shared=False
                )
                _say(local)
            one_user = await paired_one_user(redis, folder, pool, index_dir, ROUNDS[mode])
        finally:
            redis.stop()
    one = next(r for r in rows if r["replicas"] == 1 and r["threads"] == 0)
    added = one["latency_ms"]["p50"] - local["latency_ms"]["p50"]
    everything = [*rows, local]
    return {
        "one_user_paired": one_user,
        "redis_added_p50_ms_one_user": one_user["redis_added_p50_ms"],
        "users": USERS,
        "seconds": seconds,
        "cores": cores,
        "setups": rows,
        "one_replica_local_state": local,
        "redis_state_calls_per_question_ms": state_calls,
        "redis_added_p50_ms_end_to_end": round(added, 2),
        "lost": sum(r["lost"] for r in everything) + one_user["lost"],
        "duplicated": sum(r["duplicated"] for r in everything) + one_user["duplicated"],
    }


def _say(row: dict[str, Any]) -> None:
    threads = f", torch threads {row['threads'] or 'default'}" if row["shared_state"] else ""
    print(
        f"replicas: {row['replicas']} ({'Redis' if row['shared_state'] else 'local state'}{threads}, "
        f"{row['users']} users, load {row['load_average_at_start'][0]}): "
        f"{row['questions_per_second']:.0f} q/s, p50 {row['latency_ms']['p50']:.0f} ms, "
        f"p99 {row['latency_ms']['p99']:.0f} ms, replicas' CPU {row['cpu_ms_per_question']['replicas_total']:.1f} "
        f"ms/question, lost {row['lost']}, duplicated {row['duplicated']}",
        flush=True,
    )


def run(settings: Any, quick: bool) -> dict[str, Any]:
    from citebot import engine

    engine.update_index(settings, engine.load_encoder(settings))  # replicas never build: the builder's job
    return asyncio.run(measure(settings, quick))
