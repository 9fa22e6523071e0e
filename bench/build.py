"""Index build: a full build of the seeds, and an incremental rebuild after one document changes.

Each run works on a private copy of seeds/ under var/bench/, with the model already loaded (model
load time is cold start's business). Texts embedded per second counts passages and sentences.

    python -m bench.build [--quick] [--repeats N]
"""

from __future__ import annotations

import shutil
from typing import Any

from .common import REPO, WORK, bench_settings, parser, scalar_over_runs, write_result


def run(repeats: int) -> dict[str, Any]:
    from citebot import engine

    seeds = WORK / "build-seeds"
    index_dir = WORK / "build-index"
    settings = bench_settings(index_dir=index_dir, seeds_dir=seeds)
    encoder = engine.load_encoder(settings)
    encoder.encode(["warm up"])
    full, incremental = [], []
    for _ in range(repeats):
        shutil.rmtree(seeds, ignore_errors=True)
        shutil.rmtree(index_dir, ignore_errors=True)
        shutil.copytree(REPO / "seeds", seeds)
        report = engine.update_index(settings, encoder, force=True)
        full.append(report)
        victim = sorted(seeds.iterdir())[0]
        victim.write_text(
            victim.read_text(encoding="utf-8") + "\n\nA paragraph added for the benchmark: Russia "
            "and the Taliban met again in Moscow to discuss trade.\n",
            encoding="utf-8",
        )
        report = engine.update_index(settings, encoder)
        assert report.built and len(report.updated) == 1, report.as_dict()
        incremental.append(report)
    shutil.rmtree(seeds, ignore_errors=True)

    def summary(reports) -> dict[str, Any]:
        return {
            "seconds": scalar_over_runs([r.seconds for r in reports]),
            "texts_embedded": reports[0].embedded,
            "passages": reports[0].passages,
            "texts_per_second": scalar_over_runs([r.embedded / r.seconds for r in reports]),
            "documents_reembedded": len(reports[0].added) + len(reports[0].updated),
        }

    return {
        "repeats": repeats,
        "documents": len(list((REPO / "seeds").iterdir())),
        "full": summary(full),
        "incremental_one_document_changed": summary(incremental),
    }


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    write_result("build", run(args.repeats or (1 if args.quick else 3)), args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
