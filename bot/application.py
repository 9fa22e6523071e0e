"""Building the bot's Application: handlers registered, :class:`~bot.state.BotState` filled, the
request layer in place; and, with a keeper, the index following the seeds while the bot runs.

A change of the seeds is picked up by a watcher and swapped in without a gap (questions are
answered from the old index meanwhile); ``/reload`` (admins) and SIGHUP rebuild at once; a failed
rebuild keeps the old index and is sent to the admins. Starting and stopping: :mod:`bot.serving`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from telegram import BotCommand, Update
from telegram.error import TelegramError
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
from telegram.request import BaseRequest

from citebot.config import ConfigError, Settings
from citebot.engine import limit_threads_here
from embeddings.batching import AsyncQueryBatcher
from embeddings.memory import HeapTrimmer, freeze_long_lived
from embeddings.search import SearchResult

from . import handlers
from .aiohttp_request import AiohttpRequest
from .polling import PollingBot, PollingGuard
from .ratelimit import RateLimiter
from .retriever import FeedbackStore, Keeper, RebuildResult, Retriever, answers_batches
from .shared_state import open_state
from .state import CONTEXT_TYPES, BotState
from .transport import BotRequest, OutageQueue, PollingRequest, RetrySchedule, file_url, skip_missing_sniffio

if TYPE_CHECKING:
    from citebot.replica import IndexFollower

log = logging.getLogger(__name__)

COMMANDS = (
    ("start", "What this bot does"),
    ("ask", "Ask a question (in groups)"),
    ("sources", "The documents I quote"),
    ("about", "Version and index"),
    ("help", "How to use the bot"),
)
WATCH_STOP_SECONDS = 10.0  # at shutdown, how long a rebuild in progress may finish before it is cancelled
WATCH_SETTLE_SECONDS = 1.0  # the start-up rebuild waits this long for the watcher to be in place


def build_application(
    settings: Settings,
    retriever: Retriever,
    *,
    base_url: str | None = None,
    token: str | None = None,
    backoff: float = 0.5,
    backoff_cap: float = 10.0,
    read_timeout: float = 15.0,
    keeper: Keeper | None = None,
    watch_seeds: bool = True,
    get_updates_request: BaseRequest | None = None,
    guard: PollingGuard | None = None,
    store: FeedbackStore | None = None,
    coverage: Callable[[], Any] | None = None,
) -> Application:
    """The bot's Application: handlers registered, state in ``bot_data``, not yet running.

    ``base_url`` has python-telegram-bot's meaning (the token is appended), e.g.
    ``http://127.0.0.1:8081/bot``; it defaults to ``settings.telegram.base_url``; ``token``
    defaults to ``settings.bot_token()``. With a ``keeper`` the retriever served is the keeper's
    and the index follows the seeds while the bot runs (:func:`attach_keeper`; the watcher starts
    in ``post_init`` and stops in :func:`bot.serving.stop_bot`; ``watch_seeds=False``: only /reload
    and SIGHUP rebuild). ``get_updates_request`` replaces the request object used for getUpdates;
    ``guard`` is told how polling goes (:class:`bot.polling.PollingGuard`; ``serve`` reads it).
    ``store`` (a :class:`citebot.store.Store`) keeps votes and questions; ``coverage`` makes the
    /gaps report. ``backoff`` and ``backoff_cap`` are the first and the longest wait between
    attempts of a failed Bot API call (:class:`bot.transport.RetrySchedule`).
    """
    telegram = settings.telegram
    token = token or settings.bot_token()
    if not token:
        raise ConfigError("no bot token: set TELEGRAM_BOT_TOKEN")
    base_url = base_url or telegram.base_url
    skip_missing_sniffio()
    http = AiohttpRequest(
        connection_pool_size=max(32, 4 * telegram.workers),
        read_timeout=read_timeout,
        write_timeout=15.0,
        connect_timeout=10.0,
        pool_timeout=10.0,
    )
    bot = PollingBot(
        token,
        guard=guard,
        base_url=base_url,
        base_file_url=file_url(base_url),
        request=BotRequest(
            http,
            schedule=RetrySchedule(first=backoff, cap=backoff_cap, patience=telegram.send_patience_seconds),
            queue=OutageQueue(telegram.send_queue_limit),
        ),
        get_updates_request=get_updates_request or PollingRequest(read_timeout=40.0, connect_timeout=10.0),
        defaults=Defaults(parse_mode="HTML", link_preview_options=handlers.NO_PREVIEW),
    )
    application = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(True)
        .context_types(CONTEXT_TYPES)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    state: BotState = application.bot_data
    state.settings = settings
    state.served = retriever
    # the threads that search get the main thread's limits (one OpenMP thread, embeddings.threads for torch)
    thread_limits = partial(limit_threads_here, settings.embeddings.threads)
    state.executor = ThreadPoolExecutor(
        telegram.workers, thread_name_prefix="citebot-search", initializer=thread_limits
    )
    state.searches = AsyncQueryBatcher(
        partial(search_batch, state),
        name="citebot-search-batch",
        after_batch=HeapTrimmer(settings.embeddings.trim_heap_seconds),  # what the batch's encode freed
        on_start=thread_limits,
    )
    state.shared = open_state(
        telegram.state_url.get_secret_value() if telegram.state_url else None,
        telegram.rate_limit_per_minute,
        bot_id=token.split(":", 1)[0],
        lease_seconds=telegram.update_lease_seconds,
    )
    state.store = store
    state.coverage = coverage
    state.inline_limiter = RateLimiter(telegram.inline_per_minute, 60.0)
    state.button_limiter = RateLimiter(telegram.buttons_per_minute, 60.0)
    if keeper is not None:
        attach_keeper(application, keeper, watch=watch_seeds)
    add_handlers(application)
    return application


def add_handlers(application: Application) -> None:
    new = filters.UpdateType.MESSAGE  # edited messages are ignored
    private = filters.ChatType.PRIVATE
    groups = filters.ChatType.GROUPS
    application.add_handler(TypeHandler(Update, handlers.gate), group=-1)
    for name, callback in (
        ("start", handlers.start),
        ("help", handlers.help_command),
        ("sources", handlers.sources),
        ("about", handlers.about),
        ("ask", handlers.ask),
        ("reload", handlers.reload_command),
        ("gaps", handlers.gaps_command),
    ):
        application.add_handler(CommandHandler(name, callback, filters=new))
    application.add_handler(MessageHandler(new & private & filters.COMMAND, handlers.unknown_command))
    text = filters.TEXT & ~filters.COMMAND
    application.add_handler(MessageHandler(new & private & text, handlers.private_text))
    application.add_handler(MessageHandler(new & groups & text, handlers.group_text))
    application.add_handler(
        MessageHandler(new & private & ~filters.TEXT & ~filters.StatusUpdate.ALL, handlers.private_other)
    )
    application.add_handler(CallbackQueryHandler(handlers.button))
    application.add_handler(InlineQueryHandler(handlers.inline_query))
    application.add_error_handler(handlers.on_error)


async def _post_init(application: Application) -> None:
    if isinstance(application.bot_data, BotState):
        await application.bot_data.shared.start()
    try:
        await application.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
    except TelegramError as exc:
        log.warning("could not register the bot's commands (setMyCommands): %s", exc)
    except Exception as exc:  # never fatal
        log.warning("could not register the bot's commands (setMyCommands): %r", exc)
    start_seed_watch(application)
    start_following(application)


def search_batch(state: BotState, questions: Sequence[str], k: int, offset: int) -> list[SearchResult]:
    """One batch of questions for the retriever serving now (a rebuild's from the next batch)."""
    retriever = state.retriever
    if answers_batches(retriever):  # a Searcher: one encode for the batch
        return retriever.search_many(questions, k, offset)  # type: ignore[attr-defined]
    return [retriever.search(q, k, offset) for q in questions]


async def _post_shutdown(application: Application) -> None:
    await stop_seed_watch(application)
    await stop_following(application)
    executor = application.bot_data.executor
    if executor is not None:
        await asyncio.to_thread(executor.shutdown, True)
    searches = application.bot_data.searches
    if searches is not None:
        await asyncio.to_thread(searches.close, 30.0)
    if isinstance(application.bot_data, BotState):
        await application.bot_data.shared.close()


# ---------------------------------------------------------------- a replica follows the builder's index


def attach_follower(application: Application, follower: IndexFollower) -> None:
    """Serve ``follower``'s searcher and every build it swaps in (a read-only replica)."""
    state: BotState = application.bot_data
    state.follower = follower
    state.served = follower.searcher

    def on_swap(searcher: Retriever) -> None:
        state.served = searcher
        freeze_long_lived()  # the new index's objects, as at start-up (bot.serving.start_bot)

    follower.on_swap = on_swap


def start_following(application: Application) -> None:
    state = application.bot_data
    if not isinstance(state, BotState) or state.follower is None or state.following is not None:
        return
    stop = asyncio.Event()
    state.following = (asyncio.create_task(state.follower.follow(stop), name="citebot-index-follower"), stop)


async def stop_following(application: Application) -> None:
    state = application.bot_data
    if not isinstance(state, BotState) or state.following is None:
        return
    following, state.following = state.following, None
    task, stop = following
    stop.set()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, WATCH_STOP_SECONDS)


# ------------------------------------------------------------------------- the index follows the seeds


def attach_keeper(application: Application, keeper: Keeper, *, watch: bool = True) -> None:
    """Let ``keeper`` own the application's retriever: a rebuilt index replaces
    ``bot_data.served`` (handlers read it on every request, so the next question uses it and
    the ones in flight finish with the old one), and a failed rebuild is sent to the admins.
    With ``watch`` the seeds folder is watched while the bot runs; without, the index changes
    only on /reload or SIGHUP (e.g. where file notifications don't work)."""
    state: BotState = application.bot_data
    state.keeper = keeper
    state.watch_seeds = watch
    state.served = keeper.searcher

    def on_swap(retriever: Any) -> None:
        state.served = retriever
        freeze_long_lived()  # the new index's objects, as at start-up (bot.serving.start_bot)

    async def on_error(message: str) -> None:
        await handlers.notify_admins(application, message)

    keeper.on_swap = on_swap
    keeper.on_error = on_error


def start_seed_watch(application: Application) -> asyncio.Task | None:
    """Start following the seeds in the background (called at start-up by ``post_init``): one
    incremental rebuild first (changes made while the bot was down), then the watcher; and, in
    every mode, the keeper following the ``current`` link (a build another builder published)."""
    state = application.bot_data
    if not isinstance(state, BotState) or state.keeper is None or state.seed_watch:
        return None
    keeper = state.keeper
    stop = asyncio.Event()
    task = asyncio.create_task(_follow_seeds(application, keeper, stop, state.watch_seeds), name="citebot-seed-watch")
    state.seed_watch = (task, stop)
    return task


async def _follow_seeds(application: Application, keeper: Keeper, stop: asyncio.Event, watch: bool) -> None:
    follower = asyncio.create_task(keeper.follow(stop), name="citebot-current-follower")
    if not watch:
        await follower
        return
    watcher = asyncio.create_task(keeper.watch(stop), name="citebot-seed-watcher")
    try:
        # let the watcher settle first, so that a change is seen by the watcher or by this rebuild
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCH_SETTLE_SECONDS)
        if not stop.is_set():
            await keeper.rebuild()  # changes made while the bot was down
        await watcher
        await follower
    except asyncio.CancelledError:
        watcher.cancel()
        follower.cancel()
        raise
    except Exception as exc:  # the bot keeps serving the index it has (and following `current`)
        watcher.cancel()
        log.error("watching the seeds failed, the index no longer follows them: %r", exc, exc_info=exc)
        await handlers.notify_admins(
            application,
            f"watching the seeds failed: {type(exc).__name__}: {exc}; the index no longer follows them (use /reload)",
        )
        await follower


async def stop_seed_watch(application: Application, timeout: float | None = None) -> None:
    """Stop the watcher; a rebuild in progress gets ``timeout`` seconds to finish, then it is
    abandoned (its worker thread finishes the build on disk; the bot just doesn't swap it in)."""
    state = application.bot_data
    if not isinstance(state, BotState):  # an Application not made by build_application (tests, tools)
        return
    running, state.seed_watch = state.seed_watch, None
    if running is None:
        return
    task, stop = running
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


async def reload_index(application: Application, reason: str, *, force: bool = False) -> RebuildResult | None:
    """Rebuild now (SIGHUP does this) and log the summary."""
    keeper = getattr(application.bot_data, "keeper", None)
    if keeper is None:
        log.warning("%s: no index keeper, nothing to reload", reason)
        return None
    log.info("%s: rebuilding the index", reason)
    outcome = await keeper.rebuild(force=force)
    log.info("%s: %s", reason, outcome.summary())
    return outcome
