"""Two instances polling one token: the newcomer says what is wrong and exits with 3.

``citebot serve`` runs in a subprocess (the real CLI, model and index) against the emulator while
another poller holds the token, with a known token and webhook secret in its environment: neither
may appear in anything it prints, even at -v (debug) level.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from bot.serving import EXIT_CONFLICT
from botapi_emulator import BotApiEmulator
from tests.conftest import citebot_process

TOKEN = "7012345678:AAGh-secretTokenPart_0123456789abcdefXYZ"
WEBHOOK_SECRET = "whsec-Known_Secret-0123456789"


async def hold_the_token(base_url: str, token: str, stop: asyncio.Event) -> int:
    """Another instance: long-polls the token again and again; returns the Conflicts it met."""
    conflicts = 0
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                response = await client.post(f"{base_url}{token}/getUpdates", json={"timeout": 2})
                conflicts += response.status_code == 409
    return conflicts


@pytest.mark.asyncio
@pytest.mark.timeout(240)
async def test_a_second_instance_says_another_is_polling_and_exits_3(built_index_dir, child_env):
    async with BotApiEmulator(token=TOKEN) as emulator:
        stop = asyncio.Event()
        other = asyncio.create_task(hold_the_token(emulator.base_url, TOKEN, stop))
        env = child_env(
            TELEGRAM_BOT_TOKEN=TOKEN,
            CITEBOT_TELEGRAM_BASE_URL=emulator.base_url,
            CITEBOT_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
            CITEBOT_INDEX_DIR=str(built_index_dir),
        )
        try:
            async with citebot_process(env, "-v", "serve") as process:
                stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=180)
        finally:
            stop.set()
            conflicts_of_the_other = await asyncio.wait_for(other, 30)
        output = stdout.decode() + stderr.decode()
        assert process.returncode == EXIT_CONFLICT, output[-3000:]
        assert "another instance is polling this token" in output
        assert "Only one instance may serve a bot token" in output
        assert "serving by long polling" in output and "stopped (exit code 3)" in output
        assert "Calling Bot API endpoint" in output  # debug logging was on: the check below means something
        assert TOKEN not in output and TOKEN.split(":")[1] not in output
        assert WEBHOOK_SECRET not in output
        assert emulator.calls_to("sendMessage") == []  # it answered nothing
        polls = [c for c in emulator.calls_to("getUpdates") if c.status == 409]
        assert polls and conflicts_of_the_other >= 1  # both sides met the conflict; the newcomer left
