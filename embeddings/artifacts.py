"""What the searcher would otherwise compute in every process, computed once per build and saved
with it: the FAISS indexes of passages and sentences, the BM25 index and the corpus vocabulary.

The builder calls :func:`save_artifacts` on the build folder before its manifest is written;
readers (every bot replica) call :func:`load_artifacts` and memory-map them instead of rebuilding
them at start-up (the IVF build alone is 34 s at 1M passages, docs/scaling.md). Each file's
SHA-256 is in ``artifacts.json``; a file that does not match, or an index of another kind than
the reader's ``retrieval.exact_search_below`` asks for, is not used: the reader builds that part
itself and logs why.

Layout inside ``builds/<id>/``::

    artifacts.json            format, exact_below, {file: sha256}
    passage_vectors.faiss, sentence_vectors.faiss
    bm25/                     bm25s's own files (memory-mapped)
    vocabulary.json           word counts, document frequencies, stems
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .index import _write_json  # fsynced, as every file of a build
from .lexical import LexicalIndex, Vocabulary, with_plain_wording, word_set
from .vector_index import index_kind, load_vector_index, make_vector_index, save_vector_index

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "artifacts.json"
VECTOR_FILES = {"passage_vectors": "passage_vectors.faiss", "sentence_vectors": "sentence_vectors.faiss"}
BM25_DIR = "bm25"
VOCABULARY = "vocabulary.json"


@dataclass(frozen=True)
class Artifacts:
    """What a reader could load; None for a part it must build itself."""

    lexical: LexicalIndex | None = None
    vocabulary: Vocabulary | None = None
    passage_index: Any = None
    sentence_index: Any = None


def passage_texts(documents: Sequence[Any], passages: np.ndarray) -> list[str]:
    """Each passage's text, from the document records and the passage table."""
    return [documents[int(row["doc"])].text[int(row["start"]) : int(row["end"])] for row in passages]


def keyword_texts(documents: Sequence[Any], passages: np.ndarray) -> list[str]:
    """What the keyword index and the word list read of each passage: its text and the plain
    English of its document's reworded phrases (lexical.with_plain_wording)."""
    return [
        with_plain_wording(text, documents[int(row["doc"])].plain_wording)
        for text, row in zip(passage_texts(documents, passages), passages, strict=True)
    ]


def save_artifacts(folder: Path, build: dict[str, Any], *, exact_below: int) -> None:
    """Write the artifacts of ``build`` (the builder's dict: documents, passages, vectors) into
    ``folder``, with their checksums in ``artifacts.json``."""
    folder = Path(folder)
    texts = keyword_texts(build["documents"], build["passages"])
    for name, filename in VECTOR_FILES.items():
        save_vector_index(make_vector_index(build[name], exact_below), folder / filename)
    LexicalIndex(texts).save(folder / BM25_DIR)
    vocabulary = Vocabulary.build(texts)
    _write_json(
        folder / VOCABULARY,
        {
            "counts": vocabulary.counts,
            "document_frequency": vocabulary.document_frequency,
            "stems": sorted(vocabulary.stems),
        },
    )
    bm25 = [f"{BM25_DIR}/{p.name}" for p in sorted((folder / BM25_DIR).iterdir())]
    files = [*VECTOR_FILES.values(), VOCABULARY, *bm25]
    _write_json(
        folder / MANIFEST,
        {"format": FORMAT, "exact_below": exact_below, "files": {name: _sha256(folder / name) for name in files}},
    )


def load_artifacts(
    folder: Path, *, exact_below: int, rows: tuple[int, int], known_words: Iterable[str] = ()
) -> Artifacts:
    """The artifacts saved in build ``folder`` that can be used: checksums right, passage and
    sentence counts ``rows`` right, index kind the one ``exact_below`` asks for. Never raises."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files: dict[str, str] = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        log.info("no saved search artifacts in %s: building them in this process", folder)
        return Artifacts()
    if manifest.get("format") != FORMAT:
        log.warning(
            "search artifacts in %s have format %r: building them in this process", folder, manifest.get("format")
        )
        return Artifacts()
    damaged = [name for name, digest in files.items() if not _matches(folder / name, digest)]
    if damaged:
        log.warning("search artifacts damaged in %s (%s): building them in this process", folder, ", ".join(damaged))
    parts: dict[str, Any] = {}
    for filename, field, count in zip(VECTOR_FILES.values(), ("passage_index", "sentence_index"), rows, strict=True):
        if filename in damaged or filename not in files:
            continue
        try:
            index = load_vector_index(folder / filename, mmap=True)
        except RuntimeError as exc:
            log.warning("cannot load %s (%s): building it in this process", folder / filename, exc)
            continue
        wanted = "flat" if count < exact_below or count == 0 else "ivf"
        if index.ntotal != count or index_kind(index) != wanted:
            log.info(
                "%s is a %s index of %d rows, this reader wants %s over %d: building it",
                filename,
                index_kind(index),
                index.ntotal,
                wanted,
                count,
            )
            continue
        parts[field] = index
    bm25_files = [name for name in files if name.startswith(f"{BM25_DIR}/")]
    if bm25_files and not any(name in damaged for name in bm25_files):
        try:
            lexical = LexicalIndex.load(folder / BM25_DIR)
            if lexical.size == rows[0]:
                parts["lexical"] = lexical
        except (OSError, ValueError, KeyError) as exc:
            log.warning("cannot load the BM25 index of %s (%s): building it in this process", folder, exc)
    if VOCABULARY in files and VOCABULARY not in damaged:
        try:
            data = json.loads((folder / VOCABULARY).read_text())
            parts["vocabulary"] = Vocabulary(
                dict(data["counts"]), dict(data["document_frequency"]), frozenset(), frozenset(data["stems"])
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("cannot load the vocabulary of %s (%s): building it in this process", folder, exc)
    if "vocabulary" in parts:
        parts["vocabulary"] = replace(parts["vocabulary"], known=word_set(known_words))
    return Artifacts(**parts)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _matches(path: Path, digest: str) -> bool:
    try:
        return _sha256(path) == digest
    except OSError:
        return False
