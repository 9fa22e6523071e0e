"""What every benchmark shares: the machine, settings, statistics, and writing results.

Results go to ``bench/results/<name>.json`` (``bench/results/quick/`` for ``--quick`` smoke runs,
so a smoke test never overwrites the real numbers). bench/report.py turns them into the README.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from citebot.service import configure_process

configure_process(logs=False)  # every benchmark imports this module: offline, thread limits

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
WORK = REPO / "var" / "bench"  # indexes and scratch copies of the seeds (var/ is git-ignored)
EVAL_FILE = REPO / "tests" / "data" / "eval.yaml"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a short smoke run; results go to bench/results/quick/")
    p.add_argument("--repeats", type=int, default=None, help="repeated runs (default: 3, quick: 1)")
    return p


def results_dir(quick: bool) -> Path:
    path = RESULTS / "quick" if quick else RESULTS
    path.mkdir(parents=True, exist_ok=True)
    return path


def machine() -> dict[str, Any]:
    """Enough to tell two machines apart: CPU, cores, memory, library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    for module in ("numpy", "faiss", "torch", "sentence_transformers", "transformers"):
        mod = sys.modules.get(module)
        if mod is not None:
            info[module] = getattr(mod, "__version__", "?")
    with contextlib.suppress(OSError):  # other work on the machine skews timings: note how much there was
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    return info


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def rss_mib() -> float:
    """Resident memory of this process now (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100)."""
    data = sorted(values)
    if not data:
        return float("nan")
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean in milliseconds of one run's per-question timings."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "mean": statistics.fmean(ms) if ms else float("nan"),
    }


def over_runs(runs: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """For each metric of repeated runs: the median, and the spread (min, max) across runs."""
    keys = [k for k in runs[0] if k != "n"] if runs else []
    return {
        k: {
            "median": statistics.median(r[k] for r in runs),
            "min": min(r[k] for r in runs),
            "max": max(r[k] for r in runs),
            "runs": len(runs),
        }
        for k in keys
    }


def scalar_over_runs(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def library_encode(encoder: Any, texts: list[str], batch_size: int = 32) -> Any:
    """The floor citebot is measured against: ``SentenceTransformer.encode`` as the library ships
    it, set-up included (``Encoder.encode`` takes the same numbers without the per-call set-up)."""
    return encoder.model.encode(texts, batch_size=batch_size, normalize_embeddings=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def write_result(name: str, data: dict[str, Any], quick: bool) -> Path:
    path = results_dir(quick) / f"{name}.json"
    payload = {
        "benchmark": name,
        "quick": quick,
        "code": _code_version(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, "-m", *_module_argv()]),
        **data,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    tmp.replace(path)
    print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}", file=sys.stderr)
    return path


def _code_version() -> str:
    """The commit measured, with "+changes" when the work tree differed from it (read-only git)."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def _module_argv() -> list[str]:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = spec.name if spec is not None else Path(sys.argv[0]).stem
    return [name, *sys.argv[1:]]


def bench_settings(index_dir: Path | None = None, seeds_dir: Path | None = None):
    """The project's real settings with the index (and optionally the seeds) moved under var/bench."""
    from citebot.config import load_settings

    environ = {"CITEBOT_INDEX_DIR": str(index_dir or WORK / "index")}
    if seeds_dir is not None:
        environ["CITEBOT_CORPUS_SEEDS_DIR"] = str(seeds_dir)
    return load_settings(REPO / "config" / "citebot.yaml", environ=environ)


def open_searcher(settings=None):
    """Model, up-to-date index (built if needed) and searcher, as the bot starts them."""
    from citebot import engine
    from citebot.service import open_service

    settings = settings or bench_settings()
    encoder = engine.load_encoder(settings)
    engine.update_index(settings, encoder)
    return open_service(settings, encoder=encoder).searcher
