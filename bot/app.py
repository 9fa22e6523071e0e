"""Wiring the bot: the Application, the request layer with retries, log redaction and ``serve``.

``serve(settings)`` is what ``citebot serve`` calls: with a token it runs the real bot (long
polling, or a webhook when ``telegram.webhook_url`` is set); without one it runs the local
sandbox (:mod:`bot.sandbox`). SIGINT/SIGTERM stop fetching updates, let the answers in flight
finish and return 0.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import sys
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from telegram import BotCommand, Update
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    Defaults,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from citebot.config import ConfigError, Settings

from . import handlers
from .ratelimit import RateLimiter
from .state import QueryCache

log = logging.getLogger(__name__)

COMMANDS = (
    ("start", "What this bot does"),
    ("ask", "Ask a question (in groups)"),
    ("sources", "The documents I quote"),
    ("about", "Version and index"),
    ("help", "How to use the bot"),
)
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.INLINE_QUERY]


# ------------------------------------------------------------------------------ log redaction

class RedactingFilter(logging.Filter):
    """Replace the bot token, and any ``/bot<token>`` in a URL, with ``<redacted>`` in log records
    (message, arguments and exception text). Install it on handlers so that it sees records
    propagated from every logger."""

    _BOT_PATH = re.compile(r"/bot[^/\s'\"?]+")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<redacted>")
        return self._BOT_PATH.sub("/bot<redacted>", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the record as it is
            return True
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_log_redaction(token: str | None, logger: logging.Logger | None = None) -> RedactingFilter:
    """Keep the token out of the logs: quiet httpx/httpcore (they log request URLs at INFO) and
    redact every handler of ``logger`` (the root logger by default)."""
    for name in ("httpx", "httpcore"):
        noisy = logging.getLogger(name)
        if noisy.getEffectiveLevel() < logging.WARNING:
            noisy.setLevel(logging.WARNING)
    redacting = RedactingFilter([token])
    for handler in (logger or logging.getLogger()).handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(redacting)
    return redacting


# ------------------------------------------------------------------------------- request layer

def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class RetryingRequest(HTTPXRequest):
    """HTTPXRequest that waits out flood control (429 ``retry_after``) and retries network errors
    and timeouts with exponential backoff. A request refused by flood control was not carried
    out, so retrying it delivers the message exactly once."""

    def __init__(self, *args: Any, retries: int = 3, backoff: float = 0.5, max_flood_wait: float = 120.0,
                 flood_retries: int = 5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retries = retries
        self.backoff = backoff
        self.max_flood_wait = max_flood_wait
        self.flood_retries = flood_retries

    async def post(self, url: str, request_data: Any = None, *args: Any, **kwargs: Any) -> Any:
        failures = floods = 0
        while True:
            try:
                return await super().post(url, request_data, *args, **kwargs)
            except RetryAfter as exc:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    wait = _seconds(exc.retry_after)
                floods += 1
                if floods > self.flood_retries or wait > self.max_flood_wait:
                    raise
                log.warning("flood control: waiting %.1f s before retrying %s", wait, _method(url))
                await asyncio.sleep(wait + 0.05)
            except NetworkError as exc:  # includes TimedOut; BadRequest is a client error
                if isinstance(exc, BadRequest) or failures >= self.retries:
                    raise
                delay = self.backoff * 2**failures
                failures += 1
                log.warning("%s failed (%s): retry %d/%d in %.1f s", _method(url), exc.message, failures,
                            self.retries, delay)
                await asyncio.sleep(delay)


def _method(url: str) -> str:
    return url.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------------- application

async def _post_init(application: Application) -> None:
    try:
        await application.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
    except TelegramError as exc:
        log.warning("could not register the bot's commands (setMyCommands): %s", exc)
    except Exception as exc:  # never fatal
        log.warning("could not register the bot's commands (setMyCommands): %r", exc)


async def _post_shutdown(application: Application) -> None:
    executor = application.bot_data.get(handlers.EXECUTOR)
    if executor is not None:
        await asyncio.to_thread(executor.shutdown, True)


def build_application(settings: Settings, searcher: Any, *, base_url: str | None = None,
                      token: str | None = None, retries: int = 3, backoff: float = 0.5) -> Application:
    """The bot's Application: handlers registered, state in ``bot_data``, not yet running.

    ``base_url`` has python-telegram-bot's meaning (the token is appended), e.g.
    ``http://127.0.0.1:8081/bot``; it defaults to ``settings.telegram.base_url``; ``token``
    defaults to ``settings.bot_token()``.
    """
    telegram = settings.telegram
    token = token or settings.bot_token()
    if not token:
        raise ConfigError("no bot token: set TELEGRAM_BOT_TOKEN")
    base_url = base_url or telegram.base_url
    request = RetryingRequest(connection_pool_size=max(32, 4 * telegram.workers), read_timeout=15.0,
                              write_timeout=15.0, connect_timeout=10.0, pool_timeout=10.0,
                              retries=retries, backoff=backoff)
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(_file_url(base_url))
        .request(request)
        .get_updates_request(HTTPXRequest(read_timeout=40.0, connect_timeout=10.0))
        .concurrent_updates(True)
        .defaults(Defaults(parse_mode="HTML", link_preview_options=handlers.NO_PREVIEW))
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    application.bot_data.update({
        handlers.SETTINGS: settings,
        handlers.SEARCHER: searcher,
        handlers.EXECUTOR: ThreadPoolExecutor(telegram.workers, thread_name_prefix="citebot-search"),
        handlers.QUERIES: QueryCache(),
        handlers.LIMITER: RateLimiter(telegram.rate_limit_per_minute, 60.0),
    })
    add_handlers(application)
    return application


def _file_url(base_url: str) -> str:
    """The file URL that goes with a Bot API base URL (``.../bot`` → ``.../file/bot``)."""
    if base_url.endswith("/bot"):
        return base_url[: -len("bot")] + "file/bot"
    return base_url


def add_handlers(application: Application) -> None:
    new = filters.UpdateType.MESSAGE  # edited messages are ignored
    private = filters.ChatType.PRIVATE
    groups = filters.ChatType.GROUPS
    application.add_handler(TypeHandler(Update, handlers.gate), group=-1)
    for name, callback in (("start", handlers.start), ("help", handlers.help_command),
                           ("sources", handlers.sources), ("about", handlers.about), ("ask", handlers.ask)):
        application.add_handler(CommandHandler(name, callback, filters=new))
    application.add_handler(MessageHandler(new & private & filters.COMMAND, handlers.unknown_command))
    text = filters.TEXT & ~filters.COMMAND
    application.add_handler(MessageHandler(new & private & text, handlers.private_text))
    application.add_handler(MessageHandler(new & groups & text, handlers.group_text))
    application.add_handler(MessageHandler(new & private & ~filters.TEXT & ~filters.StatusUpdate.ALL,
                                           handlers.private_other))
    application.add_handler(CallbackQueryHandler(handlers.button))
    application.add_handler(InlineQueryHandler(handlers.inline_query))
    application.add_error_handler(handlers.on_error)


async def start_bot(application: Application, *, poll_timeout: float = 10.0) -> None:
    """Start an Application with long polling inside a running event loop, in the order of
    ``run_polling`` (initialize, post_init, polling, start). Used by the sandbox and tests."""
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    await application.updater.start_polling(poll_interval=0.0, timeout=timedelta(seconds=poll_timeout),
                                            allowed_updates=ALLOWED_UPDATES)
    await application.start()


async def stop_bot(application: Application) -> None:
    """Stop what :func:`start_bot` started: no more updates, answers in flight finish first."""
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()
        if application.post_stop is not None:
            await application.post_stop(application)
    await application.shutdown()
    if application.post_shutdown is not None:
        await application.post_shutdown(application)


# --------------------------------------------------------------------------------------- serve

def load_searcher(settings: Settings) -> Any:
    """The model and the index (built first if there is none usable), as a searcher."""
    from citebot import engine

    return engine.open_searcher(settings)


def webhook_options(settings: Settings) -> dict[str, Any]:
    """Arguments of ``run_webhook``/``Updater.start_webhook`` for ``telegram.webhook_*``: the bot
    listens on ``webhook_listen:webhook_port`` at the path of ``webhook_url`` (a reverse proxy
    terminates TLS) and Telegram must send ``webhook_secret`` in X-Telegram-Bot-Api-Secret-Token."""
    telegram = settings.telegram
    if not telegram.webhook_url:
        raise ConfigError("telegram.webhook_url is not set")
    secret = telegram.webhook_secret.get_secret_value() if telegram.webhook_secret else None
    return {
        "listen": telegram.webhook_listen,
        "port": telegram.webhook_port,
        "url_path": urlsplit(telegram.webhook_url).path.lstrip("/"),
        "webhook_url": telegram.webhook_url,
        "secret_token": secret or None,
    }


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def serve(settings: Settings, *, stdin: Any = None, stdout: Any = None) -> int:
    """Run the bot until stopped; return the exit code (0 after SIGINT/SIGTERM).

    Long polling by default; a webhook when ``telegram.webhook_url`` is set. Without a token (or
    with ``telegram.mode: sandbox``) it runs the local sandbox on standard input/output.
    """
    _configure_logging()
    try:
        token = settings.bot_token()
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    install_log_redaction(token)
    mode = settings.telegram.mode
    if mode == "auto":
        mode = "telegram" if token else "sandbox"
    if mode == "telegram" and not token:
        log.error("telegram.mode is 'telegram' but there is no token: set TELEGRAM_BOT_TOKEN")
        return 2
    try:
        searcher = load_searcher(settings)
    except Exception as exc:
        log.error("cannot open the index: %s", exc)
        return 1
    if mode == "sandbox":
        from .sandbox import run_sandbox

        for chatty in ("telegram.ext", "botapi_emulator"):  # keep the terminal chat readable
            logging.getLogger(chatty).setLevel(logging.WARNING)

        return run_sandbox(settings, searcher, stdin or sys.stdin, stdout or sys.stdout)
    application = build_application(settings, searcher, token=token)
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    try:
        if settings.telegram.webhook_url:
            options = webhook_options(settings)
            log.info("serving by webhook on %s:%d", options["listen"], options["port"])
            application.run_webhook(**options, allowed_updates=ALLOWED_UPDATES, stop_signals=stop_signals,
                                    close_loop=False)
        else:
            log.info("serving by long polling")
            application.run_polling(allowed_updates=ALLOWED_UPDATES, stop_signals=stop_signals,
                                    close_loop=False)
    except TelegramError as exc:
        log.error("the bot stopped: %s", exc)
        return 1
    log.info("stopped")
    return 0
