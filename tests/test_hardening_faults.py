"""Bot API faults while serving: 200 questions from 20 users while 429s, 500s, dropped connections
and slow answers are injected at random into the emulator. Every question gets exactly one answer.

About duplicates: the emulator drops a connection, or cuts a slow answer whose client gave up,
*before* carrying the call out (botapi_emulator/server.py takes the fault rule before calling the
method; aiohttp cancels the handler of a closed connection), so here a failed attempt never
delivered anything and retrying it cannot duplicate. Real Telegram may carry out a request whose
answer is then lost; the Bot API has no idempotency key, so the bot's choice (RetryingRequest) is
at least once: retry, and accept a rare duplicate rather than a lost answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections import Counter

import pytest

from bot import formatting as fmt

QUESTIONS = [
    "Who overthrew King Zahir Shah?",
    "Is Russia arming the Taliban?",
    "Why did Russia start talking to the Taliban?",
    "Has Russia recognised the Taliban government?",
    "Do Afghans still speak Russian?",
    "What does Russia fear in Central Asia?",
    "How did the Soviet war in Afghanistan end?",
    "Does Russia trade with Afghanistan?",
    "What role does India play in Afghanistan?",
    "What did the US withdrawal mean for Russia?",
]
HEADER = re.compile(r"^🔎 Passages 1–\d+ of \d+ for “(.+?)”", re.MULTILINE)


class FaultInjector:
    """After each call the bot makes, maybe queue a fault for the next one (any method but
    getUpdates), and now and then one for getUpdates: 429 (retry_after=1), 500, a dropped
    connection or a slow answer."""

    def __init__(self, emulator, seed: int, rate: float = 0.3, updates_rate: float = 0.3) -> None:
        self.emulator = emulator
        self.random = random.Random(seed)
        self.rate = rate
        self.updates_rate = updates_rate
        self.active = True
        self.queued: Counter[str] = Counter()

    def __call__(self, call) -> None:
        # one fault at a time, and never two in a row: a storm that outlasts every retry is an
        # outage, not the flakiness this test is about
        if not self.active or self.emulator.faults.rules or call.injected:
            return
        if call.method == "getUpdates":
            if self.random.random() < self.updates_rate:
                self._queue("getUpdates")
        elif self.random.random() < self.rate:
            self._queue(None)

    def _queue(self, method: str | None) -> None:
        kind = self.random.choices(["429", "500", "drop", "slow"], weights=[3, 2, 2, 3])[0]
        if kind == "429":
            self.emulator.fail_next(method, status=429, retry_after=1)
        elif kind == "500":
            self.emulator.fail_next(method, status=500)
        elif kind == "drop":
            self.emulator.drop_next(method)
        else:
            self.emulator.delay_next(method, self.random.uniform(0.2, 1.5))
        self.queued[f"{method or 'any'}:{kind}"] += 1


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # RetryAfter.retry_after
async def test_200_questions_from_20_users_under_random_faults_get_one_answer_each(
    emulator, start_bot, make_settings, built_index_dir, searcher, caplog
):
    caplog.set_level(logging.INFO)
    for result in await asyncio.to_thread(searcher.search_many, QUESTIONS, 3):  # also warms the model's cache
        assert not result.abstained and result.hits
    settings = make_settings(index_dir=built_index_dir, telegram_rate_limit_per_minute=1000)
    app = await start_bot(settings, backoff=0.2)
    username = emulator.bot_user["username"]
    users = [emulator.user(2001 + n, f"User{n}") for n in range(20)]
    private = {u["id"]: emulator.private_chat(u) for u in users[:10]}
    groups = [emulator.group_chat(-2101, "Group A", "supergroup"), emulator.group_chat(-2102, "Group B")]
    asked_in_groups: dict[tuple[int, int], str] = {}  # (group id, message id) → question

    injector = FaultInjector(emulator, seed=20240917)
    remove_listener = emulator.add_listener(injector)
    rng = random.Random(7)

    async def user_asks(n: int, user: dict) -> None:
        questions = QUESTIONS[:]
        rng.shuffle(questions)
        for question in questions:
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            if n < 10:
                emulator.send_text(private[user["id"]], user, question)
            else:
                group = groups[n % 2]
                update = emulator.send_text(group, user, f"/ask@{username} {question}")
                asked_in_groups[group["id"], update["message"]["message_id"]] = question

    started = time.monotonic()
    try:
        await asyncio.gather(*(user_asks(n, u) for n, u in enumerate(users)))

        def all_answered() -> bool:
            replies = sum(len(emulator.sent_messages(chat["id"])) for chat in private.values())
            replies += sum(len(emulator.sent_messages(g["id"])) for g in groups)
            return replies >= 200

        await emulator.wait_until(all_answered, timeout=120, what="200 answers")
        answered_in = time.monotonic() - started
    finally:
        injector.active = False
        remove_listener()
        emulator.clear_faults()
    # a late duplicate would come from a handler still retrying: wait until every update is handled
    # (the bot confirmed them all to the emulator, and PTB marked each done after its handler returned)
    await emulator.wait_until(lambda: not emulator.pending_updates, timeout=60, what="updates confirmed")
    await asyncio.wait_for(app.update_queue.join(), 60)

    # private chats: each of the ten questions answered once, matched by the answer's header
    for user_id, chat in private.items():
        texts = [m["text"] for m in emulator.sent_messages(chat["id"])]
        assert fmt.SOMETHING_WRONG not in texts
        answered = Counter(match.group(1) for text in texts for match in [HEADER.search(text)] if match)
        assert answered == Counter(QUESTIONS), (user_id, answered)
        assert len(texts) == len(QUESTIONS)
    # groups: answers are replies, so each is matched to its question exactly
    per_question: Counter[tuple[int, int]] = Counter()
    for group in groups:
        for message in emulator.sent_messages(group["id"]):
            asked = (group["id"], message["reply_to_message_id"])
            assert asked in asked_in_groups, message["text"][:100]
            assert message["text"].startswith("🔎 Passages 1–2 of ")
            per_question[asked] += 1
    assert len(asked_in_groups) == 100 and set(per_question) == set(asked_in_groups)
    assert set(per_question.values()) == {1}
    assert "error while handling an update" not in caplog.text

    injected = Counter(
        f"{c.method if c.method == 'getUpdates' else 'other'}:{c.injected}{'' if c.injected != 'fail' else c.status}"
        for c in emulator.calls
        if c.injected
    )
    sends = emulator.calls_to("sendMessage")
    print(
        f"\n200 questions answered once each in {answered_in:.1f} s; faults hit: {dict(sorted(injected.items()))}; "
        f"sendMessage attempts: {len(sends)} for {sum(c.ok for c in sends)} messages"
    )
    assert sum(injected.values()) >= 30  # the run really was faulty
    assert {"other:fail429", "other:fail500", "other:drop", "other:delay"} <= set(injected)
