"""bench.memory's readings and its section of bench/README.md."""

from pathlib import Path

import pytest

from bench import memory, report


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="reads /proc/self/smaps_rollup")
def test_rss_parts_reads_this_process_and_grows_with_what_it_holds():
    before = memory.rss_parts()
    assert 0 < before["anon"] < before["rss"]
    held = bytearray(64 * 2**20)  # touched: resident and anonymous
    after = memory.rss_parts()
    assert after["anon"] - before["anon"] > 48
    del held


def test_the_memory_section_gives_every_stage_of_both_runs_and_the_floor():
    def stages(*rss: float) -> list[dict[str, float | str]]:
        names = ["start", "first search", "question cache holds 3.0 MiB"]
        return [{"stage": n, "rss": r, "anon": r / 2} for n, r in zip(names, rss, strict=True)]

    result = {
        "batches": 8,
        "machine": {"load_average": [1.0, 2.0, 3.0]},
        "runs": {
            "bare model": [{"stage": "encode one question", "rss": 516.9, "anon": 339.7}],
            "citebot as configured": stages(81.0, 580.1, 622.6),
            "citebot, heap never trimmed, 48 MiB question cache": stages(81.0, 599.0, 794.4),
        },
    }
    text = "\n".join(report.memory_section(result))
    assert "**516.9 MiB**" in text and "load average 1.0 / 2.0 / 3.0" in text
    assert "| first search | 580.1 | 290.1 | 599.0 | 299.5 |" in text
    assert "| question cache at the end | 622.6 | 311.3 | 794.4 | 397.2 |" in text
