"""The order ``make test`` runs the suite in, and how pytest-xdist hands it out.

:class:`SuiteScheduling` (``--dist loadgroup``) hands the next unit of work to whichever worker runs
dry, in collection order: a unit is one test, or every test of a module whose tests share a
module-scoped fixture (a benchmark's smoke run, a module's own index), so that one worker makes the
fixture once instead of every worker making it. (xdist's own loadgroup cannot group here: it renames
``item._nodeid``, which pytest 9.2 no longer reads.)

That is list scheduling, and it ends soonest when the longest units come first (a long test started
last is the run's tail). One exception: most slow tests need the session's full index, which the
first of them builds (tens of seconds); the quick tests go right after that first one, so the other
workers run them meanwhile instead of waiting on the build's lock.

The lengths come from ``tests/durations.json``, written by ``pytest --store-durations`` (a full
run); a test it does not know counts as :data:`UNKNOWN_SLOW_SECONDS` if slow, 0 if quick.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from xdist.scheduler import LoadScopeScheduling

DURATIONS = Path(__file__).with_name("durations.json")
UNKNOWN_SLOW_SECONDS = 3.0


@dataclass(frozen=True)
class Unit:
    """What the scheduler hands out at once: one test or one group, by its first test's index."""

    key: str  # the group's name, or the test's node id
    slow: bool
    seconds: float


def run_order(units: Sequence[Unit]) -> list[Unit]:
    """The longest slow unit first (it builds what the others need), then the quick ones in their
    own order, then the other slow ones longest first."""
    slow = sorted((u for u in units if u.slow), key=lambda u: -u.seconds)  # stable: ties keep file order
    quick = [u for u in units if not u.slow]
    return slow[:1] + quick + slow[1:]


def load_durations(path: Path = DURATIONS) -> dict[str, float]:
    """Seconds per test node id from the last stored run (none when the file is absent or unreadable:
    the order is then the plain slow-first one, still correct, only longer)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def store_durations(seconds: Mapping[str, float], path: Path = DURATIONS) -> None:
    """Write the durations of a run (sorted, to a tenth of a second: a small diff when refreshed)."""
    rounded = {nodeid: round(s, 1) for nodeid, s in sorted(seconds.items())}
    path.write_text(json.dumps(rounded, indent=0) + "\n", encoding="utf-8")


ROOT = Path(__file__).resolve().parent.parent
MODULE_SCOPED = re.compile(r"""@pytest(_asyncio)?\.fixture\([^)]*scope=["']module["']""")


@lru_cache
def shares_module_fixtures(test_file: str) -> bool:
    """Whether a test file (relative to the repository, as in a node id) defines a module-scoped
    fixture. Read from its source: the xdist controller, which schedules, collects no tests."""
    try:
        return MODULE_SCOPED.search((ROOT / test_file).read_text(encoding="utf-8")) is not None
    except OSError:
        return False


def unit_key(nodeid: str) -> str:
    """The unit a test is handed out in: its file when the file shares module fixtures, else itself."""
    test_file = nodeid.split("::", 1)[0]
    return test_file if shares_module_fixtures(test_file) else nodeid


class SuiteScheduling(LoadScopeScheduling):
    """xdist's loadscope distribution over :func:`unit_key` units (see the module's docstring)."""

    def _split_scope(self, nodeid: str) -> str:
        return unit_key(nodeid)


def scheduled(items: list[Any], durations: Mapping[str, float]) -> list[Any]:
    """pytest's collected ``items`` in :func:`run_order`, each unit's tests together (a test
    counts as slow when it carries the ``slow`` marker)."""
    units: dict[str, list[Any]] = {}
    for item in items:
        units.setdefault(unit_key(item.nodeid), []).append(item)

    def seconds(item: Any) -> float:
        return durations.get(item.nodeid, UNKNOWN_SLOW_SECONDS if item.get_closest_marker("slow") else 0.0)

    order = run_order(
        [
            Unit(key, slow=any(i.get_closest_marker("slow") for i in members), seconds=sum(map(seconds, members)))
            for key, members in units.items()
        ]
    )
    return [item for unit in order for item in units[unit.key]]
