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

    def entry(self, doc_id: str) -> dict[str, Any]:
        """The document's entry (by its id, or by its file name alone), or {}."""
        return self.entries.get(doc_id) or self.entries.get(Path(doc_id).name) or {}

    def citation(self, doc_id: str, text: str) -> Citation:
        entry = self.entry(doc_id)
        title = str(entry.get("title") or "").strip() or fallback_title(doc_id, text)
        authors = entry.get("authors") or ()
        return Citation(
            title=title,
            authors=(authors,) if isinstance(authors, str) else tuple(authors),
            publisher=str(entry.get("publisher") or "").strip(),
            date=str(entry.get("date") or "").strip(),
            url=str(entry.get("url") or "").strip(),
        )

    def plain_wording(self, doc_id: str) -> tuple[tuple[str, str], ...]:
        """The document's ``plain_wording``: (phrase as written, the same in plain English) pairs."""
        return tuple(self.entry(doc_id).get("plain_wording") or ())


class SourcesError(ValueError):
    """The sources file cannot be used as it is; the message names the file and the line.

    A build that meets one fails (the index it would replace stays live): rebuilding with every
    citation silently reduced to a file name is worse than not rebuilding.
    """


ENTRY_FIELDS = ("title", "authors", "publisher", "date", "url", "plain_wording")
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def load_catalog(path: Path) -> SourceCatalog:
    """Read and check the sources file. A missing file gives an empty catalog and a warning (a
    corpus may have no metadata yet); a file that does not parse or has the wrong shape raises
    :class:`SourcesError` naming the line."""
    if not path.exists():
        log.warning("sources file %s not found: citations fall back to file names", path)
        return SourceCatalog()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourcesError(f"{path}: cannot be read ({exc})") from None
    return parse_catalog(text, str(path))


def parse_catalog(text: str, name: str = "sources.yaml") -> SourceCatalog:
    """The catalog a sources file's text describes; :class:`SourcesError` names what is wrong and where."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise SourcesError(f"{name}{_yaml_problem(exc, text)}") from None
    except yaml.YAMLError as exc:
        raise SourcesError(f"{name}: not valid YAML: {exc}") from None
    if root is None:
        raise SourcesError(f"{name}: the file is empty; write `documents: {{}}` for a corpus without metadata")
    if not isinstance(root, yaml.MappingNode):
        raise SourcesError(f"{name}{_where(root.start_mark)}: expected a mapping with a `documents:` key")
    documents: yaml.Node | None = None
    for key, value in root.value:
        if _scalar(key) != "documents":
            raise SourcesError(
                f"{name}{_where(key.start_mark)}: unknown key {_scalar(key)!r} (the file holds one key, `documents:`)"
            )
        documents = value
    if documents is None:
        raise SourcesError(f"{name}: no `documents:` mapping")
    if _is_null(documents):
        return SourceCatalog()
    if not isinstance(documents, yaml.MappingNode):
        raise SourcesError(f"{name}{_where(documents.start_mark)}: `documents` must map file names to entries")
    entries: dict[str, dict[str, Any]] = {}
    for key, value in documents.value:
        doc_id = _scalar(key)
        if not isinstance(key, yaml.ScalarNode) or not doc_id:
            raise SourcesError(f"{name}{_where(key.start_mark)}: a document is named by its file name")
        if doc_id in entries:
            raise SourcesError(f"{name}{_where(key.start_mark)}: {doc_id!r} is listed twice")
        entries[doc_id] = _entry(value, doc_id, name)
    return SourceCatalog(entries)


def _entry(node: yaml.Node, doc_id: str, name: str) -> dict[str, Any]:
    if _is_null(node):
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise SourcesError(
            f"{name}{_where(node.start_mark)}: the entry of {doc_id!r} must be a mapping of {', '.join(ENTRY_FIELDS)}"
        )
    entry: dict[str, Any] = {}
    for key, value in node.value:
        field_name = _scalar(key)
        if field_name not in ENTRY_FIELDS:
            raise SourcesError(
                f"{name}{_where(key.start_mark)}: {doc_id}: unknown field {field_name!r} "
                f"(fields: {', '.join(ENTRY_FIELDS)})"
            )
        where = f"{name}{_where(value.start_mark)}: {doc_id}: {field_name}"
        if field_name == "authors":
            items = [] if _is_null(value) else [value] if isinstance(value, yaml.ScalarNode) else value.value
            if not isinstance(value, yaml.ScalarNode | yaml.SequenceNode) or not all(
                isinstance(item, yaml.ScalarNode) for item in items
            ):
                raise SourcesError(f"{where} must be a list of names")
            entry["authors"] = tuple(_scalar(item) for item in items if _scalar(item))
            continue
        if field_name == "plain_wording":
            entry["plain_wording"] = _phrase_pairs(value, name, doc_id)
            continue
        if not isinstance(value, yaml.ScalarNode):
            raise SourcesError(f"{where} must be a single value, not a {_kind(value)}")
        entry[field_name] = _scalar(value)
        if field_name == "date" and entry["date"] and not _DATE.fullmatch(entry["date"]):
            raise SourcesError(f"{where} must be YYYY, YYYY-MM or YYYY-MM-DD, not {entry['date']!r}")
    return entry


def _phrase_pairs(node: yaml.Node, name: str, doc_id: str) -> tuple[tuple[str, str], ...]:
    """``plain_wording``: a mapping of phrases as the document writes them to plain English."""
    if _is_null(node):
        return ()
    if not isinstance(node, yaml.MappingNode):
        raise SourcesError(
            f"{name}{_where(node.start_mark)}: {doc_id}: plain_wording must map phrases as written to "
            f"plain English, not a {_kind(node)}"
        )
    pairs = []
    for key, value in node.value:
        where = f"{name}{_where(key.start_mark)}: {doc_id}: plain_wording"
        if not (isinstance(key, yaml.ScalarNode) and isinstance(value, yaml.ScalarNode)):
            raise SourcesError(f"{where}: each phrase maps to one plain phrase")
        phrase, plain = _scalar(key), _scalar(value)
        if not phrase or not plain:
            raise SourcesError(f"{where}: a phrase or its plain English is empty")
        pairs.append((phrase, plain))
    return tuple(pairs)


def _yaml_problem(exc: yaml.MarkedYAMLError, text: str) -> str:
    """Where and what: ", line 13, column 11: not valid YAML: ...". A bracket or quote left open is
    found only where the file ends: then the line named is where it was opened, or the last one."""
    mark, context = exc.problem_mark, exc.context_mark
    context_differs = exc.context and context is not None and (mark is None or context.line != mark.line)
    if mark is not None and mark.index >= len(text.rstrip()):
        if context_differs:
            return f"{_where(context)}: not valid YAML: {exc.problem} {exc.context}"
        return (
            f", line {text.rstrip().count(chr(10)) + 1}: not valid YAML: the file ends inside a bracket or "
            f"quote opened on this line or above ({exc.problem})"
        )
    detail = f" ({exc.context}{_where(context, ' at')})" if context_differs else ""
    return f"{_where(mark)}: not valid YAML: {exc.problem}{detail}"


def _scalar(node: yaml.Node) -> str:
    """A scalar as written (``2017`` stays "2017", an unquoted date stays its text); null is ""."""
    if not isinstance(node, yaml.ScalarNode) or _is_null(node):
        return ""
    return str(node.value).strip()


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _kind(node: yaml.Node) -> str:
    return "list" if isinstance(node, yaml.SequenceNode) else "mapping"


def _where(mark: Any, joint: str = ",") -> str:
    return f"{joint} line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def fallback_title(doc_id: str, text: str) -> str:
    """A document without metadata is titled by its first short line, else its file name."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            if len(line) <= 120 and not line.endswith((".", ",", ";")):
                return re.sub(r"\s+", " ", line)
            break
    return Path(doc_id).stem.replace("_", " ")
