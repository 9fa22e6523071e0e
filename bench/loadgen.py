"""Simulated users in a process of their own: "Telegram and the users" for load tests.

In production Telegram is not on the bot's machine, so a benchmark that runs the emulator and the
users in the bot's own process and event loop charges the bot for Telegram's work and lets the two
share one loop. Here they get a process to themselves::

    python -m bench.loadgen [--strict-html]

serves a :class:`~botapi_emulator.server.BotApiEmulator` on 127.0.0.1, prints one JSON line
``{"base_url": ..., "token": ...}`` and then, for every JSON command line read on standard input,
runs one load scenario and prints one JSON result line (``{"command": "quit"}`` stops it). Both
ends of every timing are taken here with ``time.monotonic()``: from just before the question is
queued as an update to the moment the bot's sendMessage request reaches the emulator.

A command (:func:`run_scenario`): ``kind`` ``"closed"`` (each user asks again as soon as the answer
arrives), ``"thinking"`` (each user thinks an exponentially distributed time of mean
``think_seconds`` before each question, seeded with ``seed``) or ``"burst"`` (round after round,
every user asks at the same instant; the next round starts ``pause_seconds`` after the last answer);
``questions``: one list of questions per user (asked in turn, from the start again when used up);
``duration_seconds`` (closed and thinking): users start no question after it, else each asks its list
once; ``timeout_seconds``; ``grace_seconds`` to wait at the end for late or duplicated answers;
``markers``: name → substring, to count answers containing it.

Every question must get exactly one sendMessage in its user's private chat: ``lost`` counts the
questions of a chat beyond the answers it received, ``duplicated`` the answers beyond its questions,
``timeouts`` the questions not answered within the timeout (a late answer is slow, not lost).

:class:`LoadGenerator` is the parent's side: it starts the child and sends it commands.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from botapi_emulator import BotApiEmulator, RecordedCall

KINDS = ("closed", "thinking", "burst")
REPO_ROOT = Path(__file__).resolve().parents[1]
LINE_LIMIT = 64 * 1024 * 1024  # one command or result is one line; question lists can be long


class Chats:
    """The simulated users of one scenario, their private chats, and every answer each chat got."""

    def __init__(self, emulator: BotApiEmulator, first_user_id: int, users: int, timeout: float) -> None:
        self.emulator = emulator
        self.timeout = timeout
        self.people = [emulator.user(first_user_id + i, f"User{i}") for i in range(users)]
        self.chats = [emulator.private_chat(person) for person in self.people]
        self.asked: Counter[int] = Counter({chat["id"]: 0 for chat in self.chats})
        self.received: Counter[int] = Counter()
        self.failed_sends = 0
        self.timeouts = 0
        self.latencies: list[float] = []
        self.arrivals: list[float] = []
        self.texts: list[str] = []
        self._waiting: dict[int, asyncio.Future[float]] = {}

    def on_call(self, call: RecordedCall) -> None:
        """Emulator listener: a sendMessage in one of our chats is an answer."""
        if call.method.lower() != "sendmessage":
            return
        chat_id = _int(call.params.get("chat_id"))
        if chat_id not in self.asked:
            return
        if not call.ok:
            self.failed_sends += 1
            return
        self.received[chat_id] += 1
        self.texts.append(str(call.params.get("text", "")))
        future = self._waiting.pop(chat_id, None)
        if future is not None and not future.done():
            future.set_result(call.time)

    async def ask(self, user: int, question: str) -> None:
        """User number ``user`` asks ``question`` and waits for the answer (or the timeout)."""
        chat, person = self.chats[user], self.people[user]
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[chat["id"]] = future
        self.asked[chat["id"]] += 1
        offered = time.monotonic()
        self.emulator.send_text(chat, person, question)
        try:
            arrived = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            self._waiting.pop(chat["id"], None)
            self.timeouts += 1
            return
        self.latencies.append(arrived - offered)
        self.arrivals.append(arrived)

    def lost_and_duplicated(self) -> tuple[int, int]:
        """Questions without an answer and answers beyond one per question, over all chats."""
        lost = sum(max(0, asked - self.received[chat]) for chat, asked in self.asked.items())
        duplicated = sum(max(0, self.received[chat] - asked) for chat, asked in self.asked.items())
        return lost, duplicated


async def _users_in_loops(
    chats: Chats, questions: list[list[str]], think_seconds: float, seed: int, deadline: float | None
) -> None:
    """Every user asks one question after the other (until ``deadline``, or its list once); with
    ``think_seconds`` each thinks an exponential time first (so they start spread out, as in a steady state)."""

    async def user(i: int) -> None:
        rng = random.Random(seed * 100_003 + i)  # per user, so scheduling order changes nothing
        for j in itertools.count():
            if think_seconds > 0:
                await asyncio.sleep(rng.expovariate(1.0 / think_seconds))
            if (time.monotonic() >= deadline) if deadline is not None else j >= len(questions[i]):
                return
            await chats.ask(i, questions[i][j % len(questions[i])])

    await asyncio.gather(*(user(i) for i in range(len(questions))))


async def _bursts(chats: Chats, questions: list[list[str]], pause_seconds: float) -> None:
    """Round after round, every user asks at the same instant; rounds are ``pause_seconds`` apart."""
    for round_no in range(min(map(len, questions))):
        if round_no:
            await asyncio.sleep(pause_seconds)
        await asyncio.gather(*(chats.ask(i, qs[round_no]) for i, qs in enumerate(questions)))


async def run_scenario(emulator: BotApiEmulator, command: dict[str, Any], first_user_id: int) -> dict[str, Any]:
    """Run one command (see the module docstring) against the bot polling ``emulator``."""
    kind = command["kind"]
    if kind not in KINDS:
        raise ValueError(f"unknown scenario kind {kind!r}")
    questions: list[list[str]] = command["questions"]
    chats = Chats(emulator, first_user_id, len(questions), float(command.get("timeout_seconds", 30.0)))
    remove = emulator.add_listener(chats.on_call)
    cpu, start = time.process_time(), time.monotonic()
    duration = command.get("duration_seconds") if kind != "burst" else None
    deadline = start + float(duration) if duration else None
    try:
        if kind == "burst":
            await _bursts(chats, questions, float(command.get("pause_seconds", 0.3)))
        else:
            think = float(command.get("think_seconds", 0.0)) if kind == "thinking" else 0.0
            await _users_in_loops(chats, questions, think, int(command.get("seed", 0)), deadline)
        seconds, cpu = time.monotonic() - start, time.process_time() - cpu
        await asyncio.sleep(float(command.get("grace_seconds", 1.0)))  # late and duplicated answers
    finally:
        remove()
        emulator.clear_calls()
    window = (start, deadline or start + seconds)
    return _result(chats, command, seconds, cpu, window)


def _result(
    chats: Chats, command: dict[str, Any], seconds: float, cpu: float, window: tuple[float, float]
) -> dict[str, Any]:
    """What the parent gets back; ``answers_per_second`` counts the answers that arrived within
    ``window`` (the run's duration, if it had one), so the final drain does not dilute it."""
    lost, duplicated = chats.lost_and_duplicated()
    in_window = sum(window[0] <= t <= window[1] for t in chats.arrivals)
    markers = command.get("markers", {})
    return {
        "kind": command["kind"],
        "users": len(chats.people),
        "asked": sum(chats.asked.values()),
        "answered": len(chats.latencies),
        "latencies": chats.latencies,
        "timeouts": chats.timeouts,
        "lost": lost,
        "duplicated": duplicated,
        "failed_sends": chats.failed_sends,
        "seconds": seconds,
        "answers_per_second": in_window / max(1e-9, window[1] - window[0]),
        "cpu_seconds": cpu,
        "marker_counts": {name: sum(text in t for t in chats.texts) for name, text in markers.items()},
        "sample_answer": chats.texts[0][:300] if chats.texts else "",
    }


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ----------------------------------------------------------------------------------- the child


async def _stdin_reader() -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def serve(strict_html: bool = False) -> None:
    """The child's main loop: serve the emulator and run the commands read on standard input."""
    emulator = BotApiEmulator(strict_html=strict_html)
    await emulator.start()
    emulator.disable_flood_limits()
    _say({"base_url": emulator.base_url, "token": emulator.token})
    reader = await _stdin_reader()
    try:
        for run_no in itertools.count(1):
            line = await reader.readline()
            command = json.loads(line) if line.strip() else {"command": "quit"}
            if command.get("command") == "quit":
                break
            try:
                _say(await run_scenario(emulator, command, first_user_id=run_no * 100_000))
            except Exception as exc:  # tell the parent instead of leaving it waiting
                _say({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench.loadgen``."""
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--strict-html", action="store_true", help="also reject a bare '&' (Telegram keeps it)")
    asyncio.run(serve(parser.parse_args(argv).strict_html))
    return 0


# ---------------------------------------------------------------------------------- the parent


class LoadGenerator:
    """The parent's handle on a ``python -m bench.loadgen`` child process::

    async with LoadGenerator() as users:
        app = Application.builder().token(users.token).base_url(users.base_url).build()
        ...  # start polling
        result = await users.run({"kind": "closed", "questions": [["hello?"]]})
    """

    def __init__(self, *, python: str | None = None, strict_html: bool = False) -> None:
        self.python = python or sys.executable
        self.strict_html = strict_html
        self.base_url = ""
        self.token = ""
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> LoadGenerator:
        """Start the child; returns once its emulator listens."""
        args = [self.python, "-m", "bench.loadgen", *(["--strict-html"] if self.strict_html else [])]
        self._process = await asyncio.create_subprocess_exec(  # from the repository root, where bench/ is
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=LINE_LIMIT, cwd=REPO_ROOT
        )
        hello = await self._read()
        self.base_url, self.token = hello["base_url"], hello["token"]
        return self

    async def run(self, command: dict[str, Any]) -> dict[str, Any]:
        """Send one scenario command and wait for its result."""
        await self._write(command)
        result = await self._read()
        if "error" in result:
            raise RuntimeError(f"load generator: {result['error']}")
        return result

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask the child to quit; kill it if it does not."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await self._write({"command": "quit"}, process)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def __aenter__(self) -> LoadGenerator:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _write(self, payload: dict[str, Any], process: asyncio.subprocess.Process | None = None) -> None:
        process = process or self._process
        if process is None or process.stdin is None:
            raise RuntimeError("load generator not started")
        process.stdin.write(json.dumps(payload).encode() + b"\n")
        await process.stdin.drain()

    async def _read(self) -> dict[str, Any]:
        if self._process is None or self._process.stdout is None:
            raise RuntimeError("load generator not started")
        line = await self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator exited (code {await self._process.wait()})")
        return json.loads(line)


if __name__ == "__main__":
    sys.exit(main())
