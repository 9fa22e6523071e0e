"""Find the source documents in the seeds folder and read their text.

Reads ``.txt`` (UTF-8, or cp1252/latin-1 as a fallback), ``.md`` (rendered to text), ``.pdf`` (the
text layer, by layout) and ``.html`` (the main content); see :mod:`embeddings.formats`. A file that
cannot be used — unreadable, empty, binary, too large, a PDF without text, a link leading out of
the folder — is skipped with one warning; it never stops the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import formats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceFile:
    """A file of the seeds folder that may become a document."""

    doc_id: str  # path relative to the seeds folder, with forward slashes
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class RawDocument:
    doc_id: str
    path: Path
    sha256: str
    text: str
    # ("heading" | "paragraph", text) in order, for formats that mark their structure
    # (Markdown, HTML, PDF); None for plain text, whose structure the cleaning infers
    blocks: tuple[tuple[str, str], ...] | None = None


class UnusableFile(Exception):
    """Why a file of the seeds folder is skipped (the message is shown to the operator)."""


def doc_key(doc_id: str) -> str:
    """A short stable key for a document, fit for Telegram's 64-byte callback data."""
    return hashlib.sha1(doc_id.encode("utf-8")).hexdigest()[:10]


def scan_seeds(
    seeds_dir: Path, extensions: Iterable[str], max_bytes: int, warn: list[str] | None = None
) -> list[SourceFile]:
    """List the files under ``seeds_dir`` that may become documents, with their hashes, sorted by id.

    A file is a candidate when it has one of ``extensions`` and no part of its path is hidden;
    links to folders are not followed. A candidate is skipped, with one warning, when its name is
    not valid UTF-8, it is a broken link or a link loop, a link leading outside the folder, not a
    regular file, a file with a hard link outside the folder (every name it has must be inside),
    over ``max_bytes``, or has the same content as another seed (a link or a copy: the first
    regular file is kept). Nothing here raises for one bad path.
    """
    warnings = warn if warn is not None else []
    root = seeds_dir.resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"seeds folder not found: {seeds_dir}")
    wanted = {e.lower() for e in extensions}
    candidates, names_inside = _walk(seeds_dir, wanted, warnings)
    found: list[tuple[SourceFile, bool]] = []  # (file, is a link)
    for relative, path in candidates:
        try:
            found.append(_candidate(relative, path, root, max_bytes, names_inside))
        except (OSError, RuntimeError, UnusableFile) as exc:  # RuntimeError: a symlink loop (Python 3.11)
            _warn(warnings, relative, exc)
    return _unique(found, warnings)


def _walk(seeds_dir: Path, wanted: set[str], warnings: list[str]) -> tuple[list[tuple[str, Path]], Counter]:
    """Candidate files (id, path) and, for every regular file seen, how many of its names are in the folder."""
    candidates: list[tuple[str, Path]] = []
    names_inside: Counter = Counter()

    def unreadable(exc: OSError) -> None:
        _warn(warnings, printable(os.path.relpath(exc.filename or seeds_dir, seeds_dir)), exc)

    for folder, subfolders, files in os.walk(seeds_dir, onerror=unreadable):  # does not follow folder links
        here = Path(folder)
        for name in list(subfolders):
            if name.startswith(".") or not _utf8(name):
                subfolders.remove(name)
                if not name.startswith("."):
                    _warn(
                        warnings,
                        printable((here / name).relative_to(seeds_dir).as_posix()),
                        UnusableFile("its name is not valid UTF-8: rename it"),
                    )
        subfolders.sort()
        for name in sorted(files):
            path = here / name
            with contextlib.suppress(OSError):
                info = path.lstat()
                if stat.S_ISREG(info.st_mode):
                    names_inside[(info.st_dev, info.st_ino)] += 1
            relative = path.relative_to(seeds_dir).as_posix()
            if name.startswith(".") or path.suffix.lower() not in wanted:
                continue
            if not _utf8(relative):
                _warn(warnings, printable(relative), UnusableFile("its name is not valid UTF-8: rename it"))
                continue
            candidates.append((relative, path))
    return candidates, names_inside


def _candidate(relative: str, path: Path, root: Path, max_bytes: int, names_inside: Counter) -> tuple[SourceFile, bool]:
    is_link = path.is_symlink()
    if is_link:
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise UnusableFile("it is a broken link or a link loop") from None
        if not resolved.is_relative_to(root):
            raise UnusableFile("it is a link to a file outside the seeds folder")
    else:
        resolved = path
    info = resolved.stat()
    if not stat.S_ISREG(info.st_mode):
        raise UnusableFile("it is not a regular file")
    inside = names_inside[(info.st_dev, info.st_ino)]
    if info.st_nlink > inside:
        raise UnusableFile(
            f"it has {info.st_nlink} hard links and only {inside} in the seeds folder: a file "
            "that also lives elsewhere is not indexed (copy it in instead)"
        )
    if info.st_size > max_bytes:
        raise UnusableFile(f"it is {info.st_size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit")
    return SourceFile(relative, path, _sha256(resolved), info.st_size), is_link


def _unique(found: list[tuple[SourceFile, bool]], warnings: list[str]) -> list[SourceFile]:
    """One file per content: a regular file is preferred to a link, then the first name."""
    kept: dict[str, SourceFile] = {}
    for source, _ in sorted(found, key=lambda item: (item[1], item[0].doc_id)):
        first = kept.get(source.sha256)
        if first is None:
            kept[source.sha256] = source
        else:
            _warn(
                warnings,
                source.doc_id,
                UnusableFile(f"it has the same content as {first.doc_id} (a link or a copy): indexed once"),
            )
    return sorted(kept.values(), key=lambda s: s.doc_id)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes of a file name arrive as lone surrogates
        return False
    return True


def printable(name: str) -> str:
    """A file name fit for a log line or a chat message: undecodable bytes shown as ``\\xff``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def read_document(source: SourceFile) -> RawDocument:
    """Read one file's text. Raises :class:`UnusableFile` with the reason if it has none."""
    suffix = source.path.suffix.lower()
    try:
        data = source.path.read_bytes()
    except OSError as exc:
        raise UnusableFile(f"cannot be read ({exc.strerror})") from None
    blocks: tuple[tuple[str, str], ...] | None = None
    if suffix == ".pdf":
        blocks = _pdf_blocks(data)
    elif suffix in {".html", ".htm"}:
        _decode(data)  # refuses binary files
        blocks = tuple(formats.html_blocks(data))
    elif suffix in {".md", ".markdown"}:
        blocks = tuple(formats.markdown_blocks(_decode(data)))
    text = formats.blocks_text(blocks) if blocks is not None else _decode(data)
    if not text.strip():
        raise UnusableFile("it has no text")
    return RawDocument(source.doc_id, source.path, source.sha256, text, blocks)


def read_documents(sources: Iterable[SourceFile], warn: list[str] | None = None) -> list[RawDocument]:
    """Read every usable file; unusable ones add a warning and are left out."""
    warnings = warn if warn is not None else []
    documents = []
    for source in sources:
        try:
            documents.append(read_document(source))
        except UnusableFile as exc:
            _warn(warnings, source.doc_id, exc)
    return documents


def _warn(warnings: list[str], name: str, exc: Exception) -> None:
    message = f"skipped {name}: {exc}"
    log.warning(message)
    warnings.append(message)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise UnusableFile("it looks binary (it contains NUL bytes)")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = data.decode("latin-1")
    control = sum(1 for ch in text[:20000] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if control > 0.01 * min(len(text), 20000):
        raise UnusableFile("it looks binary (too many control characters)")
    return text


def _pdf_blocks(data: bytes) -> tuple[tuple[str, str], ...]:
    try:
        blocks = tuple(formats.pdf_blocks(data))
    except formats.FormatError as exc:
        raise UnusableFile(f"it is not a readable PDF ({exc})") from None
    if not blocks:
        raise UnusableFile("the PDF has no text layer (a scan?); OCR it first")
    return blocks
