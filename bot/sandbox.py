"""The local sandbox: the real bot against the project's Bot API emulator, chatting in a terminal.

``citebot serve`` without a token ends up here (:mod:`citebot.serve`). Every line read from ``stdin`` is sent as a
private message of one simulated user; every reply of the bot is printed as a person would read
it (:mod:`bot.terminal`): on a terminal with bold, italics and quotes (ANSI styles) and a ``> ``
prompt, piped as plain text; links show their URL; buttons are listed with numbers that stay the
same from page to page (typing ``#N`` presses button N of the last answer). Whatever the bot sends
between questions (an alert to the administrator, who is the sandbox user) is shown as it comes.
Log lines never enter the chat: ``citebot serve`` sends them to a file. End of input stops
everything once the answers to all lines have arrived (no input at all: a short note, then exit);
SIGINT and SIGTERM stop it early (the answer in flight still finishes). Nothing leaves 127.0.0.1.

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
from citebot.config import Settings

from .application import build_application
from .retriever import Keeper, Retriever
from .serving import install_signals, start_bot, stop_bot
from .terminal import NumberedButton, buttons_line, make_console, message_text, number_buttons

SANDBOX_TOKEN = "1000001:citebot-local-sandbox"
SANDBOX_USERNAME = "citebot_sandbox_bot"
SANDBOX_USER_ID = 777000001
_PRESS = re.compile(r"#(\d{1,3})")

INTRO = (
    "citebot sandbox: the bot runs against a local Bot API emulator on {url}, not Telegram;\n"
    "nothing leaves this computer. Type a question and press Enter. Type #N to press button N\n"
    "of the last answer, /help for the commands; end the input (Ctrl-D) or press Ctrl-C to quit.\n"
)
NO_INPUT = (
    "(no input: the sandbox reads questions from standard input. Type them in a terminal, or pipe\n"
    ' them in: echo "Is Russia arming the Taliban?" | make run)\n'
)
PROMPT = "> "
SHOW_EVERY_SECONDS = 0.2  # how soon a message the bot sends on its own (an admin alert) is shown


@dataclass
class _Button:
    message: dict[str, Any]
    callback_data: str
    label: str
    number: int


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
    **extras: Any,
) -> int:
    """Run the bot in the local sandbox until the end of ``stdin``; return the exit code (0).
    ``keeper`` (over ``searcher``) makes the index follow the seeds while the sandbox runs;
    ``extras`` go to :func:`bot.application.build_application` (the store, the /gaps report)."""
    try:
        return asyncio.run(_Sandbox(settings, searcher, stdin, stdout, answer_timeout, keeper, extras).run())
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
        extras: dict[str, Any] | None = None,
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
        self.extras = extras or {}
        self.buttons: list[_Button] = []
        self.tracker = _Tracker()
        self.console = make_console(stdout)
        self.interactive = _isatty(stdin) and _isatty(stdout)
        self.shown = 0  # emulator calls already shown
        self.slots = max(self.settings.telegram.results_private, self.settings.telegram.results_group)

    async def run(self) -> int:
        emulator = BotApiEmulator(token=SANDBOX_TOKEN, bot_username=SANDBOX_USERNAME, bot_first_name="citebot")
        await emulator.start()
        application: Application | None = None
        stop = asyncio.Event()
        restore: Callable[..., None] = _nothing
        try:
            application = build_application(
                self.settings,
                self.searcher,
                base_url=emulator.base_url,
                token=emulator.token,
                keeper=self.keeper,
                **self.extras,
            )
            restore = install_signals(stop, application)
            application.add_handler(TypeHandler(Update, self.tracker.mark), group=10_000)
            await start_bot(application, poll_timeout=5.0)
            self.write(INTRO.format(url=emulator.base_url.removesuffix("/bot")))
            self.shown = emulator.mark()
            watcher = asyncio.create_task(self._show_unprompted(emulator), name="citebot-sandbox-show")
            try:
                await self.chat(emulator, stop)
            finally:
                watcher.cancel()
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
        asked = False
        try:
            while True:
                self.prompt()
                getting = asyncio.create_task(lines.get())
                await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    break
                line = getting.result()
                if line is None:
                    if self.interactive:
                        self.write("\n")
                    break
                text = line.rstrip("\r\n")
                if not text.strip():
                    continue
                asked = True
                if echo:
                    self.write(f"\n{PROMPT}{text}\n")
                self.show(emulator)
                press = _PRESS.fullmatch(text.strip())
                if press and self.buttons:
                    update = self._press(emulator, user, int(press.group(1)))
                    if update is None:
                        continue
                else:
                    update = emulator.send_text(chat, user, text)
                self.busy = True
                try:
                    finished = await self.tracker.wait(update["update_id"], self.answer_timeout)
                finally:
                    self.busy = False
                self.show(emulator)
                if not finished:
                    self.write("(no answer in time)\n")
            if not asked and not stop.is_set():
                self.write(NO_INPUT)
        finally:
            stopping.cancel()

    def prompt(self) -> None:
        if self.interactive:
            self.write(f"\n{PROMPT}")

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
        button = next((b for b in self.buttons if b.number == number), None)
        if button is None:
            self.write(f"(there is no button #{number})\n")
            return None
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

    busy = False  # a question is being answered: its replies are shown when it is done

    async def _show_unprompted(self, emulator: BotApiEmulator) -> None:
        """Show what the bot sends while nobody asked (an alert to the administrator)."""
        while True:
            await asyncio.sleep(SHOW_EVERY_SECONDS)
            if not self.busy and self.shown < emulator.mark() and self.show(emulator):
                self.prompt()

    def show(self, emulator: BotApiEmulator) -> bool:
        """Print what the bot did since it was last shown: messages, edits, notices. True if
        anything was printed (polling calls print nothing)."""
        calls = emulator.calls[self.shown :]
        self.shown += len(calls)
        printed = False
        for call in calls:
            if not call.ok:
                continue
            if call.method in ("sendMessage", "editMessageText") and isinstance(call.result, dict):
                self.write("\n")
                self.print(self.render(call.result, edited=call.method == "editMessageText"))
            elif call.method == "editMessageReplyMarkup" and isinstance(call.result, dict):
                self.write("\n")
                self.print(self.render_buttons(call.result))
            elif call.method == "answerCallbackQuery" and call.params.get("text"):
                self.write(f"\n({call.params['text']})\n")
            else:
                continue
            printed = True
        return printed

    def render(self, message: dict[str, Any], *, edited: bool = False) -> Any:
        text = message_text(message, edited=edited)
        buttons = self.render_buttons(message)
        if buttons is not None:
            text.append("\n")
            text.append_text(buttons)
        return text

    def render_buttons(self, message: dict[str, Any]) -> Any:
        """The numbered buttons of ``message`` (they become the ones #N presses), or None."""
        keyboard = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        numbered: list[NumberedButton] = number_buttons(keyboard, self.slots)
        if not numbered:
            return None
        self.buttons = [_Button(message, b.callback_data, b.label, b.number) for b in numbered]
        return buttons_line(numbered)

    def print(self, text: Any) -> None:
        if text is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self.console.print(text)
            self.stdout.flush()

    def write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stdout.write(text)
            self.stdout.flush()


def _nothing(cancel_reloads: bool = True) -> None:
    pass


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
