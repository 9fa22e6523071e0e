"""What simulated users do: create users and chats, send messages, press buttons...

:class:`UserActions` is a mixin of :class:`~botapi_emulator.server.BotApiEmulator`. Its
methods are synchronous and must run on the emulator's event loop thread (use
:class:`~botapi_emulator.threaded.EmulatorThread` from other threads). Each injection
returns the Update dict it queued, with ``update_id`` and (for messages) ``message_id``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .entities import detect_entities
from .markup import find_callback_button
from .state import ChatRecord, QueryRecord, World, media_object, replied_copy, snapshot
from .updates import UpdateQueue

ChatRef = dict[str, Any] | int
UserRef = dict[str, Any] | int

_FAKE_JPEG = b"\xff\xd8\xff\xe0emulated-jpeg\xff\xd9"
_FAKE_OGG = b"OggS\x00emulated-voice"


class UserActions:
    """Injection of user-side events (mixin; needs ``world``, ``updates``, ``_notify``)."""

    world: World
    updates: UpdateQueue

    def _notify(self) -> None:  # pragma: no cover - provided by BotApiEmulator
        raise NotImplementedError

    # -- users and chats -------------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str = "Alice",
        username: str | None = None,
        *,
        last_name: str | None = None,
        language_code: str | None = "en",
        is_bot: bool = False,
    ) -> dict[str, Any]:
        """Create (or replace) a Telegram user and return its User dict."""
        user: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        return dict(self.world.add_user(user))

    def private_chat(self, user: UserRef) -> dict[str, Any]:
        """Return (creating if needed) the private chat between ``user`` and the bot."""
        user = self._user(user)
        chat: dict[str, Any] = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if key in user:
                chat[key] = user[key]
        return dict(self.world.add_chat(chat).chat)

    def group_chat(
        self,
        chat_id: int,
        title: str = "Test group",
        type: str = "group",
        *,
        username: str | None = None,
        bot_is_admin: bool = False,
    ) -> dict[str, Any]:
        """Create a group or supergroup (negative ``chat_id``) the bot is a member of."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        if type not in ("group", "supergroup"):
            raise ValueError("type must be 'group' or 'supergroup'")
        chat: dict[str, Any] = {"id": chat_id, "type": type, "title": title}
        if username:
            chat["username"] = username
        return dict(self.world.add_chat(chat, bot_is_admin=bot_is_admin).chat)

    # -- messages --------------------------------------------------------------------------

    def send_text(
        self,
        chat: ChatRef,
        user: UserRef,
        text: str,
        *,
        reply_to_message_id: int | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """``user`` sends ``text`` to ``chat``; returns the ``message`` Update.

        Unless ``entities`` is given, the entities Telegram would add are computed:
        bot_command, mention, hashtag and url, with offsets in UTF-16 code units.
        """
        record = self._chat_record(chat)
        fields: dict[str, Any] = {"from": self._sender(user, record), "text": text}
        found = detect_entities(text) if entities is None else entities
        if found:
            fields["entities"] = found
        return self._user_message(record, fields, reply_to_message_id)

    def send_sticker(self, chat: ChatRef, user: UserRef, *, emoji: str = "\U0001f44d") -> dict[str, Any]:
        """``user`` sends a sticker."""
        update = self._send_media(chat, user, "sticker", b"RIFF-emulated-webp")
        return self._patch_last(update, "sticker", {"emoji": emoji})

    def send_poll(
        self, chat: ChatRef, user: UserRef, question: str, options: Sequence[str], *, legacy_shape: bool = False
    ) -> dict[str, Any]:
        """``user`` sends a poll. With ``legacy_shape`` it lacks the fields Bot API 9.6 added
        (``persistent_id``, ``allows_revoting``, ``members_only``, option ``persistent_id``), as an
        older Bot API server sends it: python-telegram-bot 22.8 cannot parse that update."""
        record = self._chat_record(chat)
        poll: dict[str, Any] = {
            "id": str(self.world.next_id()),
            "question": question,
            "total_voter_count": 0,
            "options": [{"text": text, "voter_count": 0} for text in options],
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
        }
        if not legacy_shape:
            poll.update(persistent_id=f"poll-{poll['id']}", allows_revoting=False, members_only=False)
            for number, option in enumerate(poll["options"]):
                option["persistent_id"] = f"{poll['id']}-{number}"
        return self._user_message(record, {"from": self._sender(user, record), "poll": poll}, None)

    def send_photo(
        self, chat: ChatRef, user: UserRef, *, caption: str | None = None, data: bytes = _FAKE_JPEG
    ) -> dict[str, Any]:
        """``user`` sends a photo (``data`` is what getFile downloads)."""
        return self._send_media(chat, user, "photo", data, caption=caption)

    def send_voice(self, chat: ChatRef, user: UserRef, *, duration: int = 1, data: bytes = _FAKE_OGG) -> dict[str, Any]:
        """``user`` sends a voice message."""
        update = self._send_media(chat, user, "voice", data)
        return self._patch_last(update, "voice", {"duration": duration})

    def send_document(
        self,
        chat: ChatRef,
        user: UserRef,
        *,
        file_name: str = "document.txt",
        data: bytes = b"emulated document\n",
        mime_type: str = "text/plain",
        caption: str | None = None,
    ) -> dict[str, Any]:
        """``user`` sends a file."""
        return self._send_media(chat, user, "document", data, caption=caption, file_name=file_name, mime_type=mime_type)

    def edit_text(
        self, message: dict[str, Any], new_text: str, *, entities: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The author edits their text ``message``; returns the ``edited_message`` Update."""
        current = self._current_message(message)
        if self.world.is_from_bot(current):
            raise ValueError("users can only edit their own messages")
        current["text"] = new_text
        found = detect_entities(new_text) if entities is None else entities
        if found:
            current["entities"] = found
        else:
            current.pop("entities", None)
        current["edit_date"] = int(time.time())
        return self._push({"edited_message": snapshot(current)})

    # -- buttons and inline mode -----------------------------------------------------------

    def press_button(
        self, message: dict[str, Any] | str, callback_data: str, user: UserRef, *, forged: bool = False
    ) -> dict[str, Any]:
        """``user`` presses the inline button with ``callback_data`` under ``message``.

        ``message`` is a message the bot sent (dict, e.g. from :meth:`sent_messages`) or an
        ``inline_message_id``. The button must exist in the message's current keyboard
        unless ``forged=True`` (a client sending arbitrary data). Returns the
        ``callback_query`` Update.
        """
        sender = self._user(user)
        if isinstance(message, str):
            inline = self.world.inline_messages.get(message)
            if inline is None:
                raise ValueError(f"unknown inline_message_id {message!r}")
            markup, base = inline.get("reply_markup"), {"inline_message_id": message}
            instance = f"inline-{message}"
        else:
            current = self._current_message(message)
            markup, base = current.get("reply_markup"), {"message": snapshot(current)}
            instance = f"chat{current['chat']['id']}"
        if not forged and find_callback_button(markup, callback_data) is None:
            raise ValueError(
                f"no inline button with callback_data {callback_data!r} under this message; "
                "pass forged=True to send such a callback query anyway"
            )
        query_id = str(4_000_000_000_000 + self.world.next_id())
        query = {"id": query_id, "from": sender, **base, "chat_instance": instance, "data": callback_data}
        self.world.callback_queries[query_id] = QueryRecord(query)
        return self._push({"callback_query": query})

    def inline_query(
        self, user: UserRef, query: str, offset: str = "", *, chat_type: str | None = None
    ) -> dict[str, Any]:
        """``user`` types ``@bot query`` in some chat; returns the ``inline_query`` Update."""
        query_id = str(5_000_000_000_000 + self.world.next_id())
        payload: dict[str, Any] = {"id": query_id, "from": self._user(user), "query": query, "offset": offset}
        if chat_type:
            payload["chat_type"] = chat_type
        self.world.inline_queries[query_id] = QueryRecord(payload)
        return self._push({"inline_query": payload})

    def choose_inline_result(self, inline_query: dict[str, Any] | str, result_id: str) -> dict[str, Any]:
        """The user picks result ``result_id`` of an answered inline query.

        Returns the ``chosen_inline_result`` Update. If the result has an inline keyboard,
        an inline message is created and its ``inline_message_id`` is in the update (as in
        Telegram), so the bot can edit it and users can press its buttons.
        """
        query_id = (
            inline_query if isinstance(inline_query, str) else inline_query.get("inline_query", inline_query)["id"]
        )
        record = self.world.inline_queries.get(query_id)
        if record is None or not record.answered:
            raise ValueError("the bot has not answered this inline query")
        if result_id not in record.rendered:
            raise ValueError(f"the answer has no result with id {result_id!r}")
        payload = {"result_id": result_id, "from": record.query["from"], "query": record.query["query"]}
        rendered = record.rendered[result_id]
        if rendered.get("reply_markup"):
            inline_id = f"EMU-INLINE-{self.world.next_id():06d}"
            self.world.inline_messages[inline_id] = snapshot(rendered)
            payload["inline_message_id"] = inline_id
        return self._push({"chosen_inline_result": payload})

    # -- blocking ---------------------------------------------------------------------------

    def block_user(self, user_id: int, *, notify: bool = True) -> dict[str, Any] | None:
        """``user_id`` blocks the bot: sending to their private chat answers 403.

        Like Telegram, a ``my_chat_member`` update (member -> kicked) is queued when the
        private chat exists and ``notify`` is true; it is returned.
        """
        self.world.blocked_users.add(user_id)
        return self._membership_update(user_id, "member", "kicked") if notify else None

    def unblock_user(self, user_id: int, *, notify: bool = True) -> dict[str, Any] | None:
        """``user_id`` unblocks the bot (my_chat_member kicked -> member if ``notify``)."""
        self.world.blocked_users.discard(user_id)
        return self._membership_update(user_id, "kicked", "member") if notify else None

    def inject_update(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue an arbitrary update payload, e.g. ``{"poll_answer": {...}}``."""
        return self._push(dict(payload))

    # -- helpers -----------------------------------------------------------------------------

    def _push(self, payload: dict[str, Any]) -> dict[str, Any]:
        update = self.updates.push(payload)
        self._notify()
        return update

    def _user(self, user: UserRef) -> dict[str, Any]:
        if isinstance(user, dict):
            return dict(self.world.users.get(int(user["id"])) or self.world.add_user(dict(user)))
        if user not in self.world.users:
            raise ValueError(f"unknown user {user}; create it with user()")
        return dict(self.world.users[user])

    def _chat_record(self, chat: ChatRef) -> ChatRecord:
        chat_id = int(chat["id"]) if isinstance(chat, dict) else int(chat)
        record = self.world.chats.get(chat_id)
        if record is None:
            if not isinstance(chat, dict):
                raise ValueError(f"unknown chat {chat}; create it with private_chat()/group_chat()")
            record = self.world.add_chat(dict(chat))
        return record

    def _sender(self, user: UserRef, record: ChatRecord) -> dict[str, Any]:
        sender = self._user(user)
        if record.chat.get("type") == "private" and sender["id"] != record.id:
            raise ValueError("only the chat's own user can write in a private chat")
        return sender

    def _user_message(
        self, record: ChatRecord, fields: dict[str, Any], reply_to_message_id: int | None
    ) -> dict[str, Any]:
        if reply_to_message_id is not None:
            target = self.world.get_message(record.id, reply_to_message_id)
            if target is None:
                raise ValueError(f"message {reply_to_message_id} does not exist in chat {record.id}")
            fields = {**fields, "reply_to_message": replied_copy(target)}
        message = self.world.add_message(record, fields, from_bot=False)
        return self._push({"message": snapshot(message)})

    def _send_media(
        self,
        chat: ChatRef,
        user: UserRef,
        kind: str,
        data: bytes,
        *,
        caption: str | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> dict[str, Any]:
        record = self._chat_record(chat)
        sender = self._sender(user, record)
        file = self.world.add_file(kind, data, file_name=file_name, mime_type=mime_type)
        fields: dict[str, Any] = {"from": sender, kind: media_object(kind, file)}
        if caption:
            fields["caption"] = caption
            found = detect_entities(caption)
            if found:
                fields["caption_entities"] = found
        return self._user_message(record, fields, None)

    def _patch_last(self, update: dict[str, Any], kind: str, values: dict[str, Any]) -> dict[str, Any]:
        """Set extra fields on a just-queued media message (stored copy and update)."""
        message = update["message"]
        stored = self.world.chats[message["chat"]["id"]].messages[message["message_id"]]
        for target in (stored[kind], message[kind]):
            target.update(values)
        return update

    def _current_message(self, message: dict[str, Any]) -> dict[str, Any]:
        """Find the stored (current) state of a message given a Message or Update dict."""
        if "message_id" not in message:
            inner = message.get("message") or message.get("edited_message")
            if inner is None:
                raise ValueError("expected a Message dict or an Update with a message")
            message = inner
        current = self.world.get_message(int(message["chat"]["id"]), message["message_id"])
        if current is None:
            raise ValueError(f"message {message['message_id']} does not exist (deleted?)")
        return current

    def _membership_update(self, user_id: int, old: str, new: str) -> dict[str, Any] | None:
        record = self.world.chats.get(user_id)
        user = self.world.users.get(user_id)
        if record is None or user is None:
            return None
        bot = self.world.bot_user
        new_member: dict[str, Any] = {"status": new, "user": bot}
        old_member: dict[str, Any] = {"status": old, "user": bot}
        for member in (new_member, old_member):
            if member["status"] == "kicked":
                member["until_date"] = 0
        payload = {
            "chat": record.chat,
            "from": user,
            "date": int(time.time()),
            "old_chat_member": old_member,
            "new_chat_member": new_member,
        }
        return self._push({"my_chat_member": payload})
