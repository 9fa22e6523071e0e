"""Replicas behind nginx: 1, 2 and 3 ``citebot serve --replica`` processes sharing Redis, fed by
the emulator's webhook delivery (``python -m bench.roundtrip --replicas``).

Processes, all on 127.0.0.1: the load generator (``bench.loadgen``: the emulator delivering by
webhook, and the users), nginx with deploy/nginx.conf as is, Redis with deploy/redis.conf, and the
replicas. For each number of replicas: a warm-up, then a closed loop (every user asks again as
soon as the answer arrives: saturation) of ``USERS`` users. Reported: questions/s, p50/p99, CPU
milliseconds per question of each process (from /proc: user + system time of every replica, of
nginx with its workers, of Redis, of the load generator), lost and duplicated answers.

What Redis adds to a question is measured three ways: end to end at saturation (one replica with
the state in Redis against one with the state in its own memory, 20 users: mostly queueing, so
noisy), end to end with one user asking one question at a time (the same two setups, unsaturated,
in the order Redis, local, local, Redis so that a drift of the machine cancels; ``--quick``: Redis,
local), and directly (p50 of the shared-state calls one question makes: claim, rate limit, store
the paging question, mark answered, from one client).
On one machine the total cannot grow much with replicas (they share the cores); what must hold
is that the CPU per question does not grow with their number.
"""

from __future__ import annotations

import asyncio
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
# the unsaturated Redis-against-local comparison: which state each setup has, in order
OVERHEAD_ORDER = {"quick": (True, False), "full": (True, False, False, True)}
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


async def measure_state_calls(url: str, n: int = 500) -> dict[str, float]:
    """p50/p99 (ms) of the shared-state calls of one question, against Redis at ``url``."""
    from bot.shared_state import RedisState
    from bot.state import StoredQuery

    state = RedisState(url, 1_000_000, bot_id="bench")
    await state.start()
    times = []
    try:
        for i in range(n):
            start = time.perf_counter()
            await state.claim(10_000_000 + i)
            await state.check_rate(i % 50)
            await state.put_query(StoredQuery(f"question {i}", 3))
            await state.answered(10_000_000 + i)
            times.append(1000 * (time.perf_counter() - start))
    finally:
        await state.close()
    times.sort()
    return {"p50_ms": statistics.median(times), "p99_ms": times[int(0.99 * (len(times) - 1))]}


async def one_setup(
    users: Any,
    folder: Path,
    replicas: int,
    redis: Any,
    questions: list[list[str]],
    seconds: float,
    index_dir: Path,
    shared: bool = True,
    tag: str = "",
) -> dict[str, Any]:
    from deploy.local import Nginx, Replica, free_port, replica_environment

    name = f"{replicas}{'' if shared else '-local'}{tag}"  # this setup's folders
    ports = [free_port() for _ in range(replicas)]
    nginx = Nginx(folder / f"nginx{name}", ports)
    nginx.start()
    env = replica_environment(
        child_environment(),
        token=users.token,
        api_url=users.base_url,
        webhook_url=f"{nginx.url}/citebot/hook",
        secret=SECRET,
        state_url=redis.url if shared else "",
        index_dir=index_dir,
        extra={"CITEBOT_TELEGRAM_RATE_LIMIT_PER_MINUTE": "1000000"},
    )
    if not shared:
        env.pop("CITEBOT_TELEGRAM_STATE_URL")
    citebot = str(Path(sys.executable).with_name("citebot"))
    running = [Replica(folder / f"r{name}-{i}", env, port, citebot=citebot, number=i) for i, port in enumerate(ports)]
    try:
        for replica in running:
            replica.start()
        for replica in running:
            await asyncio.to_thread(replica.wait_ready)
        command = {
            "kind": "closed",
            "questions": questions,
            "duration_seconds": 1.0,
            "timeout_seconds": 30.0,
            "grace_seconds": 0.5,
        }
        await users.run(command)  # warm-up: every replica has answered before the measured run
        pids = {**{f"replica{i}": r.process.pid for i, r in enumerate(running)}, "nginx": nginx.process.pid}
        if shared:
            pids["redis"] = redis.process.pid
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        result = await users.run({**command, "duration_seconds": seconds, "grace_seconds": 1.0})
        after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    finally:
        for replica in running:
            await asyncio.to_thread(replica.stop)
        nginx.stop()
    asked = max(1, result["asked"])
    cpu = {name: round(1000 * (after[name] - before[name]) / asked, 2) for name in pids}
    cpu["replicas_total"] = round(sum(v for k, v in cpu.items() if k.startswith("replica")), 2)
    cpu["telegram_and_users"] = round(1000 * result["cpu_seconds"] / asked, 2)
    return {
        "replicas": replicas,
        "shared_state": shared,
        "users": len(questions),
        "asked": result["asked"],
        "questions_per_second": round(result["answers_per_second"], 1),
        "latency_ms": latency_summary(result["latencies"]),
        "cpu_ms_per_question": cpu,
        "lost": result["lost"],
        "duplicated": result["duplicated"],
        "timeouts": result["timeouts"],
    }


async def measure(settings: Any, quick: bool, counts: tuple[int, ...] = (1, 2, 3)) -> dict[str, Any]:
    from bench.loadgen import LoadGenerator
    from deploy.local import RedisServer, ensure_installed

    from .questions import questions as make_questions
    from .roundtrip import assign

    ensure_installed()
    index_dir = settings.path(settings.index.dir)
    seconds = SECONDS["quick" if quick else "full"]
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
                    rows.append(
                        await one_setup(users, folder, replicas, redis, assign(pool, USERS, 97 * n), seconds, index_dir)
                    )
                    _say(rows[-1])
                local = await one_setup(
                    users, folder, 1, redis, assign(pool, USERS, 991), seconds, index_dir, shared=False
                )
                _say(local)
                one_user = []
                for k, shared in enumerate(OVERHEAD_ORDER["quick" if quick else "full"]):
                    one_user.append(
                        await one_setup(
                            users, folder, 1, redis, assign(pool, 1, 397 * k), seconds, index_dir, shared, f"-u{k}"
                        )
                    )
                    _say(one_user[-1])
        finally:
            redis.stop()
    one = next(r for r in rows if r["replicas"] == 1)
    added = one["latency_ms"]["p50"] - local["latency_ms"]["p50"]
    return {
        "one_user": one_user,
        "redis_added_p50_ms_one_user": round(redis_added_p50(one_user), 2),
        "users": USERS,
        "seconds": seconds,
        "setups": rows,
        "one_replica_local_state": local,
        "redis_state_calls_per_question_ms": state_calls,
        "redis_added_p50_ms_end_to_end": round(added, 2),
        "lost": sum(r["lost"] for r in [*rows, local, *one_user]),
        "duplicated": sum(r["duplicated"] for r in [*rows, local, *one_user]),
    }


def redis_added_p50(setups: list[dict[str, Any]]) -> float:
    """Mean p50 of the setups with the state in Redis minus that of the setups with it in process."""

    def mean_p50(shared: bool) -> float:
        return statistics.fmean(s["latency_ms"]["p50"] for s in setups if s["shared_state"] is shared)

    return mean_p50(True) - mean_p50(False)


def _say(row: dict[str, Any]) -> None:
    print(
        f"replicas: {row['replicas']} ({'Redis' if row['shared_state'] else 'local state'}, {row['users']} users): "
        f"{row['questions_per_second']:.0f} q/s, p50 {row['latency_ms']['p50']:.0f} ms, "
        f"p99 {row['latency_ms']['p99']:.0f} ms, replicas' CPU {row['cpu_ms_per_question']['replicas_total']:.1f} "
        f"ms/question, lost {row['lost']}, duplicated {row['duplicated']}",
        flush=True,
    )


def run(settings: Any, quick: bool) -> dict[str, Any]:
    from citebot import engine

    engine.update_index(settings, engine.load_encoder(settings))  # replicas never build: the builder's job
    return asyncio.run(measure(settings, quick))
