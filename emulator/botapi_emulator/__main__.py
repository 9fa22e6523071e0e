"""Command line: serve the emulator until interrupted.

    python -m botapi_emulator --port 8081 --token 123456:TEST-TOKEN

Every Bot API call is logged on stdout. Nothing is ever sent to the network; the server only
listens (on 127.0.0.1 unless --host says otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from .recorded import RecordedCall
from .server import BotApiEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse command line arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m botapi_emulator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8081, help="port (0 = random free port)")
    parser.add_argument("--token", default="123456:TEST-TOKEN", help="the bot token to accept")
    parser.add_argument("--username", default="citebot_test_bot", help="the bot's username")
    parser.add_argument("--lenient-html", action="store_true", help="accept a bare '&' in HTML like Telegram does")
    parser.add_argument("--quiet", action="store_true", help="do not log calls")
    return parser.parse_args(argv)


def _print_call(call: RecordedCall) -> None:
    print(f"{call.duration * 1000:7.1f} ms  {call.summary()}", flush=True)


async def _serve(args: argparse.Namespace) -> None:
    emulator = BotApiEmulator(
        token=args.token, bot_username=args.username, host=args.host, port=args.port, strict_html=not args.lenient_html
    )
    if not args.quiet:
        emulator.add_listener(_print_call)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await emulator.start()
    print(f"Bot API emulator: base_url={emulator.base_url} token={emulator.token}", flush=True)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    asyncio.run(_serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
