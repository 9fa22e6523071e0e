"""Keep secrets out of the logs: the bot token, the webhook secret, anything shaped like a token.

:func:`protect_logs` is called once by ``citebot serve`` (and by tests) before the bot starts.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from citebot.config import ConfigError, Settings


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


def install_log_redaction(
    token: str | None, *secrets: str | None, logger: logging.Logger | None = None
) -> RedactingFilter:
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
