"""Bot round trip: from an update offered by the Bot API emulator to the bot's sendMessage,
with 1, 20 and 100 simulated users asking at the same time.

The real bot (``bot.app.build_application``) long-polls a ``botapi_emulator`` on 127.0.0.1 in the
same event loop. Each simulated user asks its next question as soon as the previous answer arrives
(closed loop); the time is taken from just before the emulator queues the update to the moment the
bot's sendMessage request reaches the emulator. The rate limit is lifted for the run.

    python -m bench.roundtrip [--quick] [--repeats N]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .common import bench_settings, latency_summary, open_searcher, over_runs, parser, write_result
from .questions import questions as make_questions

USERS = (1, 20, 100)
QUESTIONS_PER_USER = {1: 40, 20: 5, 100: 2}


async def one_level(app_factory, searcher, users: int, per_user: int, pool: list[str]) -> dict[str, Any]:
    from botapi_emulator import BotApiEmulator

    emu = BotApiEmulator(strict_html=False)
    await emu.start()
    emu.disable_flood_limits()
    waiting: dict[int, asyncio.Future] = {}

    def listener(call) -> None:
        if call.method.lower() == "sendmessage":
            future = waiting.pop(int(call.params.get("chat_id", 0)), None)
            if future is not None and not future.done():
                future.set_result((call.time, str(call.params.get("text", ""))))

    emu.add_listener(listener)
    app = app_factory(emu)
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=0.0, timeout=10)
    times: list[float] = []
    texts: list[str] = []
    try:
        async def user(uid: int) -> None:
            person = emu.user(uid, f"User{uid}")
            chat = emu.private_chat(person)
            for j in range(per_user):
                question = pool[(uid * per_user + j) % len(pool)]
                future = asyncio.get_running_loop().create_future()
                waiting[chat["id"]] = future
                offered = time.monotonic()
                emu.send_text(chat, person, question)
                arrived, text = await asyncio.wait_for(future, 120)
                times.append(arrived - offered)
                texts.append(text)

        start = time.perf_counter()
        await asyncio.gather(*(user(1000 + i) for i in range(users)))
        seconds = time.perf_counter() - start
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
        await emu.stop()
    with_passages = sum("Passages" in t for t in texts) / max(1, len(texts))  # the rest: abstentions or errors
    return {"summary": latency_summary(times), "questions": len(times), "questions_per_second": len(times) / seconds,
            "answers_with_passages": with_passages, "sample_answer": texts[0][:300] if texts else ""}


def run(repeats: int, quick: bool) -> dict[str, Any]:
    from bot.app import build_application

    settings = bench_settings()
    settings = settings.model_copy(update={"telegram": settings.telegram.model_copy(
        update={"rate_limit_per_minute": 1_000_000})})
    searcher = open_searcher(settings)
    pool = make_questions(400)

    def factory(emu):
        return build_application(settings, searcher, base_url=emu.base_url, token=emu.token)

    rows = []
    for users in USERS:
        per_user = 1 if quick else QUESTIONS_PER_USER[users]
        if quick and users > 20:
            continue
        runs = []
        for r in range(repeats):
            searcher._cache.clear()
            runs.append(asyncio.run(one_level(factory, searcher, users, per_user, pool[r * 7 :] + pool[: r * 7])))
        rows.append({"users": users, "questions": runs[0]["questions"],
                     "latency_ms": over_runs([x["summary"] for x in runs]),
                     "questions_per_second": over_runs([{"q": x["questions_per_second"]} for x in runs])["q"],
                     "answers_with_passages": runs[0]["answers_with_passages"],
                     "sample_answer": runs[0]["sample_answer"]})
        print(f"roundtrip: {users} users done", flush=True)
    return {"repeats": repeats, "workers": settings.telegram.workers, "users": rows}


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    write_result("roundtrip", run(args.repeats or (1 if args.quick else 2), args.quick), args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
