"""Wiring the bot: the Application, the request layer with retries, log redaction and ``serve``.

``serve(settings)`` is what ``citebot serve`` calls: with a token it runs the real bot (long
polling, or a webhook when ``telegram.webhook_url`` is set); without one it runs the local
sandbox (:mod:`bot.sandbox`). While it runs, the index follows the seeds folder
(:class:`citebot.lifecycle.IndexKeeper`): a change is picked up by a watcher and swapped in
without a gap (questions are answered from the old index meanwhile); ``/reload`` (admins) and
SIGHUP rebuild at once; a failed rebuild keeps the old index and is sent to the admins.

Exit codes: 0 after SIGINT/SIGTERM (answers in flight finish first); 1 the bot could not start
or stopped on an error (e.g. the token was refused); 2 configuration error; 3 another instance
is polling the same token (Telegram answers 409 Conflict). Both, and getUpdates refused (401/404) for
``telegram.polling_refused_grace_seconds``, are told by :class:`bot.polling.PollingGuard`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
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
from citebot.lifecycle import IndexKeeper, RebuildOutcome

from . import handlers
from .log_limits import limit_repeats
from .polling import PollingBot, PollingGuard
from .shared_state import open_state
from .webhook import start_webhook

log = logging.getLogger(__name__)

COMMANDS = (
    ("start", "What this bot does"),
    ("ask", "Ask a question (in groups)"),
    ("sources", "The documents I quote"),
    ("about", "Version and index"),
    ("help", "How to use the bot"),
)
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.INLINE_QUERY]

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_CONFLICT = 0, 1, 2, 3
WATCH_STOP_SECONDS = 10.0  # at shutdown, how long a rebuild in progress may finish before it is cancelled
WATCH_SETTLE_SECONDS = 1.0  # the start-up rebuild waits this long for the watcher to be in place
WATCH = "seed_watch"  # bot_data key: (task, stop event) of the seeds watcher
WATCH_WANTED = "watch_seeds"  # bot_data key: whether post_init starts the watcher


# ------------------------------------------------------------------------------ log redaction

class RedactingFilter(logging.Filter):
    """Replace the secrets (bot token, webhook secret), any ``/bot<token>`` in a URL and anything
    shaped like a bot token with ``<redacted>`` in log records (message, arguments, exception
    text and stack)."""

    _BOT_PATH = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")
    _TOKEN_SHAPE = re.compile(r"\b\d{6,}:[A-Za-z0-9_-]{30,}")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str | None]) -> None:
        for secret in secrets:
            if secret and secret not in self.secrets:
                self.secrets.append(secret)
        self.secrets.sort(key=len, reverse=True)  # a secret inside another is replaced after it

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<redacted>")
        text = self._BOT_PATH.sub("/bot<redacted>", text)
        return self._TOKEN_SHAPE.sub("<redacted>", text)

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


_RECORDS = RedactingFilter()  # applied to every log record as it is made, see _redacting_factory
_factory_lock = threading.Lock()


def install_log_redaction(token: str | None, *secrets: str | None,
                          logger: logging.Logger | None = None) -> RedactingFilter:
    """Keep the token (and the other ``secrets``, e.g. the webhook secret) out of the logs.

    Quiets httpx/httpcore (they log request URLs at INFO), redacts every handler of ``logger``
    (the root logger by default) and, so that handlers added later and records of any logger
    are covered too, redacts every log record as it is created (a log record factory).
    """
    for name in ("httpx", "httpcore"):
        noisy = logging.getLogger(name)
        if noisy.getEffectiveLevel() < logging.WARNING:
            noisy.setLevel(logging.WARNING)
    redacting = RedactingFilter([token, *secrets])
    for handler in (logger or logging.getLogger()).handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(redacting)
    _RECORDS.add([token, *secrets])
    with _factory_lock:
        current = logging.getLogRecordFactory()
        if not getattr(current, "citebot_redacting", False):
            logging.setLogRecordFactory(_redacting_factory(current))
    return redacting


def protect_logs(settings: Settings, token: str | None = None) -> RedactingFilter:
    """:func:`install_log_redaction` for everything secret in ``settings``: the bot token (given,
    or from the settings) and the webhook secret. ``serve`` calls this first."""
    if token is None:
        with contextlib.suppress(ConfigError):
            token = settings.bot_token()
    webhook = settings.telegram.webhook_secret
    state = settings.telegram.state_url
    # of the state URL only its password is secret: the host and port help reading the logs
    password = urlsplit(state.get_secret_value()).password if state else None
    return install_log_redaction(token, webhook.get_secret_value() if webhook else None, password)


def _redacting_factory(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        _RECORDS.filter(record)
        return record

    factory.citebot_redacting = True  # type: ignore[attr-defined]
    factory.wrapped = make  # type: ignore[attr-defined]
    return factory


def remove_log_redaction_factory() -> None:
    """Undo the record factory of :func:`install_log_redaction` (tests)."""
    with _factory_lock:
        current = logging.getLogRecordFactory()
        if getattr(current, "citebot_redacting", False):
            logging.setLogRecordFactory(current.wrapped)  # type: ignore[attr-defined]
        _RECORDS.secrets.clear()


# ------------------------------------------------------------------------------- request layer

def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class RetryingRequest(HTTPXRequest):
    """HTTPXRequest that waits out flood control (429 ``retry_after``) and retries network errors,
    timeouts and 5xx answers with exponential backoff (by default 5 retries, 0.5 s doubling: an
    answer survives about 15 s of trouble before the question is given up).

    Delivery is at least once. A request refused by flood control or a 5xx was not carried out,
    and a connection that could not be made never reached Telegram, so retrying those delivers a
    message exactly once. A connection lost or a read timing out *after* the request was sent is
    ambiguous: Telegram may have carried it out, and the Bot API has no idempotency key, so the
    retry may send a message twice. We retry anyway: a rare duplicate answer is better than a
    question left without one. (The project's emulator drops connections and cuts slow answers
    before carrying the call out, so in tests every failed attempt is a clean one.) Where the
    duplicate is detectable it is absorbed: answering a callback or inline query that the lost
    attempt already answered returns "query is too old"/"query ID is invalid", which a retry
    takes as success.
    """

    _ANSWERED = ("query is too old", "query id is invalid")
    _QUERY_METHODS = ("answerCallbackQuery", "answerInlineQuery")

    def __init__(self, *args: Any, retries: int = 5, backoff: float = 0.5, max_flood_wait: float = 120.0,
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
            except BadRequest as exc:
                if failures and _method(url) in self._QUERY_METHODS and any(
                        text in exc.message.lower() for text in self._ANSWERED):
                    log.info("%s: the attempt that failed had gone through (%s)", _method(url), exc.message)
                    return True
                raise
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
    await application.bot_data[handlers.STATE].start()
    try:
        await application.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
    except TelegramError as exc:
        log.warning("could not register the bot's commands (setMyCommands): %s", exc)
    except Exception as exc:  # never fatal
        log.warning("could not register the bot's commands (setMyCommands): %r", exc)
    start_seed_watch(application)
    start_following(application)


async def _post_shutdown(application: Application) -> None:
    await stop_seed_watch(application)
    await stop_following(application)
    executor = application.bot_data.get(handlers.EXECUTOR)
    if executor is not None:
        await asyncio.to_thread(executor.shutdown, True)
    await application.bot_data[handlers.STATE].close()


# ---------------------------------------------------------------- a replica follows the builder's index

FOLLOWER = "index_follower"  # bot_data key: citebot.replica.IndexFollower of a read-only replica
FOLLOWING = "index_following"  # bot_data key: (task, stop event) of the follower


def attach_follower(application: Application, follower: Any) -> None:
    """Serve ``follower``'s searcher and every build it swaps in (a read-only replica)."""
    application.bot_data[FOLLOWER] = follower
    application.bot_data[handlers.SEARCHER] = follower.searcher

    def on_swap(searcher: Any) -> None:
        application.bot_data[handlers.SEARCHER] = searcher

    follower.on_swap = on_swap


def start_following(application: Application) -> None:
    follower = application.bot_data.get(FOLLOWER)
    if follower is None or FOLLOWING in application.bot_data:
        return
    stop = asyncio.Event()
    task = asyncio.create_task(follower.follow(stop), name="citebot-index-follower")
    application.bot_data[FOLLOWING] = (task, stop)


async def stop_following(application: Application) -> None:
    state = application.bot_data.pop(FOLLOWING, None)
    if state is None:
        return
    task, stop = state
    stop.set()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, WATCH_STOP_SECONDS)


# ------------------------------------------------------------------------- the index follows the seeds

def attach_keeper(application: Application, keeper: IndexKeeper, *, watch: bool = True) -> None:
    """Let ``keeper`` own the application's searcher: a rebuilt index replaces
    ``bot_data[SEARCHER]`` (handlers read it on every request, so the next question uses it and
    the ones in flight finish with the old one), and a failed rebuild is sent to the admins.
    With ``watch`` the seeds folder is watched while the bot runs; without, the index changes
    only on /reload or SIGHUP (e.g. where file notifications don't work)."""
    application.bot_data[handlers.KEEPER] = keeper
    application.bot_data[WATCH_WANTED] = watch
    application.bot_data[handlers.SEARCHER] = keeper.searcher

    def on_swap(searcher: Any) -> None:
        application.bot_data[handlers.SEARCHER] = searcher

    async def on_error(message: str) -> None:
        await handlers.notify_admins(application, message)

    keeper.on_swap = on_swap
    keeper.on_error = on_error


def start_seed_watch(application: Application) -> asyncio.Task | None:
    """Start following the seeds in the background (called at start-up by ``post_init``): one
    incremental rebuild first (changes made while the bot was down), then the watcher."""
    keeper = application.bot_data.get(handlers.KEEPER)
    if keeper is None or not application.bot_data.get(WATCH_WANTED) or WATCH in application.bot_data:
        return None
    stop = asyncio.Event()
    task = asyncio.create_task(_follow_seeds(application, keeper, stop), name="citebot-seed-watch")
    application.bot_data[WATCH] = (task, stop)
    return task


async def _follow_seeds(application: Application, keeper: IndexKeeper, stop: asyncio.Event) -> None:
    watcher = asyncio.create_task(keeper.watch(stop), name="citebot-seed-watcher")
    try:
        # let the watcher settle first, so that a change is seen by the watcher or by this rebuild
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCH_SETTLE_SECONDS)
        if not stop.is_set():
            await keeper.rebuild()  # changes made while the bot was down
        await watcher
    except asyncio.CancelledError:
        watcher.cancel()
        raise
    except Exception as exc:  # the bot keeps serving the index it has
        watcher.cancel()
        log.error("watching the seeds failed, the index no longer follows them: %r", exc, exc_info=exc)
        await handlers.notify_admins(application, f"watching the seeds failed: {type(exc).__name__}: {exc}; "
                                                  "the index no longer follows them (use /reload)")


async def stop_seed_watch(application: Application, timeout: float | None = None) -> None:
    """Stop the watcher; a rebuild in progress gets ``timeout`` seconds to finish, then it is
    abandoned (its worker thread finishes the build on disk; the bot just doesn't swap it in)."""
    state = application.bot_data.pop(WATCH, None)
    if state is None:
        return
    task, stop = state
    stop.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), WATCH_STOP_SECONDS if timeout is None else timeout)
    except TimeoutError:
        log.warning("a rebuild was still running at shutdown: abandoned")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    except Exception:  # already logged by _follow_seeds
        pass


async def reload_index(application: Application, reason: str, *, force: bool = False) -> RebuildOutcome | None:
    """Rebuild now (SIGHUP does this) and log the summary."""
    keeper = application.bot_data.get(handlers.KEEPER)
    if keeper is None:
        log.warning("%s: no index keeper, nothing to reload", reason)
        return None
    log.info("%s: rebuilding the index", reason)
    outcome = await keeper.rebuild(force=force)
    log.info("%s: %s", reason, outcome.summary())
    return outcome


def build_application(settings: Settings, searcher: Any, *, base_url: str | None = None,
                      token: str | None = None, retries: int = 5, backoff: float = 0.5,
                      keeper: IndexKeeper | None = None, watch_seeds: bool = True,
                      get_updates_request: HTTPXRequest | None = None,
                      guard: PollingGuard | None = None) -> Application:
    """The bot's Application: handlers registered, state in ``bot_data``, not yet running.

    ``base_url`` has python-telegram-bot's meaning (the token is appended), e.g.
    ``http://127.0.0.1:8081/bot``; it defaults to ``settings.telegram.base_url``; ``token``
    defaults to ``settings.bot_token()``. With a ``keeper`` the searcher served is the keeper's
    and the index follows the seeds while the bot runs (:func:`attach_keeper`; the watcher starts
    in ``post_init`` and stops in :func:`stop_bot`; ``watch_seeds=False``: only /reload and
    SIGHUP rebuild). ``get_updates_request`` replaces the request object used for getUpdates;
    ``guard`` is told how polling goes (:class:`bot.polling.PollingGuard`; ``serve`` reads it).
    """
    telegram = settings.telegram
    token = token or settings.bot_token()
    if not token:
        raise ConfigError("no bot token: set TELEGRAM_BOT_TOKEN")
    base_url = base_url or telegram.base_url
    skip_missing_sniffio()
    request = RetryingRequest(connection_pool_size=max(32, 4 * telegram.workers), read_timeout=15.0,
                              write_timeout=15.0, connect_timeout=10.0, pool_timeout=10.0,
                              retries=retries, backoff=backoff)
    bot = PollingBot(token, guard=guard, base_url=base_url, base_file_url=_file_url(base_url), request=request,
                     get_updates_request=get_updates_request or HTTPXRequest(read_timeout=40.0, connect_timeout=10.0),
                     defaults=Defaults(parse_mode="HTML", link_preview_options=handlers.NO_PREVIEW))
    application = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(True)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    application.bot_data.update({
        handlers.SETTINGS: settings,
        handlers.SEARCHER: searcher,
        handlers.EXECUTOR: ThreadPoolExecutor(telegram.workers, thread_name_prefix="citebot-search"),
        handlers.STATE: open_state(telegram.state_url.get_secret_value() if telegram.state_url else None,
                                   telegram.rate_limit_per_minute, bot_id=token.split(":", 1)[0],
                                   lease_seconds=telegram.update_lease_seconds),
    })
    if keeper is not None:
        attach_keeper(application, keeper, watch=watch_seeds)
    add_handlers(application)
    return application


def skip_missing_sniffio() -> None:
    """Make ``import sniffio`` fail at once when sniffio is not installed.

    httpcore asks ``import sniffio`` (to tell asyncio from trio) each time a connection-pool lock
    is set up: about ten times per answer. A failed import is not remembered, so each one searched
    every folder of ``sys.path`` again, dozens of ``stat`` calls on the event loop per answer
    (about 2 ms of it per question at 20 users, bench/roundtrip.py --profile). With ``None`` in
    ``sys.modules`` the import fails immediately and httpcore takes asyncio, as it did anyway."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


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
                           ("sources", handlers.sources), ("about", handlers.about), ("ask", handlers.ask),
                           ("reload", handlers.reload_command)):
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


async def start_bot(application: Application, *, poll_timeout: float = 10.0,
                    error_callback: Callable[[TelegramError], None] | None = None) -> None:
    """Start an Application inside a running event loop, in the order of ``run_polling``
    (initialize, post_init, polling, start), with long polling. Used by ``serve``, the sandbox
    and tests; the webhook mode starts with :func:`bot.webhook.start_webhook`."""
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    await application.updater.start_polling(poll_interval=0.0, timeout=timedelta(seconds=poll_timeout),
                                            allowed_updates=ALLOWED_UPDATES, error_callback=error_callback)
    await application.start()


async def stop_bot(application: Application) -> None:
    """Stop what :func:`start_bot` started: the seeds watcher first, then no more updates;
    answers in flight finish before the application shuts down."""
    await stop_seed_watch(application)
    await stop_following(application)
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
    """The model and the index (built first if there is none usable; a replica never builds),
    as a searcher."""
    from citebot import engine

    if settings.index.replica:
        return engine.make_searcher(settings, engine.load_encoder(settings), engine.open_index(settings))
    return engine.open_searcher(settings)


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limit_repeats()  # one cause repeating in a loop must not fill the disk


def serve(settings: Settings, *, stdin: Any = None, stdout: Any = None) -> int:
    """Run the bot until stopped; return the exit code (see the module docstring).

    Long polling by default; a webhook when ``telegram.webhook_url`` is set. Without a token (or
    with ``telegram.mode: sandbox``) it runs the local sandbox on standard input/output. In both
    the index follows the seeds folder; SIGHUP rebuilds it at once.
    """
    _configure_logging()
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
        searcher = load_searcher(settings)
    except Exception as exc:
        log.error("cannot open the index: %s", exc)
        return EXIT_FAILED
    keeper = None if settings.index.replica else IndexKeeper(settings, searcher.encoder, searcher)
    if mode == "sandbox":
        from .sandbox import run_sandbox

        for chatty in ("telegram.ext", "botapi_emulator"):  # keep the terminal chat readable
            logging.getLogger(chatty).setLevel(logging.WARNING)

        return run_sandbox(settings, searcher, stdin or sys.stdin, stdout or sys.stdout, keeper=keeper)
    guard = PollingGuard(refused_grace_seconds=settings.telegram.polling_refused_grace_seconds)
    application = build_application(settings, searcher, token=token, keeper=keeper, guard=guard)
    if settings.index.replica:
        from citebot.replica import IndexFollower

        attach_follower(application, IndexFollower(settings, searcher.encoder, searcher))
    try:
        return asyncio.run(run_bot(application, settings, guard))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return EXIT_OK


async def run_bot(application: Application, settings: Settings, guard: PollingGuard | None = None,
                  *, stop: asyncio.Event | None = None) -> int:
    """Serve until SIGINT/SIGTERM (or ``stop``, or a Conflict at start-up); return the exit code.

    SIGHUP rebuilds the index (like /reload) and logs the summary.
    """
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    if guard is None:
        guard = application.bot.guard if isinstance(application.bot, PollingBot) else PollingGuard()
    guard.stop = stop
    background: set[asyncio.Task] = set()

    def on_hangup() -> None:
        task = loop.create_task(reload_index(application, "SIGHUP"))
        background.add(task)
        task.add_done_callback(background.discard)

    installed = []
    for sig, callback in ((signal.SIGINT, stop.set), (signal.SIGTERM, stop.set), (signal.SIGHUP, on_hangup)):
        try:
            loop.add_signal_handler(sig, callback)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError, AttributeError):  # not the main thread, Windows
            pass
    code = EXIT_OK
    server = None
    try:
        if settings.telegram.webhook_url:
            server = await start_webhook(application, settings)
        else:
            log.info("serving by long polling")
            guard.polling_started()
            await start_bot(application, error_callback=guard)
        await stop.wait()
        if guard.conflict is not None:
            code = EXIT_CONFLICT
        elif guard.fatal is not None:
            code = EXIT_FAILED
    except TelegramError as exc:
        log.error("the bot stopped: %s", exc)
        code = EXIT_FAILED
    except OSError as exc:  # e.g. the webhook port is taken
        log.error("the bot stopped: %s", exc)
        code = EXIT_FAILED
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        try:
            if server is not None:
                await server.stop()  # no new updates; the answers in flight finish
            await stop_bot(application)
        except Exception as exc:
            log.error("error while stopping: %r", exc)
        for task in list(background):
            task.cancel()
    log.info("stopped" if code == EXIT_OK else f"stopped (exit code {code})")
    return code
