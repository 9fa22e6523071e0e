"""Citation metadata for documents (``config/sources.yaml``) and how a citation reads."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Citation:
    """Who said it, where and when. Unknown fields are empty and left out of the text."""

    title: str
    authors: tuple[str, ...] = ()
    publisher: str = ""
    date: str = ""
    url: str = ""

    def byline(self) -> str:
        """Authors or publisher, then date: "Harsh V. Pant, Aleksei Zakharov, 2025-07-28"."""
        who = ", ".join(self.authors) if self.authors else self.publisher
        if self.authors and self.publisher:
            who = f"{who} ({self.publisher})"
        return ", ".join(part for part in (who, self.date) if part)

    def text(self) -> str:
        """The citation as one line of plain text."""
        parts = [self.title]
        if self.byline():
            parts.append(self.byline())
        if self.url:
            parts.append(self.url)
        return " — ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "authors": list(self.authors),
            "publisher": self.publisher,
            "date": self.date,
            "url": self.url,
        }


@dataclass(frozen=True)
class SourceCatalog:
    """Citation metadata keyed by document id (the file name within the seeds folder)."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def citation(self, doc_id: str, text: str) -> Citation:
        entry = self.entries.get(doc_id) or self.entries.get(Path(doc_id).name) or {}
        title = str(entry.get("title") or "").strip() or fallback_title(doc_id, text)
        authors = entry.get("authors") or ()
        if isinstance(authors, str):
            authors = (authors,)
        return Citation(
            title=title,
            authors=tuple(str(a).strip() for a in authors if str(a).strip()),
            publisher=str(entry.get("publisher") or "").strip(),
            date=str(entry.get("date") or "").strip(),
            url=str(entry.get("url") or "").strip(),
        )


def load_catalog(path: Path) -> SourceCatalog:
    """Read the sources file; a missing or broken file gives an empty catalog and a warning."""
    if not path.exists():
        log.warning("sources file %s not found: citations fall back to file names", path)
        return SourceCatalog()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        log.warning("sources file %s unreadable (%s): citations fall back to file names", path, exc)
        return SourceCatalog()
    documents = data.get("documents") if isinstance(data, dict) else None
    if not isinstance(documents, dict):
        log.warning("sources file %s has no 'documents' mapping", path)
        return SourceCatalog()
    return SourceCatalog({str(k): v for k, v in documents.items() if isinstance(v, dict)})


def fallback_title(doc_id: str, text: str) -> str:
    """A document without metadata is titled by its first short line, else its file name."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            if len(line) <= 120 and not line.endswith((".", ",", ";")):
                return re.sub(r"\s+", " ", line)
            break
    return Path(doc_id).stem.replace("_", " ")
