"""Shared fixtures: settings pointing at temporary folders, and the real index built once.

Everything runs offline with the real packaged model and the real seeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from filelock import FileLock

# Two xdist workers and their child processes share two cores: torch's default of one OpenMP thread
# per core then has the threads of one process spin-waiting for a core another process holds. One
# thread each costs about a quarter less CPU for the same work (a full index build under load: 48 s
# against 63 s of CPU). Set before torch is imported; child processes inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from citebot import engine
from citebot.config import Settings, load_settings
from citebot.service import configure_process, open_service
from tests.scheduling import SuiteScheduling, load_durations, scheduled, store_durations

configure_process(logs=False)  # the test session is an entry point: offline, thread limits

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"


# The fixtures that load the real model or start a child process: a test using one of them (directly or
# through another fixture, e.g. ``settings`` or ``running_bot``) is marked ``slow``, which ``make test-fast``
# deselects. The rule follows the fixtures, so a new test is classified without anyone remembering to.
SLOW_FIXTURES = frozenset({"encoder", "child_env"})


def pytest_addoption(parser):
    parser.addoption(
        "--store-durations",
        action="store_true",
        help="write each test's duration to tests/durations.json (the order `make test` runs them in)",
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    items[:] = scheduled(items, load_durations())


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "loadgroup":  # `make test`: see tests/scheduling.py
        return SuiteScheduling(config, log)
    return None


_durations: dict[str, float] = {}


def pytest_runtest_logreport(report):
    # in the xdist controller, every worker's reports: setup, call and teardown of each test
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    if session.config.getoption("store_durations") and not hasattr(session.config, "workerinput"):
        store_durations(_durations)


def made_once(tmp_path_factory, worker_id: str, name: str, make: Callable[[Path], None]) -> Path:
    """A folder ``make`` fills once per test run. ``make test`` runs the suite in two pytest-xdist
    workers (one per core): the first to need the folder makes it under the run's shared temporary
    root while the other waits on a file lock, so the full index is embedded once, not once per worker."""
    if worker_id == "master":  # not under xdist
        target = tmp_path_factory.mktemp(name)
        make(target)
        return target
    root = tmp_path_factory.getbasetemp().parent
    target, done = root / name, root / f"{name}.done"
    with FileLock(root / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)  # a worker that failed half-way
            target.mkdir()
            with all_cores():  # the other worker is most likely waiting on this lock
                make(target)
            done.touch()
    return target


@contextlib.contextmanager
def all_cores() -> Iterator[None]:
    """torch on every core for a while (the workers run with one thread each, see the top)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
def built_index_dir(tmp_path_factory, worker_id, make_settings, encoder) -> Path:
    """The real index of seeds/, built once per test run (shared by the xdist workers; read it, or copy it)."""

    def build(index_dir: Path) -> None:
        report = engine.update_index(make_settings(index_dir=index_dir), encoder)
        assert report.built and report.passages > 100

    return made_once(tmp_path_factory, worker_id, "index", build)


@pytest.fixture(scope="session")
def settings(make_settings, built_index_dir) -> Settings:
    return make_settings(index_dir=built_index_dir)


@pytest.fixture(scope="session")
def searcher(settings, encoder):
    return open_service(settings, encoder=encoder).searcher


# Index mechanics (incremental builds, crashes, damage, swaps) are tested on a small corpus: three of the
# seeds cut to their first paragraphs (about a tenth of the text), with the real model and
# FAISS. The file names are the real ones, so config/sources.yaml still gives their citations.
SMALL_CORPUS = {"000_8e0d7ebdfb1f5007.txt": 2000, "002_d73ef1872804ed67.txt": 2000, "003_5af5b48806b72163.txt": 2500}


@pytest.fixture(scope="session")
def small_seeds_dir(tmp_path_factory, worker_id) -> Path:
    """A read-only small corpus (see SMALL_CORPUS); copy it (``small_seeds_copy``) to change it."""

    def write(target: Path) -> None:
        for name, limit in SMALL_CORPUS.items():
            text = (SEEDS / name).read_text(encoding="utf-8")
            if limit is not None:
                text = text[: text.rfind("\n", 0, limit) + 1]
            (target / name).write_text(text, encoding="utf-8")

    return made_once(tmp_path_factory, worker_id, "small-seeds", write)


@pytest.fixture(scope="session")
def small_index_dir(tmp_path_factory, worker_id, make_settings, encoder, small_seeds_dir) -> Path:
    """The real index of the small corpus, built once per test run (shared by the xdist workers)."""

    def build(index_dir: Path) -> None:
        report = engine.update_index(make_settings(index_dir=index_dir, corpus_seeds_dir=small_seeds_dir), encoder)
        assert report.built and report.added == sorted(SMALL_CORPUS)

    return made_once(tmp_path_factory, worker_id, "small-index", build)


@pytest.fixture
def small_private_index(tmp_path, make_settings, small_seeds_dir, small_index_dir) -> Settings:
    """Settings over private copies of the small corpus and of its index, that the test may change."""
    seeds, index_dir = tmp_path / "small-seeds", tmp_path / "small-index"
    shutil.copytree(small_seeds_dir, seeds)
    shutil.copytree(small_index_dir, index_dir, symlinks=True)
    return make_settings(index_dir=index_dir, corpus_seeds_dir=seeds)


@pytest.fixture
def seeds_copy(tmp_path) -> Path:
    """A private copy of the seeds folder that a test may change."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


# ----------------------------------------------------------------------------- Telegram bot (bot/)
# The real bot (python-telegram-bot Application from bot.application.build_application) against the
# project's Bot API emulator over real HTTP on 127.0.0.1, with the session's real searcher.


def check_bot_output(emulator) -> None:
    """Every text the bot sent or edited (and every inline article) is valid Telegram HTML
    within 4096 UTF-16 units, and every call it made was accepted, unless a failure was
    injected on purpose or the user had blocked the bot (403)."""
    from botapi_emulator import utf16_len, validate_telegram_html

    for call in emulator.calls:
        texts = []
        if call.method in ("sendMessage", "editMessageText"):
            texts.append(call.params.get("text", ""))
        if call.method == "answerInlineQuery":
            texts += [r["input_message_content"]["message_text"] for r in call.params.get("results") or []]
        for text in texts:
            plain, _ = validate_telegram_html(text)
            assert 0 < utf16_len(plain) <= 4096, (call.method, utf16_len(plain))
        if call.method != "getUpdates" and call.injected is None and call.status != 0:
            assert call.ok or call.status == 403, call.summary()


@pytest_asyncio.fixture
async def emulator():
    """A started Bot API emulator on 127.0.0.1 (stopped after the test)."""
    from botapi_emulator import BotApiEmulator

    emu = BotApiEmulator()
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest_asyncio.fixture
async def start_bot(emulator, settings, searcher):
    """``await start_bot(settings=None, searcher=None, **build_application_kwargs)`` starts the
    real bot polling the emulator. Every bot started is stopped after the test, then all its
    output is checked with :func:`check_bot_output`."""
    from bot.application import build_application
    from bot.serving import start_bot, stop_bot

    running = []

    async def launch(custom_settings=None, custom_searcher=None, **kwargs):
        app = build_application(
            custom_settings or settings,
            custom_searcher or searcher,
            base_url=emulator.base_url,
            token=emulator.token,
            **kwargs,
        )
        await start_bot(app, poll_timeout=2.0)
        running.append(app)
        return app

    yield launch
    for app in running:
        await stop_bot(app)
    check_bot_output(emulator)


@pytest_asyncio.fixture
async def running_bot(start_bot):
    """The real bot with the session's settings and searcher, running during one async test."""
    return await start_bot()


# --------------------------------------------------------------------------- hardening (tests/test_hardening*.py)
# A private copy of the seeds and of the index for tests that change them, an IndexKeeper over
# it, and the real bot served from a background event loop for synchronous tests (hypothesis).


@pytest.fixture
def private_index_settings(tmp_path, seeds_copy, make_settings, built_index_dir):
    """``private_index_settings(**overrides)``: settings over a private copy of the seeds and of
    the session's index (copied once per test, symlinks kept), that the test may change."""
    index_dir = tmp_path / "index"

    def make(**overrides: object) -> Settings:
        if not index_dir.exists():
            shutil.copytree(built_index_dir, index_dir, symlinks=True)
        return make_settings(index_dir=index_dir, corpus_seeds_dir=seeds_copy, **overrides)

    return make


@pytest.fixture
def make_keeper(encoder):
    """``make_keeper(settings)``: an IndexKeeper over a searcher of ``settings``' index."""
    from citebot.lifecycle import IndexKeeper

    def make(settings: Settings) -> IndexKeeper:
        return open_service(settings, encoder=encoder).keeper

    return make


@pytest.fixture
def watcher_started(caplog):
    """``await watcher_started()``: wait for IndexKeeper.watch's "watching … for changes". It logs that
    line, then creates its inotify watch (watchfiles.RustNotify) without yielding to the event loop, so
    once a test on the same loop sees the line, a change to the seeds cannot be missed."""
    import asyncio
    import logging

    caplog.set_level(logging.INFO, logger="citebot.lifecycle")

    async def wait(timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not any(r.getMessage().endswith(" for changes") for r in caplog.records):
                await asyncio.sleep(0.05)

    return wait


@pytest.fixture
def restore_log_factory():
    """Undo bot.redaction.install_log_redaction's global log record factory after the test."""
    yield
    from bot.redaction import remove_log_redaction_factory

    remove_log_redaction_factory()


class LoopThread:
    """An event loop running in a daemon thread; ``run(coroutine)`` waits for its result."""

    def __init__(self) -> None:
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-bot-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float = 60.0):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, func, *args, **kwargs):
        """Run the synchronous ``func`` on the loop (emulator methods must run there)."""

        async def invoke():
            return func(*args, **kwargs)

        return self.run(invoke())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def threaded_bot(settings, searcher):
    """``threaded_bot(settings=None, **build_application_kwargs)``: the emulator and the real bot
    running in a background event loop, for synchronous tests. Returns a harness with
    ``emulator``, ``application``, ``run(coroutine)`` and ``call(func, ...)``; everything is stopped
    after the test and the bot's output checked with :func:`check_bot_output`."""
    from types import SimpleNamespace

    from bot.application import build_application
    from bot.serving import start_bot, stop_bot
    from botapi_emulator import BotApiEmulator

    loop = LoopThread()
    started = []

    def launch(custom_settings=None, **kwargs):
        emulator = BotApiEmulator()
        loop.run(emulator.start())

        async def start():
            app = build_application(
                custom_settings or settings,
                kwargs.pop("custom_searcher", searcher),
                base_url=emulator.base_url,
                token=emulator.token,
                **kwargs,
            )
            await start_bot(app, poll_timeout=2.0)
            return app

        application = loop.run(start())
        started.append((emulator, application))
        return SimpleNamespace(emulator=emulator, application=application, run=loop.run, call=loop.call)

    try:
        yield launch
    finally:
        for emulator, application in started:
            loop.run(stop_bot(application))
            loop.run(emulator.stop())
        loop.close()
    for emulator, _ in started:
        check_bot_output(emulator)


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a child process, without any CITEBOT_* or Telegram
    settings of the developer's, offline, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITEBOT_", "TELEGRAM_"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **extra)
    return env


@contextlib.asynccontextmanager
async def citebot_process(env: dict[str, str], *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``citebot ARGS`` as a child process of this virtual environment's Python, output piped;
    killed on the way out if it is still running (a failed assertion must not leave it behind)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "citebot.cli",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.fixture(scope="session")
def child_env():
    """:func:`clean_environment`, for tests that start ``citebot`` in a subprocess."""
    return clean_environment


# ------------------------------------------------------------------ Redis and nginx (deploy/, tests/test_replicas.py)
# Throwaway servers on 127.0.0.1 with the repo's configs. A machine without the Debian packages
# gets them installed (root) or the tests fail saying what to install: they are never skipped.


@pytest.fixture(scope="session")
def services_installed() -> None:
    from deploy.local import ServiceError, ensure_installed

    try:
        ensure_installed()
    except ServiceError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def make_redis(tmp_path, services_installed):
    """``make_redis()``: a started redis-server (deploy/redis.conf) in a temporary folder,
    stopped after the test."""
    from deploy.local import RedisServer

    started = []

    def make():
        server = RedisServer(tmp_path / f"redis{len(started)}")
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
