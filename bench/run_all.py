"""Run every benchmark, each in a fresh process, then regenerate bench/README.md.

    python -m bench.run_all [--quick] [--only latency,scale] [--skip roundtrip]

``make bench`` runs this. Each script writes bench/results/<name>.json; bench/report.py turns
them into the README tables and the PNG plots.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time

from .common import REPO

ORDER = ("build", "latency", "naive", "typos", "cold_start", "scale", "quantized", "roundtrip", "http_client")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run of every script (results in bench/results/quick)")
    p.add_argument("--only", default="", help="comma-separated benchmarks to run")
    p.add_argument("--skip", default="", help="comma-separated benchmarks to skip")
    args = p.parse_args(argv)
    chosen = [n for n in ORDER if (not args.only or n in args.only.split(",")) and n not in args.skip.split(",")]
    failed = []
    for name in chosen:
        if importlib.util.find_spec(f"bench.{name}") is None:
            print(f"== {name}: not written yet, skipped", flush=True)
            continue
        command = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if args.quick else [])]
        print(f"== {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.run(command, cwd=REPO).returncode
        print(f"== {name}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(name)
    report = [sys.executable, "-m", "bench.report", *(["--quick"] if args.quick else [])]
    subprocess.run(report, cwd=REPO, check=False)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
