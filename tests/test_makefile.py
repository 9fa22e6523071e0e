"""`make install` says what it does: one line per step with its time, the installers not silenced.
Run with a stand-in virtual environment (a fake python, pip and uv that only print), so nothing is
installed."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO


def fake_install(tmp_path: Path, uv_works: bool = True) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``make install`` into a stand-in venv; what it printed, and the tools' calls in order."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "calls.txt"
    for name in ("python", "pip", "uv"):
        tool = venv / "bin" / name
        failing = "exit 2\n" if name == "uv" and not uv_works else ""
        tool.write_text(
            f'#!/bin/sh\necho {name} "$@" >> {calls}\necho "env: [$PYTHONDONTWRITEBYTECODE]" >> {calls}\n{failing}'
            "echo 'Collecting something'\necho 'Requirement already satisfied: else'\n"
        )
        tool.chmod(0o755)
    done = subprocess.run(
        ["make", "-B", f"VENV={venv}", "install"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MAKEFLAGS": "", "PIP_FIND_LINKS": "/somewhere/wheels", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return done, calls.read_text().splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_install_prints_one_line_per_step_with_its_time(tmp_path):
    done, calls = fake_install(tmp_path)
    assert done.returncode == 0, done.stderr
    steps = re.findall(r"^==> \[(\d)/4\] (.+)$", done.stdout, re.M)
    assert [n for n, _ in steps] == ["1", "2", "3", "4"] and "torch 2.13.0" in steps[1][1]
    assert len(re.findall(r"^    done in \d+ s$", done.stdout, re.M)) == 4
    assert "Collecting something" in done.stdout  # the installers' own progress shows
    installs = [c for c in calls if c.startswith(("pip ", "uv "))]
    assert len(installs) == 4 and not any("--quiet" in c for c in installs)
    # uv by pip, then torch first, pinned, where pip would find it (PIP_FIND_LINKS: the CPU build on disk)
    assert installs[0].startswith("pip install") and installs[0].endswith("-c constraints.txt uv")
    assert "torch==2.13.0" in (REPO / "constraints.txt").read_text()
    assert all(c.startswith("uv pip install") and "--constraint constraints.txt" in c for c in installs[1:])
    assert installs[1].endswith(" torch") and "--find-links /somewhere/wheels" in installs[1]
    assert "-e .[test,bench]" in installs[2] and "-e ./emulator" in installs[3]
    assert (tmp_path / "venv" / ".installed").exists()
    # bytecode is written whatever the environment says (make exports PYTHONDONTWRITEBYTECODE empty)
    assert {c for c in calls if c.startswith("env: ")} == {"env: []"}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_pip_takes_over_when_uv_fails(tmp_path):
    done, calls = fake_install(tmp_path, uv_works=False)
    assert done.returncode == 0, done.stderr
    installs = [c for c in calls if c.startswith(("pip ", "uv "))]
    assert [c.split()[0] for c in installs] == ["pip", "uv", "pip", "uv", "pip", "uv", "pip"]
    assert all("-c constraints.txt" in c for c in installs if c.startswith("pip "))  # torch stays pinned
    assert (tmp_path / "venv" / ".installed").exists()
