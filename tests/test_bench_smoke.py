"""Smoke runs of the benchmarks' quick modes on the session's real index (nothing is timed against
a target here). Results go to a temporary folder. Deselect with ``pytest -m "not bench"``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import bench.common
from bench import latency, report, roundtrip, scale
from bench.questions import questions

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def results(tmp_path_factory, searcher, settings):
    """Quick latency, scale and round-trip runs written where the report reads them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench.common, "RESULTS", tmp_path_factory.mktemp("bench-results"))
        bench.common.write_result(
            "latency", latency.run(quick=True, repeats=1, n_questions=6, searcher=searcher), quick=True
        )
        data = scale.run(
            [300, 1200],
            repeats=1,
            quick=True,
            bm25_max=1200,
            kinds=["hnsw", "ivf"],
            exact_below=1000,
            embed=40,
            settings=settings,
            n_questions=12,
        )
        bench.common.write_result("scale", data, quick=True)
        # one user for a few seconds in each scenario: the real bot against the load generator's emulator
        tiny = {"thinking": {1: 2}, "closed": {1: 1}, "burst": {1: 1}}
        measured = roundtrip.run(
            1, True, plan=tiny, settings=settings, searcher=searcher, limit_questions=roundtrip.LIMIT_BATCH
        )
        bench.common.write_result("roundtrip", measured, quick=True)
        yield bench.common.results_dir(True)


def test_questions_are_distinct_and_varied():
    qs = questions(400)
    assert len(qs) == len(set(qs)) == 400
    assert any(q.islower() for q in qs) and any(q.endswith("?") for q in qs)


def test_latency_quick(results, searcher):
    saved = json.loads((results / "latency.json").read_text())
    assert saved["questions"] == 6 and saved["machine"]["cores"]
    lat = saved["latency_ms"]
    assert lat["pipeline"]["p50"]["median"] > 0 and lat["bare_encode"]["p50"]["median"] > 0
    assert lat["pipeline_encode"]["p50"]["median"] > 0  # the model timer saw the pipeline's forward passes
    assert "forward" not in vars(searcher.encoder)  # and was taken off again


def test_scale_quick(results):
    data = json.loads((results / "scale.json").read_text())
    small, large = data["sizes"]
    assert small["vectors"] == "synthetic" and small["chosen"] == "flat"
    assert large["flat"]["recall@10"] == 1.0
    assert large["hnsw"]["recall@10"] >= 0.9 and large["ivf"]["recall@10"] >= 0.5  # approximate, not random
    assert data["embedding"]["passages_per_second"] > 0


def test_synthetic_vectors_are_unit_and_near_the_real_ones():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((50, 16)).astype(np.float32)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    fake = scale.synthetic_vectors(real, 500)
    assert fake.shape == (500, 16) and np.allclose(np.linalg.norm(fake, axis=1), 1, atol=1e-5)
    assert (fake @ real.T).max(axis=1).min() > 0.5


def test_roundtrip_quick_answers_every_question_once(results):
    data = json.loads((results / "roundtrip.json").read_text())
    assert [(r["scenario"], r["users"]) for r in data["scenarios"]] == [("thinking", 1), ("closed", 1), ("burst", 1)]
    for row in data["scenarios"]:
        assert row["asked"] > 0 and row["lost"] == row["duplicated"] == row["timeouts"] == row["error_answers"] == 0
        assert row["latency_ms"]["p50"]["median"] > 0
    assert max(row["answers_with_passages"] for row in data["scenarios"]) > 0.5  # some questions are off-topic
    assert data["met"]["no_lost_or_duplicated"] and "share_of_limit" in data["met"]
    # the bare model's limit was measured in the same run, and the saturation is a share of it
    assert data["limit"]["batched_questions_per_second"]["median"] > 0 and data["limit"]["batch"] == 32
    assert data["share_of_limit"] == pytest.approx(
        data["saturation_questions_per_second"] / data["limit"]["batched_questions_per_second"]["median"]
    )


def test_report_renders_what_was_measured(results):
    text = report.render(results)
    assert "## 1. Query latency in process" in text and "## 5. Scale" in text and "## 2. Bot round trip" in text
    assert "| 1 | closed loop |" in text
    assert "of the limit" in text and "The model's limit" in text
    assert "## naive\n\nNot measured yet." in text  # no naive result in this folder
    assert (results / "latency_vs_corpus_size.png").stat().st_size > 1000
    assert (results / "latency_vs_users.png").stat().st_size > 1000


def test_http_client_quick():
    """Both Bot API clients send real calls to an emulator in a child process, and are measured."""
    from bench.http_client import run

    data = run(quick=True, repeats=1)
    assert data["calls"] == 300 and len(data["clients"]) == 2
    for client in data["clients"].values():
        assert client["calls_per_second"]["median"] > 0 and client["cpu_ms_per_call"]["median"] > 0


def test_typos_bench_misspells_one_long_word_per_question_by_its_seed():
    import random

    from bench.typos import misspell, names_never_corrected
    from embeddings.lexical import Vocabulary

    question = "When did the last Soviet troops pull out of Afghanistan?"
    for seed in range(20):
        typed = misspell(question, random.Random(seed))
        changed = [(a, b) for a, b in zip(question.split(), typed.split(), strict=True) if a != b]
        assert len(changed) == 1  # one word, of six letters or more, its first letter kept
        written, mistyped = changed[0]
        assert len(written.strip("?")) >= 6 and mistyped[0] == written[0] and abs(len(mistyped) - len(written)) <= 1
        assert typed == misspell(question, random.Random(seed))
    assert misspell("who is he", random.Random(0)) == "who is he"  # no word long enough
    vocabulary = Vocabulary.build(["The Taliban met in Moscow."] * 5, known_words=["did", "meet"])
    with names_never_corrected():
        assert vocabulary.correct("Did the Tlaiban meet?") == "Did the Tlaiban meet?"
    assert vocabulary.correct("Did the Tlaiban meet?") == "Did the Taliban meet?"
