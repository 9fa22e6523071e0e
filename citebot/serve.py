"""``citebot serve``: the one way the bot is served.

With a token it serves Telegram (:func:`bot.serving.serve_telegram`: long polling, or a webhook
when ``telegram.webhook_url`` is set); without one (or with ``telegram.mode: sandbox``) it runs
the local sandbox on standard input/output (:func:`bot.sandbox.run_sandbox`). In both the index
follows the seeds folder; SIGHUP rebuilds it at once. Exit codes: :mod:`bot.serving`.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from bot.log_limits import limit_repeats
from bot.redaction import protect_logs
from bot.serving import EXIT_CONFIG, EXIT_FAILED, serve_telegram

from .config import ConfigError, Settings
from .gaps import coverage_report
from .progress import ProgressBar
from .replica import IndexFollower
from .service import open_service
from .store import StoreError, open_store

log = logging.getLogger(__name__)


def serve(settings: Settings, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Run the bot until stopped; return the exit code."""
    limit_repeats()  # one cause repeating in a loop must not fill the disk
    try:
        token = settings.bot_token()
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    protect_logs(settings, token)
    mode = settings.telegram.mode
    if mode == "auto":
        mode = "telegram" if token else "sandbox"
    if mode == "telegram" and not token:
        log.error("telegram.mode is 'telegram' but there is no token: set TELEGRAM_BOT_TOKEN")
        return EXIT_CONFIG
    try:
        store = open_store(settings)
    except StoreError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    try:
        if settings.index.replica:  # a replica never builds: the builder publishes the index it follows
            service = open_service(settings, build=False)
        else:
            with ProgressBar(desc="building the index") as progress:
                service = open_service(settings, progress=progress)
    except Exception as exc:
        log.error("cannot open the index: %s", exc)
        return EXIT_FAILED
    extras: dict[str, Any] = {
        "store": store,
        "coverage": None
        if store is None
        else functools.partial(coverage_report, store, service.encoder.encode, settings.telegram.gaps_similarity_below),
    }
    try:
        if mode == "sandbox":
            from bot.sandbox import run_sandbox

            restore = log_to_file(settings.path(settings.telegram.sandbox_log))  # the terminal is the chat
            try:
                return run_sandbox(
                    settings,
                    service.searcher,
                    stdin or sys.stdin,
                    stdout or sys.stdout,
                    keeper=service.keeper,
                    **extras,
                )
            finally:
                restore()
        assert token is not None
        if settings.index.replica:  # a replica follows the builder instead of keeping the index itself
            follower = IndexFollower(settings, service.encoder, service.searcher)
            return serve_telegram(settings, service.searcher, token=token, follower=follower, **extras)
        return serve_telegram(settings, service.searcher, token=token, keeper=service.keeper, **extras)
    finally:
        if store is not None:
            store.close()


def log_to_file(path: Path) -> Callable[[], None]:
    """Send the process's log records to ``path`` instead of the terminal (the sandbox's chat);
    returns the function that puts things back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    terminals = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    removed = [
        h
        for h in root.handlers
        if isinstance(h, logging.StreamHandler)
        and not isinstance(h, logging.FileHandler)
        and getattr(h, "stream", None) in terminals
    ]
    for old in removed:
        handler.filters.extend(f for f in old.filters if f not in handler.filters)  # e.g. token redaction
        root.removeHandler(old)
    root.addHandler(handler)
    level = root.level
    if level > logging.INFO or level == logging.NOTSET:
        root.setLevel(logging.INFO)

    def restore() -> None:
        root.removeHandler(handler)
        handler.close()
        for old in removed:
            root.addHandler(old)
        root.setLevel(level)

    return restore
