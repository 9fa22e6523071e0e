"""The load generator of bench/roundtrip.py: answers are counted per question, so lost and
duplicated answers show, in process and from its own child process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bench.loadgen import LoadGenerator, run_scenario
from bot.serving import start_bot, stop_bot
from botapi_emulator import BotApiEmulator


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answers once; "twice" twice and "lost" never."""
    text = update.message.text
    for _ in range({"twice": 2, "lost": 0}.get(text, 1)):
        await context.bot.send_message(update.message.chat_id, f"re: {text}")


@contextlib.asynccontextmanager
async def echo_bot(base_url: str, token: str) -> AsyncIterator[Application]:
    app = Application.builder().token(token).base_url(base_url).concurrent_updates(True).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    await start_bot(app, poll_timeout=1)
    try:
        yield app
    finally:
        await stop_bot(app)


@pytest.mark.asyncio
async def test_lost_and_duplicated_answers_are_counted():
    async with BotApiEmulator() as emulator, echo_bot(emulator.base_url, emulator.token):
        command = {
            "kind": "closed",
            "questions": [["a", "b"], ["twice"], ["lost"]],
            "timeout_seconds": 1.0,
            "grace_seconds": 0.3,
            "markers": {"echo": "re: ", "none": "nowhere"},
        }
        result = await run_scenario(emulator, command, first_user_id=500)
    assert (result["asked"], result["answered"], result["timeouts"]) == (4, 3, 1)
    assert (result["lost"], result["duplicated"]) == (1, 1)
    assert result["marker_counts"] == {"echo": 4, "none": 0}
    assert len(result["latencies"]) == 3 and all(0 < t < 1 for t in result["latencies"])


@pytest.mark.asyncio
async def test_child_process_runs_each_kind_of_scenario():
    async with LoadGenerator() as users, echo_bot(users.base_url, users.token):
        questions = [[f"q{u}-{j}" for j in range(3)] for u in range(4)]
        for kind in ("thinking", "closed", "burst"):
            result = await users.run(
                {
                    "kind": kind,
                    "questions": questions,
                    "think_seconds": 0.02,
                    "seed": 1,
                    "pause_seconds": 0.01,
                    "grace_seconds": 0.1,
                    "timeout_seconds": 5.0,
                }
            )
            assert (result["kind"], result["asked"], result["answered"]) == (kind, 12, 12)
            assert result["lost"] == result["duplicated"] == result["timeouts"] == 0
        with pytest.raises(RuntimeError, match="unknown scenario kind"):
            await users.run({"kind": "stampede", "questions": questions})
