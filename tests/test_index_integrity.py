"""A published build cannot crash or silently corrupt the bot: every file is checksummed in the
manifest and verified on load, NaN/inf and non-unit vectors are refused, builds are read-only and
never written again, and a build damaged under a running IndexKeeper is detected by the periodic
check and replaced by a fresh rebuild. Real model, real index (of the small corpus, see conftest)."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import numpy as np
import pytest

from citebot import engine
from embeddings.index import (
    CHECKED_FILES,
    BuildParams,
    IndexCorrupt,
    build_index,
    current_build,
    file_checksum,
    load_index,
    verify_build,
)
from embeddings.sources import SourceCatalog

QUESTION = "Do Afghans still speak Russian?"


@pytest.fixture
def private_index(small_private_index, make_settings):
    """A private copy of the small corpus and its index (a rebuild re-embeds a tenth of the seeds)."""
    return make_settings(
        index_dir=small_private_index.path(small_private_index.index.dir),
        corpus_seeds_dir=small_private_index.path(small_private_index.corpus.seeds_dir),
        index_verify_every_seconds=0,
    )


def live_build(settings):
    return current_build(settings.path(settings.index.dir)).resolve()


def damage(path, how: str) -> None:
    """What an operator's tool does to a published file (after getting past its read-only mode)."""
    os.chmod(path, 0o644)
    os.chmod(path.parent, 0o755)
    if how == "truncate":  # rsync --inplace or cp over the file, caught half-way
        os.truncate(path, path.stat().st_size // 2)
        return
    vectors = np.load(path, mmap_mode="r+")
    if how == "nan":  # NaN written in place
        vectors[: len(vectors) // 2] = np.nan
    else:  # vectors of the right size and shape, unit length, but not these passages'
        noise = np.random.default_rng(7).normal(size=vectors.shape)
        vectors[:] = noise / np.linalg.norm(noise, axis=1, keepdims=True)
    vectors.flush()
    del vectors


def test_every_file_has_a_checksum_and_a_published_build_is_read_only(private_index, encoder):
    build = live_build(private_index)
    manifest = json.loads((build / "manifest.json").read_text())
    assert sorted(manifest["checksums"]) == sorted(CHECKED_FILES)
    for name in CHECKED_FILES:
        assert manifest["checksums"][name] == file_checksum(build / name)
        assert stat.S_IMODE((build / name).stat().st_mode) == 0o444
    assert stat.S_IMODE(build.stat().st_mode) == 0o555
    verify_build(build)
    before = {name: file_checksum(build / name) for name in CHECKED_FILES}

    # a rebuild writes a new folder and never touches the published one
    seeds = private_index.path(private_index.corpus.seeds_dir)
    (seeds / "zebra.txt").write_text("Zebra migration\n\nZebras cross the Mara river every year in July.\n")
    report = engine.update_index(private_index, encoder)
    assert report.built and report.path != build and live_build(private_index) == report.path
    assert {name: file_checksum(build / name) for name in CHECKED_FILES} == before
    verify_build(report.path)


@pytest.mark.parametrize(
    ("how", "name"),
    [
        ("truncate", "token_vectors.npy"),
        ("truncate", "passage_vectors.npy"),
        ("nan", "passage_vectors.npy"),
        ("random", "sentence_vectors.npy"),
    ],
)
def test_a_damaged_build_is_refused_with_a_clear_error(private_index, how, name):
    build = live_build(private_index)
    engine.open_index(private_index)
    damage(build / name, how)
    message = rf"index file {build / name} does not match its checksum .*run `citebot index --force`"
    with pytest.raises(IndexCorrupt, match=message):
        engine.open_index(private_index)
    with pytest.raises(IndexCorrupt, match=message):  # memory-mapped loading checks first as well
        load_index(private_index.path(private_index.index.dir), mmap_above_bytes=0)
    with pytest.raises(IndexCorrupt, match=message):
        verify_build(build)


def reseal_manifest(build) -> None:
    """Recompute the manifest's checksums: a damaged build that a checksum would not catch."""
    manifest_path = build / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["checksums"] = {name: file_checksum(build / name) for name in CHECKED_FILES}
    os.chmod(manifest_path, 0o644)
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("how", "name", "says"),
    [
        ("nan", "passage_vectors.npy", "passage vectors that are not finite"),
        ("nan", "token_vectors.npy", "token vectors that are not finite"),
        ("random-scaled", "sentence_vectors.npy", "sentence vectors that are not unit length"),
    ],
)
def test_vectors_that_cannot_be_searched_are_refused_even_with_matching_checksums(private_index, how, name, says):
    build = live_build(private_index)
    path = build / name
    if how == "random-scaled":
        damage(path, "random")
        vectors = np.load(path, mmap_mode="r+")
        vectors *= 3
        vectors.flush()
        del vectors
    else:
        damage(path, how)
    reseal_manifest(build)
    with pytest.raises(IndexCorrupt, match=says):
        engine.open_index(private_index)


class BrokenEncoder:
    """An encoder that gives NaN (a broken model or runtime)."""

    name, dimension = "broken", 384

    def encode(self, texts, *, show_progress=False):
        return np.full((len(texts), self.dimension), np.nan, dtype=np.float32)


def test_the_builder_refuses_to_publish_nan_vectors(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text("Russia and the Taliban met in Moscow in 2017.\n")
    index_dir = tmp_path / "index"
    with pytest.raises(ValueError, match="not finite numbers"):
        build_index(
            seeds_dir=seeds,
            index_dir=index_dir,
            catalog=SourceCatalog(),
            encoder=BrokenEncoder(),
            params=BuildParams("broken", 450, 600, True),
        )
    assert not current_build(index_dir).exists() and not list((index_dir / "builds").iterdir())


def test_small_builds_are_held_in_memory_and_large_ones_mapped(private_index, encoder):
    index_dir = private_index.path(private_index.index.dir)
    in_memory = engine.open_index(private_index)
    mapped = load_index(index_dir, mmap_above_bytes=0)
    assert not isinstance(in_memory.token_vectors, np.memmap) and not in_memory.token_vectors.flags.writeable
    assert isinstance(mapped.token_vectors, np.memmap) and isinstance(mapped.passage_vectors, np.memmap)
    assert np.array_equal(in_memory.passage_vectors, mapped.passage_vectors)
    # truncating the files under a loaded in-memory build cannot reach it (no SIGBUS: nothing is mapped)
    build = live_build(private_index)
    del mapped
    for name in ("token_vectors.npy", "passage_vectors.npy"):
        damage(build / name, "truncate")
    searcher = engine.make_searcher(private_index, encoder, in_memory)
    assert searcher.search(QUESTION).hits


@pytest.mark.asyncio
async def test_a_build_damaged_under_the_running_keeper_is_replaced_by_a_fresh_rebuild(
    private_index, make_settings, make_keeper
):
    settings = make_settings(
        index_dir=private_index.path(private_index.index.dir),
        corpus_seeds_dir=private_index.path(private_index.corpus.seeds_dir),
        index_verify_every_seconds=0.5,
    )
    keeper = make_keeper(settings)
    errors: list[str] = []
    keeper.on_error = errors.append
    served = keeper.searcher
    damaged = live_build(settings)
    stop = asyncio.Event()
    outcomes = []
    watch = asyncio.create_task(keeper.watch(stop, outcomes.append))
    try:
        await asyncio.sleep(1.2)  # two clean checks first: nothing happens
        assert outcomes == [] and errors == []
        damage(damaged / "token_vectors.npy", "truncate")  # what killed the bot with SIGBUS
        damage(damaged / "passage_vectors.npy", "nan")
        answered = 0
        async with asyncio.timeout(240):
            while not outcomes:  # the bot keeps answering from the build it holds in memory
                answered += bool((await asyncio.to_thread(served.search, QUESTION)).hits)
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(watch, 60)
    outcome = outcomes[0]
    assert outcome.ok and outcome.swapped and answered >= 1
    fresh = live_build(settings)
    assert fresh != damaged and keeper.searcher is not served and keeper.searcher.data.path == fresh
    verify_build(fresh)
    assert keeper.searcher.search(QUESTION).hits
    assert len(errors) == 1 and "the live index was damaged on disk" in errors[0]
    assert ".npy does not match its checksum" in errors[0]
