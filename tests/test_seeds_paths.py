"""Unusable paths in seeds/ are skipped with one warning each and never stop the index from
following the seeds: a non-UTF-8 file name, a symlink loop, a hard link to a file outside, a link
or copy of another seed (indexed once); the watcher restarts itself after any error."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys

import pytest

from citebot import engine
from embeddings.documents import read_documents, scan_seeds
from embeddings.index import current_build

EXTENSIONS = (".txt", ".md", ".pdf", ".html", ".htm")
BAD_NAME = b"bad\xff.txt"
ZEBRA = "Zebra migration\n\nZebras cross the Mara river every year in July, watched by many tourists.\n"


def write_bad_name(folder, name: bytes = BAD_NAME, text: bytes = b"A file whose name is not UTF-8.") -> None:
    with open(os.fsencode(folder) + b"/" + name, "wb") as handle:
        handle.write(text)


def test_each_unusable_path_is_skipped_with_one_warning(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("A private file that lives outside the seeds folder.")
    (seeds / "good.txt").write_text("Russia and the Taliban met in Moscow in 2017.")
    write_bad_name(seeds)
    os.mkdir(os.fsencode(seeds) + b"/dir\xfe")
    write_bad_name(os.fsencode(seeds) + b"/dir\xfe", b"inside.txt")  # a bad folder name: one warning, not one a file
    os.symlink("loop_b.txt", seeds / "loop_a.txt")
    os.symlink("loop_a.txt", seeds / "loop_b.txt")
    os.symlink("self.txt", seeds / "self.txt")
    os.symlink(".", seeds / "again")  # a folder loop: links to folders are not followed
    os.link(outside, seeds / "hardlink.txt")
    (seeds / "twin_a.txt").write_text("Two names of one file inside the folder.")
    os.link(seeds / "twin_a.txt", seeds / "twin_b.txt")
    os.symlink("good.txt", seeds / "alias.txt")  # a link to another seed
    (seeds / "sub").mkdir()
    shutil.copy(seeds / "good.txt", seeds / "sub" / "copy.txt")  # a copy of another seed
    os.mkfifo(seeds / "pipe.txt")

    warnings: list[str] = []
    sources = scan_seeds(seeds, EXTENSIONS, 10**7, warnings)
    documents = read_documents(sources, warnings)
    assert [d.doc_id for d in documents] == ["good.txt", "twin_a.txt"]
    expected = {
        "bad\\xff.txt": "not valid UTF-8",
        "dir\\xfe": "not valid UTF-8",
        "loop_a.txt": "link loop",
        "loop_b.txt": "link loop",
        "self.txt": "link loop",
        "hardlink.txt": "2 hard links and only 1 in the seeds folder",
        "twin_b.txt": "same content as twin_a.txt",
        "alias.txt": "same content as good.txt",
        "sub/copy.txt": "same content as good.txt",
        "pipe.txt": "not a regular file",
    }
    assert len(warnings) == len(expected), warnings
    for name, reason in expected.items():
        mine = [w for w in warnings if w.startswith(f"skipped {name}: ")]
        assert len(mine) == 1 and reason in mine[0], (name, warnings)
    for warning in warnings:
        warning.encode("utf-8")  # printable: fit for a log line or a chat message
    assert all("outside the seeds" not in d.text for d in documents)


def test_citebot_index_skips_the_bad_paths_with_a_warning_and_succeeds(
    tmp_path, seeds_copy, built_index_dir, child_env
):
    index_dir = tmp_path / "index"
    shutil.copytree(built_index_dir, index_dir, symlinks=True)
    write_bad_name(seeds_copy)
    os.symlink("loop.txt", seeds_copy / "loop.txt")
    env = child_env(CITEBOT_INDEX_DIR=str(index_dir), CITEBOT_CORPUS_SEEDS_DIR=str(seeds_copy))
    done = subprocess.run(
        [sys.executable, "-m", "citebot.cli", "index"], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Logging error" not in done.stderr
    assert done.stderr.count("warning: skipped bad\\xff.txt: its name is not valid UTF-8") == 1
    assert done.stderr.count("warning: skipped loop.txt: it is a broken link or a link loop") == 1
    assert done.stdout.startswith("index up to date: 0 added, 0 updated, 0 removed, 5 unchanged")


@pytest.mark.asyncio
async def test_the_watcher_restarts_after_an_error_and_keeps_following_the_seeds(
    private_index_settings, make_keeper, caplog, monkeypatch
):
    from citebot import lifecycle

    caplog.set_level(logging.INFO, logger="citebot.lifecycle")
    monkeypatch.setattr(lifecycle, "RESTART_SECONDS", (0.5, 2.0))
    settings = private_index_settings(index_verify_every_seconds=0)
    seeds = settings.path(settings.corpus.seeds_dir)
    keeper = make_keeper(settings)
    stop = asyncio.Event()
    outcomes = []
    watch = asyncio.create_task(keeper.watch(stop, outcomes.append))

    def failures() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("watching the seeds failed")]

    try:
        await asyncio.sleep(1.0)
        write_bad_name(seeds)  # watchfiles cannot decode this name: its watcher raises
        async with asyncio.timeout(60):
            while not failures():
                await asyncio.sleep(0.1)
        async with asyncio.timeout(60):  # the catch-up rebuild after the restart finds the bad file skipped
            while not outcomes:
                await asyncio.sleep(0.1)
        assert outcomes[0].ok and not outcomes[0].report.built
        assert any("bad\\xff.txt" in w for w in outcomes[0].report.warnings)
        await asyncio.sleep(1.0)  # the restarted watcher is in place
        (seeds / "zebra.txt").write_text(ZEBRA, encoding="utf-8")
        async with asyncio.timeout(120):
            while not any(o.ok and o.report.added == ["zebra.txt"] for o in outcomes):
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(watch, 60)
    assert len(failures()) == 1, failures()
    assert "restarting the watcher in 0 s" in failures()[0] or "restarting the watcher in 1 s" in failures()[0]
    assert "Unable to decode path" in failures()[0]
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.ERROR)  # one line, no traceback
    assert keeper.searcher.search("When do zebras cross the Mara river?").hits[0].doc_id == "zebra.txt"


@pytest.mark.asyncio
async def test_reload_with_a_non_utf8_name_in_the_seeds_works(emulator, start_bot, private_index_settings, make_keeper):
    settings = private_index_settings(telegram_admins="[1501]")
    keeper = make_keeper(settings)
    await start_bot(settings, keeper.searcher, keeper=keeper, watch_seeds=False)
    seeds = settings.path(settings.corpus.seeds_dir)
    write_bad_name(seeds)
    (seeds / "zebra.txt").write_text(ZEBRA, encoding="utf-8")
    admin = emulator.user(1501, "Ann")
    chat = emulator.private_chat(admin)
    emulator.send_text(chat, admin, "/reload")
    reply = (await emulator.wait_for_messages(chat["id"], 1, timeout=180))[0]["text"]
    assert reply.startswith("🔄 Index reloaded\nindex rebuilt: 1 added, 0 updated, 0 removed (+zebra.txt); "), reply
    assert current_build(settings.path(settings.index.dir)).resolve() == keeper.searcher.data.path
    assert engine.open_index(settings).document_by_key(keeper.searcher.data.documents[-1].key) is not None
