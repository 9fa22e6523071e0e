"""The lean path's pieces in bot/transport.py: orjson parsing of the Bot API's answers behaves as
python-telegram-bot's own parser."""

import pytest
from telegram.error import TelegramError
from telegram.request import BaseRequest

from bot.application import build_application
from bot.transport import BotRequest, FastJsonPayload, PollingRequest

PAYLOADS = [
    b'{"ok": true, "result": [{"update_id": 1, "message": {"text": "\\u041a\\u0430\\u0431 \xf0\x9f\x98\x80"}}]}',
    b'{"ok": false, "error_code": 429, "description": "Too Many Requests", "parameters": {"retry_after": 3}}',
    b'{"ok": true, "result": true}',
    '{"ok": true, "result": "Кабул"}'.encode(),
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_orjson_parses_as_the_library_does(payload):
    assert FastJsonPayload.parse_json_payload(payload) == BaseRequest.parse_json_payload(payload)


def test_invalid_utf8_is_replaced_and_invalid_json_refused_as_by_the_library():
    bad_utf8 = b'{"ok": true, "result": "caf\xe9"}'
    assert FastJsonPayload.parse_json_payload(bad_utf8) == BaseRequest.parse_json_payload(bad_utf8)
    with pytest.raises(TelegramError, match="Invalid server response"):
        FastJsonPayload.parse_json_payload(b"<html>502 Bad Gateway</html>")


def test_the_bot_sends_and_polls_through_the_orjson_requests(settings, searcher):
    application = build_application(settings, searcher, token="123:abc", base_url="http://127.0.0.1:9/bot")
    assert isinstance(application.bot.request, BotRequest)
    assert isinstance(application.bot._request[0], PollingRequest)  # PTB's getUpdates request
