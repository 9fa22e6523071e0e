"""Long polling that cannot die or wedge silently (issue 12, cases 1 and 2): a transient 401/404 on
getUpdates is retried with backoff, a persistent one ends ``citebot serve`` with exit 1 and a clear
message; an update python-telegram-bot cannot parse is skipped with one bounded log line and the
rest of its batch is answered; one cause repeating in a loop cannot flood the log."""

from __future__ import annotations

import asyncio
import logging

import pytest
from telegram.error import InvalidToken

from bot.log_limits import RepeatLimitFilter
from bot.polling import PollingGuard, UpdateSkipper, describe_update
from tests.conftest import citebot_process

ZAHIR = "Who overthrew King Zahir Shah?"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------ pure parts


def test_the_offset_moves_past_every_skipped_update():
    skipper = UpdateSkipper()
    assert skipper.next_offset(None) is None and skipper.next_offset(7) == 7
    skipper._skip({"update_id": 11, "message": {}}, TypeError("bad poll"))
    assert skipper.skipped == 1
    # the updater confirms up to the last update it was given (10 → offset 11): 11 was skipped
    assert skipper.next_offset(11) == 12
    assert skipper.next_offset(None) == 12
    assert skipper.next_offset(15) == 15  # later updates were handed on: nothing to add


def test_an_unparsable_update_is_skipped_and_the_rest_of_the_batch_kept():
    from telegram import Bot

    good = {
        "update_id": 3,
        "message": {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}, "text": "hello"},
    }
    bad = {
        "update_id": 4,
        "message": {
            "message_id": 2,
            "date": 0,
            "chat": {"id": 5, "type": "private"},
            "poll": {"id": "p", "question": "q", "options": []},
        },
    }
    skipper = UpdateSkipper()
    updates = skipper.parse([bad, good], Bot("1:x"))
    assert [u.update_id for u in updates] == [3]
    assert skipper.skipped == 1 and skipper.next_offset(4) == 5


def test_an_update_is_described_by_a_bounded_prefix():
    secret_tail = "do not log this part of what the user wrote " * 20
    text = describe_update({"update_id": 9, "message": {"text": "x" * 50 + secret_tail}})
    assert len(text) <= 121 and text.endswith("…") and '"update_id": 9' in text
    assert secret_tail not in text


def test_refusals_are_retried_until_they_have_lasted_the_grace_period():
    clock = FakeClock()
    stop = asyncio.Event()
    guard = PollingGuard(stop, refused_grace_seconds=300, clock=clock)
    error = InvalidToken("Not Found")
    assert guard.refused(error)
    clock.now += 299
    assert guard.refused(error) and guard.fatal is None
    guard.polled()  # one success in between starts the count again
    clock.now += 200
    assert guard.refused(error)
    clock.now += 299
    assert guard.refused(error) and not stop.is_set()
    clock.now += 2
    assert not guard.refused(error)
    assert stop.is_set() and "refused getUpdates for 301 s" in guard.fatal and "Not Found" in guard.fatal


def _record(msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("x", level, __file__, 1, msg, args, None)


def test_repeated_log_lines_are_held_back_and_counted():
    clock = FakeClock()
    limiter = RepeatLimitFilter(burst=3, period=60, clock=clock)
    passed = [limiter.filter(_record("fetching failed (%s)", n)) for n in range(1000)]
    assert passed.count(True) == 3 and passed[:3] == [True] * 3
    assert limiter.filter(_record("another cause"))  # other messages are not affected
    clock.now += 61
    record = _record("fetching failed (%s)", 1000)
    assert limiter.filter(record)
    assert "997 similar messages held back" in record.getMessage()


def test_the_repeat_limiter_remembers_a_bounded_number_of_kinds():
    limiter = RepeatLimitFilter(burst=1, period=60, max_kinds=10, clock=FakeClock())
    for n in range(1000):
        limiter.filter(_record(f"message {n}"))
    assert len(limiter._windows) == 10


# ------------------------------------------------------------------------ the real bot, real HTTP


@pytest.mark.asyncio
async def test_an_old_shaped_poll_is_skipped_once_and_the_rest_of_its_batch_answered(emulator, running_bot, caplog):
    caplog.set_level(logging.INFO)
    alice = emulator.user(701, "Alice")
    chat = emulator.private_chat(alice)
    # queued together (no await between), so that both arrive in one getUpdates batch
    poll = emulator.send_poll(chat, alice, "Which talks matter most?", ["Moscow", "Doha"], legacy_shape=True)
    emulator.send_text(chat, alice, ZAHIR)
    answers = await emulator.wait_for_messages(chat["id"], 1, timeout=60)
    assert "Mohammed Daud Khan" in answers[0]["text"]
    # the offset moved past the poll: nothing is left to fetch again
    await emulator.wait_until(lambda: not emulator.pending_updates, timeout=10, what="updates confirmed")
    # a poll as the last update of a batch is skipped too, and later questions are answered
    emulator.send_poll(chat, alice, "Again?", ["yes", "no"], legacy_shape=True)
    await emulator.wait_until(lambda: not emulator.pending_updates, timeout=10, what="the lone poll confirmed")
    emulator.send_text(chat, alice, "Is Russia arming the Taliban?")
    await emulator.wait_for_messages(chat["id"], 2, timeout=60)
    skipped = [r for r in caplog.records if r.getMessage().startswith("skipped update")]
    assert [r.getMessage().split()[2] for r in skipped] == [str(poll["update_id"]), str(poll["update_id"] + 2)]
    assert all(len(r.getMessage()) < 600 and "Which talks" not in r.getMessage()[300:] for r in skipped)
    assert not any(r.levelno == logging.CRITICAL for r in caplog.records)


@pytest.mark.asyncio
async def test_a_transient_404_on_get_updates_is_retried_and_the_question_answered(emulator, running_bot, caplog):
    caplog.set_level(logging.INFO)
    emulator.fail_next("getUpdates", status=404, count=3)
    alice = emulator.user(702, "Alice")
    chat = emulator.private_chat(alice)
    emulator.send_text(chat, alice, ZAHIR)
    answers = await emulator.wait_for_messages(chat["id"], 1, timeout=60)
    assert "Mohammed Daud Khan" in answers[0]["text"]
    refused = [c for c in emulator.calls_to("getUpdates") if c.status == 404]
    assert len(refused) == 3
    assert "getUpdates works again" in caplog.text
    assert running_bot.updater.running


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_a_persistent_401_ends_serve_with_exit_1_and_a_clear_message(emulator, built_index_dir, child_env):
    env = child_env(
        TELEGRAM_BOT_TOKEN=emulator.token,
        CITEBOT_TELEGRAM_BASE_URL=emulator.base_url,
        CITEBOT_INDEX_DIR=str(built_index_dir),
        CITEBOT_TELEGRAM_POLLING_REFUSED_GRACE_SECONDS="3",
    )
    async with citebot_process(env, "serve") as process:
        # loading the model: seconds idle, minutes on a busy machine
        await emulator.wait_until(lambda: emulator.polling, timeout=180, what="the bot polling")
        emulator.fail_next("getUpdates", status=401, count=10_000)
        emulator.updates.release_poll()  # the held poll answers now (nothing new): the next ones meet the 401s
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    log = stderr.decode()
    assert process.returncode == 1, log[-3000:]
    assert "Telegram has refused getUpdates for" in log and "token was revoked" in log
    assert "fetching updates failed" in log  # the refusals before it were retried
    assert emulator.token not in log + stdout.decode()
    assert emulator.token.split(":")[1] not in log
