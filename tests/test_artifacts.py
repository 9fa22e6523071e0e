"""Search artifacts (FAISS indexes, BM25, vocabulary) are saved with each build and loaded by
readers instead of being rebuilt; damaged or mismatched ones are rebuilt in the reader."""

from __future__ import annotations

import json
import logging
import os

import numpy as np

from citebot import engine
from embeddings.artifacts import MANIFEST, keyword_texts, load_artifacts
from embeddings.index import current_build
from embeddings.lexical import LexicalIndex
from embeddings.vector_index import index_kind


def test_a_build_saves_its_artifacts_and_a_searcher_loads_them(settings, encoder, searcher):
    build = current_build(settings.path(settings.index.dir)).resolve()
    files = json.loads((build / MANIFEST).read_text())["files"]
    assert {"passage_vectors.faiss", "sentence_vectors.faiss", "vocabulary.json"} <= set(files)
    assert any(name.startswith("bm25/") for name in files)
    data = engine.open_index(settings)
    saved = load_artifacts(build, exact_below=100_000, rows=(len(data.passages), len(data.sentences)))
    assert saved.passage_index.ntotal == len(data.passages) and index_kind(saved.passage_index) == "flat"
    assert saved.sentence_index.ntotal == len(data.sentences)
    assert saved.lexical.size == len(data.passages)
    fresh = LexicalIndex(keyword_texts(data.documents, data.passages))  # 002 with its plain wording
    query = "Taliban delegation visit to Moscow"
    assert np.allclose(saved.lexical.scores(query), fresh.scores(query))
    assert saved.vocabulary.counts == searcher.vocabulary.counts
    loaded = engine.make_searcher(settings, encoder, data)
    assert loaded.passage_index is not None and loaded.lexical.size == len(data.passages)
    for question in ("When did Russia recognise the Taliban government?", "talibn embassy in moscow"):
        ours = [(h.doc_id, h.start) for h in loaded.search(question, 5).hits]
        theirs = [(h.doc_id, h.start) for h in searcher.search(question, 5).hits]
        assert ours == theirs


def test_damaged_or_mismatched_artifacts_are_rebuilt_in_the_reader(private_index_settings, encoder, caplog):
    settings = private_index_settings()
    build = current_build(settings.path(settings.index.dir)).resolve()
    data = engine.open_index(settings)
    rows = (len(data.passages), len(data.sentences))
    target = build / "passage_vectors.faiss"
    os.chmod(target, 0o644)
    with open(target, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff" * 16)
    with caplog.at_level(logging.WARNING, logger="embeddings.artifacts"):
        saved = load_artifacts(build, exact_below=100_000, rows=rows)
    assert saved.passage_index is None and saved.sentence_index is not None
    assert "damaged" in caplog.text and "passage_vectors.faiss" in caplog.text
    # a reader that wants approximate search does not take the saved exact index
    assert load_artifacts(build, exact_below=10, rows=rows).sentence_index is None
    searcher = engine.make_searcher(settings, encoder, data)
    assert searcher.search("Russia and the Taliban", 3).hits
