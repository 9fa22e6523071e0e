"""The bot's HTTP client alone: CPU per Bot API call, python-telegram-bot's HTTPXRequest (httpx)
against citebot's AiohttpRequest (aiohttp), side by side in one run.

A Bot API emulator runs in a child process (``python -m bench.http_client --serve PORT``: the
emulator on 127.0.0.1 with one private chat, flood limits off); this process
sends sendMessage calls of the bot's size (a 1,500-character HTML answer with a keyboard), CONCURRENT
at a time as at 20 users, through each request class in turn, alternating, REPEATS times each.
Reported: this process's CPU time per call (the client's whole cost: the event loop, the HTTP
library, PTB's parameters) and calls per second.

    python -m bench.http_client [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from typing import Any

from .common import parser, scalar_over_runs, write_result

TOKEN = "123456:BENCH-TOKEN"
CONCURRENT = 20
CHAT = 7
TEXT = "<b>1.</b> " + "passage text, " * 105


async def serve(port: int) -> None:
    """The child: the emulator with the chat the calls go to, until it is terminated."""
    from botapi_emulator import BotApiEmulator

    async with BotApiEmulator(token=TOKEN, port=port) as emulator:
        emulator.private_chat(emulator.user(CHAT, "Bench"))
        emulator.disable_flood_limits()
        await asyncio.Event().wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def calls(request: Any, base_url: str, n: int) -> tuple[float, float]:
    """``n`` sendMessage calls, CONCURRENT in flight: (calls per second, CPU ms per call)."""
    from telegram.request import RequestData
    from telegram.request._requestparameter import RequestParameter

    markup = json.dumps({"inline_keyboard": [[{"text": "More results ▶", "callback_data": "m:x:1"}]]})
    params = {"chat_id": CHAT, "text": TEXT, "parse_mode": "HTML", "reply_markup": markup}
    data = RequestData([RequestParameter(k, v, None) for k, v in params.items()])
    url = f"{base_url}{TOKEN}/sendMessage"
    gate = asyncio.Semaphore(CONCURRENT)

    async def one() -> int:
        async with gate:
            status, _ = await request.do_request(url, "POST", data)
            return status

    await asyncio.gather(*(one() for _ in range(min(n, 100))))  # warm: the pool's connections open
    start, cpu = time.perf_counter(), time.process_time()
    statuses = await asyncio.gather(*(one() for _ in range(n)))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    if set(statuses) != {200}:
        raise RuntimeError(f"the emulator answered {sorted(set(statuses))}")
    return n / wall, 1000 * cpu / n


async def measure(base_url: str, n: int, repeats: int) -> dict[str, dict[str, Any]]:
    from telegram.request import HTTPXRequest

    from bot.aiohttp_request import AiohttpRequest

    makers = {
        "httpx (PTB's HTTPXRequest)": lambda: HTTPXRequest(connection_pool_size=256),
        "aiohttp (bot.aiohttp_request.AiohttpRequest)": lambda: AiohttpRequest(connection_pool_size=256),
    }
    runs: dict[str, dict[str, list[float]]] = {name: {"per_second": [], "cpu_ms": []} for name in makers}
    for r in range(repeats):
        for name in list(makers) if r % 2 == 0 else list(makers)[::-1]:
            request = makers[name]()
            await request.initialize()
            try:
                per_second, cpu_ms = await calls(request, base_url, n)
            finally:
                await request.shutdown()
            runs[name]["per_second"].append(per_second)
            runs[name]["cpu_ms"].append(cpu_ms)
            print(f"http_client: {name}: {per_second:.0f} calls/s, {cpu_ms:.2f} ms CPU per call", flush=True)
    return {
        name: {"calls_per_second": scalar_over_runs(v["per_second"]), "cpu_ms_per_call": scalar_over_runs(v["cpu_ms"])}
        for name, v in runs.items()
    }


def run(quick: bool, repeats: int) -> dict[str, Any]:
    port = free_port()
    emulator = subprocess.Popen([sys.executable, "-m", "bench.http_client", "--serve", str(port)])
    try:
        deadline = time.monotonic() + 30
        while True:  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or emulator.poll() is not None:
                    raise RuntimeError("the Bot API emulator did not start") from None
                time.sleep(0.05)
        n = 300 if quick else 3000
        results = asyncio.run(measure(f"http://127.0.0.1:{port}/bot", n, repeats))
    finally:
        emulator.terminate()
        emulator.wait(10)
    return {"calls": n, "concurrent": CONCURRENT, "repeats": repeats, "clients": results}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the emulator's child
    args = p.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    write_result("http_client", run(args.quick, args.repeats or (2 if args.quick else 3)), args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
