"""Index integrity checks: what verifying a build's checksums costs, against loading it.

On the seeds' index (built under var/bench if needed): xxh3-128 (the manifest's checksum) against
blake2b and sha256 over the same bytes in memory; ``verify_build`` (read every file from the page
cache and hash it, what the bot's periodic check does); ``load_index`` held in memory (read, hash,
finite/unit-length checks) and memory-mapped. Per-GB figures are extrapolated from the throughput.

    python -m bench.integrity [--quick] [--repeats N]
"""

from __future__ import annotations

import hashlib
import time

import xxhash

from .common import bench_settings, parser, scalar_over_runs, write_result

HASHES = {
    "xxh3_128": lambda b: xxhash.xxh3_128_hexdigest(b),
    "blake2b": lambda b: hashlib.blake2b(b).hexdigest(),
    "sha256": lambda b: hashlib.sha256(b).hexdigest(),
}


def _ms(fn, repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return scalar_over_runs(runs)


def run(repeats: int) -> dict:
    from citebot import engine
    from embeddings.index import CHECKED_FILES, current_build, load_index, verify_build

    settings = bench_settings()
    engine.update_index(settings, engine.load_encoder(settings))
    index_dir = settings.path(settings.index.dir)
    build = current_build(index_dir).resolve()
    contents = [(build / name).read_bytes() for name in CHECKED_FILES]
    size = sum(len(c) for c in contents)
    result: dict = {"build_bytes": size, "hash_ms": {}, "hash_gb_per_s": {}}
    for name, digest in HASHES.items():
        timing = _ms(lambda d=digest: [d(c) for c in contents], repeats)
        result["hash_ms"][name] = timing
        result["hash_gb_per_s"][name] = size / (timing["median"] / 1000) / 1e9
    result["verify_build_ms"] = _ms(lambda: verify_build(build), repeats)
    result["load_in_memory_ms"] = _ms(lambda: load_index(index_dir), repeats)
    result["load_mmap_ms"] = _ms(lambda: load_index(index_dir, mmap_above_bytes=0), repeats)
    result["verify_ms_per_gb"] = result["verify_build_ms"]["median"] * 1e9 / size
    median = {key: value["median"] for key, value in result.items() if isinstance(value, dict) and "median" in value}
    print(
        f"build of {size / 1e6:.1f} MB: xxh3 {result['hash_ms']['xxh3_128']['median']:.1f} ms "
        f"({result['hash_gb_per_s']['xxh3_128']:.1f} GB/s; blake2b {result['hash_gb_per_s']['blake2b']:.2f}, "
        f"sha256 {result['hash_gb_per_s']['sha256']:.2f} GB/s); verify_build {median['verify_build_ms']:.1f} ms "
        f"(~{result['verify_ms_per_gb'] / 1000:.1f} s per GB); load in memory {median['load_in_memory_ms']:.1f} ms, "
        f"mapped {median['load_mmap_ms']:.1f} ms"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    write_result("integrity", run(args.repeats or (3 if args.quick else 15)), args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
