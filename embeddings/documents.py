"""Find the source documents in the seeds folder and read their text.

Reads ``.txt`` (UTF-8, or cp1252/latin-1 as a fallback), ``.md`` (rendered to text), ``.pdf`` (the
text layer, by layout) and ``.html`` (the main content); see :mod:`embeddings.formats`. A file that
cannot be used — unreadable, empty, binary, too large, a PDF without text, a link leading out of
the folder — is skipped with one warning; it never stops the others.
"""

from __future__ import annotations

import hashlib
import logging
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
    """List the candidate files under ``seeds_dir`` with their hashes, sorted by id.

    Files with other extensions, hidden files, files over ``max_bytes`` and links that lead
    outside the folder are left out; each such skip (but other extensions) adds a warning.
    """
    warnings = warn if warn is not None else []
    root = seeds_dir.resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"seeds folder not found: {seeds_dir}")
    wanted = {e.lower() for e in extensions}
    found = []
    for path in sorted(seeds_dir.rglob("*")):
        relative = path.relative_to(seeds_dir)
        if any(part.startswith(".") for part in relative.parts) or path.suffix.lower() not in wanted:
            continue
        try:
            resolved = path.resolve(strict=True)
            if not resolved.is_relative_to(root):
                raise UnusableFile("it is a link to a file outside the seeds folder")
            if not resolved.is_file():
                continue
            size = resolved.stat().st_size
            if size > max_bytes:
                raise UnusableFile(f"it is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit")
            found.append(SourceFile(relative.as_posix(), path, _sha256(resolved), size))
        except (OSError, UnusableFile) as exc:
            _warn(warnings, relative.as_posix(), exc)
    return found


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
