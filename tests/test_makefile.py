"""`make install` says what it does: one line per step with its time, pip not silenced. Run with a
stand-in virtual environment (a fake python and pip that only print), so nothing is installed."""

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_install_prints_one_line_per_step_with_its_time(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "calls.txt"
    for name in ("python", "pip"):
        tool = venv / "bin" / name
        tool.write_text(
            f'#!/bin/sh\necho {name} "$@" >> {calls}\n'
            "echo 'Collecting something'\necho 'Requirement already satisfied: else'\n"
        )
        tool.chmod(0o755)
    done = subprocess.run(
        ["make", "-B", f"VENV={venv}", "install"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MAKEFLAGS": ""},
    )
    assert done.returncode == 0, done.stderr
    steps = re.findall(r"^==> \[(\d)/4\] (.+)$", done.stdout, re.M)
    assert [n for n, _ in steps] == ["1", "2", "3", "4"] and "torch 2.13.0" in steps[1][1]
    assert len(re.findall(r"^    done in \d+ s$", done.stdout, re.M)) == 4
    assert "Collecting something" in done.stdout  # pip's own progress shows
    assert "Requirement already satisfied" not in done.stdout  # ...but not the noise of a re-run
    pip_calls = [line for line in calls.read_text().splitlines() if line.startswith("pip ")]
    assert len(pip_calls) == 3 and not any("--quiet" in c for c in pip_calls)
    assert pip_calls[0].startswith("pip install") and "torch==2.13.0" in pip_calls[0]  # torch first, pinned
    assert (venv / ".installed").exists()
