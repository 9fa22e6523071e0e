"""A self-contained Telegram Bot API emulator for testing python-telegram-bot bots.

It serves the Bot API over real HTTP on 127.0.0.1 so the real PTB stack can talk to it::

    emu = BotApiEmulator()
    await emu.start()
    app = Application.builder().token(emu.token).base_url(emu.base_url).build()

See :class:`BotApiEmulator` for simulating users and inspecting what the bot did,
:class:`EmulatorThread` for use from synchronous code, and :func:`validate_telegram_html`
/ :func:`utf16_len` for checking message texts the way Telegram does.
"""

from .entities import detect_entities
from .errors import ApiError
from .recorded import RecordedCall
from .server import BotApiEmulator, EmulatorTimeout
from .tg_html import TelegramHtmlError, parse_telegram_html, validate_telegram_html
from .threaded import EmulatorThread
from .urls import check_link
from .utf16 import entity_text, utf16_len, utf16_slice

__all__ = [
    "ApiError",
    "BotApiEmulator",
    "EmulatorThread",
    "EmulatorTimeout",
    "RecordedCall",
    "TelegramHtmlError",
    "check_link",
    "detect_entities",
    "entity_text",
    "parse_telegram_html",
    "utf16_len",
    "utf16_slice",
    "validate_telegram_html",
]
