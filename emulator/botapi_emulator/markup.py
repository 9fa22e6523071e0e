"""Validation of ``reply_markup`` (inline keyboards, reply keyboards, force reply)."""

from __future__ import annotations

import json
from typing import Any

from .errors import ApiError, bad_request
from .urls import UrlError, check_url

MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100
_SWITCH_FIELDS = (
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "login_url",
)
_REPLY_KEYBOARD_BOOLS = ("resize_keyboard", "one_time_keyboard", "selective", "is_persistent")
_BUTTON_ERROR = "can't parse inline keyboard button: "


def validate_reply_markup(markup: Any) -> dict[str, Any] | None:
    """Validate a ``reply_markup`` value like Telegram.

    Returns the inline keyboard to store on the message (Telegram only echoes inline
    keyboards back in Message.reply_markup), or ``None``. Raises :class:`ApiError`.
    """
    if markup is None:
        return None
    if isinstance(markup, str):
        try:
            markup = json.loads(markup)
        except ValueError:
            raise bad_request("can't parse reply keyboard markup JSON object") from None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        return {"inline_keyboard": validate_inline_keyboard(markup["inline_keyboard"])}
    if "keyboard" in markup:
        _validate_reply_keyboard(markup)
    elif "remove_keyboard" in markup:
        _require_bool(markup, "remove_keyboard")
    elif "force_reply" in markup:
        _require_bool(markup, "force_reply")
    else:
        raise bad_request("can't parse reply keyboard markup JSON object")
    return None


def validate_inline_keyboard(rows: Any) -> list[list[dict[str, Any]]]:
    """Validate an ``inline_keyboard`` array and return it without empty rows."""
    if not isinstance(rows, list):
        raise bad_request('field "inline_keyboard" must be of type Array')
    result = []
    for row in rows:
        if not isinstance(row, list):
            raise bad_request('field "inline_keyboard" must be an Array of Arrays')
        if row:
            result.append([validate_inline_button(button) for button in row])
    if sum(len(row) for row in result) > MAX_INLINE_BUTTONS:
        raise bad_request("REPLY_MARKUP_TOO_LONG")
    return result


def validate_inline_button(button: Any) -> dict[str, Any]:
    """Validate one InlineKeyboardButton; the first non-empty action field decides its kind."""
    if not isinstance(button, dict):
        raise bad_request(_BUTTON_ERROR + "expected an Object")
    if "text" not in button:
        raise bad_request(_BUTTON_ERROR + 'Can\'t find field "text"')
    if not isinstance(button["text"], str):
        raise bad_request(_BUTTON_ERROR + 'Field "text" must be of type String')
    if button.get("url"):
        _check_button_url(str(button["url"]), "inline keyboard button URL")
        return dict(button)
    if "callback_data" in button and not isinstance(button["callback_data"], str):
        raise bad_request(_BUTTON_ERROR + 'Field "callback_data" must be of type String')
    if button.get("callback_data"):
        if len(button["callback_data"].encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
        return dict(button)
    _validate_other_action(button)
    return dict(button)


def _validate_other_action(button: dict[str, Any]) -> None:
    if "callback_game" in button or "pay" in button:
        raise bad_request("BUTTON_TYPE_INVALID")
    if "web_app" in button:
        web_app = button["web_app"] if isinstance(button["web_app"], dict) else {}
        _check_web_app_url(str(web_app.get("url", "")), "inline keyboard button")
        return
    if "copy_text" in button:
        copy_text = button["copy_text"] if isinstance(button["copy_text"], dict) else {}
        text = copy_text.get("text")
        if not isinstance(text, str) or not 0 < len(text) <= 256:
            raise bad_request("BUTTON_COPY_TEXT_INVALID")
        return
    if not any(field in button for field in _SWITCH_FIELDS):
        raise bad_request(_BUTTON_ERROR + "Text buttons are unallowed in the inline keyboard")


def _check_button_url(url: str, what: str) -> None:
    try:
        check_url(url)
    except UrlError as exc:
        raise bad_request(f"{what} '{url}' is invalid: {exc.reason}") from None


def _check_web_app_url(url: str, what: str) -> None:
    if not url.lower().startswith("https://"):
        raise bad_request(f"{what} Web App URL '{url}' is invalid: Only HTTPS links are allowed")
    _check_button_url(url, f"{what} Web App URL")


def _validate_reply_keyboard(markup: dict[str, Any]) -> None:
    rows = markup["keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "keyboard" must be of type Array')
    for row in rows:
        for button in row:
            _validate_keyboard_button(button)
    for name in _REPLY_KEYBOARD_BOOLS:
        if name in markup:
            _require_bool(markup, name)


def _validate_keyboard_button(button: Any) -> None:
    if isinstance(button, str):
        return
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request("can't parse keyboard button: Can't find field \"text\"")
    if "web_app" in button:
        web_app = button["web_app"] if isinstance(button["web_app"], dict) else {}
        _check_web_app_url(str(web_app.get("url", "")), "keyboard button")


def _require_bool(markup: dict[str, Any], name: str) -> None:
    if not isinstance(markup[name], bool):
        raise ApiError(400, f'Bad Request: field "{name}" must be of type Boolean')


def find_callback_button(markup: dict[str, Any] | None, data: str) -> dict[str, Any] | None:
    """Return the inline button of ``markup`` whose callback_data is ``data``, if any."""
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            if button.get("callback_data") == data:
                return button
    return None
