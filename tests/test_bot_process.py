"""The bot as a program: ``citebot serve`` (``python -m citebot.cli serve``) stopped by SIGTERM, and the
local sandbox chatting over standard input and output."""

from __future__ import annotations

import asyncio
import io
import signal
import sys

import pytest

from bot.sandbox import run_sandbox
from tests.conftest import citebot_process

ZAHIR = "Who overthrew King Zahir Shah?"
ARMS = "Is Russia arming the Taliban?"


@pytest.mark.asyncio
async def test_sigterm_finishes_the_answer_in_flight_and_exits_0(emulator, built_index_dir, child_env):
    env = child_env(
        TELEGRAM_BOT_TOKEN=emulator.token,
        CITEBOT_TELEGRAM_BASE_URL=emulator.base_url,
        CITEBOT_INDEX_DIR=str(built_index_dir),
    )
    async with citebot_process(env, "serve") as process:
        await emulator.wait_until(lambda: emulator.polling, timeout=120, what="the bot polling")
        registered = await emulator.wait_for("setMyCommands", timeout=30)
        assert registered[0].ok
        alice = emulator.user(601, "Alice")
        chat = emulator.private_chat(alice)
        emulator.delay_next("sendMessage", 1.5)  # the answer is still in flight when SIGTERM arrives
        emulator.send_text(chat, alice, ZAHIR)
        await emulator.wait_until(lambda: not emulator.pending_updates, timeout=30)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    log = stderr.decode()
    assert process.returncode == 0, log[-3000:]
    answers = emulator.sent_messages(chat["id"])
    assert len(answers) == 1 and "Mohammed Daud Khan" in answers[0]["text"]
    assert "serving by long polling" in log and "stopped" in log
    assert emulator.token not in log + stdout.decode()
    assert emulator.token.split(":")[1] not in log


def test_sandbox_answers_piped_questions(settings, searcher):
    stdin = io.StringIO(f"{ZAHIR}\n\n{ARMS}\n#5\n#5\n#4\n")
    stdout = io.StringIO()
    assert run_sandbox(settings, searcher, stdin, stdout) == 0
    out = stdout.getvalue()
    assert "sandbox" in out and "local Bot API emulator on http://127.0.0.1:" in out and "not Telegram" in out
    first, second = out.split(f"> {ZAHIR}")[1].split(f"> {ARMS}")
    assert "Mohammed Daud Khan" in first and "<b>" not in first
    assert "[Russia’s policy in Afghanistan and its outreach to the Taliban: an issue brief] — 2017" in first
    assert "Buttons: #1 [📖 Context 1]" in first
    answer, page2, page3, back = second.split("\n> #")
    assert "“arming them”" in answer and "#5 [More results ▶]" in answer and "\x1b" not in out  # plain when piped
    # the button numbers stay put from page to page: More is #5 on every page, Back #4
    assert "(edited) 🔎 Passages 4–6 of" in page2 and "#4 [◀ Back]  #5 [More results ▶]" in page2
    assert "(edited) 🔎 Passages 7–9 of" in page3
    assert "(edited) 🔎 Passages 4–6 of" in back


def test_serve_without_a_token_runs_the_sandbox(
    make_settings, built_index_dir, searcher, monkeypatch, restore_log_factory, tmp_path
):
    """`echo QUESTION | citebot serve` with no token: serve() runs the sandbox on the given streams and
    returns 0 at the end of the input. (The session's searcher stands in for the one serve() would
    load, which takes seconds; loading is citebot.service.open_service's job and tested with it.)"""
    from citebot import serve
    from citebot.service import Service

    no_token = make_settings(
        index_dir=built_index_dir,
        telegram_sandbox_log=tmp_path / "sandbox.log",
        telegram_store_file=tmp_path / "store.sqlite3",
    )
    assert no_token.bot_token() is None
    loaded = []
    options = {}
    monkeypatch.setattr(
        serve, "open_service", lambda s, **kw: loaded.append(s) or options.update(kw) or Service.around(s, searcher)
    )
    stdout = io.StringIO()
    assert serve.serve(no_token, stdin=io.StringIO(ARMS + "\n/about\n"), stdout=stdout) == 0
    assert loaded == [no_token]
    assert callable(options["progress"])  # a build at start-up would show a progress bar
    out = stdout.getvalue()
    assert "citebot sandbox" in out
    assert "Understanding Russia’s Taliban gauntlet — Harsh V. Pant, Aleksei Zakharov, 2025-07-28" in out
    assert "citebot 0.1.0" in out and "Build: " in out


@pytest.mark.parametrize("installed", [False, True])
def test_a_missing_sniffio_fails_its_import_at_once_and_an_installed_one_is_left_alone(installed, monkeypatch):
    import importlib.util

    from bot.transport import skip_missing_sniffio

    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if installed else None)
    skip_missing_sniffio()
    if installed:
        assert "sniffio" not in sys.modules
    else:
        assert sys.modules["sniffio"] is None
        with pytest.raises(ImportError):
            import sniffio  # noqa: F401
