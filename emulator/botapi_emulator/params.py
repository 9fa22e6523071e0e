"""Decoding of Bot API request parameters.

Telegram accepts query strings, ``application/x-www-form-urlencoded``, ``multipart/form-data``
and JSON bodies. python-telegram-bot sends form data in which string values are sent as
they are and every other value (numbers, booleans, objects, arrays) is JSON-encoded, so a
form value is JSON-decoded unless the parameter is a known string parameter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .errors import bad_request

STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "query",
        "inline_message_id",
        "callback_query_id",
        "inline_query_id",
        "description",
        "short_description",
        "name",
        "url",
        "secret_token",
        "next_offset",
        "language_code",
        "emoji",
        "title",
        "action",
        "ip_address",
        "business_connection_id",
        "message_effect_id",
        "custom_title",
        "file_id",
        "photo",
        "document",
        "audio",
        "video",
        "voice",
        "animation",
        "video_note",
        "sticker",
        "thumbnail",
        "switch_pm_text",
        "switch_pm_parameter",
        "game_short_name",
        "address",
        "first_name",
        "last_name",
        "phone_number",
        "vcard",
        "question",
        "explanation",
        "invite_link",
        "payload",
        "currency",
        "provider_token",
        "start_parameter",
        "result_id",
        "custom_emoji_id",
        "filename",
        "foursquare_id",
        "google_place_id",
    }
)


@dataclass(frozen=True)
class UploadedFile:
    """A file uploaded in a multipart request."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        """Size of the upload in bytes."""
        return len(self.data)


def coerce(name: str, value: str) -> Any:
    """Turn a transported string into the value it stands for (see module docstring)."""
    if name in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def read_params(request: web.Request) -> dict[str, Any]:
    """Read all parameters of ``request`` (query string plus body) into a dict."""
    params: dict[str, Any] = {k: coerce(k, v) for k, v in request.query.items()}
    content_type = request.content_type
    if content_type == "application/json":
        params.update(_json_params(await request.read()))
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = UploadedFile(value.filename or key, value.content_type or "", value.file.read())
            else:
                params[key] = coerce(key, str(value))
    return params


def _json_params(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise bad_request("can't parse JSON encoded request body") from None
    if not isinstance(data, dict):
        raise bad_request("JSON encoded request body must be an Object")
    return {k: coerce(k, v) if isinstance(v, str) else v for k, v in data.items()}
