"""The on-disk index: build it from the seeds (incrementally), save it atomically, load and check it.

Layout under the index dir::

    current -> builds/<build id>     a symlink, swapped atomically when a build completes
    builds/<build id>/manifest.json  format, model, chunking, per-document fingerprints, counts
    builds/<build id>/documents.json cleaned text and citation of every document
    builds/<build id>/passages.npy   (doc, start, end, first, last) per passage
    builds/<build id>/sentences.npy  (doc, start, end) per sentence
    builds/<build id>/passage_vectors.npy, sentence_vectors.npy   float32, L2-normalised
    builds/<build id>/token_vectors.npy, token_lengths.npy        each passage's token vectors
                                      (float16, back to back) for MaxSim re-scoring; empty when
                                      the encoder gives none
    builds/<build id>/small_talk_vectors.npy   the small-talk probes (coverage.SMALL_TALK) by
                                      the build's model: a starting searcher makes no model call
    build.lock                        serialises builders (the watcher, /reload, the CLI)

A build writes a new folder and only then moves ``current``: a crash leaves the previous index as
it was. A published build is never written again: its files and folder are made read-only, and
every rebuild writes a new folder.

Integrity: the manifest holds a checksum (xxh3-128) of every other file, verified whenever a build
is loaded (:func:`load_index`) and by :func:`verify_build` (the bot's periodic check); vectors that
are not finite or not unit length are refused. A build up to ``mmap_above_bytes`` is read into
memory, so nothing done to its files afterwards can reach the process; a larger one is
memory-mapped (shared page cache, little resident memory), and then a file truncated under a
running process (``rsync --inplace``, ``cp`` over it) ends that process with SIGBUS — see the
README's "Do not edit var/index".
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import io
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import xxhash

from .chunking import CHUNKING_VERSION, make_passages, split_sentences
from .cleaning import clean_blocks, clean_document
from .documents import RawDocument, doc_key, read_documents, scan_seeds
from .lexical import plain_reading
from .sources import Citation, SourceCatalog

log = logging.getLogger(__name__)

FORMAT_VERSION = 4  # 3: checksums of every file in the manifest; 4: small_talk_vectors.npy
PASSAGE_DTYPE = np.dtype([("doc", "<i4"), ("start", "<i4"), ("end", "<i4"), ("first", "<i4"), ("last", "<i4")])
SENTENCE_DTYPE = np.dtype([("doc", "<i4"), ("start", "<i4"), ("end", "<i4")])
ARRAY_FILES = (
    "passages.npy",
    "sentences.npy",
    "passage_vectors.npy",
    "sentence_vectors.npy",
    "token_vectors.npy",
    "token_lengths.npy",
    "small_talk_vectors.npy",
)
CHECKED_FILES = (*ARRAY_FILES, "documents.json")  # every file but the manifest, which holds their checksums
CHECKSUM = "xxh3_128"
MMAP_ABOVE_BYTES = 512 * 2**20  # builds up to this size are read into memory (index.mmap_above_mb)


class IndexError_(Exception):
    """The index cannot be used; ``citebot index`` rebuilds it. (Underscore: not the builtin.)"""


class IndexMissing(IndexError_):
    pass


class IndexCorrupt(IndexError_):
    pass


class IndexMismatch(IndexError_):
    """Built with another model, chunking or format version."""


class TextEncoder(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def dimension(self) -> int: ...

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray: ...

    # optional: encoders that have it also store token vectors (see model.Encoder.encode_with_tokens)


@dataclass(frozen=True)
class BuildParams:
    """Everything that decides the vectors: a change of any of these means re-embedding."""

    model: str
    target_chars: int
    max_chars: int
    title_prefix: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "target_chars": self.target_chars,
            "max_chars": self.max_chars,
            "title_prefix": self.title_prefix,
            "chunking": CHUNKING_VERSION,
        }


@dataclass
class DocumentRecord:
    doc_id: str
    key: str
    sha256: str
    fingerprint: str
    citation: Citation
    text: str
    headings: list[tuple[int, str]] = field(default_factory=list)  # (offset, heading)
    # the sources file's plain English for phrases of a machine-reworded text: what the model and
    # the keyword index read besides (lexical.plain_reading, with_plain_wording); never shown
    plain_wording: tuple[tuple[str, str], ...] = ()

    def heading_at(self, offset: int) -> str | None:
        current = None
        for start, heading in self.headings:
            if start > offset:
                break
            current = heading
        return current

    def to_json(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "key": self.key,
            "sha256": self.sha256,
            "fingerprint": self.fingerprint,
            "citation": self.citation.as_dict(),
            "text": self.text,
            "headings": self.headings,
            "plain_wording": [list(pair) for pair in self.plain_wording],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DocumentRecord:
        citation = data["citation"]
        return cls(
            data["doc_id"],
            data["key"],
            data["sha256"],
            data["fingerprint"],
            Citation(
                citation["title"], tuple(citation["authors"]), citation["publisher"], citation["date"], citation["url"]
            ),
            data["text"],
            [(int(o), str(h)) for o, h in data.get("headings", [])],
            tuple((str(phrase), str(plain)) for phrase, plain in data.get("plain_wording", [])),
        )


@dataclass
class IndexData:
    """A loaded index: documents, passage and sentence tables, and their vectors."""

    path: Path
    manifest: dict[str, Any]
    documents: list[DocumentRecord]
    passages: np.ndarray
    sentences: np.ndarray
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray
    token_vectors: np.ndarray  # (tokens, dim) float16 as stored (a Searcher may make it float32); empty when not stored
    token_lengths: np.ndarray  # tokens per passage; empty when not stored
    small_talk_vectors: np.ndarray  # (probes, dim) float32: coverage.SMALL_TALK encoded by the build's model

    @functools.cached_property
    def token_starts(self) -> np.ndarray:
        """Where each passage's token vectors begin in ``token_vectors`` (empty when not stored)."""
        lengths = np.asarray(self.token_lengths, dtype=np.intp)
        return np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.intp) if len(lengths) else lengths

    def passage_counts(self) -> np.ndarray:
        """Passages per document, in document order."""
        return np.bincount(np.asarray(self.passages["doc"]), minlength=len(self.documents))

    def passage_text(self, i: int) -> str:
        row = self.passages[i]
        return self.documents[row["doc"]].text[row["start"] : row["end"]]

    def passage_reading(self, i: int) -> str:
        """The passage as the model reads it: in plain English where its document is reworded."""
        return plain_reading(self.passage_text(i), self.documents[self.passages[i]["doc"]].plain_wording)

    def sentence_text(self, i: int) -> str:
        row = self.sentences[i]
        return self.documents[row["doc"]].text[row["start"] : row["end"]]

    def document_by_key(self, key: str) -> DocumentRecord | None:
        return next((d for d in self.documents if d.key == key), None)


@dataclass
class BuildReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    reembedded: list[str] = field(default_factory=list)  # unchanged, but embedded again (force, new format)
    warnings: list[str] = field(default_factory=list)
    passages: int = 0
    embedded: int = 0
    seconds: float = 0.0
    built: bool = False
    path: Path | None = None

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "built": self.built,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": len(self.unchanged),
            "reembedded": len(self.reembedded),
            "passages": self.passages,
            "embedded": self.embedded,
            "seconds": round(self.seconds, 2),
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class SeedState:
    """What the seeds folder holds now: files by id with their fingerprints."""

    fingerprints: dict[str, str]
    warnings: list[str]


# ----------------------------------------------------------------------------------------- paths


def current_build(index_dir: Path) -> Path:
    return index_dir / "current"


def _fingerprint(
    sha256: str, citation: Citation, params: BuildParams, plain_wording: tuple[tuple[str, str], ...] = ()
) -> str:
    described = [sha256, citation.as_dict(), params.as_dict(), FORMAT_VERSION]
    if plain_wording:  # what the model reads changes with it (a document without keeps its print)
        described.append([list(pair) for pair in plain_wording])
    payload = json.dumps(described, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------- loading


def load_index(
    index_dir: Path, params: BuildParams | None = None, *, mmap_above_bytes: int = MMAP_ABOVE_BYTES
) -> IndexData:
    """Load and verify the current build. Raises IndexMissing / IndexCorrupt / IndexMismatch.

    Every file's checksum is checked against the manifest; a build of at most ``mmap_above_bytes``
    is then held in memory, a larger one memory-mapped (see the module notes)."""
    path = current_build(index_dir)
    if not path.exists():
        raise IndexMissing(f"no index at {index_dir}: run `citebot index`")
    build = path.resolve()
    manifest = _read_manifest(build)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(
            f"index format {manifest.get('format_version')} is not {FORMAT_VERSION}: run `citebot index`"
        )
    if params is not None and manifest.get("params") != params.as_dict():
        raise IndexMismatch(
            f"index was built with {manifest.get('params')}, config asks for {params.as_dict()}: run `citebot index`"
        )
    checksums = _checksums(manifest, build)
    try:
        in_memory = sum((build / name).stat().st_size for name in CHECKED_FILES) <= mmap_above_bytes
        arrays = {}
        for name in ARRAY_FILES:
            if in_memory:
                arrays[name] = _array_from_bytes(_verified_bytes(build / name, checksums[name]))
            else:
                _verify_file(build / name, checksums[name])
                arrays[name] = np.load(build / name, mmap_mode="r", allow_pickle=False)
        documents_json = _verified_bytes(build / "documents.json", checksums["documents.json"])
        documents = [DocumentRecord.from_json(d) for d in json.loads(documents_json.tobytes())]
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise IndexCorrupt(
            f"index files damaged at {build} ({type(exc).__name__}: {exc}): run `citebot index --force`"
        ) from None
    data = IndexData(
        build,
        manifest,
        documents,
        arrays["passages.npy"],
        arrays["sentences.npy"],
        arrays["passage_vectors.npy"],
        arrays["sentence_vectors.npy"],
        arrays["token_vectors.npy"],
        arrays["token_lengths.npy"],
        arrays["small_talk_vectors.npy"],
    )
    _validate(data)
    return data


def _validate(data: IndexData) -> None:
    m = data.manifest
    checks = [
        (data.passages.dtype == PASSAGE_DTYPE and data.sentences.dtype == SENTENCE_DTYPE, "table layout"),
        (len(data.passages) == m.get("passages") == len(data.passage_vectors), "passage count"),
        (len(data.sentences) == m.get("sentences") == len(data.sentence_vectors), "sentence count"),
        (data.passage_vectors.ndim == 2 and data.passage_vectors.shape[1] == m.get("dimension"), "vector size"),
        (data.sentence_vectors.ndim == 2 and data.sentence_vectors.shape[1] == m.get("dimension"), "vector size"),
        (len(data.documents) == len(m.get("documents", {})), "document count"),
        (len(data.token_lengths) in (0, len(data.passages)), "token table"),
        (int(np.sum(data.token_lengths)) == len(data.token_vectors), "token count"),
        (data.small_talk_vectors.ndim == 2 and data.small_talk_vectors.shape[1] == m.get("dimension"), "vector size"),
    ]
    for ok, what in checks:
        if not ok:
            raise IndexCorrupt(f"index at {data.path} is inconsistent ({what}): run `citebot index --force`")
    if len(data.passages) and (
        int(data.passages["doc"].max()) >= len(data.documents)
        or int(data.passages["last"].max()) >= len(data.sentences)
    ):
        raise IndexCorrupt(f"index at {data.path} is inconsistent (references): run `citebot index --force`")
    problem = (
        vector_problem(data.passage_vectors, "passage")
        or vector_problem(data.sentence_vectors, "sentence")
        or vector_problem(data.token_vectors, "token", unit=False)
        or vector_problem(data.small_talk_vectors, "small-talk")
    )
    if problem:
        raise IndexCorrupt(f"index at {data.path} is damaged ({problem}): run `citebot index --force`")


def vector_problem(vectors: np.ndarray, what: str, *, unit: bool = True) -> str | None:
    """Why these vectors cannot be searched (not finite; not unit length when ``unit``), or None."""
    if not len(vectors):
        return None
    if not _all_finite(vectors):
        return f"{what} vectors that are not finite numbers (NaN or infinity)"
    if unit:
        norms = np.linalg.norm(np.asarray(vectors, dtype=np.float32), axis=1)
        if not np.allclose(norms, 1.0, atol=1e-2):
            return f"{what} vectors that are not unit length"
    return None


def _all_finite(vectors: np.ndarray) -> bool:
    if vectors.dtype == np.float16:  # exponent bits all set = NaN or infinity; 4x faster than isfinite on float16
        return not bool(((np.asarray(vectors).view(np.uint16) & 0x7C00) == 0x7C00).any())
    return bool(np.isfinite(vectors).all())


# ---------------------------------------------------------------------------------- integrity


def file_checksum(path: Path) -> str:
    """``xxh3_128:<hex>`` of a file, read in blocks (several GB/s: a check costs little next to a load)."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return f"{CHECKSUM}:{digest.hexdigest()}"


def verify_build(build: Path) -> None:
    """Check every file of a build folder against its manifest; raise IndexCorrupt naming the first
    damaged file. Reads the files, not the memory of a loaded index: this is what the next load
    (or a restart) would meet."""
    checksums = _checksums(_read_manifest(build), build)
    for name in CHECKED_FILES:
        try:
            _verify_file(build / name, checksums[name])
        except OSError as exc:
            raise IndexCorrupt(f"index file {build / name} unreadable ({exc.strerror})") from None


def _read_manifest(build: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((build / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"index manifest unreadable at {build} ({exc}): run `citebot index --force`") from None
    if not isinstance(manifest, dict):
        raise IndexCorrupt(f"index manifest at {build} is not an object: run `citebot index --force`")
    return manifest


def _checksums(manifest: dict[str, Any], build: Path) -> dict[str, str]:
    checksums = manifest.get("checksums")
    if not isinstance(checksums, dict) or any(not isinstance(checksums.get(n), str) for n in CHECKED_FILES):
        raise IndexCorrupt(f"index manifest at {build} has no checksum for every file: run `citebot index --force`")
    return checksums


def _damaged(path: Path) -> IndexCorrupt:
    return IndexCorrupt(
        f"index file {path} does not match its checksum (changed after the build was "
        "published): run `citebot index --force`"
    )


def _verify_file(path: Path, expected: str) -> None:
    if file_checksum(path) != expected:
        raise _damaged(path)


def _verified_bytes(path: Path, expected: str) -> np.ndarray:
    """The file's bytes, in a numpy buffer (aligned, so arrays over it are fast), checked against its checksum."""
    with open(path, "rb") as handle:
        data = np.empty(os.fstat(handle.fileno()).st_size, dtype=np.uint8)
        if handle.readinto(data.data) != len(data):
            raise EOFError(f"{path} changed size while it was read")
    if f"{CHECKSUM}:{xxhash.xxh3_128_hexdigest(data.data)}" != expected:
        raise _damaged(path)
    data.flags.writeable = False
    return data


def _array_from_bytes(data: np.ndarray) -> np.ndarray:
    """A .npy file's array, read-only, over ``data`` (the file's bytes; no copy)."""
    buffer = io.BytesIO(data[:4096].tobytes())  # the header; .npy headers are padded to 64 bytes, well within this
    version = np.lib.format.read_magic(buffer)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(buffer)
    if dtype.hasobject:
        raise ValueError("an array of Python objects")
    count = int(np.prod(shape, dtype=np.int64))
    array = np.frombuffer(data, dtype=dtype, count=count, offset=buffer.tell())
    return array.reshape(shape, order="F" if fortran_order else "C")


def _seal(build: Path) -> None:
    """A published build is read-only: no process of ours writes into it again."""
    for name in os.listdir(build):
        os.chmod(build / name, 0o444)
    os.chmod(build, 0o555)


def _unseal(build: Path) -> None:
    """Let a build folder be deleted (its entries are removed through the folder's write bit)."""
    with contextlib.suppress(OSError):
        os.chmod(build, 0o755)


# -------------------------------------------------------------------------------------- state


def seed_state(
    seeds_dir: Path, extensions: tuple[str, ...], max_bytes: int, catalog: SourceCatalog, params: BuildParams
) -> tuple[SeedState, list[RawDocument]]:
    """Read the seeds folder: usable documents and their fingerprints."""
    warnings: list[str] = []
    documents = read_documents(scan_seeds(seeds_dir, extensions, max_bytes, warnings), warnings)
    fingerprints = {
        d.doc_id: _fingerprint(d.sha256, catalog.citation(d.doc_id, d.text), params, catalog.plain_wording(d.doc_id))
        for d in documents
    }
    return SeedState(fingerprints, warnings), documents


def compare(old: dict[str, str], new: dict[str, str]) -> BuildReport:
    """What changed between two {doc_id: fingerprint} maps."""
    report = BuildReport()
    for doc_id, fingerprint in sorted(new.items()):
        if doc_id not in old:
            report.added.append(doc_id)
        elif old[doc_id] != fingerprint:
            report.updated.append(doc_id)
        else:
            report.unchanged.append(doc_id)
    report.removed = sorted(set(old) - set(new))
    return report


def indexed_manifest(index_dir: Path, params: BuildParams) -> dict[str, Any] | None:
    """The manifest of the current build, or None when it is missing or unusable."""
    try:
        manifest = json.loads((current_build(index_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("format_version") != FORMAT_VERSION or manifest.get("params") != params.as_dict():
        return None
    return manifest


def indexed_fingerprints(index_dir: Path, params: BuildParams) -> dict[str, str] | None:
    """The fingerprints of the current build, or None when it is missing or unusable."""
    manifest = indexed_manifest(index_dir, params)
    return None if manifest is None else manifest.get("documents")


# ------------------------------------------------------------------------------------- building


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / "build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_index(
    *,
    seeds_dir: Path,
    index_dir: Path,
    catalog: SourceCatalog,
    encoder: TextEncoder,
    params: BuildParams,
    extensions: tuple[str, ...] = (".txt", ".md", ".pdf", ".html", ".htm"),
    max_bytes: int = 20_000_000,
    force: bool = False,
    keep_builds: int = 2,
    progress: Callable[[int, int], None] | None = None,
    before_swap: Callable[[Path], None] | None = None,
    artifacts: Callable[[Path, dict[str, Any]], None] | None = None,
) -> BuildReport:
    """Bring the index up to date with the seeds, re-embedding only what changed.

    Returns what changed. Nothing is written when nothing changed (unless ``force``).
    ``before_swap`` is a test hook called with the finished build folder before it goes live.
    ``artifacts(folder, build)`` writes what readers load instead of computing it (e.g.
    :func:`embeddings.artifacts.save_artifacts`) into the build folder before its manifest.
    """
    started = time.perf_counter()
    with build_lock(index_dir):
        state, raw_documents = seed_state(seeds_dir, extensions, max_bytes, catalog, params)
        try:
            previous: IndexData | None = load_index(index_dir, params)
        except IndexError_ as exc:
            if not isinstance(exc, IndexMissing):
                log.warning("previous index unusable, building from scratch: %s", exc)
            previous = None
        old = {} if previous is None else previous.manifest["documents"]
        report = compare(old, state.fingerprints)
        report.warnings = state.warnings
        if previous is not None and not report.changed and not force:
            report.passages = len(previous.passages)
            report.seconds = time.perf_counter() - started
            return report
        # an index without token vectors, rebuilt by an encoder that gives them, is re-embedded whole
        tokens_missing = previous is not None and _gives_tokens(encoder) and not len(previous.token_lengths)
        reusable = (
            {}
            if force or previous is None or tokens_missing
            else {d.doc_id: i for i, d in enumerate(previous.documents) if d.doc_id in report.unchanged}
        )
        if not reusable:  # nothing is kept: every unchanged document is embedded again
            report.reembedded, report.unchanged = report.unchanged, []
        build = _assemble(raw_documents, state, catalog, encoder, params, previous, reusable, progress, report)
        build["calibration"] = corpus_calibration(encoder, build)
        build["small_talk_vectors"] = small_talk_vectors(encoder)
        path = _write_build(index_dir, build, params, encoder.dimension, artifacts)
        if before_swap is not None:
            before_swap(path)
        _swap_current(index_dir, path)
        _prune_builds(index_dir, keep_builds)
        report.built, report.path = True, path
        report.passages = len(build["passages"])
        report.seconds = time.perf_counter() - started
        return report


def _assemble(raw_documents, state, catalog, encoder, params, previous, reusable, progress, report):
    documents: list[DocumentRecord] = []
    passage_rows: list[tuple[int, ...]] = []  # (doc, start, end, first sentence, last sentence)
    sentence_rows: list[tuple[int, ...]] = []  # (doc, start, end)
    passage_vectors: list[np.ndarray | None] = []  # None: to embed (slots filled below)
    sentence_vectors: list[np.ndarray | None] = []
    passage_tokens: list[list[np.ndarray] | None] = []
    # (slot, passage texts to embed, passages as shown, sentence texts)
    to_embed: list[tuple[int, list[str], list[str], list[str]]] = []
    for raw in raw_documents:
        d = len(documents)
        vec_p: np.ndarray | None
        vec_s: np.ndarray | None
        tokens: list[np.ndarray] | None
        if raw.doc_id in reusable:
            record, rows_p, rows_s, vec_p, vec_s, tokens = _reuse(previous, reusable[raw.doc_id], len(sentence_rows))
            documents.append(record)
        else:
            citation = catalog.citation(raw.doc_id, raw.text)
            clean = (
                clean_blocks(raw.blocks, title=citation.title)
                if raw.blocks is not None
                else clean_document(raw.text, title=citation.title)
            )
            sentences = split_sentences(clean, params.max_chars)
            spans = make_passages(clean, sentences, params.target_chars, params.max_chars)
            headings = [(b.start, clean.text[b.start : b.end]) for b in clean.blocks if b.kind == "heading"]
            record = DocumentRecord(
                raw.doc_id,
                doc_key(raw.doc_id),
                raw.sha256,
                state.fingerprints[raw.doc_id],
                citation,
                clean.text,
                headings,
                catalog.plain_wording(raw.doc_id),
            )
            documents.append(record)
            base = len(sentence_rows)
            rows_s = [(d, s.start, s.end) for s in sentences]
            rows_p = [(d, p.start, p.end, base + p.first, base + p.last) for p in spans]
            # the model reads a reworded document in plain English (the sources file's plain_wording)
            plain = record.plain_wording
            shown_p = [plain_reading(clean.text[p.start : p.end], plain) for p in spans]
            texts_p = [embedding_text(record, text, p.start, params) for text, p in zip(shown_p, spans, strict=True)]
            texts_s = [plain_reading(clean.text[s.start : s.end], plain) for s in sentences]
            to_embed.append((len(passage_vectors), texts_p, shown_p, texts_s))
            vec_p = vec_s = tokens = None
        passage_rows.extend((d, *row[1:]) for row in rows_p)
        sentence_rows.extend((d, *row[1:]) for row in rows_s)
        passage_vectors.append(vec_p)
        sentence_vectors.append(vec_s)
        passage_tokens.append(tokens)
    with_tokens = _gives_tokens(encoder)
    total = sum(len(p) + len(s) for _, p, _, s in to_embed)
    done = 0
    if progress is not None:
        progress(0, total)  # before the first batch, so that a progress bar's clock starts now
    for slot, texts_p, shown_p, texts_s in to_embed:
        vectors = encoder.encode(texts_p + texts_s)
        passage_vectors[slot] = vectors[: len(texts_p)]
        sentence_vectors[slot] = vectors[len(texts_p) :]
        if with_tokens:
            # MaxSim compares the question with the passage as shown, without the title header
            passage_tokens[slot] = [tokens for _, tokens in encoder.encode_with_tokens(shown_p)]
        done += len(texts_p) + len(texts_s)
        if progress is not None:
            progress(done, total)
    report.embedded = total
    dim = encoder.dimension
    return {
        "documents": documents,
        "passages": np.array(passage_rows, dtype=PASSAGE_DTYPE),
        "sentences": np.array(sentence_rows, dtype=SENTENCE_DTYPE),
        "passage_vectors": _stack(passage_vectors, dim),
        "sentence_vectors": _stack(sentence_vectors, dim),
        **_token_arrays(passage_tokens if with_tokens else [], dim),
    }


def corpus_calibration(encoder: TextEncoder, build: dict[str, Any]) -> dict[str, Any]:
    """How similar this corpus is to small talk and random text, measured once per build and
    kept in the manifest: the searcher's off-topic threshold follows the corpus as documents
    are added or removed (see coverage.calibrate)."""
    from .coverage import calibrate
    from .cues import has_content

    texts = {i: d.text for i, d in enumerate(build["documents"])}
    content = np.array(
        [has_content(texts[int(r["doc"])][int(r["start"]) : int(r["end"])]) for r in build["sentences"]], dtype=bool
    )
    return calibrate(encoder, build["passage_vectors"], build["sentence_vectors"][content]).as_dict()


def small_talk_vectors(encoder: TextEncoder) -> np.ndarray:
    """The small-talk probes by this model: stored with the build, so that a searcher starting on
    it (each process start, each swap) needs no model call for them (1.2 s of CPU)."""
    from .coverage import SMALL_TALK, encode_probes

    return encode_probes(encoder, SMALL_TALK)


def _gives_tokens(encoder: TextEncoder) -> bool:
    return callable(getattr(encoder, "encode_with_tokens", None))


def _token_arrays(per_document: list[list[np.ndarray] | None], dim: int) -> dict[str, np.ndarray]:
    flat = [tokens for document in per_document for tokens in (document or [])]
    if not flat:
        return {"token_vectors": np.zeros((0, dim), np.float16), "token_lengths": np.zeros(0, np.int32)}
    return {
        "token_vectors": np.vstack(flat).astype(np.float16),
        "token_lengths": np.array([len(t) for t in flat], dtype=np.int32),
    }


def _stack(parts: list[np.ndarray | None], dim: int) -> np.ndarray:
    kept = [p for p in parts if p is not None and len(p)]
    return np.ascontiguousarray(np.vstack(kept), dtype=np.float32) if kept else np.zeros((0, dim), np.float32)


def _reuse(
    previous: IndexData, doc_index: int, sentence_base: int
) -> tuple[
    DocumentRecord,
    list[tuple[int, int, int, int, int]],
    list[tuple[int, int, int]],
    np.ndarray,
    np.ndarray,
    list[np.ndarray] | None,
]:
    """Copy one unchanged document's rows and vectors out of the previous build."""
    passages = np.asarray(previous.passages)
    sentences = np.asarray(previous.sentences)
    p_mask = passages["doc"] == doc_index
    s_mask = sentences["doc"] == doc_index
    old_base = int(np.argmax(s_mask)) if s_mask.any() else 0
    rows_p = [
        (
            doc_index,
            int(r["start"]),
            int(r["end"]),
            sentence_base + int(r["first"]) - old_base,
            sentence_base + int(r["last"]) - old_base,
        )
        for r in passages[p_mask]
    ]
    rows_s = [(doc_index, int(r["start"]), int(r["end"])) for r in sentences[s_mask]]
    tokens = None
    if len(previous.token_lengths):
        starts, lengths = previous.token_starts, previous.token_lengths
        tokens = [
            np.asarray(previous.token_vectors[starts[i] : starts[i] + lengths[i]]) for i in np.flatnonzero(p_mask)
        ]
    return (
        previous.documents[doc_index],
        rows_p,
        rows_s,
        np.asarray(previous.passage_vectors[p_mask]),
        np.asarray(previous.sentence_vectors[s_mask]),
        tokens,
    )


def embedding_text(record: DocumentRecord, passage: str, offset: int, params: BuildParams) -> str:
    """What is embedded for a passage: the passage, optionally headed by its document title.

    The title lets "the piece on Russia's recognition gamble" find the right document; the
    section heading adds the local topic.
    """
    if not params.title_prefix:
        return passage
    heading = record.heading_at(offset)
    header = record.citation.title.strip("[]")
    if heading:
        header = f"{header} — {heading}"
    return f"{header}: {passage}"


def _write_build(
    index_dir: Path,
    build: dict[str, Any],
    params: BuildParams,
    dimension: int,
    artifacts: Callable[[Path, dict[str, Any]], None] | None = None,
) -> Path:
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    build_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    tmp = builds / f".{build_id}.tmp"
    final = builds / build_id
    for what in ("passage", "sentence", "token", "small_talk"):
        problem = vector_problem(build[f"{what}_vectors"], what, unit=what != "token")
        if problem:
            raise ValueError(f"the encoder gave {problem}: nothing was published")
    try:
        tmp.mkdir()
        for name in ARRAY_FILES:
            with open(tmp / name, "wb") as handle:
                np.save(handle, build[name.removesuffix(".npy")], allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
        documents = build["documents"]
        _write_json(tmp / "documents.json", [d.to_json() for d in documents])
        if artifacts is not None:
            artifacts(tmp, build)
        manifest = {
            "format_version": FORMAT_VERSION,
            "params": params.as_dict(),
            "model": params.model,
            "dimension": dimension,
            "chunking": {"target_chars": params.target_chars, "max_chars": params.max_chars},
            "documents": {d.doc_id: d.fingerprint for d in documents},
            "sha256": {d.doc_id: d.sha256 for d in documents},
            "passages": len(build["passages"]),
            "sentences": len(build["sentences"]),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "calibration": build.get("calibration"),
            "checksums": {name: file_checksum(tmp / name) for name in CHECKED_FILES},
        }
        _write_json(tmp / "manifest.json", manifest)  # written last: its presence marks a complete build
        os.replace(tmp, final)  # a new name: a published folder is never replaced or written into
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _seal(final)
    return final


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())


def _swap_current(index_dir: Path, build: Path) -> None:
    link = current_build(index_dir)
    tmp_link = index_dir / f".current.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    tmp_link.symlink_to(build.relative_to(index_dir))
    os.replace(tmp_link, link)  # rename(2) over the old link: readers see old or new, never neither


def _prune_builds(index_dir: Path, keep: int) -> None:
    builds = index_dir / "builds"
    live = current_build(index_dir).resolve()
    finished = sorted((p for p in builds.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)
    for old in finished[:-keep]:
        if old.resolve() != live:
            _unseal(old)
            shutil.rmtree(old, ignore_errors=True)
    for stale_tmp in builds.glob(".*.tmp"):
        if time.time() - stale_tmp.stat().st_mtime > 3600:  # a crashed build's leftovers
            _unseal(stale_tmp)
            shutil.rmtree(stale_tmp, ignore_errors=True)
