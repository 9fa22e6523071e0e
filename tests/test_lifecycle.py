"""The index follows the seeds: rebuild in the background, atomic swap, failures keep the old index."""

import asyncio
import errno

import pytest

from citebot import engine
from citebot.service import open_service

ZEBRA = "Zebra migration\n\nZebras cross the Mara river every year in July, watched by many tourists.\n"


@pytest.fixture
def keeper_settings(small_private_index):
    """A private copy of the small corpus and its index (conftest.SMALL_CORPUS): rebuilds are quick."""
    return small_private_index


def make_keeper(settings, encoder, **kwargs):
    keeper = open_service(settings, encoder=encoder).keeper
    for name, value in kwargs.items():  # on_swap, on_error
        setattr(keeper, name, value)
    return keeper


@pytest.mark.asyncio
async def test_rebuild_swaps_in_the_new_index_while_questions_keep_being_answered(keeper_settings, encoder):
    swapped = []
    keeper = make_keeper(keeper_settings, encoder, on_swap=swapped.append)
    old = keeper.searcher
    (keeper_settings.path(keeper_settings.corpus.seeds_dir) / "zebra.txt").write_text(ZEBRA)
    (keeper_settings.path(keeper_settings.corpus.seeds_dir) / "002_d73ef1872804ed67.txt").unlink()

    rebuild = asyncio.create_task(keeper.rebuild())
    answered = 0
    while not rebuild.done():  # the old searcher answers throughout the build
        result = await asyncio.to_thread(old.search, "Do Afghans still speak Russian?")
        answered += bool(result.hits)
        await asyncio.sleep(0)
    outcome = await rebuild
    assert answered >= 1
    assert outcome.ok and outcome.swapped and outcome.report.added == ["zebra.txt"]
    assert outcome.report.removed == ["002_d73ef1872804ed67.txt"]
    assert swapped == [keeper.searcher] and keeper.searcher is not old
    assert keeper.searcher.search("When do zebras cross the Mara river?").hits[0].doc_id == "zebra.txt"
    docs = {h.doc_id for h in keeper.searcher.search("Russia recognition of the Taliban symbolic gesture", 30).hits}
    assert "002_d73ef1872804ed67.txt" not in docs
    assert "2 added" not in outcome.summary() and "1 added" in outcome.summary()


@pytest.mark.asyncio
async def test_a_failed_rebuild_keeps_the_old_index_and_tells_the_admins(keeper_settings, encoder, monkeypatch):
    errors = []
    keeper = make_keeper(keeper_settings, encoder, on_error=errors.append)
    old = keeper.searcher

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(engine, "update_index", disk_full)
    outcome = await keeper.rebuild(force=True)
    assert not outcome.ok and "No space left" in outcome.error
    assert keeper.searcher is old and old.search("Do Afghans still speak Russian?").hits
    assert errors and "still serving the previous index" in errors[0]


@pytest.mark.asyncio
async def test_watcher_picks_up_a_new_document_within_a_minute(keeper_settings, encoder, watcher_started):
    keeper = make_keeper(keeper_settings, encoder)
    stop = asyncio.Event()
    outcomes = []
    watcher = asyncio.create_task(keeper.watch(stop, outcomes.append))
    await watcher_started()
    (keeper_settings.path(keeper_settings.corpus.seeds_dir) / "zebra.txt").write_text(ZEBRA)
    try:
        async with asyncio.timeout(60):
            while not outcomes:
                await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 10)
    assert outcomes[0].ok and outcomes[0].report.added == ["zebra.txt"]
    assert keeper.searcher.search("When do zebras cross the Mara river?").hits[0].doc_id == "zebra.txt"


def test_index_watch_command_prints_each_rebuild_and_stops_on_sigterm(keeper_settings, child_env):
    import json
    import signal
    import subprocess
    import sys
    import threading
    import time

    env = child_env(
        CITEBOT_INDEX_DIR=str(keeper_settings.path(keeper_settings.index.dir)),
        CITEBOT_CORPUS_SEEDS_DIR=str(keeper_settings.path(keeper_settings.corpus.seeds_dir)),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "citebot.cli", "index", "--watch", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    log: list[str] = []
    watching = threading.Event()

    def read_log() -> None:  # drains stderr; the watcher's "watching … for changes" means it is in place
        for line in process.stderr:
            log.append(line)
            if line.rstrip().endswith(" for changes"):
                watching.set()

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        first = json.loads(process.stdout.readline())
        assert first["ok"] and not first["built"]  # the copied index was already up to date
        assert watching.wait(60), "".join(log)
        time.sleep(0.2)  # the child creates its inotify watch right after that line: a margin across processes
        (keeper_settings.path(keeper_settings.corpus.seeds_dir) / "zebra.txt").write_text(ZEBRA)
        second = json.loads(process.stdout.readline())
        assert second["ok"] and second["added"] == ["zebra.txt"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        process.kill()
        process.wait(30)
        reader.join(10)
        process.stdout.close()
