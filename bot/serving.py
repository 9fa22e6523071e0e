"""Serving the bot: start and stop an Application, long polling or a webhook, the polling guard
against a second instance, and the process signals.

:func:`serve_telegram` is what ``citebot serve`` (:mod:`citebot.serve`) runs with a token: long
polling, or a webhook when ``telegram.webhook_url`` is set, until SIGINT/SIGTERM; SIGHUP rebuilds
the index. The local sandbox (:mod:`bot.sandbox`) starts and stops the bot with the same helpers.

Exit codes: 0 after SIGINT/SIGTERM (answers in flight finish first); 1 the bot could not start
or stopped on an error (e.g. the token was refused); 2 configuration error; 3 another instance
is polling the same token (Telegram answers 409 Conflict). Both, and getUpdates refused (401/404) for
``telegram.polling_refused_grace_seconds``, are told by :class:`bot.polling.PollingGuard`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application

from citebot.config import Settings
from embeddings.memory import freeze_long_lived

from .application import attach_follower, build_application, reload_index, stop_following, stop_seed_watch
from .polling import PollingBot, PollingGuard
from .retriever import Keeper, Retriever

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.INLINE_QUERY]
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_CONFLICT = 0, 1, 2, 3


async def start_bot(
    application: Application,
    *,
    poll_timeout: float = 10.0,
    error_callback: Callable[[TelegramError], None] | None = None,
) -> None:
    """Start an Application inside a running event loop, in the order of ``run_polling``
    (initialize, post_init, polling, start), with long polling. Used by ``serve``, the sandbox
    and tests; webhook mode starts with :func:`bot.webhook.start_webhook`."""
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    updater = application.updater
    if updater is None:
        raise ValueError("the application was built without an Updater: nothing to poll with")
    await updater.start_polling(
        poll_interval=0.0,
        timeout=timedelta(seconds=poll_timeout),
        allowed_updates=ALLOWED_UPDATES,
        error_callback=error_callback,
    )
    await application.start()
    freeze_long_lived()  # what start-up built is kept: full collections need not walk it (a pause)


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


def serve_telegram(
    settings: Settings,
    retriever: Retriever,
    *,
    token: str,
    keeper: Keeper | None = None,
    follower: Any = None,
    **extras: Any,
) -> int:
    """Serve Telegram with ``token`` until stopped; return the exit code (see the module docstring).
    ``follower`` (a read-only replica's ``citebot.replica.IndexFollower``) swaps in the builder's
    builds; ``extras`` go to :func:`bot.application.build_application` (the store, the /gaps report)."""
    guard = PollingGuard(refused_grace_seconds=settings.telegram.polling_refused_grace_seconds)
    application = build_application(settings, retriever, token=token, keeper=keeper, guard=guard, **extras)
    if follower is not None:  # read-only: follows the builder's `current` build, never rebuilds
        attach_follower(application, follower)
    try:
        return asyncio.run(run_bot(application, settings, guard))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return EXIT_OK


def install_signals(stop: asyncio.Event, application: Application) -> Callable[..., None]:
    """SIGINT and SIGTERM set ``stop``; SIGHUP rebuilds the index (like /reload) and logs the
    summary. Returns ``restore(cancel_reloads=True)``, which removes the handlers again (and
    cancels a SIGHUP rebuild still running). Outside the main thread (or where the loop cannot
    take signal handlers) nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        return lambda cancel_reloads=True: None
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task] = set()

    def on_hangup() -> None:
        task = loop.create_task(reload_index(application, "SIGHUP"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    installed = []
    for sig, callback in (
        (signal.SIGINT, stop.set),
        (signal.SIGTERM, stop.set),
        (getattr(signal, "SIGHUP", None), on_hangup),
    ):
        if sig is None:
            continue
        try:
            loop.add_signal_handler(sig, callback)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError, AttributeError):  # Windows, a closed loop
            pass

    def restore(cancel_reloads: bool = True) -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)
        installed.clear()
        if cancel_reloads:
            for task in list(reloads):
                task.cancel()

    return restore


async def run_bot(
    application: Application,
    settings: Settings,
    guard: PollingGuard | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM (or ``stop``, or a Conflict at start-up); return the exit code.

    SIGHUP rebuilds the index (like /reload) and logs the summary (:func:`install_signals`).
    """
    stop = stop or asyncio.Event()
    if guard is None:
        guard = application.bot.guard if isinstance(application.bot, PollingBot) else PollingGuard()
    guard.stop = stop
    restore = install_signals(stop, application)
    code = EXIT_OK
    server = None
    try:
        if settings.telegram.webhook_url:
            from .webhook import start_webhook

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
        restore(cancel_reloads=False)  # a second Ctrl-C while stopping interrupts
        try:
            if server is not None:
                await server.stop()  # no new updates; the answers in flight finish
            await stop_bot(application)
        except Exception as exc:
            log.error("error while stopping: %r", exc)
        restore()
    log.info("stopped" if code == EXIT_OK else f"stopped (exit code {code})")
    return code
