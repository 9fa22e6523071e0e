"""``citebot serve``: the one way the bot is served.

With a token it serves Telegram (:func:`bot.serving.serve_telegram`: long polling, or a webhook
when ``telegram.webhook_url`` is set); without one (or with ``telegram.mode: sandbox``) it runs
the local sandbox on standard input/output (:func:`bot.sandbox.run_sandbox`). In both the index
follows the seeds folder; SIGHUP rebuilds it at once. Exit codes: :mod:`bot.serving`.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from bot.log_limits import limit_repeats
from bot.redaction import protect_logs
from bot.serving import EXIT_CONFIG, EXIT_FAILED, serve_telegram

from .config import ConfigError, Settings
from .service import open_service

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
        service = open_service(settings)
    except Exception as exc:
        log.error("cannot open the index: %s", exc)
        return EXIT_FAILED
    if mode == "sandbox":
        from bot.sandbox import run_sandbox

        for chatty in ("telegram.ext", "botapi_emulator"):  # keep the terminal chat readable
            logging.getLogger(chatty).setLevel(logging.WARNING)
        return run_sandbox(settings, service.searcher, stdin or sys.stdin, stdout or sys.stdout, keeper=service.keeper)
    assert token is not None
    return serve_telegram(settings, service.searcher, token=token, keeper=service.keeper)
