"""No answer lost or sent twice around faults and outages of the Bot API (bot/transport.py).

The unit tests drive :class:`bot.transport.RetryingRequest` over a fake clock (the 5-minute bound
of the retry schedule); the fault test runs the real bot over HTTP against the emulator and counts,
for each kind of fault, the answers lost and the answers sent twice. The delivery semantics are in
RetryingRequest's docstring and the README ("Delivery"): a failure that shows the call was not
carried out is repeated (exactly once delivered); an ambiguous one (sent, no answer) is repeated too
(at least once), so an answer carried out whose response is lost is sent twice; nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import Counter

import httpx
import pytest
from telegram.error import NetworkError, TimedOut

from bot import formatting as fmt
from bot.transport import Failure, OutageQueue, RetryingRequest, RetrySchedule, classify_exception

OK = (200, b'{"ok": true, "result": {"message_id": 1}}')
BAD_GATEWAY = (502, b'{"ok": false, "description": "Bad Gateway"}')
SEND = "http://127.0.0.1/botT/sendMessage"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def wrapped(cause: Exception) -> NetworkError:
    """What PTB's HTTPXRequest raises for an httpx error."""
    error = TimedOut() if isinstance(cause, httpx.TimeoutException) else NetworkError(f"httpx: {cause}")
    error.__cause__ = cause
    return error


class DownUntil:
    """An inner request that fails with ``failure`` until the fake clock reaches ``until``."""

    def __init__(self, clock: FakeClock, until: float, failure, attempt_seconds: float = 0.0) -> None:
        self.clock, self.until, self.failure, self.attempt_seconds = clock, until, failure, attempt_seconds
        self.attempts = 0

    async def do_request(self, url, method, request_data=None, *args, **kwargs):
        self.attempts += 1
        self.clock.now += self.attempt_seconds
        if self.clock.now < self.until:
            if isinstance(self.failure, Exception):
                raise self.failure
            return self.failure
        return OK

    async def initialize(self):
        pass

    async def shutdown(self):
        pass


def retrying(inner, clock: FakeClock, **schedule) -> RetryingRequest:
    return RetryingRequest(inner, schedule=RetrySchedule(**schedule), clock=clock, sleep=clock.sleep)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "failure",
    [
        BAD_GATEWAY,
        wrapped(httpx.ConnectError("[Errno 111] Connection refused")),
        wrapped(httpx.RemoteProtocolError("Server disconnected without sending a response.")),
        wrapped(httpx.ReadTimeout("timed out")),
    ],
    ids=["502", "refused", "closed", "read-timeout"],
)
async def test_an_answer_waits_out_a_five_minute_outage_on_the_default_schedule(failure):
    clock = FakeClock()
    inner = DownUntil(clock, until=300.0, failure=failure, attempt_seconds=0.01)
    request = retrying(inner, clock)
    assert await request.post(SEND) == {"message_id": 1}
    schedule = RetrySchedule()
    assert 300.0 <= clock.now <= 300.0 + schedule.cap + 1  # delivered within one capped wait of the end
    assert max(clock.slept) == schedule.cap and clock.slept[:3] == [0.5, 1.0, 2.0]
    assert 30 <= inner.attempts <= 40  # about one attempt every 10 s, not a storm


@pytest.mark.asyncio
async def test_an_answer_is_given_up_when_its_patience_runs_out():
    clock = FakeClock()
    inner = DownUntil(clock, until=10_000.0, failure=wrapped(httpx.ConnectError("refused")))
    with pytest.raises(NetworkError):
        await retrying(inner, clock).post(SEND)
    assert RetrySchedule().patience - RetrySchedule().cap <= clock.now <= RetrySchedule().patience
    # a call that is not an answer (getMe, setMyCommands...) is not held up for minutes
    clock.now, inner.attempts = 0.0, 0
    with pytest.raises(NetworkError):
        await retrying(inner, clock).post("http://127.0.0.1/botT/setMyCommands")
    assert clock.now <= RetrySchedule().short_patience


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_waits_count_against_patience_and_client_errors_are_final():
    from telegram.error import BadRequest, RetryAfter

    flood = (429, b'{"ok": false, "description": "Too Many Requests", "parameters": {"retry_after": 5}}')
    clock = FakeClock()
    inner = DownUntil(clock, until=12.0, failure=flood)
    assert await retrying(inner, clock).post(SEND) == {"message_id": 1}
    assert clock.slept == [5.05, 5.05, 5.05] and inner.attempts == 4
    clock.now = 0.0
    with pytest.raises(RetryAfter):
        await retrying(DownUntil(clock, until=1e9, failure=flood), clock, patience=12.0).post(SEND)
    bad = DownUntil(clock, until=1e9, failure=(400, b'{"ok": false, "description": "Bad Request: no"}'))
    with pytest.raises(BadRequest):
        await retrying(bad, clock).post(SEND)
    assert bad.attempts == 1


def test_failures_are_classified_by_what_they_show():
    assert classify_exception(wrapped(httpx.ConnectError("refused"))) is Failure.NOT_SENT
    assert classify_exception(wrapped(httpx.ConnectTimeout("connect"))) is Failure.NOT_SENT
    assert classify_exception(wrapped(httpx.PoolTimeout("pool"))) is Failure.NOT_SENT
    assert classify_exception(wrapped(httpx.WriteError("broken pipe"))) is Failure.NOT_SENT
    assert classify_exception(wrapped(httpx.ReadTimeout("read"))) is Failure.AMBIGUOUS
    assert classify_exception(wrapped(httpx.RemoteProtocolError("disconnected"))) is Failure.AMBIGUOUS
    assert classify_exception(wrapped(httpx.ReadError("reset"))) is Failure.AMBIGUOUS
    assert classify_exception(RuntimeError("?")) is Failure.AMBIGUOUS


def test_the_schedule_doubles_to_its_cap():
    schedule = RetrySchedule(first=0.5, cap=10.0)
    assert [schedule.delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert schedule.patience_for("sendMessage") == schedule.patience
    assert schedule.patience_for("answerCallbackQuery") == schedule.patience
    assert schedule.patience_for("getMe") == schedule.short_patience


@pytest.mark.asyncio
async def test_during_an_outage_answers_wait_in_a_bounded_queue_and_go_oldest_first():
    down = asyncio.Event()
    down.set()
    delivered: list[int] = []
    attempts = Counter()

    class Api:
        async def do_request(self, url, method, request_data=None, *args, **kwargs):
            n = int(url.rsplit("=", 1)[1])
            attempts[n] += 1
            await asyncio.sleep(0)
            if down.is_set():
                return BAD_GATEWAY
            delivered.append(n)
            return OK

    queue = OutageQueue(limit=5, failures_to_close=3)
    request = RetryingRequest(Api(), schedule=RetrySchedule(first=0.01, cap=0.05, patience=30), queue=queue)
    tasks = []
    for n in range(6):
        tasks.append(asyncio.create_task(request.post(f"http://127.0.0.1/botT/sendMessage?n={n}")))
        await asyncio.sleep(0.02)  # arrive in order
    await asyncio.sleep(0.3)
    assert queue.closed and queue.waiting == 5  # one probes, five wait
    with pytest.raises(NetworkError, match="already waiting"):  # the queue is bounded
        await request.post("http://127.0.0.1/botT/sendMessage?n=99")
    before = attempts.copy()
    await asyncio.sleep(0.3)
    probing = [n for n in range(6) if attempts[n] > before[n]]
    assert len(probing) == 1  # only the probe retries, the others wait without a call
    down.clear()
    await asyncio.gather(*tasks)
    assert delivered[0] == probing[0] and sorted(delivered) == list(range(6))
    assert [n for n in delivered if n != probing[0]] == sorted(n for n in range(6) if n != probing[0])
    assert not queue.closed and queue.waiting == 0


@pytest.mark.asyncio
async def test_the_probe_is_the_oldest_request_even_when_a_younger_ones_failure_closes_the_queue():
    queue = OutageQueue(failures_to_close=3)
    old, young = object(), object()
    await queue.turn(old, 1.0)
    queue.failed(old)
    queue.failed(old)
    await queue.turn(young, 1.0)
    queue.failed(young)  # the third failure in a row: the API is taken as down
    assert queue.closed
    waiting = asyncio.create_task(queue.turn(young, 5.0))
    await asyncio.sleep(0.01)
    assert not waiting.done() and queue.waiting == 1  # the younger one waits ...
    assert await queue.turn(old, 1.0) is False  # ... while the older one probes
    queue.went_through(old)
    assert await waiting is True and not queue.closed


# ------------------------------------------------------------------------ the real bot, per kind of fault

QUESTIONS = [  # each answered with passages (the header names the question)
    "Does Russia trade with Afghanistan?",
    "Who overthrew King Zahir Shah?",
    "What role does India play in Afghanistan?",
    "Is Russia arming the Taliban?",
    "What did the US withdrawal mean for Russia?",
    "Do Afghans still speak Russian?",
]
HEADER = re.compile(r"^🔎 Passages 1–\d+ of \d+ for “(.+?)”", re.MULTILINE)


class HeldSearcher:
    """The real searcher, whose searches wait until ``release`` is set (so that answers are sent
    while the Bot API is unreachable, after their questions were fetched)."""

    def __init__(self, real) -> None:
        self.real = real
        self.release = threading.Event()
        self.release.set()
        self.started = 0

    def search(self, *args, **kwargs):
        self.started += 1
        self.release.wait(60)
        return self.real.search(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


def recorded_attempts(request) -> list[list]:
    """``[chat_id, status]`` of each sendMessage attempt through ``request``, in the order they began
    (status None while under way, or when it failed without an answer)."""
    attempts: list[list] = []
    real = request.do_request

    async def recording(url, method, request_data=None, *args, **kwargs):
        if not url.endswith("/sendMessage"):
            return await real(url, method, request_data, *args, **kwargs)
        attempt = [int(request_data.parameters["chat_id"]), None]
        attempts.append(attempt)
        attempt[1], payload = await real(url, method, request_data, *args, **kwargs)
        return attempt[1], payload

    request.do_request = recording
    return attempts


@pytest.mark.asyncio
async def test_lost_and_duplicated_answers_for_each_kind_of_fault(
    emulator, start_bot, make_settings, built_index_dir, searcher, caplog
):
    caplog.set_level(logging.INFO)
    await asyncio.to_thread(searcher.search_many, QUESTIONS, 3)  # the model's cache warm
    held = HeldSearcher(searcher)
    # a 3 s read timeout: a held connection times out in the test as one of 15 s does in production;
    # retries capped at 2 s instead of 10 s, so that the outages below can be short and still see the cap
    cap = 2.0
    app = await start_bot(
        make_settings(index_dir=built_index_dir), held, backoff=0.2, backoff_cap=cap, read_timeout=3.0
    )
    attempts = recorded_attempts(app.bot.request.inner)
    table: dict[str, dict[str, float]] = {}
    next_user = iter(range(7001, 8000))

    async def phase(
        kind: str,
        inject,
        *,
        expect_duplicates: int = 0,
        spread: float = 0.0,
        timeout: float = 60.0,
        faults: int | None = None,
    ) -> None:
        """Ask every question from a new user, with ``inject()`` run first (or concurrently when it
        is a coroutine); wait for every answer, then count lost and duplicated ones."""
        users = [emulator.user(next(next_user), f"U{kind}") for _ in QUESTIONS]
        chats = [emulator.private_chat(u) for u in users]
        mark = emulator.mark()
        background = None
        started = time.monotonic()
        result = inject()
        if asyncio.iscoroutine(result):
            background = asyncio.create_task(result)
        for chat, user, question in zip(chats, users, QUESTIONS, strict=True):
            emulator.send_text(chat, user, question)
            if spread:
                await asyncio.sleep(spread)
        try:
            await emulator.wait_until(
                lambda: all(emulator.sent_messages(c["id"]) for c in chats),
                timeout=timeout,
                what=f"an answer to every question ({kind})",
            )
        finally:
            if background is not None:
                await background
            emulator.clear_faults()
        answered_in = time.monotonic() - started
        await asyncio.sleep(1.0)  # a late duplicate would arrive now
        lost = duplicated = wrong = 0
        for chat, question in zip(chats, QUESTIONS, strict=True):
            messages = emulator.sent_messages(chat["id"])
            headers = [m.group(1) for text in (x["text"] for x in messages) for m in [HEADER.search(text)] if m]
            wrong += sum(x["text"] == fmt.SOMETHING_WRONG for x in messages)
            lost += headers.count(question) == 0
            duplicated += max(0, headers.count(question) - 1)
        injected = sum(1 for c in emulator.calls[mark:] if c.injected) if faults is None else faults
        table[kind] = {
            "questions": len(QUESTIONS),
            "faults": injected,
            "lost": lost,
            "duplicated": duplicated,
            "seconds": round(answered_in, 1),
        }
        assert wrong == 0, kind  # nobody was told it failed
        assert lost == 0, table[kind]
        assert duplicated == expect_duplicates, table[kind]

    n = len(QUESTIONS)
    await phase("429", lambda: emulator.fail_next("sendMessage", status=429, retry_after=1, count=n))
    await phase(
        "5xx",
        lambda: (
            emulator.fail_next("sendMessage", status=500, count=n // 2),
            emulator.fail_next("sendMessage", status=502, count=n - n // 2),
        ),
    )
    await phase("dropped before carrying out", lambda: emulator.drop_next("sendMessage", count=n))

    async def refused() -> None:  # questions fetched, answers sent while nothing listens
        held.release.clear()
        started = held.started
        await emulator.wait_until(lambda: held.started >= started + n, timeout=30, what="the searches")
        stopping = asyncio.create_task(emulator.refuse_connections(4.0))
        await asyncio.sleep(0.5)
        held.release.set()
        await stopping

    await phase("connection refused", refused, faults=n)  # each answer's first attempt refused
    # the at-least-once choice: a call carried out whose response is lost is repeated, so sent twice
    await phase(
        "answer lost after carrying out", lambda: emulator.lose_answer_next("sendMessage", count=n), expect_duplicates=n
    )
    # held past the read timeout (the bot gives up on the attempt), or held and then closed
    await phase(
        "held connection",
        lambda: (
            emulator.hold_next("sendMessage", 4.0, count=n // 2),
            emulator.hold_next("sendMessage", 1.0, count=n - n // 2),
        ),
    )
    outage = 8.0  # several capped waits (0.2, 0.4, 0.8, 1.6, 2, 2 ...)
    ended = {}

    def start_outage(seconds: float, status: int | None):
        def start() -> None:
            emulator.outage(seconds, "sendMessage", status=status)
            ended["at"] = time.monotonic() + seconds

        return start

    for seconds, status, label in ((outage, 502, "502"), (5.0, None, "connections closed")):
        kind = f"outage {seconds:.0f} s ({label})"
        mark, first_attempt = emulator.mark(), len(attempts)
        await phase(kind, start_outage(seconds, status), spread=seconds / 10, timeout=seconds + 40)
        sent = [c for c in emulator.calls[mark:] if c.method == "sendMessage" and c.ok]
        table[kind]["recovered in"] = round(max(c.time for c in sent) - ended["at"], 1)
        # the order the attempts began in: requests over separate connections may reach the Bot API
        # in another (a new connection each, once the outage closed the old ones)
        tried = list(dict.fromkeys(chat for chat, _ in attempts[first_attempt:]))  # by each first attempt
        delivered = [chat for chat, status in attempts[first_attempt:] if status == 200]
        assert delivered == tried, "answers held by the outage went oldest first"
        assert table[kind]["recovered in"] <= cap + 2.0  # one capped wait after the end, and the send
    lines = [
        f"{kind:<34} {row['faults']:>6} {row['lost']:>5} {row['duplicated']:>11} {row['seconds']:>8} "
        f"{row.get('recovered in', ''):>12}"
        for kind, row in table.items()
    ]
    print(
        "\nkind of fault                      faults  lost  duplicated  seconds  recovered in   (6 questions each)\n"
        + "\n".join(lines)
    )
    assert "error while handling an update" not in caplog.text
