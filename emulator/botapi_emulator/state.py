"""The emulated Telegram world: users, chats, messages, files and pending queries."""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import bad_request

_FILE_EXTENSIONS = {
    "photo": ".jpg",
    "voice": ".oga",
    "audio": ".mp3",
    "video": ".mp4",
    "animation": ".mp4",
    "video_note": ".mp4",
    "sticker": ".webp",
    "document": "",
}
_MIME_TYPES = {
    "photo": "image/jpeg",
    "voice": "audio/ogg",
    "audio": "audio/mpeg",
    "video": "video/mp4",
    "animation": "video/mp4",
    "video_note": "video/mp4",
    "sticker": "image/webp",
    "document": "application/octet-stream",
}


@dataclass
class ChatRecord:
    """A chat known to the emulator and the messages in it (current state, by id)."""

    chat: dict[str, Any]
    bot_is_admin: bool = False
    next_message_id: int = 1
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)

    @property
    def id(self) -> int:
        """The chat id."""
        return int(self.chat["id"])


@dataclass
class FileRecord:
    """A file Telegram would store: uploaded by the bot or sent by a simulated user."""

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None


@dataclass
class QueryRecord:
    """A callback or inline query and the bot's answer to it (``None`` until answered)."""

    query: dict[str, Any]
    answer: dict[str, Any] | None = None
    rendered: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        """Whether the bot already answered (a second answer is an error)."""
        return self.answer is not None


class World:
    """All state of the emulated Telegram server apart from the update queue."""

    def __init__(self, bot_user: dict[str, Any]) -> None:
        self.bot_user = bot_user
        self.users: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, ChatRecord] = {}
        self.bot_messages: list[tuple[int, int]] = []
        self.bot_messages_by_chat: dict[int, list[int]] = {}
        self.files: dict[str, FileRecord] = {}
        self.callback_queries: dict[str, QueryRecord] = {}
        self.inline_queries: dict[str, QueryRecord] = {}
        self.inline_messages: dict[str, dict[str, Any]] = {}
        self.blocked_users: set[int] = set()
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.bot_texts: dict[str, str] = {"description": "", "short_description": "", "name": ""}
        self.webhook: dict[str, Any] = {"url": ""}
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        """A fresh number for query ids, file ids and the like."""
        return next(self._ids)

    # -- users and chats -----------------------------------------------------------------

    def add_user(self, user: dict[str, Any]) -> dict[str, Any]:
        """Register (or update) a user and return it."""
        self.users[int(user["id"])] = user
        return user

    def add_chat(self, chat: dict[str, Any], *, bot_is_admin: bool = False) -> ChatRecord:
        """Register a chat (idempotent) and return its record."""
        record = self.chats.get(int(chat["id"]))
        if record is None:
            record = ChatRecord(chat=chat, bot_is_admin=bot_is_admin)
            self.chats[record.id] = record
        return record

    def resolve_chat(self, chat_id: Any) -> ChatRecord:
        """Find the chat a ``chat_id`` parameter names; raise Telegram's errors if absent."""
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            for record in self.chats.values():
                if record.chat.get("type") != "private" and record.chat.get("username") == chat_id[1:]:
                    return record
            raise bad_request("chat not found")
        if isinstance(chat_id, bool) or not isinstance(chat_id, int):
            raise bad_request("chat not found")
        record = self.chats.get(chat_id)
        if record is None:
            raise bad_request("chat not found")
        return record

    # -- messages --------------------------------------------------------------------------

    def add_message(self, record: ChatRecord, fields: dict[str, Any], *, from_bot: bool) -> dict[str, Any]:
        """Store a new message in ``record`` with the next message id and return it."""
        message_id = record.next_message_id
        record.next_message_id += 1
        message = {"message_id": message_id, "date": int(time.time()), "chat": record.chat}
        message.update(fields)
        record.messages[message_id] = message
        if from_bot:
            self.bot_messages.append((record.id, message_id))
            self.bot_messages_by_chat.setdefault(record.id, []).append(message_id)
        return message

    def get_message(self, chat_id: int, message_id: Any) -> dict[str, Any] | None:
        """Return the current state of a message that exists and was not deleted."""
        record = self.chats.get(chat_id)
        if record is None or not isinstance(message_id, int) or message_id in record.deleted:
            return None
        return record.messages.get(message_id)

    def is_from_bot(self, message: dict[str, Any]) -> bool:
        """Whether the bot sent ``message``."""
        return message.get("from", {}).get("id") == self.bot_user["id"]

    # -- files -----------------------------------------------------------------------------

    def add_file(
        self, kind: str, data: bytes, *, file_name: str | None = None, mime_type: str | None = None
    ) -> FileRecord:
        """Store a file and return its record with fresh ids and a download path."""
        n = self.next_id()
        extension = _FILE_EXTENSIONS.get(kind, "")
        record = FileRecord(
            file_id=f"EMU-{kind}-{n:06d}",
            file_unique_id=f"emu{n:06d}",
            kind=kind,
            data=data,
            file_path=f"{kind}s/file_{n}{extension}",
            file_name=file_name,
            mime_type=mime_type or _MIME_TYPES.get(kind),
        )
        self.files[record.file_id] = record
        return record


def media_object(kind: str, file: FileRecord) -> Any:
    """Build the Bot API object for a file of ``kind`` (PhotoSize list, Document, ...)."""
    base: dict[str, Any] = {
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
        "file_size": len(file.data),
    }
    if kind == "photo":
        return [{**base, "width": 800, "height": 600}]
    if kind == "sticker":
        return {
            **base,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "\U0001f44d",
        }
    if kind == "video_note":
        return {**base, "length": 240, "duration": 1}
    if file.mime_type:
        base["mime_type"] = file.mime_type
    if file.file_name and kind in ("document", "audio", "video", "animation"):
        base["file_name"] = file.file_name
    if kind in ("video", "animation"):
        return {**base, "width": 640, "height": 360, "duration": 1}
    if kind in ("voice", "audio"):
        return {**base, "duration": 1}
    return base


def snapshot(message: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``message`` suitable to embed in an update or a reply."""
    return copy.deepcopy(message)


def replied_copy(message: dict[str, Any]) -> dict[str, Any]:
    """The form of ``message`` embedded as ``reply_to_message`` (no further nesting)."""
    result = snapshot(message)
    result.pop("reply_to_message", None)
    return result
