"""Cold start: process start to the first answered question, with an index already built.

Two measurements, each repeated in fresh processes:

* ``citebot ask --json QUESTION`` wall time (what a user waits for),
* an instrumented child doing the same steps as the bot (import, model load, index load,
  searcher set-up, first question) with timers, to see where the time goes;
* the floor, side by side (runs alternate with the two above): a bare child that loads the
  model with sentence-transformers and encodes the one question, nothing else. The target is
  ``citebot ask`` within TARGET_RATIO of it. A second bare child does the same after deferring
  scikit-learn as citebot does (:mod:`embeddings.deferred_imports`), so that the report shows how
  much of citebot's lead over the first one is that import;

and one ``python -X importtime`` run of that child, summarised by top-level package.

    python -m bench.cold_start [--quick] [--repeats N]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from .common import REPO, WORK, open_searcher, parser, scalar_over_runs, write_result

QUESTION = "Why did Russia remove the Taliban from its list of terrorist organisations?"

CHILD = r"""
import time
t0 = time.perf_counter()
import json, sys
marks = {}
from citebot.config import load_settings
from citebot import engine
import embeddings.search
marks["import citebot + embeddings"] = time.perf_counter() - t0
t = time.perf_counter()
settings = load_settings(sys.argv[1], environ={"CITEBOT_INDEX_DIR": sys.argv[2]})
encoder = engine.load_encoder(settings)
marks["load model (incl. sentence-transformers/torch imports)"] = time.perf_counter() - t
t = time.perf_counter()
data = engine.open_index(settings)
marks["load index files"] = time.perf_counter() - t
t = time.perf_counter()
searcher = engine.make_searcher(settings, encoder, data)
marks["searcher set-up (BM25, vocabulary, FAISS, token vectors)"] = time.perf_counter() - t
t = time.perf_counter()
result = searcher.search(sys.argv[3])
marks["first question"] = time.perf_counter() - t
marks["total in process"] = time.perf_counter() - t0
print(json.dumps({"marks": marks, "answered": not result.abstained, "passages": len(searcher.passages)}))
"""


BARE = r"""
import sys
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu", local_files_only=True)
model.encode([sys.argv[2]])
"""
# the same, with what citebot defers (embeddings.deferred_imports): the floor citebot itself could reach
BARE_DEFERRED = "from embeddings.deferred_imports import defer_unused_imports\ndefer_unused_imports()\n" + BARE
TARGET_RATIO = 1.1  # citebot ask / (bare model load + one encode)


def run_bare(model_path: str, script: str = BARE) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", script, model_path, QUESTION],
        capture_output=True,
        text=True,
        check=True,
        env=env(),
        cwd=REPO,
    )
    return time.perf_counter() - start


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        CITEBOT_INDEX_DIR=str(WORK / "index"),
    )
    return e


def run_child(index_dir: Path) -> dict[str, Any]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO / "config" / "citebot.yaml"), str(index_dir), QUESTION],
        capture_output=True,
        text=True,
        check=True,
        env=env(),
        cwd=REPO,
    )
    wall = time.perf_counter() - start
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["marks"]["interpreter start + exit"] = wall - data["marks"]["total in process"]
    data["wall"] = wall
    return data


def run_cli() -> float:
    citebot = Path(sys.executable).with_name("citebot")
    start = time.perf_counter()
    out = subprocess.run(
        [str(citebot), "ask", "--json", QUESTION], capture_output=True, text=True, check=True, env=env(), cwd=REPO
    )
    wall = time.perf_counter() - start
    assert json.loads(out.stdout.splitlines()[0])["results"], "cold-start question was not answered"
    return wall


def import_profile(index_dir: Path, top: int = 15) -> dict[str, Any]:
    """``-X importtime`` of the child: cumulative import time by top-level package, and the
    biggest single imports."""
    out = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            CHILD,
            str(REPO / "config" / "citebot.yaml"),
            str(index_dir),
            QUESTION,
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env(),
        cwd=REPO,
    )
    by_package: dict[str, float] = defaultdict(float)
    rows = []
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        self_us, cumulative_us, indent, name = int(m[1]), int(m[2]), len(m[3]), m[4]
        by_package[name.split(".")[0]] += self_us / 1e6
        if indent <= 1:
            rows.append((name, cumulative_us / 1e6))
    packages = sorted(by_package.items(), key=lambda kv: -kv[1])[:top]
    return {
        "total_import_seconds": sum(by_package.values()),
        "self_seconds_by_package": [{"package": p, "seconds": s} for p, s in packages],
        "top_level_imports_cumulative": [
            {"module": n, "seconds": s} for n, s in sorted(rows, key=lambda r: -r[1])[:top]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    from embeddings.model import resolve_model

    searcher = open_searcher()  # make sure the index exists and is current (not timed)
    model_path = resolve_model(searcher.encoder.spec)
    index_dir = WORK / "index"
    children, cli, bare, bare_deferred, ratios, ratios_deferred = [], [], [], [], [], []
    for r in range(repeats):  # side by side: each repeat runs all four, in an order that rotates
        runs = [
            lambda: cli.append(run_cli()),
            lambda: bare.append(run_bare(model_path)),
            lambda: children.append(run_child(index_dir)),
            lambda: bare_deferred.append(run_bare(model_path, BARE_DEFERRED)),
        ]
        for i in range(len(runs)):
            runs[(i + r) % len(runs)]()
        ratios.append(cli[-1] / bare[-1])
        ratios_deferred.append(cli[-1] / bare_deferred[-1])
    steps = list(children[0]["marks"])
    result = {
        "question": QUESTION,
        "repeats": repeats,
        "passages": children[0]["passages"],
        "cli_ask_wall_seconds": scalar_over_runs(cli),
        "bare_model_load_and_encode_seconds": scalar_over_runs(bare),
        "ratio_cli_to_bare": scalar_over_runs(ratios),
        # the bare process deferring scikit-learn as citebot does: how much of the gain is that
        "bare_deferred_seconds": scalar_over_runs(bare_deferred),
        "ratio_cli_to_bare_deferred": scalar_over_runs(ratios_deferred),
        "target_ratio": TARGET_RATIO,
        "instrumented_wall_seconds": scalar_over_runs([c["wall"] for c in children]),
        "steps_seconds": {s: scalar_over_runs([c["marks"][s] for c in children]) for s in steps},
        "target_seconds": 6.0,
        "imports": import_profile(index_dir),
    }
    write_result("cold_start", result, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
