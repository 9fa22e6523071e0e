"""The lean path's pieces in bot/transport.py: orjson parsing of the Bot API's answers behaves as
python-telegram-bot's own parser."""

import asyncio
import json
import os
import subprocess
import sys
import threading

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


def test_the_bot_answers_a_searcher_through_its_batcher_thread(settings, searcher):
    from types import SimpleNamespace

    from bot import handlers

    application = build_application(settings, searcher, token="123:abc", base_url="http://127.0.0.1:9/bot")
    state = application.bot_data
    context = SimpleNamespace(bot_data=state)
    question = "Who overthrew King Zahir Shah?"

    async def ask():
        try:
            results = await asyncio.gather(*(handlers.search(context, question, 3, offset) for offset in (0, 0, 3)))
            names = {t.name for t in threading.enumerate()}
        finally:
            await asyncio.to_thread(state.searches.close, 30)
        return results, names

    results, names = asyncio.run(ask())
    assert "citebot-search-batch" in names
    expected = [searcher.search(question, 3, offset) for offset in (0, 0, 3)]
    assert [[h.start for h in r.hits] for r in results] == [[h.start for h in r.hits] for r in expected]
    assert results[0].hits and results[2].hits[0].rank == 4


def test_a_retriever_without_batches_is_asked_in_the_thread_pool(settings, searcher):
    from types import SimpleNamespace

    from bot import handlers

    class OneAtATime:
        def __init__(self):
            self.threads = []

        def search(self, query, k=3, offset=0):
            self.threads.append(threading.current_thread().name)
            return searcher.search(query, k, offset)

    retriever = OneAtATime()
    application = build_application(settings, retriever, token="123:abc", base_url="http://127.0.0.1:9/bot")
    state = application.bot_data

    async def ask():
        try:
            return await handlers.search(SimpleNamespace(bot_data=state), "Do Afghans still speak Russian?", 3, 0)
        finally:
            state.executor.shutdown()

    assert asyncio.run(ask()).hits
    assert retriever.threads and retriever.threads[0].startswith("citebot-search")
    assert not retriever.threads[0].startswith("citebot-search-batch")


def test_only_a_class_that_answers_batches_goes_through_the_batcher():
    from bot.retriever import answers_batches

    class Batches:
        def search(self, query, k=3, offset=0): ...

        def search_many(self, queries, k=3, offset=0): ...

    class Forwarding:  # a wrapper with its own search, the rest forwarded (as tests' fakes do)
        def __init__(self, real):
            self.real = real

        def search(self, query, k=3, offset=0): ...

        def __getattr__(self, name):
            return getattr(self.real, name)

    assert answers_batches(Batches())
    assert not answers_batches(Forwarding(Batches()))


THREAD_COUNTS = """
import asyncio, json, sys, torch
from types import SimpleNamespace
from bot import application, handlers
from citebot.config import Settings
from citebot.service import configure_process

configure_process(logs=False)
if sys.argv[1] == "unlimited":
    application.limit_threads_here = lambda threads: None
seen = []

class Recording:
    def search(self, query, k=3, offset=0):
        seen.append(torch.get_num_threads())
        return None

app = application.build_application(Settings(), Recording(), token="123:abc", base_url="http://127.0.0.1:9/bot")
state = app.bot_data

async def ask():
    try:
        await handlers.search(SimpleNamespace(bot_data=state), "a question", 3, 0)
    finally:
        await asyncio.to_thread(state.searches.close, 30)

asyncio.run(ask())
pool = state.executor.submit(torch.get_num_threads).result(30)
print(json.dumps({"main": torch.get_num_threads(), "batcher": seen, "pool": pool}))
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: OpenMP's default is one thread anyway")
def test_the_bots_search_threads_get_the_main_threads_openmp_limits():
    """OpenMP keeps its thread count per thread: without citebot.engine.limit_threads_here, the
    bot's batcher and worker threads ran torch on one thread per core, where the main thread
    (citebot eval, the benchmarks' bare model) has one. A fresh process without the test
    session's OMP_NUM_THREADS=1, which would hide it."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}

    def counts(mode: str) -> dict:
        command = [sys.executable, "-c", THREAD_COUNTS, mode]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert counts("limited") == {"main": 1, "batcher": [1], "pool": 1}
    unlimited = counts("unlimited")  # the check can fail: this is what the bot did before
    assert unlimited["main"] == 1 and unlimited["batcher"] == [os.cpu_count()] and unlimited["pool"] == os.cpu_count()


@pytest.mark.asyncio
async def test_what_start_up_built_is_frozen_out_of_full_collections(emulator, start_bot, settings, searcher):
    """A full collection walks every tracked object: ~470k once the model is loaded, 250-300 ms
    during which no thread runs Python. A started bot has them in gc's permanent generation."""
    import gc

    gc.unfreeze()  # whatever an earlier test froze: this test's start must do it
    assert gc.get_freeze_count() == 0
    app = await start_bot()
    frozen = gc.get_freeze_count()
    assert frozen > 100_000
    tracked = {id(o) for o in gc.get_objects()}  # the generations a collection walks
    assert id(app.bot_data) not in tracked and id(searcher.encoder.model) not in tracked
    assert len(tracked) < frozen / 10
