"""A build made by another builder is adopted: ``citebot index`` run by hand or from cron writes a
new build and moves ``current``; the serving bot follows ``current`` whoever wrote it
(citebot/lifecycle.IndexKeeper.adopt_current and follow). The other builder here is
``engine.update_index`` in this process, which is what ``citebot index`` runs; replicas in other
processes following a builder's ``current`` are tests/test_replicas.py's."""

from __future__ import annotations

import asyncio
import time

import pytest

from citebot import engine

ZEBRA_QUESTION = "When do zebras cross the Mara river?"
ZEBRA_FACT = "every year in July"  # in the zebra passage, not in the question (which an answer quotes)
ZEBRA = "Zebra migration\n\n" + "\n\n".join(
    f"Zebras cross the Mara river every year in July, in herds of up to {n} thousand animals, watched by "
    f"many tourists from the {side} bank. Crocodiles wait for them in the deeper pools of the river."
    for n, side in zip(range(10, 16), ["eastern", "western"] * 3, strict=True)
)


async def another_builder(settings, encoder) -> None:
    """What ``citebot index`` does (a person or cron), beside the keeper: build, publish, move ``current``."""
    assert (await asyncio.to_thread(engine.update_index, settings, encoder)).built


@pytest.mark.asyncio
async def test_the_serving_bot_answers_from_a_build_citebot_index_published(
    emulator, start_bot, make_keeper, private_index_settings, encoder
):
    settings = private_index_settings(index_follow_seconds=0.5)
    keeper = make_keeper(settings)
    # no seeds watcher (as where file notifications do not work): only the follower can see it
    app = await start_bot(settings, keeper.searcher, keeper=keeper, watch_seeds=False)
    alice = emulator.user(9101, "Alice")
    chat = emulator.private_chat(alice)
    emulator.send_text(chat, alice, ZEBRA_QUESTION)
    first = (await emulator.wait_for_messages(chat["id"], 1, timeout=30))[0]["text"]
    assert ZEBRA_FACT not in first
    old = app.bot_data.retriever

    (settings.path(settings.corpus.seeds_dir) / "zebra.txt").write_text(ZEBRA, encoding="utf-8")
    await another_builder(settings, encoder)
    published = time.monotonic()
    await emulator.wait_until(lambda: app.bot_data.retriever is not old, timeout=30, what="the new build adopted")
    adopted_in = time.monotonic() - published
    emulator.send_text(chat, alice, ZEBRA_QUESTION)
    answer = (await emulator.wait_for_messages(chat["id"], 2, timeout=30))[1]["text"]
    assert ZEBRA_FACT in answer and "zebra.txt" in str(app.bot_data.retriever.documents())
    assert keeper.searcher is app.bot_data.retriever
    print(f"\nbuild of `citebot index` served {adopted_in:.1f} s after it was published")


@pytest.mark.asyncio
async def test_a_rebuild_that_finds_the_seeds_up_to_date_adopts_the_newer_build(
    private_index_settings, make_keeper, encoder
):
    """The keeper's rebuild comes after another builder's: it finds nothing to build, and serves
    the build the other builder published instead of its old one."""
    settings = private_index_settings()
    keeper = make_keeper(settings)
    swapped = []
    keeper.on_swap = swapped.append
    old = keeper.searcher
    (settings.path(settings.corpus.seeds_dir) / "zebra.txt").write_text(ZEBRA, encoding="utf-8")
    await another_builder(settings, encoder)
    outcome = await keeper.rebuild()
    assert outcome.ok and not outcome.report.built and outcome.swapped and outcome.adopted
    assert "now serving build" in outcome.summary()
    assert swapped == [keeper.searcher] and keeper.searcher is not old
    assert keeper.searcher.search(ZEBRA_QUESTION).hits[0].doc_id == "zebra.txt"
    again = await keeper.rebuild()
    assert not again.swapped and again.summary().startswith("index already up to date (")


@pytest.mark.asyncio
async def test_a_published_build_that_cannot_be_loaded_is_reported_once_and_the_old_one_kept(
    private_index_settings, make_keeper, monkeypatch
):
    settings = private_index_settings()
    keeper = make_keeper(settings)
    errors = []
    keeper.on_error = errors.append
    old = keeper.searcher
    index_dir = settings.path(settings.index.dir)
    other = index_dir / "builds" / "elsewhere"
    other.mkdir(parents=True)
    current = index_dir / "current"
    current.unlink()
    current.symlink_to(other)  # a link moved to a build that is not loadable

    def broken(*args, **kwargs):
        raise RuntimeError("manifest missing")

    monkeypatch.setattr(engine, "open_index", broken)
    assert not await keeper.adopt_current()
    assert not await keeper.adopt_current()  # not tried (nor reported) again
    assert keeper.searcher is old and len(errors) == 1 and "still serving the previous index" in errors[0]
