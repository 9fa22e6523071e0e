"""The sandbox as a person sees it: `citebot serve` (no token) in a real terminal (tmux), read back
with ``tmux capture-pane``. Also `citebot serve < /dev/null`, the `make run < /dev/null` case.

tmux comes from `make test` (deploy/services.sh installs it with apt-get when it is missing); without it
the terminal test is skipped, saying why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

CITEBOT = Path(sys.executable).with_name("citebot")
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ")
STARTUP_SECONDS = 240  # loading the model on a busy 2-core machine


class Terminal:
    """One tmux session on a private server, running ``command``."""

    def __init__(self, tmp: Path, command: str, env: dict[str, str]) -> None:
        self.socket = f"citebot-test-{os.getpid()}-{time.monotonic_ns()}"
        self.env = env
        script = tmp / "run.sh"
        exports = "".join(
            f"export {k}={_quote(v)}\n"
            for k, v in env.items()
            if k.startswith(("CITEBOT_", "HF_", "TRANSFORMERS_", "TOKENIZERS_"))
        )
        script.write_text(f'cd {_quote(str(REPO))}\n{exports}{command}\necho "[exit $?]"\nsleep 600\n')
        self.tmux("new-session", "-d", "-s", "chat", "-x", "160", "-y", "50", f"bash {_quote(str(script))}")

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True, env=self.env, timeout=30
        ).stdout

    def screen(self, styles: bool = False) -> str:
        """What the terminal shows, with its scroll-back (``styles``: with the ANSI escapes)."""
        return self.tmux("capture-pane", "-p", "-J", "-t", "chat", "-S", "-2000", *(["-e"] if styles else []))

    def wait_for(self, what: str | re.Pattern[str], timeout: float = 90.0, after: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            found = what.search(screen, after) if isinstance(what, re.Pattern) else what in screen[after:]
            if found:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{what!r} did not appear; the screen:\n{screen}")
            time.sleep(0.2)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "chat", "-l", text)
        self.tmux("send-keys", "-t", "chat", "Enter")

    def pid(self) -> int:
        shell = int(self.tmux("list-panes", "-t", "chat", "-F", "#{pane_pid}").strip())
        child = subprocess.run(["pgrep", "-P", str(shell)], capture_output=True, text=True).stdout.split()
        return int(child[0])

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.fixture
def sandbox_env(tmp_path, built_index_dir, child_env):
    index = tmp_path / "index"
    shutil.copytree(built_index_dir, index, symlinks=True)
    return index, child_env(
        CITEBOT_INDEX_DIR=str(index),
        CITEBOT_TELEGRAM_SANDBOX_LOG=str(tmp_path / "sandbox.log"),
        CITEBOT_TELEGRAM_STORE_FILE=str(tmp_path / "store.sqlite3"),
        TERM="xterm-256color",
    )


@pytest.mark.skipif(
    shutil.which("tmux") is None,
    reason="tmux is not installed (`make test` installs it with apt-get; it could not here)",
)
def test_the_sandbox_in_a_terminal(tmp_path, sandbox_env):
    index, env = sandbox_env
    terminal = Terminal(tmp_path, f"{_quote(str(CITEBOT))} serve", env)
    try:
        screen = terminal.wait_for("citebot sandbox", STARTUP_SECONDS)
        screen = terminal.wait_for(re.compile(r"^> $", re.M))  # a prompt on a terminal
        time.sleep(1)  # (long enough for the bot to poll a few times: that must print nothing)
        assert terminal.screen().count("\n> ") == 1, terminal.screen()
        terminal.type("Who overthrew King Zahir Shah?")
        screen = terminal.wait_for("Buttons: ", after=screen.index("citebot sandbox"))
        assert "🔎 Passages 1–3" in screen and "Mohammed Daud Khan" in screen
        assert "#4" not in screen.split("Buttons: ")[-1].split("\n")[0]  # no Back on the first page
        assert "#5 [More results ▶]  #6 [👍]  #7 [👎]" in screen
        assert "▌ " in screen  # quotes behind a bar
        styled = re.sub(r"\x1b\[[34]9m", "", terminal.screen(styles=True))  # colour resets say nothing here
        bold = re.findall(r"\x1b\[(?:0;)?1m([^\x1b]*)", styled)
        assert any("Mohammed Daud Khan" in b for b in bold), bold  # the best sentence stands out
        before = len(screen)
        terminal.type("#5")
        screen = terminal.wait_for("(edited) 🔎 Passages 4–6", after=before - 200)
        assert "#4 [◀ Back]  #5 [More results ▶]" in screen  # More is still #5
        terminal.type("#6")
        screen = terminal.wait_for("Thanks! 👍 recorded.")
        assert "#6 [👍 ✓]" in screen
        # an alert to the administrator (the sandbox user), sent while nobody asks: a rebuild fails
        lock = index / "build.lock"
        lock.unlink(missing_ok=True)
        lock.mkdir()
        os.kill(terminal.pid(), __import__("signal").SIGHUP)
        screen = terminal.wait_for("citebot: the index could not be updated")
        assert not LOG_LINE.search(screen), "log lines in the chat"
        log = Path(env["CITEBOT_TELEGRAM_SANDBOX_LOG"]).read_text()
        assert LOG_LINE.search(log) and "rebuild failed" in log
        terminal.tmux("send-keys", "-t", "chat", "C-d")
        screen = terminal.wait_for("[exit 0]")
    finally:
        terminal.close()


def test_serve_with_no_input_says_so_and_exits(sandbox_env):
    """`make run < /dev/null`: a note that the sandbox reads standard input, exit 0."""
    _, env = sandbox_env
    with open(os.devnull) as nothing:
        done = subprocess.run(
            [str(CITEBOT), "serve"],
            stdin=nothing,
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=STARTUP_SECONDS + 60,
        )
    assert done.returncode == 0, done.stderr
    assert "citebot sandbox" in done.stdout and "(no input: the sandbox reads questions from standard input" in (
        done.stdout
    )
    assert "\x1b" not in done.stdout and not LOG_LINE.search(done.stdout)
