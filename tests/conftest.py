"""Shared fixtures: settings pointing at temporary folders, and the real index built once.

Everything runs offline with the real packaged model and the real seeds.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from citebot import engine  # noqa: E402
from citebot.config import Settings, load_settings  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"


@pytest.fixture(scope="session")
def make_settings() -> Callable[..., Settings]:
    """Settings from the real config file, with CITEBOT_* overrides given as keyword arguments
    (``index_dir=...`` → CITEBOT_INDEX_DIR). The process environment is not consulted, so a
    developer's own CITEBOT_* or token variables cannot leak into tests."""

    def make(**overrides: object) -> Settings:
        environ = {f"CITEBOT_{key.upper()}": str(value) for key, value in overrides.items()}
        return load_settings(REPO / "config" / "citebot.yaml", environ=environ)

    return make


@pytest.fixture(scope="session")
def encoder(make_settings):
    return engine.load_encoder(make_settings())


@pytest.fixture(scope="session")
def built_index_dir(tmp_path_factory, make_settings, encoder) -> Path:
    """The real index of seeds/, built once per test session."""
    index_dir = tmp_path_factory.mktemp("index")
    report = engine.update_index(make_settings(index_dir=index_dir), encoder)
    assert report.built and report.passages > 100
    return index_dir


@pytest.fixture(scope="session")
def settings(make_settings, built_index_dir) -> Settings:
    return make_settings(index_dir=built_index_dir)


@pytest.fixture(scope="session")
def searcher(settings, encoder):
    return engine.make_searcher(settings, encoder, engine.open_index(settings))


@pytest.fixture
def seeds_copy(tmp_path) -> Path:
    """A private copy of the seeds folder that a test may change."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target
