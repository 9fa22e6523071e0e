"""The ``citebot`` command: one sub-command per job, ``--json`` wherever a script may read the output.

    citebot index [--check] [--force]     build or update the index from the seeds
    citebot ask [QUESTION] [-k N]         cited passages for a question (or one per stdin line)
    citebot sources                       the indexed documents and their citations
    citebot eval FILE [--folds K]         retrieval metrics per question kind, with ablations and a
                                          naive baseline; or settings chosen by cross-validation
    citebot serve                         run the Telegram bot (or the local sandbox without a token)
    citebot feedback [--since D] [--export FILE]   the 👍/👎 votes users gave, or an eval file of them
    citebot gaps [--since D]              the questions the corpus answers badly, grouped by meaning

``--config`` and ``-v`` are accepted before or after the command.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .config import ConfigError, Settings, load_settings
from .progress import ProgressBar
from .service import configure_process, open_service

log = logging.getLogger("citebot")

EXIT_OK, EXIT_STALE, EXIT_ERROR = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        configure_process(settings, verbose=args.verbose)
        return args.handler(settings, args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every failure a user can cause ends in one clear line, no traceback
        if not _is_expected(exc):
            raise
        print(f"citebot: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _is_expected(exc: Exception) -> bool:
    from embeddings.evaluation import EvalSetError
    from embeddings.index import IndexError_
    from embeddings.model import ModelLoadError
    from embeddings.sources import SourcesError

    from .store import StoreError

    return isinstance(
        exc,
        ConfigError
        | ModelLoadError
        | IndexError_
        | SourcesError
        | EvalSetError
        | StoreError
        | FileNotFoundError
        | PermissionError,
    )


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def since_date(text: str) -> float:
    """argparse type: an ISO date or date-time (UTC unless it says otherwise), as a timestamp."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _common_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # The sub-commands take them too, so `citebot ask --config X` works; SUPPRESS keeps a value
    # given before the command from being reset by the sub-command's default.
    default = None if defaults else argparse.SUPPRESS
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file (default: config/citebot.yaml or $CITEBOT_CONFIG)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if defaults else argparse.SUPPRESS,
        help="log debug detail to stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="citebot",
        description="Cited answers about Russia–Taliban relations from a curated corpus.",
        epilog="Settings: config/citebot.yaml; override any key with CITEBOT_<SECTION>_<KEY>.",
    )
    parser.add_argument("--version", action="version", version=f"citebot {__version__}")
    _common_options(parser, defaults=True)
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, defaults=False)
    add_command = functools.partial(commands.add_parser, parents=[common])

    index = add_command(
        "index",
        help="build or update the index from the seeds folder",
        description="Build the index, re-embedding only documents that changed.",
    )
    index.add_argument(
        "--check",
        action="store_true",
        help="only report whether the seeds changed since the last build (exit 0 up to date, 1 stale)",
    )
    index.add_argument("--force", action="store_true", help="rebuild everything from scratch")
    index.add_argument(
        "--watch",
        action="store_true",
        help="keep running: rebuild whenever the seeds folder changes, printing each rebuild",
    )
    index.add_argument("--json", action="store_true", help="print the report as JSON (one line per rebuild)")
    index.set_defaults(handler=cmd_index)

    ask = add_command(
        "ask",
        help="print cited passages answering a question",
        description="Answer QUESTION, or each line of standard input when it is omitted.",
    )
    ask.add_argument("question", nargs="*", help="the question (omit to read one question per line from stdin)")
    ask.add_argument(
        "-k",
        type=positive_int,
        default=None,
        metavar="N",
        help="number of passages, at least 1 (default: retrieval.top_k)",
    )
    ask.add_argument("--json", action="store_true", help="one JSON object per question, one per line")
    ask.set_defaults(handler=cmd_ask)

    sources = add_command("sources", help="list the indexed documents with citations")
    sources.add_argument("--json", action="store_true", help="print a JSON list")
    sources.set_defaults(handler=cmd_sources)

    evaluate = add_command(
        "eval",
        help="measure retrieval quality on an evaluation set",
        description="hit@1/3/5, MRR@5, answered and decline rates (off-topic and "
        "unanswerable), overall and per question kind, for the full "
        "pipeline, dense-only and BM25-only ablations and a naive baseline. "
        "With --folds: candidate settings chosen by cross-validation.",
    )
    evaluate.add_argument("file", type=Path, help="evaluation set (YAML, see tests/data/eval.yaml)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.add_argument(
        "--misses", action="store_true", help="list the questions the full pipeline misses at rank 1 or wrongly answers"
    )
    evaluate.add_argument(
        "--folds",
        type=int,
        metavar="K",
        help="cross-validate: choose settings on K-1 stratified folds, report the held-out one",
    )
    evaluate.add_argument(
        "--grid",
        type=Path,
        metavar="FILE",
        help="candidate settings for --folds (YAML, see citebot/tuning.py; default: as configured)",
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the fold split (default 0)")
    evaluate.set_defaults(handler=cmd_eval)

    serve = add_command(
        "serve",
        help="run the Telegram bot (the local sandbox when no token is set)",
        description="Long polling (or webhook, if telegram.webhook_url is set). Without "
        "TELEGRAM_BOT_TOKEN: a local Bot API emulator and a chat in this terminal.",
    )
    serve.add_argument(
        "--replica",
        action="store_true",
        help="read-only replica (index.replica): no seeds watcher, no rebuild; follow the builder's `current` build",
    )
    serve.set_defaults(handler=cmd_serve)

    kept = argparse.ArgumentParser(add_help=False)  # the commands that read what the bot kept
    kept.add_argument("--since", type=since_date, metavar="DATE", help="only what was kept from DATE on (YYYY-MM-DD)")
    kept.add_argument("--json", action="store_true", help="print JSON")
    feedback = add_command(
        "feedback",
        parents=[common, kept],
        help="list the 👍/👎 votes users gave answers",
        description="The votes kept with telegram.store_feedback, oldest first; with --export, "
        "an evaluation file of them (tests/data/eval.yaml format) for a person to "
        "check and add to the evaluation set.",
    )
    feedback.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="write the 👎 answers (to check) and the 👍 ones (with their top passage) as YAML",
    )
    feedback.set_defaults(handler=cmd_feedback)

    gaps = add_command(
        "gaps",
        parents=[common, kept],
        help="what the corpus lacks: declined and low-confidence questions, grouped",
        description="Groups the questions kept with telegram.store_questions that were declined or "
        "answered with low confidence (telegram.gaps_similarity_below) by meaning, with "
        "a count and examples per group.",
    )
    gaps.set_defaults(handler=cmd_gaps)
    return parser


# ----------------------------------------------------------------------------------- commands


def cmd_index(settings: Settings, args: argparse.Namespace) -> int:
    from embeddings.index import compare, indexed_manifest, seed_state

    from .engine import corpus, load_encoder, update_index

    if args.check:
        c = corpus(settings)
        state, _ = seed_state(c.seeds_dir, c.extensions, c.max_bytes, c.catalog(), c.params)
        manifest = indexed_manifest(c.index_dir, c.params)
        old = None if manifest is None else manifest.get("documents")
        report = compare(old or {}, state.fingerprints)
        report.passages = int(manifest.get("passages", 0)) if manifest else 0
        report.warnings = state.warnings
        stale = old is None or report.changed
        if args.json:
            _print_json({"stale": stale, "index_exists": old is not None, **report.as_dict()})
        elif old is None:
            print("stale: no usable index (missing, or built with other settings); run `citebot index`")
        else:
            print(f"{'stale' if stale else 'up to date'}: {_change_summary(report)}")
        return EXIT_STALE if stale else EXIT_OK

    if args.watch:
        return _watch(settings, args.json)
    corpus(settings).catalog()  # a broken sources file stops us before the model loads
    encoder = load_encoder(settings)
    with ProgressBar(disable=args.json) as progress:
        report = update_index(settings, encoder, force=args.force, progress=progress)
    if args.json:
        _print_json(report.as_dict())
    else:
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        verb = "rebuilt" if report.built and report.reembedded else "built" if report.built else "up to date"
        print(
            f"index {verb}: {_change_summary(report)}; {report.passages} passages "
            f"({report.embedded} texts embedded in {report.seconds:.1f} s)"
        )
    return EXIT_OK


def _watch(settings: Settings, as_json: bool) -> int:
    """`citebot index --watch`: the bot's watcher without the bot. Ctrl-C or SIGTERM stops it."""
    import asyncio
    import signal

    keeper = open_service(settings).keeper

    def show(outcome: Any) -> None:
        print(json.dumps(outcome.as_dict()) if as_json else outcome.summary(), flush=True)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        show(await keeper.rebuild())
        await keeper.watch(stop, show)

    asyncio.run(run())
    return EXIT_OK


def _change_summary(report: Any) -> str:
    parts = [
        f"{len(report.added)} added",
        f"{len(report.updated)} updated",
        f"{len(report.removed)} removed",
        f"{len(report.unchanged)} unchanged",
    ]
    if getattr(report, "reembedded", None):
        parts.append(f"{len(report.reembedded)} re-embedded")
    return ", ".join(parts)


def cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    k = settings.retrieval.top_k if args.k is None else args.k
    questions: Iterable[str] = [" ".join(args.question)] if args.question else _stdin_questions(sys.stdin)
    searcher = open_service(settings).searcher
    for question in questions:
        result = searcher.search(question, k=k)
        if args.json:
            _print_json(result.to_json())
        else:
            print(format_result(result), end="\n\n")
        sys.stdout.flush()
    return EXIT_OK


def _stdin_questions(stream: TextIO) -> Iterable[str]:
    for line in stream:
        if line.strip():
            yield line.strip()


def format_result(result: Any) -> str:
    """A search result as terminal text."""
    lines = [f"Q: {result.query}"]
    if result.corrected_query:
        lines.append(f"(showing results for: {result.corrected_query})")
    if result.abstained:
        lines.append("The sources don't cover that.")
    for hit in result.hits:
        lines.append(f"\n[{hit.rank}] {hit.citation.text()}  (score {hit.score:.3f})")
        lines.append(hit.text)
    return "\n".join(lines)


def cmd_sources(settings: Settings, args: argparse.Namespace) -> int:
    from .engine import open_index

    data = open_index(settings)
    counts = data.passage_counts()
    rows = [
        {"doc_id": d.doc_id, "citation": d.citation.text(), **d.citation.as_dict(), "passages": int(counts[i])}
        for i, d in enumerate(data.documents)
    ]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    for row in rows:
        print(f"{row['doc_id']}  ({row['passages']} passages)\n    {row['citation']}")
    print(f"{len(rows)} documents, {len(data.passages)} passages, built {data.manifest.get('built_at')}")
    return EXIT_OK


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    from embeddings.evaluation import compare_pipelines, load_eval_set

    eval_set = load_eval_set(args.file)  # a wrong file fails here, before the model loads
    if args.folds is not None or args.grid is not None:
        return _cross_validate(settings, args, eval_set)
    searcher = open_service(settings).searcher
    results = compare_pipelines(eval_set, searcher)
    if args.json:
        _print_json(
            {
                "file": str(args.file),
                "questions": len(eval_set.questions),
                "off_topic": len(eval_set.off_topic),
                "pipelines": results,
            }
        )
        return EXIT_OK
    full = results["full"]
    counts = full["counts"]
    print(
        f"{args.file}: {counts['answerable']} answerable and {counts['unanswerable']} unanswerable "
        f"corpus questions, {counts['off_topic']} off-topic\n"
    )
    print(metrics_table(results))
    print("\nfull pipeline by question kind:\n")
    print(kinds_table(full["by_kind"]))
    print(
        f"\noff-topic threshold in use {searcher.off_topic_below(''):.3f} (measured on this corpus at "
        f"index build, floor {settings.retrieval.abstain_below:.3f}); "
        f"best-separating threshold on this set {full['calibrated_threshold']:.3f}"
    )
    if args.misses:
        print("\nmissed at rank 1 by the full pipeline:")
        for question in full["misses"]:
            print(f"  - {question}")
        print("\nunanswerable but answered by the full pipeline:")
        for question in full["not_declined"]:
            print(f"  - {question}")
    return EXIT_OK


def _cross_validate(settings: Settings, args: argparse.Namespace, eval_set: Any) -> int:
    from .tuning import cross_validate_settings, load_candidates

    candidates = load_candidates(args.grid) if args.grid else [{}]
    folds = args.folds or 5
    total = len(eval_set.questions) + len(eval_set.off_topic)
    if not 2 <= folds <= total:
        raise ConfigError(f"--folds must be between 2 and the number of questions ({total}), got {folds}")
    cv = cross_validate_settings(settings, eval_set, candidates, folds=folds, seed=args.seed)
    if args.json:
        _print_json({"file": str(args.file), **cv.as_dict()})
        return EXIT_OK
    print(f"{args.file}: {len(candidates)} candidate setting(s), {folds} folds stratified by kind (seed {args.seed})\n")
    print(folds_table(cv))
    return EXIT_OK


METRIC_COLUMNS = (
    "hit@1",
    "hit@3",
    "hit@5",
    "mrr@5",
    "answered",
    "abstained_off_topic",
    "abstained_unanswerable",
    "newest_first",
    "mean_chars",
)
FOLD_COLUMNS = METRIC_COLUMNS[:-1]  # a fold's figures: all but the passage length


def _cell(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def metrics_table(results: dict[str, dict[str, Any]]) -> str:
    """A Markdown table: one row per pipeline."""
    header = "| pipeline | " + " | ".join(METRIC_COLUMNS) + " |"
    rule = "|---|" + "---|" * len(METRIC_COLUMNS)
    rows = [
        f"| {name} | " + " | ".join(_cell(metrics[c], 0 if c == "mean_chars" else 3) for c in METRIC_COLUMNS) + " |"
        for name, metrics in results.items()
    ]
    return "\n".join([header, rule, *rows])


def kinds_table(by_kind: dict[str, dict[str, float]]) -> str:
    """A Markdown table: one row per question kind (an unanswerable question's only figure is
    whether it was declined)."""
    columns = ("hit@1", "hit@3", "hit@5", "mrr@5", "answered", "declined")
    rows = [
        f"| {kind} | {m['questions']} | " + " | ".join(_cell(m.get(c)) for c in columns) + " |"
        for kind, m in by_kind.items()
    ]
    return "\n".join(["| kind | questions | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns), *rows])


def folds_table(cv: Any) -> str:
    """A Markdown table: each fold's held-out figures with the settings chosen on the others."""
    header = "| fold | chosen settings | " + " | ".join(FOLD_COLUMNS) + " |"
    rule = "|---|---|" + "---|" * len(FOLD_COLUMNS)
    rows = [
        f"| {f.fold} | {_settings_text(f.chosen)} | " + " | ".join(_cell(f.held_out[c]) for c in FOLD_COLUMNS) + " |"
        for f in cv.folds
    ]
    mean = cv.mean()
    rows.append("| mean | | " + " | ".join(_cell(mean[c]) for c in FOLD_COLUMNS) + " |")
    return "\n".join([header, rule, *rows])


def _settings_text(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "as configured"


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from .serve import serve

    if args.replica:
        settings = settings.model_copy(update={"index": settings.index.model_copy(update={"replica": True})})
    return serve(settings)


def cmd_feedback(settings: Settings, args: argparse.Namespace) -> int:
    from .feedback import export_yaml, feedback_text
    from .store import read_store, store_path

    store = read_store(settings)
    rows = []
    if store is None:
        print(
            f"no feedback stored yet ({store_path(settings)} does not exist; telegram.store_feedback is "
            f"{'on' if settings.telegram.store_feedback else 'off'})",
            file=sys.stderr,
        )
    else:
        rows = store.feedback(args.since)
        store.close()
    if args.export is not None:
        args.export.write_text(export_yaml(rows), encoding="utf-8")
        down = sum(r.vote < 0 for r in rows)
        print(f"wrote {args.export}: {down} 👎 to check, {len(rows) - down} 👍 with their top passage")
        return EXIT_OK
    if args.json:
        _print_json([r.as_dict() for r in rows])
    else:
        print(feedback_text(rows))
    return EXIT_OK


def cmd_gaps(settings: Settings, args: argparse.Namespace) -> int:
    from .gaps import CoverageReport, coverage_report, gaps_text
    from .store import read_store

    store = read_store(settings)
    report = CoverageReport([], 0)
    if store is not None:
        if store.questions(args.since):  # the model is loaded only when there is something to group
            from .engine import load_encoder

            report = coverage_report(
                store, load_encoder(settings).encode, settings.telegram.gaps_similarity_below, args.since
            )
        store.close()
    if not report.considered and not settings.telegram.store_questions:
        print(
            "no questions stored: turn on telegram.store_questions (see config/citebot.yaml) to collect them",
            file=sys.stderr,
        )
    if args.json:
        _print_json(report.as_dict())
    else:
        print(gaps_text(report))
    return EXIT_OK


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, default=str))


if __name__ == "__main__":
    sys.exit(main())
