"""The local sandbox: the real bot against the project's Bot API emulator, chatting in a terminal.

``citebot serve`` without a token ends up here (:mod:`citebot.serve`). Every line read from ``stdin`` is sent as a
private message of one simulated user; every reply of the bot is printed as plain text (HTML
stripped, links shown, buttons listed and numbered: typing ``#N`` presses button N of the last
answer). End of input stops everything once the answers to all lines have arrived; SIGINT and
SIGTERM stop it early (the answer in flight still finishes). Nothing leaves 127.0.0.1.

With an index keeper (``serve`` passes one) the index follows the seeds folder as in the real
bot; the sandbox user is an administrator, so ``/reload`` works, and SIGHUP rebuilds too.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from telegram import Update
from telegram.ext import Application, TypeHandler

from botapi_emulator.server import BotApiEmulator
from botapi_emulator.utf16 import utf16_slice
from citebot.config import Settings

from .application import build_application
from .retriever import Keeper, Retriever
from .serving import install_signals, start_bot, stop_bot

SANDBOX_TOKEN = "1000001:citebot-local-sandbox"
SANDBOX_USERNAME = "citebot_sandbox_bot"
SANDBOX_USER_ID = 777000001
_PRESS = re.compile(r"#(\d{1,3})")

INTRO = (
    "citebot sandbox: the bot runs against a local Bot API emulator on {url}, not Telegram;\n"
    "nothing leaves this computer. Type a question and press Enter. Type #N to press button N\n"
    "of the last answer, /help for the commands; end the input (Ctrl-D) or press Ctrl-C to quit.\n"
)


@dataclass
class _Button:
    message: dict[str, Any]
    callback_data: str
    label: str


class _Tracker:
    """Knows which updates the bot has finished handling (its last handler group ran)."""

    def __init__(self) -> None:
        self.done: set[int] = set()
        self.changed = asyncio.Event()

    async def mark(self, update: Update, context: object) -> None:
        self.done.add(update.update_id)
        self.changed.set()

    async def wait(self, update_id: int, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while update_id not in self.done:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True


def run_sandbox(
    settings: Settings,
    searcher: Retriever,
    stdin: TextIO,
    stdout: TextIO,
    *,
    answer_timeout: float = 120.0,
    keeper: Keeper | None = None,
) -> int:
    """Run the bot in the local sandbox until the end of ``stdin``; return the exit code (0).
    ``keeper`` (over ``searcher``) makes the index follow the seeds while the sandbox runs."""
    try:
        return asyncio.run(_Sandbox(settings, searcher, stdin, stdout, answer_timeout, keeper).run())
    except KeyboardInterrupt:
        return 0


class _Sandbox:
    def __init__(
        self,
        settings: Settings,
        searcher: Retriever,
        stdin: TextIO,
        stdout: TextIO,
        answer_timeout: float,
        keeper: Keeper | None = None,
    ) -> None:
        # every chat is the sandbox's own: a configured allow-list must not silence it, and the
        # one user at the keyboard is the administrator
        telegram = settings.telegram.model_copy(update={"allowed_chats": None, "admins": (SANDBOX_USER_ID,)})
        self.settings = settings.model_copy(update={"telegram": telegram})
        self.searcher = searcher
        self.keeper = keeper
        self.stdin = stdin
        self.stdout = stdout
        self.answer_timeout = answer_timeout
        self.buttons: list[_Button] = []
        self.tracker = _Tracker()

    async def run(self) -> int:
        emulator = BotApiEmulator(token=SANDBOX_TOKEN, bot_username=SANDBOX_USERNAME, bot_first_name="citebot")
        await emulator.start()
        application: Application | None = None
        stop = asyncio.Event()
        restore: Callable[..., None] = _nothing
        try:
            application = build_application(
                self.settings, self.searcher, base_url=emulator.base_url, token=emulator.token, keeper=self.keeper
            )
            restore = install_signals(stop, application)
            application.add_handler(TypeHandler(Update, self.tracker.mark), group=10_000)
            await start_bot(application, poll_timeout=5.0)
            self.write(INTRO.format(url=emulator.base_url.removesuffix("/bot")))
            await self.chat(emulator, stop)
        finally:
            restore()
            if application is not None:
                await stop_bot(application)
            await emulator.stop()
        return 0

    # -------------------------------------------------------------------------------- input

    async def chat(self, emulator: BotApiEmulator, stop: asyncio.Event) -> None:
        user = emulator.user(SANDBOX_USER_ID, "You", "sandbox_user")
        chat = emulator.private_chat(user)
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._start_reader(lines)
        echo = not _isatty(self.stdin)
        stopping = asyncio.create_task(stop.wait())
        try:
            while True:
                getting = asyncio.create_task(lines.get())
                await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    break
                line = getting.result()
                if line is None:
                    break
                text = line.rstrip("\r\n")
                if not text.strip():
                    continue
                if echo:
                    self.write(f"\n> {text}\n")
                mark = emulator.mark()
                press = _PRESS.fullmatch(text.strip())
                if press and self.buttons:
                    update = self._press(emulator, user, int(press.group(1)))
                    if update is None:
                        continue
                else:
                    update = emulator.send_text(chat, user, text)
                finished = await self.tracker.wait(update["update_id"], self.answer_timeout)
                self.show(emulator, mark)
                if not finished:
                    self.write("(no answer in time)\n")
        finally:
            stopping.cancel()

    def _start_reader(self, lines: asyncio.Queue[str | None]) -> None:
        loop = asyncio.get_running_loop()

        def read() -> None:
            try:
                for line in self.stdin:
                    loop.call_soon_threadsafe(lines.put_nowait, line)
            except (OSError, ValueError, RuntimeError):
                pass
            finally:
                with contextlib.suppress(RuntimeError):  # the loop may already be closed
                    loop.call_soon_threadsafe(lines.put_nowait, None)

        threading.Thread(target=read, name="citebot-sandbox-stdin", daemon=True).start()

    def _press(self, emulator: BotApiEmulator, user: dict[str, Any], number: int) -> dict[str, Any] | None:
        if not 1 <= number <= len(self.buttons):
            self.write(f"(there is no button #{number})\n")
            return None
        button = self.buttons[number - 1]
        current = emulator.message(button.message["chat"]["id"], button.message["message_id"])
        if current is None:
            self.write("(that message is gone)\n")
            return None
        try:
            return emulator.press_button(current, button.callback_data, user)
        except ValueError:
            self.write("(that button is no longer there)\n")
            return None

    # ------------------------------------------------------------------------------- output

    def show(self, emulator: BotApiEmulator, since: int) -> None:
        """Print what the bot did since call number ``since``: messages, edits, notices."""
        for call in emulator.calls[since:]:
            if not call.ok:
                continue
            if call.method in ("sendMessage", "editMessageText") and isinstance(call.result, dict):
                edited = call.method == "editMessageText"
                self.write("\n" + self.render(call.result, edited=edited) + "\n")
            elif call.method == "answerCallbackQuery" and call.params.get("text"):
                self.write(f"\n({call.params['text']})\n")

    def render(self, message: dict[str, Any], *, edited: bool = False) -> str:
        text = message.get("text", "")
        for entity in sorted(message.get("entities", []), key=lambda e: -int(e["offset"])):
            if entity.get("type") == "text_link" and entity.get("url"):
                end = len(utf16_slice(text, 0, int(entity["offset"]) + int(entity["length"])))
                text = f"{text[:end]} ({entity['url']}){text[end:]}"
        lines = [("(edited) " if edited else "") + line.rstrip() for line in text.splitlines()[:1]]
        lines += [line.rstrip() for line in text.splitlines()[1:]]
        keyboard = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        buttons = [b for row in keyboard for b in row if "callback_data" in b]
        if buttons:
            self.buttons = [_Button(message, b["callback_data"], b["text"]) for b in buttons]
            lines.append("Buttons: " + "  ".join(f"#{i} [{b['text']}]" for i, b in enumerate(buttons, 1)))
        return "\n".join(lines)

    def write(self, text: str) -> None:
        self.stdout.write(text)
        with contextlib.suppress(OSError, ValueError):
            self.stdout.flush()


def _nothing(cancel_reloads: bool = True) -> None:
    pass


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
