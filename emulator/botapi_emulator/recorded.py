"""The record of one Bot API call the bot made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordedCall:
    """One HTTP request of the bot and what the emulator answered.

    ``time`` is ``time.monotonic()`` when the request arrived and ``duration`` how long the
    answer took (including long polling and injected delays). ``status`` is the HTTP status
    returned, or 0 if no answer was delivered (dropped connection, client gave up).
    ``injected`` names the failure injection applied ("fail", "drop", "delay") if any.
    ``response`` is the JSON body exactly as sent. ``client`` names the caller when it came through
    :meth:`BotApiEmulator.client_base_url` (else ``None``).
    """

    method: str
    params: dict[str, Any]
    time: float
    status: int
    response: dict[str, Any] | None
    duration: float = 0.0
    injected: str | None = None
    client: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the call succeeded (HTTP 200)."""
        return self.status == 200

    @property
    def result(self) -> Any:
        """The ``result`` of a successful call, else ``None``."""
        return self.response.get("result") if self.ok and self.response else None

    @property
    def description(self) -> str | None:
        """The error description of a failed call, else ``None``."""
        return self.response.get("description") if self.response else None

    def summary(self) -> str:
        """A one-line description for logs and assertion messages."""
        chat = self.params.get("chat_id")
        where = f" chat={chat}" if chat is not None else ""
        outcome = "ok" if self.ok else f"{self.status} {self.description or 'no response'}"
        return f"{self.method}{where} -> {outcome}"
