"""Choosing retrieval settings by cross-validation on an evaluation set.

A candidate is a dict of settings overrides by dotted key, e.g.
``{"retrieval.weights.bm25": 0.3, "retrieval.abstain_below": 0.4}``. From Python::

    from citebot.config import load_settings
    from citebot.tuning import cross_validate_settings
    from embeddings.evaluation import load_eval_set

    cv = cross_validate_settings(load_settings(), load_eval_set(Path("tests/data/eval.yaml")),
                                 [{}, {"retrieval.weights.bm25": 0.4}], folds=5)
    print(cv.mean(), [f.chosen for f in cv.folds])

From the shell: ``citebot eval tests/data/eval.yaml --folds 5 --grid grid.yaml`` (see
:func:`load_candidates` for the grid file).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from embeddings.evaluation import Candidate, CrossValidation, EvalSet, Pipeline, cross_validate, searcher_pipeline
from embeddings.yamlfile import read_yaml

from .config import ConfigError, Settings
from .engine import build_params, make_searcher
from .service import open_service


def with_overrides(settings: Settings, overrides: Candidate) -> Settings:
    """``settings`` with dotted-key overrides applied and validated (ConfigError names the key)."""
    sections: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        section, *path = str(key).split(".")
        if section not in Settings.model_fields or section == "root" or not path:
            raise ConfigError(f"{key}: not a setting (use section.key, e.g. retrieval.weights.bm25)")
        target = sections.setdefault(section, getattr(settings, section).model_dump())
        for part in path[:-1]:
            if not isinstance(target.get(part), dict):
                raise ConfigError(f"{key}: not a setting")
            target = target[part]
        if path[-1] not in target:
            raise ConfigError(f"{key}: not a setting")
        target[path[-1]] = value
    update = {}
    for section, data in sections.items():
        try:
            update[section] = type(getattr(settings, section)).model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{section}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"candidate {dict(overrides)}: {problems}") from None
    return settings.model_copy(update=update)


def pipeline_factory(settings: Settings) -> Callable[[Candidate], Pipeline]:
    """Pipelines for candidates: one searcher per candidate over the same loaded index and model.

    A candidate may change search-time settings only; one that would need another index
    (chunking, model) is refused."""
    service = open_service(settings)  # builds the index if there is none
    base, encoder = service.searcher, service.encoder
    data = base.data

    def pipeline_for(candidate: Candidate) -> Pipeline:
        if not candidate:
            return searcher_pipeline(base)
        changed = with_overrides(settings, candidate)
        if build_params(changed) != build_params(settings):
            raise ConfigError(
                f"candidate {dict(candidate)} changes how the index is built; "
                "only search-time settings can be cross-validated"
            )
        return searcher_pipeline(make_searcher(changed, encoder, data))

    return pipeline_for


def cross_validate_settings(
    settings: Settings, eval_set: EvalSet, candidates: Sequence[Candidate], folds: int = 5, seed: int = 0
) -> CrossValidation:
    """:func:`embeddings.evaluation.cross_validate` over settings overrides."""
    for candidate in candidates:  # every candidate checked before minutes of searching
        with_overrides(settings, candidate)
    return cross_validate(eval_set, pipeline_factory(settings), candidates, folds, seed)


def load_candidates(path: Path) -> list[dict[str, Any]]:
    """Candidates from a YAML file: a list ``candidates:`` of override mappings, and/or a mapping
    ``grid:`` of dotted key → list of values, which adds every combination::

        candidates:
        - {}                                  # the configured settings
        - {retrieval.weights.bm25: 0.4}
        grid:
          retrieval.weights.bm25: [0.1, 0.2, 0.3]
          retrieval.abstain_below: [0.3, 0.35]
    """
    data = read_yaml(path, ConfigError, "grid file")
    if not isinstance(data, dict) or not ({"candidates", "grid"} & set(data)):
        raise ConfigError(f"{path}: expected a mapping with `candidates:` (a list) and/or `grid:` (a mapping)")
    candidates = data.get("candidates") or []
    grid = data.get("grid") or {}
    if not isinstance(candidates, list) or not all(isinstance(c, dict) for c in candidates):
        raise ConfigError(f"{path}: `candidates` must be a list of mappings of setting → value")
    if not isinstance(grid, Mapping) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"{path}: `grid` must map each setting to a non-empty list of values")
    if grid:
        keys = list(grid)
        candidates += [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]
    if not candidates:
        raise ConfigError(f"{path}: no candidates")
    return candidates
