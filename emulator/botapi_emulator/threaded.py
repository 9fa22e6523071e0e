"""Running the emulator in a background thread, for synchronous code such as a terminal
sandbox. Every method here is thread-safe: it runs the emulator operation on the
emulator's own event loop and waits for the result."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .recorded import RecordedCall
from .server import BotApiEmulator, CallMatcher

T = TypeVar("T")


class EmulatorThread:
    """A :class:`BotApiEmulator` served from a daemon thread with its own event loop.

    Use as a context manager::

        with EmulatorThread(token=TOKEN) as emu:
            alice = emu.user(1, "Alice")
            chat = emu.private_chat(alice)
            replies = emu.subscribe()          # queue.Queue of RecordedCall
            emu.send_text(chat, alice, "/start")
            call = replies.get(timeout=5)

    Constructor keyword arguments are passed to :class:`BotApiEmulator`.
    """

    def __init__(self, **emulator_kwargs: Any) -> None:
        self.emulator = BotApiEmulator(**emulator_kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> EmulatorThread:
        """Start the thread and the server; returns self once it is listening."""
        if self._thread is not None:
            raise RuntimeError("already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self.emulator.start())
            except BaseException as exc:  # report startup failures to the caller
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.emulator.stop())
                loop.close()

        self._thread = threading.Thread(target=serve, name="botapi-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("emulator did not start in time")
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and join the thread."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None
        self._loop = None

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- running things on the emulator loop ------------------------------------------------

    def call(self, func: Callable[..., T], *args: Any, timeout: float | None = 30.0, **kwargs: Any) -> T:
        """Run the synchronous ``func(*args, **kwargs)`` on the emulator loop; return its result.

        Called from the emulator thread itself (e.g. inside a listener) it runs directly.
        """
        if threading.current_thread() is self._thread:
            return func(*args, **kwargs)

        async def invoke() -> T:
            return func(*args, **kwargs)

        return self.run(invoke(), timeout=timeout)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run a coroutine on the emulator loop and wait for its result."""
        if self._loop is None or threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("emulator thread not started, or called from the emulator thread itself")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    @property
    def base_url(self) -> str:
        """See :attr:`BotApiEmulator.base_url`."""
        return self.emulator.base_url

    @property
    def base_file_url(self) -> str:
        """See :attr:`BotApiEmulator.base_file_url`."""
        return self.emulator.base_file_url

    @property
    def port(self) -> int:
        """See :attr:`BotApiEmulator.port`."""
        return self.emulator.port

    # -- thread-safe wrappers ---------------------------------------------------------------

    def user(
        self, user_id: int, first_name: str = "Alice", username: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """See :meth:`BotApiEmulator.user`."""
        return self.call(self.emulator.user, user_id, first_name, username, **kwargs)

    def private_chat(self, user: dict[str, Any] | int) -> dict[str, Any]:
        """See :meth:`BotApiEmulator.private_chat`."""
        return self.call(self.emulator.private_chat, user)

    def group_chat(self, chat_id: int, title: str = "Test group", type: str = "group", **kwargs: Any) -> dict[str, Any]:
        """See :meth:`BotApiEmulator.group_chat`."""
        return self.call(self.emulator.group_chat, chat_id, title, type, **kwargs)

    def send_text(self, chat: Any, user: Any, text: str, **kwargs: Any) -> dict[str, Any]:
        """See :meth:`BotApiEmulator.send_text`."""
        return self.call(self.emulator.send_text, chat, user, text, **kwargs)

    def send_sticker(self, chat: Any, user: Any, **kwargs: Any) -> dict[str, Any]:
        """See :meth:`BotApiEmulator.send_sticker`."""
        return self.call(self.emulator.send_sticker, chat, user, **kwargs)

    def send_photo(self, chat: Any, user: Any, **kwargs: Any) -> dict[str, Any]:
        """See :meth:`BotApiEmulator.send_photo`."""
        return self.call(self.emulator.send_photo, chat, user, **kwargs)

    def send_voice(self, chat: Any, user: Any, **kwargs: Any) -> dict[str, Any]:
        """See :meth:`BotApiEmulator.send_voice`."""
        return self.call(self.emulator.send_voice, chat, user, **kwargs)

    def send_document(self, chat: Any, user: Any, **kwargs: Any) -> dict[str, Any]:
        """See :meth:`BotApiEmulator.send_document`."""
        return self.call(self.emulator.send_document, chat, user, **kwargs)

    def edit_text(self, message: dict[str, Any], new_text: str, **kwargs: Any) -> dict[str, Any]:
        """See :meth:`BotApiEmulator.edit_text`."""
        return self.call(self.emulator.edit_text, message, new_text, **kwargs)

    def press_button(self, message: Any, callback_data: str, user: Any, **kwargs: Any) -> dict[str, Any]:
        """See :meth:`BotApiEmulator.press_button`."""
        return self.call(self.emulator.press_button, message, callback_data, user, **kwargs)

    def inline_query(self, user: Any, query: str, offset: str = "", **kwargs: Any) -> dict[str, Any]:
        """See :meth:`BotApiEmulator.inline_query`."""
        return self.call(self.emulator.inline_query, user, query, offset, **kwargs)

    def choose_inline_result(self, inline_query: Any, result_id: str) -> dict[str, Any]:
        """See :meth:`BotApiEmulator.choose_inline_result`."""
        return self.call(self.emulator.choose_inline_result, inline_query, result_id)

    def block_user(self, user_id: int, **kwargs: Any) -> dict[str, Any] | None:
        """See :meth:`BotApiEmulator.block_user`."""
        return self.call(self.emulator.block_user, user_id, **kwargs)

    def unblock_user(self, user_id: int, **kwargs: Any) -> dict[str, Any] | None:
        """See :meth:`BotApiEmulator.unblock_user`."""
        return self.call(self.emulator.unblock_user, user_id, **kwargs)

    def sent_messages(self, chat_id: int | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        """See :meth:`BotApiEmulator.sent_messages`."""
        return self.call(self.emulator.sent_messages, chat_id, **kwargs)

    def chat_history(self, chat_id: int) -> list[dict[str, Any]]:
        """See :meth:`BotApiEmulator.chat_history`."""
        return self.call(self.emulator.chat_history, chat_id)

    def calls(self) -> list[RecordedCall]:
        """A snapshot of :attr:`BotApiEmulator.calls`."""
        return self.call(lambda: list(self.emulator.calls))

    def fail_next(self, method: str | None = None, **kwargs: Any) -> None:
        """See :meth:`BotApiEmulator.fail_next`."""
        self.call(self.emulator.fail_next, method, **kwargs)

    def drop_next(self, method: str | None = None, count: int = 1) -> None:
        """See :meth:`BotApiEmulator.drop_next`."""
        self.call(self.emulator.drop_next, method, count)

    def delay_next(self, method: str | None, seconds: float, count: int = 1) -> None:
        """See :meth:`BotApiEmulator.delay_next`."""
        self.call(self.emulator.delay_next, method, seconds, count)

    def wait_for(
        self, predicate_or_method: CallMatcher, *, count: int = 1, timeout: float = 10.0, since: int = 0
    ) -> list[RecordedCall]:
        """Blocking :meth:`BotApiEmulator.wait_for`."""
        coroutine = self.emulator.wait_for(predicate_or_method, count=count, timeout=timeout, since=since)
        return self.run(coroutine, timeout=timeout + 5)

    def wait_for_messages(self, chat_id: int, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Blocking :meth:`BotApiEmulator.wait_for_messages`."""
        return self.run(self.emulator.wait_for_messages(chat_id, count, timeout), timeout=timeout + 5)

    def subscribe(self, methods: set[str] | None = None) -> queue.Queue[RecordedCall]:
        """Return a queue receiving every recorded call (only ``methods`` if given).

        Handy for a terminal front-end: print ``call.result["text"]`` for each successful
        sendMessage/editMessageText taken from the queue.
        """
        received: queue.Queue[RecordedCall] = queue.Queue()
        wanted = {m.lower() for m in methods} if methods else None

        def listener(call: RecordedCall) -> None:
            if wanted is None or call.method.lower() in wanted:
                received.put(call)

        self.call(self.emulator.add_listener, listener)
        return received
