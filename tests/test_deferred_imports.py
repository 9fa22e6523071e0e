"""The modules the model's library imports but never calls are loaded on first use
(embeddings.deferred_imports): the stand-in forwards, and code that does use them gets the real thing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from embeddings.deferred_imports import DeferredModule, defer_module, real_module

HEAVY = """
from pathlib import Path
Path({marker!r}).write_text(Path({marker!r}).read_text() + "imported;" if Path({marker!r}).exists() else "imported;")

def double(x):
    return 2 * x

def triple(x):
    return 3 * x
"""


@pytest.fixture
def heavy(tmp_path, monkeypatch):
    """A package ``heavypkg`` whose ``metrics`` module records each time it is really imported."""
    marker = tmp_path / "imports.txt"
    package = tmp_path / "heavypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "metrics.py").write_text(HEAVY.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    for name in ("heavypkg.metrics", "heavypkg"):
        sys.modules.pop(name, None)


def test_a_name_imported_from_a_deferred_module_loads_it_on_the_first_call_only(heavy):
    assert defer_module("heavypkg.metrics", ["double"])
    from heavypkg.metrics import double

    assert not heavy.exists()  # bound, not imported
    assert double(4) == 8 and double(5) == 10
    assert heavy.read_text() == "imported;"  # once, on the first call
    assert not isinstance(sys.modules["heavypkg.metrics"], DeferredModule)


def test_anything_else_looked_up_loads_the_real_module(heavy):
    assert defer_module("heavypkg.metrics", ["double"])
    import heavypkg.metrics

    stand_in = sys.modules["heavypkg.metrics"]
    assert isinstance(stand_in, DeferredModule) and not heavy.exists()
    assert stand_in.triple(2) == 6  # not forwarded by name: the lookup itself imports the module
    assert heavy.read_text() == "imported;"
    assert heavypkg.metrics.triple(3) == 9 and real_module("heavypkg.metrics").double(1) == 2
    assert heavy.read_text() == "imported;"


def test_a_module_already_imported_is_left_alone(heavy):
    import heavypkg.metrics

    assert not defer_module("heavypkg.metrics", ["double"])
    assert sys.modules["heavypkg.metrics"] is heavypkg.metrics


def test_the_models_library_gets_the_forwarder_and_it_gives_scikit_learns_answer(encoder):
    """Loading the model (the session's encoder, loaded through embeddings.model) left scikit-learn
    deferred: sentence-transformers holds the forwarder, which computes what scikit-learn does."""
    import sentence_transformers.util.similarity as similarity

    assert "imported on the first call" in (similarity.pairwise_distances.__doc__ or "")
    points = np.arange(12, dtype=float).reshape(4, 3)
    distances = similarity.pairwise_distances(points, points)
    assert distances.shape == (4, 4) and distances[0, 1] == pytest.approx(np.sqrt(27))
