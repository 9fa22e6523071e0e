"""Reading a YAML file that a person wrote: every failure is one clear message naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: Path, error: type[Exception], what: str = "file") -> Any:
    """The parsed contents of ``path``; ``error(message)`` if it is a folder, missing, unreadable
    or not valid YAML (with the line and column of the fault). ``what`` names the file's role."""
    if path.is_dir():
        raise error(f"{what} {path} is a folder, not a file")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{what} {path} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
