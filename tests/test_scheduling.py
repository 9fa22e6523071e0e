"""The suite's own run order (tests/scheduling.py, used by tests/conftest.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.scheduling import Unit, load_durations, run_order, shares_module_fixtures, store_durations, unit_key


def test_the_longest_slow_unit_leads_then_the_quick_ones_then_the_other_slow_ones_longest_first():
    units = [
        Unit("q1", slow=False, seconds=0.1),
        Unit("s-short", slow=True, seconds=2.0),
        Unit("q2", slow=False, seconds=0.0),
        Unit("s-long", slow=True, seconds=70.0),
        Unit("s-mid", slow=True, seconds=30.0),
        Unit("s-mid-too", slow=True, seconds=30.0),
    ]
    assert [u.key for u in run_order(units)] == ["s-long", "q1", "q2", "s-mid", "s-mid-too", "s-short"]


def test_without_slow_units_the_order_is_unchanged():
    units = [Unit(k, slow=False, seconds=s) for k, s in (("a", 3.0), ("b", 9.0), ("c", 1.0))]
    assert run_order(units) == units


def test_durations_round_trip_and_a_missing_or_broken_file_gives_none(tmp_path):
    path = tmp_path / "durations.json"
    assert load_durations(path) == {}
    store_durations({"tests/test_b.py::test_y": 1.26, "tests/test_a.py::test_x": 40.04}, path)
    assert list(json.loads(path.read_text())) == ["tests/test_a.py::test_x", "tests/test_b.py::test_y"]
    assert load_durations(path) == {"tests/test_a.py::test_x": 40.0, "tests/test_b.py::test_y": 1.3}
    path.write_text("[not json")
    assert load_durations(path) == {}
    path.write_text("[1, 2]")
    assert load_durations(path) == {}


def test_a_module_sharing_a_module_scoped_fixture_is_one_unit_and_any_other_test_its_own():
    assert shares_module_fixtures("tests/test_bench_smoke.py")  # the benchmarks' smoke runs, made once
    assert shares_module_fixtures("tests/test_vector_index.py")
    assert not shares_module_fixtures("tests/test_fusion.py") and not shares_module_fixtures("tests/gone.py")
    assert unit_key("tests/test_bench_smoke.py::test_latency_quick") == "tests/test_bench_smoke.py"
    assert unit_key("tests/test_fusion.py::test_x[1]") == "tests/test_fusion.py::test_x[1]"


def test_the_collected_suite_is_in_run_order_with_each_units_tests_together(request):
    """The session's real collection: at most one slow unit before the quick ones, the other slow
    ones after them (a selection, e.g. ``-k``, may have deselected any of them), and the tests of
    one unit next to each other."""
    items = request.session.items
    keys = [unit_key(i.nodeid) for i in items]
    runs = [k for n, k in enumerate(keys) if n == 0 or keys[n - 1] != k]
    assert len(runs) == len(set(runs))
    slow = {unit_key(i.nodeid) for i in items if i.get_closest_marker("slow")}
    flags = [key in slow for key in runs]
    after_the_leader = flags[1:] if flags and flags[0] else flags
    assert after_the_leader == sorted(after_the_leader)  # quick (False) ones, then slow (True) ones


FILES = ("tests/test_vector_index.py", "tests/test_fusion.py")


@pytest.mark.slow
def test_xdist_hands_a_module_with_module_fixtures_to_one_worker():
    """The real scheduler in a real xdist run: the tests of a module sharing module-scoped fixtures
    all run on one worker (so the fixtures are made once), while the other worker runs the rest."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider", "-v", *FILES],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    workers: dict[str, set[str]] = {}
    for worker, nodeid in re.findall(r"^\[(gw\d)\] \[\s*\d+%\] PASSED (\S+)", run.stdout, re.M):
        workers.setdefault(nodeid.split("::")[0], set()).add(worker)
    assert len(workers["tests/test_vector_index.py"]) == 1
    # the other worker is not left idle meanwhile: it takes the other tests one by one
    assert workers["tests/test_fusion.py"] - workers["tests/test_vector_index.py"]
