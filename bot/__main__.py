"""``python -m bot [--config PATH]``: the same as ``citebot serve``."""

from __future__ import annotations

import argparse
import sys

from citebot.config import ConfigError, load_settings

from .app import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run the citebot Telegram bot.")
    parser.add_argument("--config", help="configuration file (default: config/citebot.yaml)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"citebot: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
