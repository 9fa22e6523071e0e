"""Past one machine, under faults: Redis, nginx (deploy/nginx.conf as is), three `citebot serve
--replica` processes and the Bot API emulator delivering by webhook, all on 127.0.0.1 in a
temporary folder.

30 users ask 300 questions (10 each, one at a time) and press a button under every answer. While
they do: one replica is killed with SIGKILL, the builder publishes a new build (one seed document
changed) that every replica swaps in, another replica is restarted (SIGTERM, then started again),
and Redis is restarted.

Pass: every question answered exactly once — lost 0; duplicated 0 except in the one window no
design closes (an answer sent by the killed replica that had not yet recorded it), which is counted
and reported, each case proven: its first copy came from the killed replica (each replica calls
the emulator through its own URL, so every call names its sender), whose webhook request for the
update died with it (nginx: 502), and at most as many as it had in flight; copies are matched to
their question by the question their answer quotes, since copies made from the two builds differ
in their text; the restarted replica exits 0 (it was not killed for being slow to stop); every
button press answered without an
"expired" or "went wrong" answer; and every answer quotes passages of one single build (the old
or the new, never a mix), with no answer from the new build before it was published.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot import formatting as fmt
from bot import markup
from botapi_emulator import BotApiEmulator, validate_telegram_html
from botapi_emulator.utf16 import entity_text
from citebot import engine
from deploy.local import Nginx, RedisServer, Replica, free_port, replica_environment
from embeddings.index import current_build
from tests.conftest import REPO

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(600)]

USERS = 30
QUESTIONS_PER_USER = 10
REPLICAS = 3
SECRET = "replica-Test_secret-42"
LEASE_SECONDS = 3.0
CHANGED_DOC = "002_d73ef1872804ed67.txt"  # rewritten for the second build
FAILED_REPORTS = REPO / "var" / "test-reports"  # printed by .ci/run
ANSWER_TIMEOUT = 60.0  # one answer, across a kill (lease + re-delivery backoff) on a busy machine
FAULTS_AT = {"kill": 45, "publish": 30, "restart": 120, "redis": 200}  # questions answered before each fault


def normalise(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def quoted_passages(html: str) -> list[str]:
    """The passages a message quotes (its blockquotes), as plain text."""
    plain, entities = validate_telegram_html(html)
    return [entity_text(plain, e) for e in entities if e["type"] in ("blockquote", "expandable_blockquote")]


def build_texts(build: Path) -> str:
    """Every document text of a build, normalised, joined."""
    documents = json.loads((build / "documents.json").read_text())
    return "|".join(normalise(d["text"]) for d in documents)


def same_offsets(old: Path, new: Path, doc_id: str) -> bool:
    """Whether a document's cleaned text and headings keep their offsets from build to build."""

    def shape(build: Path) -> tuple[int, list]:
        document = next(d for d in json.loads((build / "documents.json").read_text()) if d["doc_id"] == doc_id)
        return len(document["text"]), [offset for offset, _ in document["headings"]]

    return shape(old) == shape(new)


def found_in(passage: str, corpus: str) -> bool:
    core = normalise(passage.replace("…", " "))
    return len(core) < 20 or core[8:-8] in corpus  # the ends may be cut mid-word


# the question an answer quotes (bot.formatting): in the header of its passages, or in its decline
QUOTED_QUESTION = (
    re.compile(r"^🔎 Passages [^\n]*? for “(.+)”$", re.MULTILINE),  # answer_html
    re.compile(r"^🤷 The sources don't cover “(.+)”\.$", re.MULTILINE),  # abstain_html
    re.compile(r"^🤷 The sources don't mention [^\n]*? \(asked: “(.+)”\)\.$", re.MULTILINE),  # not_covered_html
)


def plain_signature(plain: str) -> str:
    """What two copies of one answer share, even when one was made from the old build and the
    other from the new: the question the answer quotes, or else (e.g. "no words to search for")
    its whole text with the changed word undone."""
    for pattern in QUOTED_QUESTION:
        quoted = pattern.search(plain)
        if quoted:
            return "question:" + quoted.group(1)
    return "text:" + normalise(plain.replace("Taleban", "Taliban"))


def answer_signature(html: str) -> str:
    """:func:`plain_signature` of an answer as sent (HTML)."""
    return plain_signature(validate_telegram_html(html)[0])


def quoted_question(question: str) -> str:
    """The question as the header of its answer quotes it (plain text)."""
    return markup.clip(markup.squash(fmt.clean_question(question, 10_000)[0]).strip(), 200)


@dataclass
class Asked:
    """One question of one user: its update, when it was sent, its answer and any extra copies."""

    update_id: int
    sent: float
    question: str
    answer: Any = None  # the RecordedCall of its first answer
    extras: list = field(default_factory=list)


def sort_answers(asked: list[Asked], answers: list) -> list:
    """Give each question its answer (``Asked.answer``), and each extra copy to the question it
    repeats (``Asked.extras``); returns the extra copies no question could be found for.

    The bot replies to a chat in the order of its questions, so an answer is for the oldest
    question still without one, unless it quotes another question; an answer that quotes none
    and comes when every question asked has one repeats the earlier answer with its text."""
    by_question = {"question:" + quoted_question(a.question): a for a in asked}
    orphans = []
    for call in sorted(answers, key=lambda c: c.time):
        sig = answer_signature(call.params["text"])
        waited = [a for a in asked if a.sent <= call.time]
        if not waited:
            orphans.append(call)
            continue
        target = by_question.get(sig)
        if target is not None:
            if target.answer is None:
                target.answer = call
            elif answer_signature(target.answer.params["text"]) != sig:
                # it had been given a copy of an earlier answer that quotes no question
                misplaced, target.answer = target.answer, call
                original = answered_as(asked, answer_signature(misplaced.params["text"]))
                (original.extras if original else orphans).append(misplaced)
            else:
                target.extras.append(call)
            continue
        pending = [a for a in waited if a.answer is None]
        if pending:  # a chat's replies go out in the order of its questions (bot.ordering)
            pending[0].answer = call
            continue
        original = answered_as(waited, sig)
        (original.extras if original else orphans).append(call)
    return orphans


def answered_as(asked: list[Asked], sig: str) -> Asked | None:
    """The first question whose answer has signature ``sig``."""
    return next((a for a in asked if a.answer is not None and answer_signature(a.answer.params["text"]) == sig), None)


@pytest.fixture
def world(tmp_path, services_installed, built_index_dir, seeds_copy, make_settings, child_env):
    index_dir = tmp_path / "index"
    shutil.copytree(built_index_dir, index_dir, symlinks=True)
    text = (seeds_copy / CHANGED_DOC).read_text()
    # same length: the passages keep their offsets (a "Context" button of the old build still
    # works on the new one), while their text tells the two builds apart. The title line stays:
    # it matches the document's citation title, so cleaning drops it; changed, it would stay in
    # the text and move every passage (the buttons of the old build would then be "expired")
    title_end = text.index("\n", text.index("Taliban"))
    (seeds_copy / CHANGED_DOC).write_text(text[:title_end] + text[title_end:].replace("Taliban", "Taleban"))
    return {
        "index_dir": index_dir,
        "seeds": seeds_copy,
        "child_env": child_env,
        "builder_settings": make_settings(index_dir=index_dir, corpus_seeds_dir=seeds_copy),
    }


# The failures seen before (2 of 13 runs, then 1 of 5: "duplicated" outside the window, with an
# update delivered once) were this test's own miscount, explained by the report a failed attempt now
# keeps (var/test-reports/, printed by .ci/run): a copy in the window (the killed replica's answer,
# sent again by another) arrived while its user waited for the next answer; counted as that answer,
# the user asked on with two questions in flight, which two replicas answered in either order, and
# the two declines with the same text were then given to the wrong questions. Each user now waits for
# the answer quoting its question (every answer quotes it, declines too: bot.formatting.asked_html).
# One rerun only when a wait timed out (a machine too loaded to answer in time): a wrong count is
# never rerun, so "lost 0, duplicated 0 outside the window" holds on every attempt.
@pytest.mark.flaky(reruns=1, only_rerun=["^(EmulatorTimeout|TimeoutError): "])
async def test_replicas_behind_nginx_survive_kill_restart_swap_and_redis_restart(tmp_path, world, encoder):
    emulator = BotApiEmulator()
    emulator.webhook.timeout = 30.0
    emulator.webhook.backoff = 0.2
    emulator.webhook.max_backoff = 2.0
    await emulator.start()
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    ports = [free_port() for _ in range(REPLICAS)]
    nginx = Nginx(tmp_path / "nginx", ports)
    nginx.start()
    env = replica_environment(
        world["child_env"](),
        token=emulator.token,
        api_url=emulator.base_url,
        webhook_url=f"{nginx.url}/citebot/hook",
        secret=SECRET,
        state_url=redis.url,
        index_dir=world["index_dir"],
        lease_seconds=LEASE_SECONDS,
        extra={"CITEBOT_INDEX_FOLLOW_SECONDS": "0.3", "CITEBOT_TELEGRAM_RATE_LIMIT_PER_MINUTE": "1000"},
    )
    citebot = str(Path(sys.executable).with_name("citebot"))
    # each replica calls the Bot API through its own URL: the emulator records which one sent what
    replicas = [
        Replica(
            tmp_path / f"replica{i}",
            {**env, "CITEBOT_TELEGRAM_BASE_URL": emulator.client_base_url(f"replica{i}")},
            port,
            citebot=citebot,
            number=i,
        )
        for i, port in enumerate(ports)
    ]
    report: dict = {}
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            await asyncio.to_thread(replica.wait_ready)
        await run_scenario(emulator, world, encoder, replicas, redis, report)
    finally:
        print("replica test:", json.dumps(report, sort_keys=True))
        if sys.exc_info()[0] is not None:  # a failed attempt: a rerun's pass would drop what it printed
            FAILED_REPORTS.mkdir(parents=True, exist_ok=True)
            (FAILED_REPORTS / f"replicas-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(
                json.dumps({"error": repr(sys.exc_info()[1])[:2000], "report": report}, sort_keys=True, indent=1)
            )
        for replica in replicas:
            replica.stop()
        nginx.stop()
        redis.stop()
        await emulator.stop()
        for replica in replicas:
            log = replica.log_tail(100_000)
            assert SECRET not in log and emulator.token.split(":")[1] not in log
            assert "Traceback" not in log, replica.log_tail()


async def run_scenario(emulator, world, encoder, replicas, redis, report) -> None:
    old_build = current_build(world["index_dir"]).resolve()
    corpora = {"old": build_texts(old_build)}
    events: dict[str, float] = {}
    answered = 0
    presses: list[dict] = []
    asked: dict[int, list[Asked]] = {n: [] for n in range(USERS)}

    def is_answer(message: dict) -> bool:
        return not message["text"].startswith("📖 Context")

    def answer_to(chat: dict, k: int, question: str) -> dict | None:
        """The answer to a user's k-th question: the message quoting it. Not the k-th answer
        in the chat: a copy of an earlier answer (the documented window) would be taken for it, and
        the user would ask on before its question was answered."""
        answers = [m for m in emulator.sent_messages(chat["id"]) if is_answer(m)]
        own = "question:" + quoted_question(question)
        quoting = [m for m in answers if plain_signature(m["text"]) == own]
        if quoting:
            return quoting[0]
        # an answer that quotes no question: the k-th, if it is one
        if len(answers) > k and plain_signature(answers[k]["text"]).startswith("text:"):
            return answers[k]
        return None

    async def user(n: int, questions: list[str]) -> None:
        nonlocal answered
        person = emulator.user(9000 + n, f"User{n}")
        chat = emulator.private_chat(person)
        for k, question in enumerate(questions):
            update = emulator.send_text(chat, person, question)
            asked[n].append(Asked(update["update_id"], time.monotonic(), question))
            await emulator.wait_until(
                lambda k=k, q=question: answer_to(chat, k, q), ANSWER_TIMEOUT, f"answer {k} of user {n}"
            )
            answered += 1
            answer = answer_to(chat, k, question)
            data = [
                b["callback_data"]
                for row in (answer.get("reply_markup") or {}).get("inline_keyboard", [])
                for b in row
                if "callback_data" in b
            ]
            if not data:
                continue
            more = [d for d in data if d.startswith("m:")]  # keyboards.encode_more
            # "More results" on even questions when there is one, "Context 1" otherwise
            query = emulator.press_button(answer, more[-1] if more and k % 2 == 0 else data[0], person)
            presses.append(query)
            await emulator.wait_until(
                lambda q=query: emulator.callback_answer(q), ANSWER_TIMEOUT, f"button of user {n}"
            )

    async def at(count: int) -> None:
        while answered < count:
            await asyncio.sleep(0.02)

    async def kill() -> None:
        await at(FAULTS_AT["kill"])
        events["kill"] = time.monotonic()
        replicas[0].kill()
        events["killed"] = time.monotonic()

    async def publish() -> None:  # the builder: one changed document re-embedded, then `current` moves
        await at(FAULTS_AT["publish"])
        events["publish_started"] = time.monotonic()
        build = await asyncio.to_thread(engine.update_index, world["builder_settings"], encoder)
        assert build.built and build.updated == [CHANGED_DOC]
        assert same_offsets(old_build, build.path, CHANGED_DOC)  # the premise of the Context buttons
        corpora["new"] = build_texts(build.path)
        report["new_build"] = build.path.name
        events["published"] = time.monotonic()

    async def restart() -> None:
        await at(FAULTS_AT["restart"])
        events["restart"] = time.monotonic()
        # a clean stop: it finishes its answers in flight and exits 0 (not killed for being slow)
        report["restart_exit_code"] = await asyncio.to_thread(replicas[1].stop)
        events["stopped"] = time.monotonic()
        replicas[1].start()
        await asyncio.to_thread(replicas[1].wait_ready)
        events["restarted"] = time.monotonic()

    async def restart_redis() -> None:
        await at(FAULTS_AT["redis"])
        events["redis_restart"] = time.monotonic()
        await asyncio.to_thread(redis.restart)

    async def faults() -> None:
        await asyncio.gather(kill(), publish(), restart(), restart_redis())

    from bench.questions import questions as make_questions

    pool = make_questions(USERS * QUESTIONS_PER_USER)
    started = time.monotonic()
    fault_task = asyncio.create_task(faults())
    async with asyncio.timeout(300):
        await asyncio.gather(*(user(n, pool[n::USERS]) for n in range(USERS)))
        await fault_task
        await emulator.wait_until(lambda: not emulator.pending_updates, 60, "every update delivered")
        await asyncio.sleep(LEASE_SECONDS + 1)  # late duplicates would show up by now
    report["seconds"] = round(time.monotonic() - started, 1)

    # ---- every question answered exactly once
    def rel(t: float) -> float:
        return round(t - started, 2)

    def attempts(update_id: int) -> list:
        return [[rel(d.started), d.status, d.error] for d in emulator.webhook.deliveries if d.update_id == update_id]

    killed = replicas[0].name  # the replica killed with SIGKILL: it can only have sent before it died
    # the updates the killed replica had in flight: delivered before the kill, failed by it
    cut_off = {
        d.update_id
        for d in emulator.webhook.deliveries
        if d.status == 502 and d.started < events["kill"] <= d.started + d.seconds  # nginx: upstream died
    }
    sends = [c for c in emulator.calls_to("sendMessage") if c.ok]
    lost = duplicated = in_window = 0
    for n in range(USERS):
        mine = [c for c in sends if c.params.get("chat_id") == 9000 + n and not c.params["text"].startswith("📖")]
        orphans = sort_answers(asked[n], mine)
        lost += sum(a.answer is None for a in asked[n])
        duplicated += len(orphans) + sum(len(a.extras) for a in asked[n])
        for call in orphans:
            report.setdefault("duplicates", []).append(
                {
                    "user": n,
                    "unmatched": [call.client, rel(call.time)],
                    "answer": answer_signature(call.params["text"])[:120],
                }
            )
        for a in asked[n]:
            for extra in a.extras:
                # the documented window: the first copy was sent by the killed replica (so before it
                # died), whose webhook request for the update failed when it died (it had not marked
                # the update answered); another replica answered the re-delivery
                inside = a.answer.client == killed and extra.client != killed and a.update_id in cut_off
                in_window += inside
                report.setdefault("duplicates", []).append(
                    {
                        "user": n,
                        "update_id": a.update_id,
                        "in_window": inside,
                        "first": [a.answer.client, rel(a.answer.time)],
                        "again": [extra.client, rel(extra.time)],
                        "asked": a.question,
                        "answer": answer_signature(extra.params["text"])[:120],
                        "deliveries": attempts(a.update_id),
                    }
                )
    errors = [c for c in sends if fmt.SOMETHING_WRONG in c.params.get("text", "")]
    report.update(
        questions=USERS * QUESTIONS_PER_USER,
        answered=answered,
        lost=lost,
        duplicated=duplicated,
        duplicated_in_window=in_window,
        in_flight_at_kill=len(cut_off),
        error_answers=len(errors),
        button_presses=len(presses),
    )

    # ---- every button press answered, none "expired" or "went wrong"
    bad_presses = [
        (q, a)
        for q, a in zip(presses, map(emulator.callback_answer, presses), strict=True)
        if a is None or a.get("text") in (fmt.STALE_BUTTON, fmt.SOMETHING_WRONG)
    ]
    answering = {c.params.get("callback_query_id"): c for c in emulator.calls_to("answerCallbackQuery")}
    report["bad_button_answers"] = [
        {
            "update_id": q["update_id"],
            "data": q["callback_query"]["data"],
            "answer": a,
            "answered_by": getattr(answering.get(q["callback_query"]["id"]), "client", None),
            "at": rel(getattr(answering.get(q["callback_query"]["id"]), "time", started)),
        }
        for q, a in bad_presses
    ]

    # ---- every message quotes one build, the new one only once it was being published
    mixed = from_new = early = 0
    for call in emulator.calls:
        if call.method not in ("sendMessage", "editMessageText") or not call.ok:
            continue
        passages = quoted_passages(call.params["text"])
        in_old = all(found_in(p, corpora["old"]) for p in passages)
        in_new = all(found_in(p, corpora["new"]) for p in passages)
        if not (in_old or in_new):
            mixed += 1
        elif not in_old:
            from_new += 1
            early += call.time < events["publish_started"]
    report.update(
        messages_mixing_builds=mixed,
        messages_only_in_new_build=from_new,
        new_build_messages_before_publishing=early,
        webhook_redeliveries=sum(1 for d in emulator.webhook.deliveries if d.attempt > 1),
        faults={k: rel(v) for k, v in events.items()},
    )
    logs = [replica.log_tail(1_000_000) for replica in replicas]
    report["redis_outage_log_lines"] = [log.count("shared state unreachable") for log in logs]
    report["redis_back_log_lines"] = [log.count("shared state reachable again") for log in logs]
    lease_lost = [int(u) for log in logs for u in re.findall(r"update (\d+): [^\n]* while this replica was still", log)]
    report["leases_lost"] = {u: attempts(u) for u in lease_lost}

    assert report["restart_exit_code"] == 0, report
    assert lost == 0, report
    assert duplicated == in_window, report
    assert in_window <= len(cut_off), report  # at most what the killed replica had in flight
    assert not errors, report
    assert len(presses) >= USERS * QUESTIONS_PER_USER // 2 and not bad_presses, report
    assert mixed == 0 and early == 0, report
    # the replica that ran throughout swapped to the new build while answering
    assert f"now serving build {report['new_build']}" in replicas[2].log_tail(1_000_000), replicas[2].log_tail()
    # what the kill cut off is delivered again (a kill between two updates cuts off nothing: nginx
    # passes the next one to a live replica, and nothing needs delivering twice)
    assert not cut_off or any(d.attempt > 1 and d.update_id in cut_off for d in emulator.webhook.deliveries), report
    assert replicas[2].process.poll() is None  # the replica nobody touched is still serving
    # a Redis outage is one line when it starts and one when it ends, per replica
    assert all(
        down <= 1 and back == down
        for down, back in zip(report["redis_outage_log_lines"], report["redis_back_log_lines"], strict=True)
    ), report
