"""Implementations of the Bot API methods the emulator supports."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from collections.abc import Callable
from typing import Any

from .constants import (
    CHAT_ACTIONS,
    INLINE_RESULT_TYPES,
    MAX_CALLBACK_ANSWER_LENGTH,
    MAX_CAPTION_LENGTH,
    MAX_COMMANDS,
    MAX_INLINE_RESULTS,
    MAX_MESSAGE_LENGTH,
    TRUE_METHODS,
)
from .entities import EntityError, fix_nesting, trim_text, validate_entities
from .errors import ApiError, bad_request, forbidden
from .faults import FloodControl
from .markup import validate_reply_markup
from .params import UploadedFile
from .state import ChatRecord, FileRecord, World, media_object, replied_copy, snapshot
from .tg_html import TelegramHtmlError, parse_telegram_html
from .updates import UpdateQueue
from .utf16 import utf16_len
from .webhook import WebhookDelivery, check_webhook_params

MEDIA_METHODS = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendAudio": "audio",
    "sendVideo": "video",
    "sendAnimation": "animation",
    "sendVoice": "voice",
    "sendVideoNote": "video_note",
    "sendSticker": "sticker",
}
MEDIA_KINDS = frozenset(MEDIA_METHODS.values())
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_BOT_TEXT_LIMITS = {"description": 512, "short_description": 120, "name": 64}


class BotMethods:
    """Dispatches Bot API calls to handlers operating on a :class:`World`."""

    def __init__(self, world: World, updates: UpdateQueue, flood: FloodControl, *, strict_html: bool) -> None:
        self.world = world
        self.updates = updates
        self.flood = flood
        self.strict_html = strict_html
        self.warnings: list[str] = []
        self.webhook = WebhookDelivery(updates)
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getMe": self.get_me,
            "logOut": _true,
            "close": _true,
            "deleteWebhook": self.delete_webhook,
            "setWebhook": self.set_webhook,
            "getWebhookInfo": self.get_webhook_info,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "setMyDescription": lambda p: self._set_bot_text("description", p),
            "setMyShortDescription": lambda p: self._set_bot_text("short_description", p),
            "setMyName": lambda p: self._set_bot_text("name", p),
            "getMyDescription": lambda p: self._get_bot_text("description"),
            "getMyShortDescription": lambda p: self._get_bot_text("short_description"),
            "getMyName": lambda p: self._get_bot_text("name"),
            "sendMessage": self.send_message,
            "editMessageText": self.edit_message_text,
            "editMessageCaption": self.edit_message_caption,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "deleteMessages": self.delete_messages,
            "answerCallbackQuery": self.answer_callback_query,
            "answerInlineQuery": self.answer_inline_query,
            "sendChatAction": self.send_chat_action,
            "getChat": self.get_chat,
            "getFile": self.get_file,
        }
        for method, kind in MEDIA_METHODS.items():
            self._handlers[method] = lambda p, kind=kind: self.send_media(kind, p)

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """Run Bot API ``method`` (canonical spelling) and return its ``result``."""
        if method == "getUpdates":
            return await self.get_updates(params)
        handler = self._handlers.get(method)
        if handler is not None:
            result = handler(params)
            return await result if inspect.isawaitable(result) else result
        if method in TRUE_METHODS:
            return True
        raise ApiError(501, f"Not Implemented: method {method} is not emulated by botapi_emulator")

    # -- bot and updates -------------------------------------------------------------------

    def get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        """getMe: the bot's User with its capabilities."""
        return {
            **self.world.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """getUpdates with offset/limit/timeout long polling and allowed_updates."""
        if self.world.webhook["url"]:
            raise ApiError(409, WEBHOOK_CONFLICT)
        if "allowed_updates" in params:
            self.updates.set_allowed(_as_list(params["allowed_updates"]))
        offset = _as_int(params.get("offset"), 0, "offset")
        limit = min(max(_as_int(params.get("limit"), 100, "limit"), 1), 100)
        timeout = _as_float(params.get("timeout"), "timeout")
        return await self.updates.get_updates(offset, limit, timeout)

    async def delete_webhook(self, params: dict[str, Any]) -> bool:
        """deleteWebhook (optionally dropping pending updates): updates wait for getUpdates again."""
        self.world.webhook = {"url": ""}
        await self.webhook.stop()
        if params.get("drop_pending_updates"):
            self.updates.drop_pending()
        return True

    def set_webhook(self, params: dict[str, Any]) -> bool:
        """setWebhook: from now on every pending update is POSTed to ``url`` (see webhook.py);
        an empty ``url`` removes the webhook, as Telegram allows."""
        if not params.get("url"):
            self.world.webhook = {"url": ""}
            asyncio.get_running_loop().create_task(self.webhook.stop())
            return True
        config = check_webhook_params(params)
        self.world.webhook = {"url": config.url, "params": dict(params)}
        if params.get("drop_pending_updates"):
            self.updates.drop_pending()
        if "allowed_updates" in params:
            self.updates.set_allowed(_as_list(params["allowed_updates"]))
        self.webhook.configure(config)
        return True

    def get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        """getWebhookInfo."""
        info: dict[str, Any] = {
            "url": self.world.webhook["url"],
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates.pending),
        }
        if info["url"]:
            info["allowed_updates"] = self.updates.allowed_updates
        info.update(self.webhook.info())
        return info

    # -- commands and descriptions ---------------------------------------------------------

    def set_my_commands(self, params: dict[str, Any]) -> bool:
        """setMyCommands with Telegram's command/description rules."""
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        self.world.commands[_commands_key(params)] = [_check_command(c) for c in commands]
        return True

    def get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """getMyCommands for a scope/language."""
        return list(self.world.commands.get(_commands_key(params), []))

    def delete_my_commands(self, params: dict[str, Any]) -> bool:
        """deleteMyCommands for a scope/language."""
        self.world.commands.pop(_commands_key(params), None)
        return True

    def _set_bot_text(self, field: str, params: dict[str, Any]) -> bool:
        value = str(params.get(field) or "")
        if len(value) > _BOT_TEXT_LIMITS[field]:
            raise bad_request(f"{field} is too long")
        self.world.bot_texts[field] = value
        return True

    def _get_bot_text(self, field: str) -> dict[str, str]:
        return {field: self.world.bot_texts[field]}

    # -- sending ---------------------------------------------------------------------------

    def send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        """sendMessage."""
        _require_chat_id(params)
        text, entities = self.format_text(params.get("text"), params.get("parse_mode"), params.get("entities"))
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return self._deliver(params, content)

    def send_media(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """sendPhoto/sendDocument/...: stores uploads so tests can inspect them."""
        _require_chat_id(params)
        file = self._media_file(kind, params.get(kind))
        content: dict[str, Any] = {kind: media_object(kind, file)}
        if kind not in ("sticker", "video_note"):
            caption, entities = self.format_text(
                params.get("caption"),
                params.get("parse_mode"),
                params.get("caption_entities"),
                caption=True,
            )
            if caption:
                content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        return self._deliver(params, content)

    def send_chat_action(self, params: dict[str, Any]) -> bool:
        """sendChatAction."""
        record = self.world.resolve_chat(params.get("chat_id"))
        if params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self._check_not_blocked(record)
        return True

    def _deliver(self, params: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        """Common tail of the send methods: markup, chat, reply, limits, store."""
        markup = validate_reply_markup(params.get("reply_markup"))
        record = self.world.resolve_chat(params.get("chat_id"))
        reply = self._reply_target(record, params)
        self._check_not_blocked(record)
        self.flood.check(record.chat)
        fields: dict[str, Any] = {"from": self.world.bot_user}
        if reply is not None:
            fields["reply_to_message"] = replied_copy(reply)
        fields.update(content)
        if markup is not None:
            fields["reply_markup"] = markup
        return snapshot(self.world.add_message(record, fields, from_bot=True))

    def _reply_target(self, record: ChatRecord, params: dict[str, Any]) -> dict[str, Any] | None:
        """Find the message replied to (reply_parameters or legacy reply_to_message_id)."""
        reply_parameters = params.get("reply_parameters")
        if reply_parameters is not None:
            if not isinstance(reply_parameters, dict):
                raise bad_request("can't parse reply parameters JSON object")
            if "message_id" not in reply_parameters:
                raise bad_request('can\'t find field "message_id"')
            message_id = reply_parameters["message_id"]
            allow = bool(reply_parameters.get("allow_sending_without_reply"))
            if reply_parameters.get("chat_id") not in (None, record.id):
                record = self.world.resolve_chat(reply_parameters["chat_id"])
        elif params.get("reply_to_message_id") is not None:
            message_id = params["reply_to_message_id"]
            allow = bool(params.get("allow_sending_without_reply"))
        else:
            return None
        message = self.world.get_message(record.id, message_id)
        if message is None and not allow:
            raise bad_request("message to be replied not found")
        return message

    def _check_not_blocked(self, record: ChatRecord) -> None:
        if record.chat.get("type") == "private" and record.id in self.world.blocked_users:
            raise forbidden("bot was blocked by the user")

    def _media_file(self, kind: str, source: Any) -> FileRecord:
        """Resolve a media parameter: an upload, a known file_id or an http(s) URL."""
        if isinstance(source, UploadedFile):
            return self.world.add_file(
                kind,
                source.data,
                file_name=source.filename,
                mime_type=source.content_type or None,
            )
        if isinstance(source, str) and source:
            if source in self.world.files:
                return self.world.files[source]
            if source.lower().startswith(("http://", "https://")):
                name = source.rstrip("/").rsplit("/", 1)[-1] or None
                return self.world.add_file(kind, b"", file_name=name)
            raise bad_request("wrong file identifier/HTTP URL specified")
        raise bad_request(f"there is no {kind} in the request")

    # -- text formatting -------------------------------------------------------------------

    def format_text(
        self, raw: Any, parse_mode: Any, entities: Any, *, caption: bool = False
    ) -> tuple[str, list[dict[str, Any]]]:
        """Turn text + parse_mode/entities into what Telegram stores, or raise its errors."""
        if raw is None or raw == "":
            if caption:
                return "", []
            raise bad_request("message text is empty")
        raw = str(raw)
        if entities is not None:
            try:
                parsed = validate_entities(raw, entities, self._user_dict)
            except EntityError as exc:
                raise bad_request(exc.message) from None
            plain = raw
        else:
            plain, parsed = self._apply_parse_mode(raw, parse_mode)
        plain, parsed = trim_text(plain, fix_nesting(parsed))
        if not plain:
            if caption:
                return "", []
            raise bad_request("text must be non-empty")
        limit = MAX_CAPTION_LENGTH if caption else MAX_MESSAGE_LENGTH
        if utf16_len(plain) > limit:
            raise bad_request("message caption is too long" if caption else "message is too long")
        return plain, parsed

    def _apply_parse_mode(self, raw: str, parse_mode: Any) -> tuple[str, list[dict[str, Any]]]:
        if parse_mode is None or parse_mode == "":
            return raw, []
        mode = str(parse_mode).lower()
        if mode == "html":
            try:
                plain, parsed = parse_telegram_html(raw, strict=self.strict_html)
            except TelegramHtmlError as exc:
                raise bad_request(f"can't parse entities: {exc.message}") from None
            return plain, [self._resolve_mention(e) for e in parsed]
        if mode in ("markdown", "markdownv2"):
            self.warnings.append(f"parse_mode {parse_mode} is not emulated; text stored verbatim")
            return raw, []
        raise bad_request("unsupported parse_mode")

    def _resolve_mention(self, entity: dict[str, Any]) -> dict[str, Any]:
        if entity["type"] != "text_mention":
            return entity
        user = self._user_dict(entity["user"]["id"])
        if user is None:
            raise bad_request("user not found")
        return {**entity, "user": user}

    def _user_dict(self, user_id: int) -> dict[str, Any] | None:
        user = self.world.users.get(user_id)
        return dict(user) if user is not None else None

    # -- editing and deleting --------------------------------------------------------------

    def edit_message_text(self, params: dict[str, Any]) -> Any:
        """editMessageText (chat_id+message_id or inline_message_id)."""
        text, entities = self.format_text(params.get("text"), params.get("parse_mode"), params.get("entities"))
        markup = validate_reply_markup(params.get("reply_markup"))
        target, inline_id = self._edit_target(params)
        if "text" not in target:
            raise bad_request("there is no text in the message to edit")
        changes = {"text": text, "entities": entities, "reply_markup": markup}
        return self._apply_edit(target, inline_id, changes)

    def edit_message_caption(self, params: dict[str, Any]) -> Any:
        """editMessageCaption."""
        caption, entities = self.format_text(
            params.get("caption"),
            params.get("parse_mode"),
            params.get("caption_entities"),
            caption=True,
        )
        markup = validate_reply_markup(params.get("reply_markup"))
        target, inline_id = self._edit_target(params)
        if inline_id is None and not MEDIA_KINDS.intersection(target):
            raise bad_request("there is no caption in the message to edit")
        changes = {"caption": caption, "caption_entities": entities, "reply_markup": markup}
        return self._apply_edit(target, inline_id, changes)

    def edit_message_reply_markup(self, params: dict[str, Any]) -> Any:
        """editMessageReplyMarkup (no markup = remove the inline keyboard)."""
        markup = validate_reply_markup(params.get("reply_markup"))
        target, inline_id = self._edit_target(params)
        return self._apply_edit(target, inline_id, {"reply_markup": markup})

    def _edit_target(self, params: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Return the message (or inline message record) an edit refers to."""
        inline_id = params.get("inline_message_id")
        if inline_id:
            record = self.world.inline_messages.get(str(inline_id))
            if record is None:
                raise bad_request("MESSAGE_ID_INVALID")
            return record, str(inline_id)
        chat = self.world.resolve_chat(params.get("chat_id"))
        if params.get("message_id") is None:
            raise bad_request("message identifier is not specified")
        message = self.world.get_message(chat.id, params["message_id"])
        if message is None:
            raise bad_request("message to edit not found")
        if not self.world.is_from_bot(message):
            raise bad_request("message can't be edited")
        return message, None

    def _apply_edit(self, target: dict[str, Any], inline_id: str | None, changes: dict[str, Any]) -> Any:
        """Apply ``changes`` (empty values remove the field) unless nothing changes."""
        if all((target.get(k) or None) == (v or None) for k, v in changes.items()):
            raise bad_request(NOT_MODIFIED)
        for key, value in changes.items():
            if value:
                target[key] = value
            else:
                target.pop(key, None)
        if inline_id is not None:
            return True
        target["edit_date"] = int(time.time())
        return snapshot(target)

    def delete_message(self, params: dict[str, Any]) -> bool:
        """deleteMessage."""
        record = self.world.resolve_chat(params.get("chat_id"))
        if params.get("message_id") is None:
            raise bad_request("message identifier is not specified")
        message = self.world.get_message(record.id, params["message_id"])
        if message is None:
            raise bad_request("message to delete not found")
        if not self._can_delete(record, message):
            raise bad_request("message can't be deleted")
        record.deleted.add(message["message_id"])
        return True

    def delete_messages(self, params: dict[str, Any]) -> bool:
        """deleteMessages: messages that can't be found or deleted are skipped."""
        record = self.world.resolve_chat(params.get("chat_id"))
        for message_id in _as_list(params.get("message_ids")):
            message = self.world.get_message(record.id, message_id)
            if message is not None and self._can_delete(record, message):
                record.deleted.add(message_id)
        return True

    def _can_delete(self, record: ChatRecord, message: dict[str, Any]) -> bool:
        if record.chat.get("type") == "private" or record.bot_is_admin:
            return True
        return self.world.is_from_bot(message)

    # -- queries ---------------------------------------------------------------------------

    def answer_callback_query(self, params: dict[str, Any]) -> bool:
        """answerCallbackQuery (each query can be answered once)."""
        record = self.world.callback_queries.get(str(params.get("callback_query_id")))
        if record is None or record.answered:
            raise bad_request(QUERY_INVALID)
        text = params.get("text")
        if text is not None and len(str(text)) > MAX_CALLBACK_ANSWER_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
        record.answer = dict(params)
        return True

    def answer_inline_query(self, params: dict[str, Any]) -> bool:
        """answerInlineQuery: validates results like Telegram and stores the answer."""
        results = params.get("results")
        if not isinstance(results, list):
            raise bad_request("can't parse inline query results JSON object")
        if len(results) > MAX_INLINE_RESULTS:
            raise bad_request("RESULTS_TOO_MUCH")
        seen: set[str] = set()
        rendered = {r["id"]: self._inline_result(r, seen) for r in map(_inline_result_shape, results)}
        next_offset = params.get("next_offset")
        if next_offset is not None and len(str(next_offset).encode("utf-8")) > 64:
            raise bad_request("NEXT_OFFSET_INVALID")
        record = self.world.inline_queries.get(str(params.get("inline_query_id")))
        if record is None or record.answered:
            raise bad_request(QUERY_INVALID)
        record.answer = dict(params)
        record.rendered = rendered
        return True

    def _inline_result(self, result: dict[str, Any], seen: set[str]) -> dict[str, Any]:
        """Validate one InlineQueryResult; return the message it would post if chosen."""
        result_id = result["id"]
        if len(result_id.encode("utf-8")) > 64:
            raise bad_request("RESULT_ID_INVALID")
        if result_id in seen:
            raise bad_request("RESULT_ID_DUPLICATE")
        seen.add(result_id)
        if result["type"] == "article":
            for field in ("title", "input_message_content"):
                if field not in result:
                    raise bad_request(f"can't parse inline query result: Can't find field \"{field}\"")
        rendered: dict[str, Any] = {}
        content = result.get("input_message_content")
        if isinstance(content, dict) and "message_text" in content:
            text, entities = self.format_text(
                content.get("message_text"), content.get("parse_mode"), content.get("entities")
            )
            rendered = {"text": text, "entities": entities}
        markup = validate_reply_markup(result.get("reply_markup"))
        if markup is not None:
            rendered["reply_markup"] = markup
        return rendered

    # -- chats and files -------------------------------------------------------------------

    def get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        """getChat: a ChatFullInfo for a known chat."""
        record = self.world.resolve_chat(params.get("chat_id"))
        gifts = dict.fromkeys(
            ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription", "gifts_from_channels"),
            False,
        )
        return {**record.chat, "accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gifts}

    def get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        """getFile: path for download from ``/file/bot<token>/<file_path>``."""
        file = self.world.files.get(str(params.get("file_id")))
        if file is None:
            raise bad_request("invalid file_id")
        return {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": len(file.data),
            "file_path": file.file_path,
        }


def _true(params: dict[str, Any]) -> bool:
    return True


def _require_chat_id(params: dict[str, Any]) -> None:
    if params.get("chat_id") in (None, ""):
        raise bad_request("chat_id is empty")


def _as_int(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {name} specified") from None


def _as_float(value: Any, name: str) -> float:
    """Telegram documents integer timeouts; fractions are accepted here for fast tests."""
    if value is None or value == "":
        return 0.0
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {name} specified") from None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise bad_request("can't parse array JSON object") from None
    if not isinstance(value, list):
        raise bad_request("can't parse array JSON object")
    return value


def _commands_key(params: dict[str, Any]) -> str:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True) + "|" + str(params.get("language_code") or "")


def _check_command(command: Any) -> dict[str, str]:
    if not isinstance(command, dict):
        raise bad_request("can't parse BotCommand: expected an Object")
    for field in ("command", "description"):
        if not isinstance(command.get(field), str):
            raise bad_request(f"can't parse BotCommand: Can't find field \"{field}\"")
    if not _COMMAND_RE.match(command["command"]):
        raise bad_request("BOT_COMMAND_INVALID")
    if not 0 < len(command["description"]) <= 256:
        raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    return {"command": command["command"], "description": command["description"]}


def _inline_result_shape(result: Any) -> dict[str, Any]:
    """Check the fields every InlineQueryResult needs (type and a string id)."""
    if not isinstance(result, dict):
        raise bad_request("can't parse inline query result: expected an Object")
    if "type" not in result:
        raise bad_request("can't parse inline query result: Can't find field \"type\"")
    if result["type"] not in INLINE_RESULT_TYPES:
        raise bad_request(f'can\'t parse inline query result: Unsupported type "{result["type"]}"')
    if not isinstance(result.get("id"), str) or not result["id"]:
        raise bad_request("can't parse inline query result: Can't find field \"id\"")
    return result
