"""The index follows the seeds while the bot serves: the watcher, /reload, SIGHUP, failures told to
the admins. Everything runs against the real bot, the Bot API emulator over HTTP, the real model
and a private copy of the seeds and of the index (``private_index_settings``)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import threading
import time

import httpx
import pytest

from bot import formatting as fmt
from bot import polling as bot_polling
from bot import serving
from botapi_emulator import EmulatorThread
from citebot import engine
from citebot.serve import serve

REMOVED = "002_d73ef1872804ed67.txt"  # "Understanding Russia’s Taliban gauntlet"
REMOVED_QUESTION = "Russia recognition of the Taliban government"  # REMOVED (the newest source) among the first
ZEBRA_QUESTION = "When do zebras cross the Mara river?"
ZEBRA_FACT = "every year in July"  # in the zebra passage, not in the question (which an answer quotes)
ARMS = "Is Russia arming the Taliban?"
ZAHIR = "Who overthrew King Zahir Shah?"
ZEBRA = "Zebra migration\n\n" + "\n\n".join(
    f"Zebras cross the Mara river every year in July, in herds of up to {n} thousand animals, watched by "
    f"many tourists from the {side} bank. Crocodiles wait for them in the deeper pools of the river. "
    f"Observation post {n} counted the crossings for the park's census."
    for n, side in zip(range(10, 22), ["eastern", "western"] * 6, strict=True)
)


def buttons(message: dict) -> dict[str, str]:
    """Button label → callback data of a bot message."""
    keyboard = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return {b["text"]: b["callback_data"] for row in keyboard for b in row}


async def ask(emulator, chat: dict, user: dict, text: str, timeout: float = 30) -> dict:
    """Send ``text`` and return the bot's next message in that chat."""
    before = len(emulator.sent_messages(chat["id"]))
    emulator.send_text(chat, user, text)
    return (await emulator.wait_for_messages(chat["id"], before + 1, timeout=timeout))[before]


async def press(emulator, message: dict, data: str, user: dict, **kwargs) -> dict:
    """Press a button and return the bot's answerCallbackQuery parameters."""
    query = emulator.press_button(message, data, user, **kwargs)
    return await emulator.wait_until(lambda: emulator.callback_answer(query), timeout=30)


async def inline_titles(emulator, user: dict, text: str) -> list[str]:
    """The titles of every inline result for ``text``, following next_offset to the end."""
    titles, offset = [], ""
    for _ in range(10):
        query = emulator.inline_query(user, text, offset)
        answer = await emulator.wait_until(lambda q=query: emulator.inline_answer(q), timeout=30)
        titles += [r["title"] for r in answer["results"]]
        offset = answer.get("next_offset") or ""
        if not offset:
            break
    return titles


# -------------------------------------------------------------------------------------- the watcher


@pytest.mark.asyncio
async def test_the_index_follows_the_seeds_while_the_bot_serves(
    emulator, start_bot, private_index_settings, make_keeper, caplog, watcher_started
):
    caplog.set_level(logging.INFO)
    settings = private_index_settings(telegram_rate_limit_per_minute=10_000)
    seeds = settings.path(settings.corpus.seeds_dir)
    keeper = make_keeper(settings)
    removed = next(d for d in keeper.searcher.documents() if d.doc_id == REMOVED)
    title = removed.citation.title
    app = await start_bot(settings, keeper.searcher, keeper=keeper)
    alice, bob, carol = emulator.user(1101, "Alice"), emulator.user(1102, "Bob"), emulator.user(1103, "Carol")
    a_chat, b_chat, c_chat = (emulator.private_chat(u) for u in (alice, bob, carol))

    # before: the document to be removed answers; keep its buttons and its inline results
    before = await ask(emulator, a_chat, alice, REMOVED_QUESTION)
    assert title in before["text"]
    more = buttons(before)["More results ▶"]
    into_removed = [d for d in buttons(before).values() if d.startswith(f"c:{removed.doc_key}:")]
    assert into_removed
    assert title in await inline_titles(emulator, alice, REMOVED_QUESTION)
    assert ZEBRA_FACT not in (await ask(emulator, b_chat, bob, ZEBRA_QUESTION))["text"]

    # 1. a document is added: its passages are answerable within 60 s; questions asked meanwhile
    #    are all answered, from the old index until the new one is swapped in
    old_searcher = app.bot_data.retriever
    answered: list[tuple[float, float, str]] = []  # (asked, answered, text)
    stop_asking = asyncio.Event()

    async def keep_asking() -> None:
        while not stop_asking.is_set():
            asked = time.time()
            reply = await ask(emulator, c_chat, carol, ARMS)
            answered.append((asked, time.time(), reply["text"]))

    asker = asyncio.create_task(keep_asking())
    await watcher_started()
    added_at = time.monotonic()
    (seeds / "zebra.txt").write_text(ZEBRA, encoding="utf-8")
    while True:
        reply = await ask(emulator, b_chat, bob, ZEBRA_QUESTION)
        assert reply["text"] != fmt.SOMETHING_WRONG
        if ZEBRA_FACT in reply["text"]:
            break
        assert time.monotonic() - added_at < 60, "the new document was not answerable within 60 s"
        await asyncio.sleep(0.3)
    took = time.monotonic() - added_at
    stop_asking.set()
    await asyncio.wait_for(asker, 30)
    assert app.bot_data.retriever is not old_searcher and app.bot_data.retriever is keeper.searcher
    assert reply["text"].startswith("🔎 Passages 1–3 of ")

    started = [r.created for r in caplog.records if "rebuilding" in r.getMessage()]
    finished = [r.created for r in caplog.records if r.getMessage().startswith("index rebuilt: 1 added")]
    assert started and finished, caplog.text[-2000:]
    during = [a for a in answered if started[0] < a[1] < finished[0]]
    assert during, f"no question was answered while the index was rebuilt ({finished[0] - started[0]:.1f} s)"
    assert all(text.startswith("🔎 Passages 1–3 of ") and "“arming them”" in text for _, _, text in answered)
    assert max(done - asked for asked, done, _ in answered) < 15

    # 2. a document is removed: none of its passages is shown again, whatever the way in
    (seeds / REMOVED).unlink()
    await emulator.wait_until(lambda: app.bot_data.retriever.document(removed.doc_key) is None, timeout=60)
    fresh = await ask(emulator, a_chat, alice, REMOVED_QUESTION)
    assert fresh["text"].startswith("🔎 Passages 1–3 of ") and title not in fresh["text"]
    # a Context button into the removed document, made before the removal: a polite answer
    sent = len(emulator.sent_messages(a_chat["id"]))
    for data in into_removed:
        assert (await press(emulator, before, data, alice))["text"] == fmt.STALE_BUTTON
    assert len(emulator.sent_messages(a_chat["id"])) == sent
    # the "More results" button made before the removal, then every page after it, and back
    pages = 0
    data = more
    while data is not None:
        current = emulator.message(a_chat["id"], before["message_id"])
        await press(emulator, current, data, alice)
        page = emulator.message(a_chat["id"], before["message_id"])
        assert page["text"].startswith("🔎 Passages ") and title not in page["text"], page["text"][:200]
        pages += 1
        data = buttons(page).get("More results ▶")
        assert pages < 12
    assert pages >= 5  # 25+ passages remain, three a page
    back = buttons(emulator.message(a_chat["id"], before["message_id"]))["◀ Back"]
    await press(emulator, emulator.message(a_chat["id"], before["message_id"]), back, alice)
    assert title not in emulator.message(a_chat["id"], before["message_id"])["text"]
    # inline mode, every page of it
    titles = await inline_titles(emulator, alice, REMOVED_QUESTION)
    assert titles and title not in titles
    # /sources
    assert title not in (await ask(emulator, a_chat, alice, "/sources"))["text"]
    print(
        f"\nnew document answerable after {took:.1f} s; {len(answered)} questions answered meanwhile, "
        f"{len(during)} while the index was rebuilt; {pages} pages checked after the removal"
    )


# ------------------------------------------------------------------------------------------ /reload


@pytest.mark.asyncio
async def test_reload_is_for_admins_and_replies_with_the_summary(
    emulator, start_bot, private_index_settings, make_keeper
):
    settings = private_index_settings(telegram_admins="[1201]")
    keeper = make_keeper(settings)
    app = await start_bot(settings, keeper.searcher, keeper=keeper, watch_seeds=False)
    admin, mallory = emulator.user(1201, "Ann"), emulator.user(1202, "Mallory")
    admin_chat, mallory_chat = emulator.private_chat(admin), emulator.private_chat(mallory)
    old = app.bot_data.retriever
    (settings.path(settings.corpus.seeds_dir) / "zebra.txt").write_text(ZEBRA, encoding="utf-8")

    assert (await ask(emulator, mallory_chat, mallory, "/reload"))["text"] == fmt.RELOAD_REFUSED
    group = emulator.group_chat(-1203, "Watchers")
    emulator.send_text(group, mallory, f"/reload@{emulator.bot_user['username']}")
    refused = (await emulator.wait_for_messages(group["id"], 1))[0]
    assert refused["text"] == fmt.RELOAD_REFUSED
    assert app.bot_data.retriever is old  # nothing was rebuilt
    assert ZEBRA_FACT not in (await ask(emulator, mallory_chat, mallory, ZEBRA_QUESTION))["text"]

    reply = (await ask(emulator, admin_chat, admin, "/reload", timeout=120))["text"]
    passages = sum(d.passages for d in app.bot_data.retriever.documents())
    assert reply.startswith("🔄 Index reloaded\nindex rebuilt: 1 added, 0 updated, 0 removed (+zebra.txt); ")
    assert f"; {passages} passages; " in reply and reply.endswith(" s")
    assert app.bot_data.retriever is not old
    assert ZEBRA_FACT in (await ask(emulator, mallory_chat, mallory, ZEBRA_QUESTION))["text"]
    again = (await ask(emulator, admin_chat, admin, "/reload"))["text"]
    assert again == (
        f"✅ Nothing changed: the index already matches the seeds (/reload force re-embeds all).\n"
        f"index already up to date ({passages} passages)"
    )


@pytest.mark.asyncio
async def test_a_failed_rebuild_keeps_serving_and_tells_every_admin(
    emulator, start_bot, private_index_settings, make_keeper, monkeypatch
):
    settings = private_index_settings(telegram_admins="[1301, 1302, 1303]")
    keeper = make_keeper(settings)
    await start_bot(settings, keeper.searcher, keeper=keeper, watch_seeds=False)
    ann, ben, cid = (emulator.user(uid, name) for uid, name in ((1301, "Ann"), (1302, "Ben"), (1303, "Cid")))
    chats = [emulator.private_chat(u) for u in (ann, ben, cid)]
    emulator.block_user(cid["id"])  # one admin cannot be reached: the others are still told

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(engine, "update_index", disk_full)
    mark = emulator.mark()
    reply = (await ask(emulator, chats[0], ann, "/reload"))["text"]
    assert reply.startswith("⚠️ Reload failed\nrebuild failed, still serving the previous index: ")
    assert "No space left on device" in reply
    alert = (await emulator.wait_for_messages(chats[1]["id"], 1))[0]["text"]
    assert alert.startswith("⚠️ citebot: the index could not be updated\n") and "No space left" in alert
    assert len(emulator.sent_messages(chats[0]["id"])) == 1  # the admin who asked has the reply, no alert
    await emulator.wait_for(lambda c: c.method == "sendMessage" and c.params.get("chat_id") == cid["id"], since=mark)
    assert [c.status for c in emulator.calls_to("sendMessage")[-4:] if c.params.get("chat_id") == cid["id"]] == [403]
    assert "Daud" in (await ask(emulator, chats[1], ben, ZAHIR))["text"]  # the old index still answers
    texts = [m["text"] for chat in chats for m in emulator.sent_messages(chat["id"])]
    assert fmt.SOMETHING_WRONG not in texts


# ------------------------------------------------------------------------ serve(): SIGHUP, Conflict


def compete(base_url: str, token: str, seconds: float) -> int:
    """Poll the bot's token like a second instance for ``seconds``; return the Conflicts met."""
    conflicts = 0
    with httpx.Client(trust_env=False, timeout=10) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            conflicts += client.get(f"{base_url}{token}/getUpdates", params={"timeout": 1}).status_code == 409
    return conflicts


@pytest.mark.timeout(180)
def test_serve_reloads_on_sighup_and_an_established_instance_outlasts_a_conflict(
    private_index_settings, monkeypatch, caplog, restore_log_factory
):
    """serve() in this process (its signal handlers need the main thread): SIGHUP rebuilds and
    logs the summary; another poller appearing later makes it log the conflict but keep serving;
    SIGTERM stops it with 0, the seeds watcher included."""
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(bot_polling, "CONFLICT_STARTUP_SECONDS", 1.0)
    with EmulatorThread() as emu:
        token = emu.emulator.token
        settings = private_index_settings(telegram_token=token, telegram_base_url=emu.base_url)
        outcome: dict = {}

        def drive() -> None:
            try:
                emu.wait_for("deleteWebhook", timeout=60)  # serve() is about to poll
                emu.wait_for("setMyCommands", timeout=30)
                time.sleep(0.5)
                os.kill(os.getpid(), signal.SIGHUP)
                deadline = time.monotonic() + 60
                while not any(r.getMessage().startswith("SIGHUP: index") for r in list(caplog.records)):
                    assert time.monotonic() < deadline, "no reload after SIGHUP"
                    time.sleep(0.1)
                time.sleep(1.0)  # past the start-up window: this instance is the established one
                outcome["conflicts"] = compete(emu.base_url, token, 3.0)
                alice = emu.user(1401, "Alice")
                chat = emu.private_chat(alice)
                emu.send_text(chat, alice, ZAHIR)
                outcome["answer"] = emu.wait_for_messages(chat["id"], 1, timeout=60)[0]["text"]
            except BaseException as exc:  # reported by the test below
                outcome["error"] = exc
            finally:
                os.kill(os.getpid(), signal.SIGTERM)

        driver = threading.Thread(target=drive, name="test-driver", daemon=True)
        driver.start()
        code = serve(settings)
        driver.join(30)
    assert "error" not in outcome, outcome.get("error")
    assert code == serving.EXIT_OK
    log = caplog.text
    passages = sum(1 for _ in engine.open_index(settings).passages)
    assert f"SIGHUP: index already up to date ({passages} passages)" in log
    assert outcome["conflicts"] >= 1
    assert "another instance is polling this token" in log and "keeps serving" in log
    assert "Exiting" not in log
    assert "Daud" in outcome["answer"]
    assert "abandoned" not in log and "watching the seeds failed" not in log
    assert log.rstrip().endswith("stopped") or "stopped\n" in log


def test_the_sandbox_user_can_reload(private_index_settings, make_keeper):
    """In the local sandbox the person at the keyboard is the administrator: /reload works there."""
    import io

    from bot.sandbox import run_sandbox

    settings = private_index_settings(telegram_admins="[]")
    keeper = make_keeper(settings)
    (settings.path(settings.corpus.seeds_dir) / "zebra.txt").write_text(ZEBRA, encoding="utf-8")
    stdout = io.StringIO()
    stdin = io.StringIO(f"/reload\n{ZEBRA_QUESTION}\n")
    assert run_sandbox(settings, keeper.searcher, stdin, stdout, keeper=keeper) == 0
    out = stdout.getvalue()
    # (the start-up catch-up rebuild, a second after start, may have been first: then /reload finds nothing to do)
    assert ("Index reloaded" in out and "(+zebra.txt)" in out) or (
        "Nothing changed" in out and "index already up to date" in out
    )
    assert ZEBRA_FACT in out.split(f"> {ZEBRA_QUESTION}")[1]
