"""The citebot command, run in-process on the real index."""

import io
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from citebot.cli import main


@pytest.fixture
def clean_env(monkeypatch):
    """No stray settings from the developer's environment."""
    for name in list(__import__("os").environ):
        if name.startswith("CITEBOT_") or name == "TELEGRAM_BOT_TOKEN":
            monkeypatch.delenv(name)


@pytest.fixture
def cli_env(clean_env, monkeypatch, built_index_dir, tmp_path):
    """Point the CLI at a private copy of the built index, with no stray settings."""
    index_dir = tmp_path / "index"
    shutil.copytree(built_index_dir, index_dir, symlinks=True)
    monkeypatch.setenv("CITEBOT_INDEX_DIR", str(index_dir))
    return index_dir


def test_ask_json_has_the_documented_shape(cli_env, capsys):
    assert main(["ask", "--json", "-k", "2", "Who overthrew King Zahir Shah?"]) == 0
    line = capsys.readouterr().out.strip()
    answer = json.loads(line)
    assert answer["query"] == "Who overthrew King Zahir Shah?" and answer["abstained"] is False
    assert len(answer["results"]) == 2
    first = answer["results"][0]
    assert set(first) == {"rank", "score", "text", "doc_id", "title", "citation", "date", "start", "end"}
    assert first["date"] == "2017" and answer["declined_reason"] is None and answer["missing_terms"] == []
    assert first["rank"] == 1 and "Daud Khan" in first["text"] and first["end"] - first["start"] == len(first["text"])


def test_ask_reads_one_question_per_stdin_line(cli_env, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("Do Afghans still speak Russian?\n\nWhat is the capital of France?\n"))
    assert main(["ask", "--json"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [a["query"] for a in answers] == ["Do Afghans still speak Russian?", "What is the capital of France?"]
    assert not answers[0]["abstained"] and answers[1] == {
        "query": "What is the capital of France?",
        "abstained": True,
        "declined_reason": "off_topic",
        "missing_terms": [],
        "current_question": False,
        "results": [],
        "closest": [],
    }


def test_ask_plain_text_shows_citations(cli_env, capsys):
    assert main(["ask", "Do Afghans still speak Russian?"]) == 0
    out = capsys.readouterr().out
    assert "[1] India, Russia Discuss Working With Afghan Taliban" in out and "EurAsian Times" in out


def test_index_check_exit_codes(cli_env, capsys, monkeypatch, seeds_copy):
    monkeypatch.setenv("CITEBOT_CORPUS_SEEDS_DIR", str(seeds_copy))
    assert main(["index", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    (seeds_copy / "004_52eea514bd0a09a1.txt").write_text("changed", encoding="utf-8")
    assert main(["index", "--check", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["stale"] and report["updated"] == ["004_52eea514bd0a09a1.txt"]
    assert main(["index", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["updated"] == ["004_52eea514bd0a09a1.txt"]
    assert main(["index", "--check"]) == 0


def test_sources_lists_every_document_with_passage_counts(cli_env, capsys):
    assert main(["sources", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5 and all(r["passages"] > 5 for r in rows)
    assert any(r["authors"] == ["Harsh V. Pant", "Aleksei Zakharov"] for r in rows)


SMALL_EVAL = (
    "questions:\n"
    "- q: Who overthrew King Zahir Shah?\n  kind: who\n  doc: '001'\n  evidence: ['overthrowing king zahir shah']\n"
    "- q: Do Afghans still speak Russian?\n  doc: '003'\n  evidence: ['some older afghans still speak russian']\n"
    "- q: When did the Soviet Union invade Afghanistan?\n  kind: when\n  doc: '003'\n"
    "  evidence: ['launched an invasion of afghanistan on christmas eve 1979']\n"
    "- q: Which Afghan ministry spokesman criticised the Moscow trilateral?\n  kind: who\n  doc: '001'\n"
    "  evidence: ['ahmad shekib mostaghni']\n"
    "- q: What is the boiling point of water in Kabul?\n  kind: unanswerable\n"
    "- q: What is the price of bread in Moscow?\n  kind: unanswerable\n"
    "off_topic:\n- What is the boiling point of water at sea level?\n- Who wrote Pride and Prejudice?\n"
)


def test_eval_reports_pipelines_side_by_side_and_per_kind(cli_env, capsys, tmp_path, monkeypatch):
    small = tmp_path / "eval.yaml"
    small.write_text(SMALL_EVAL)
    assert main(["eval", str(small), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["pipelines"]) == {"full", "dense-only", "bm25-only", "naive-1000/200-dense"}
    full = report["pipelines"]["full"]
    assert full["hit@5"] == 1.0 and full["abstained_off_topic"] == 1.0
    assert full["counts"] == {"answerable": 4, "unanswerable": 2, "off_topic": 2}
    assert full["abstained_unanswerable"] in (0.0, 0.5, 1.0) and full["newest_first"] is None  # two questions
    assert full["by_kind"]["unanswerable"]["declined"] == full["abstained_unanswerable"]
    assert set(full["by_kind"]) == {"lookup", "who", "when", "unanswerable"}
    assert full["by_kind"]["who"]["questions"] == 2 and full["by_kind"]["who"]["hit@5"] == 1.0
    assert set(full["by_kind"]["unanswerable"]) == {"questions", "declined", "answered"}
    # the same figures as tables (not measured again: that is the run above)
    monkeypatch.setattr("embeddings.evaluation.compare_pipelines", lambda eval_set, searcher: report["pipelines"])
    assert main(["eval", str(small)]) == 0
    out = capsys.readouterr().out
    assert "| full |" in out and "abstained_unanswerable" in out and "| unanswerable | 2 |" in out


def test_eval_cross_validates_candidate_settings(cli_env, capsys, tmp_path):
    """A real run on a small set: a threshold that declines everything loses on every fold."""
    small = tmp_path / "eval.yaml"
    small.write_text(SMALL_EVAL)
    grid = tmp_path / "grid.yaml"
    grid.write_text("candidates:\n- {}\ngrid:\n  retrieval.abstain_below: [0.99]\n")
    assert main(["eval", str(small), "--folds", "2", "--grid", str(grid), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["k"] == 2 and report["candidates"] == [{}, {"retrieval.abstain_below": 0.99}]
    assert [f["chosen"] for f in report["folds"]] == [{}, {}]
    assert report["mean"]["hit@5"] == 1.0 and report["mean"]["abstained_off_topic"] == 1.0
    assert all(f["held_out"]["counts"]["unanswerable"] == 1 for f in report["folds"])  # stratified by kind
    assert main(["eval", str(small), "--folds", "2"]) == 0
    assert "| mean |" in capsys.readouterr().out


@pytest.fixture
def no_stray_settings(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("CITEBOT_") or name == "TELEGRAM_BOT_TOKEN":
            monkeypatch.delenv(name)


REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        (REPO / "README.md", "is not valid YAML at line"),
        (REPO / "seeds", "is a folder"),
        (REPO / "no-such-file.yaml", "not found"),
    ],
)
def test_eval_of_something_that_is_not_an_eval_set_is_one_clear_line(no_stray_settings, capsys, target, problem):
    assert main(["eval", str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.startswith("citebot: error: ") and str(target) in captured.err and problem in captured.err
    assert captured.err.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- q: a list, not a mapping\n", "expected a mapping with `questions:`"),
        ("questions:\n- doc: '001'\n  evidence: [x]\n", "question #1: needs `q:`"),
        ("questions:\n- q: Who?\n  evidence: 12\n", "`evidence` must be a list of non-empty strings"),
    ],
)
def test_eval_of_a_wrongly_shaped_file_fails_naming_file_and_problem(
    no_stray_settings, capsys, tmp_path, text, problem
):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["eval", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and str(path) in captured.err and problem in captured.err
    assert "Traceback" not in captured.err


def test_eval_grid_errors_are_one_clear_line(cli_env, capsys, tmp_path):
    small = tmp_path / "eval.yaml"
    small.write_text(SMALL_EVAL)
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  retrieval.no_such_knob: [1, 2]\n")
    assert main(["eval", str(small), "--folds", "2", "--grid", str(grid)]) == 2
    assert "retrieval.no_such_knob: not a setting" in capsys.readouterr().err
    grid.write_text("grid:\n  chunking.target_chars: [300]\n")
    assert main(["eval", str(small), "--folds", "2", "--grid", str(grid)]) == 2
    assert "changes how the index is built" in capsys.readouterr().err
    assert main(["eval", str(small), "--folds", "1"]) == 2
    assert "--folds must be between 2" in capsys.readouterr().err


def test_errors_are_one_clear_line(cli_env, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CITEBOT_RETRIEVAL_TOP_K", "lots")
    assert main(["ask", "anything"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("citebot: error:") and "retrieval.top_k" in err and "Traceback" not in err
    monkeypatch.delenv("CITEBOT_RETRIEVAL_TOP_K")
    monkeypatch.setenv("CITEBOT_EMBEDDINGS_MODEL", str(tmp_path / "no-such-model"))
    monkeypatch.setenv("CITEBOT_INDEX_DIR", str(tmp_path / "empty-index"))
    assert main(["index"]) == 2
    assert "cannot load embedding model" in capsys.readouterr().err


# ------------------------------------------------------------------------------ rough edges (issue 14)


def test_config_is_accepted_after_the_command_too(cli_env, capsys, tmp_path):
    config = tmp_path / "one.yaml"
    config.write_text("retrieval:\n  top_k: 1\n")
    for argv in (
        ["--config", str(config), "ask", "--json", "Who overthrew King Zahir Shah?"],
        ["ask", "--json", "--config", str(config), "Who overthrew King Zahir Shah?"],
        ["ask", "--config", str(config), "-v", "--json", "Who overthrew King Zahir Shah?"],
    ):
        assert main(argv) == 0
        assert len(json.loads(capsys.readouterr().out)["results"]) == 1, argv
    assert main(["sources", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


@pytest.mark.parametrize("k", ["0", "-3", "many"])
def test_ask_rejects_a_k_below_one_with_a_clear_message(cli_env, capsys, k):
    with pytest.raises(SystemExit) as exit_info:
        main(["ask", "-k", k, "anything"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument -k" in err and ("at least 1" in err or "not a whole number" in err)
    assert "Traceback" not in err


def test_index_check_json_reports_the_real_passage_count(cli_env, capsys):
    assert main(["sources", "--json"]) == 0
    passages = sum(r["passages"] for r in json.loads(capsys.readouterr().out))
    assert main(["index", "--check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stale"] is False and report["passages"] == passages > 100


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_index_force_says_what_it_re_embedded_and_its_bar_starts_at_zero(
    clean_env, small_private_index, capsys, monkeypatch
):
    # the small corpus (three documents): re-embedding all five seeds would only take longer
    monkeypatch.setenv("CITEBOT_INDEX_DIR", str(small_private_index.path(small_private_index.index.dir)))
    monkeypatch.setenv("CITEBOT_CORPUS_SEEDS_DIR", str(small_private_index.path(small_private_index.corpus.seeds_dir)))
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["index", "--force"]) == 0
    out = capsys.readouterr().out
    assert "3 re-embedded" in out and "3 unchanged" not in out and "0 unchanged" in out
    bar = terminal.getvalue()
    assert "embedding:   0%" in bar and "100%" in bar
    rates = [float(r) for r in re.findall(r"([0-9.]+)text/s", bar)]
    assert rates and max(rates) < 20_000, rates  # texts per second of embedding, not of no time at all


def _store_with_votes(path):
    from citebot.store import DOWN, UP, AnswerRecord, ShownPassage, Store

    store = Store(path, store_questions=True)
    shown = [ShownPassage("001_1eebfef159720684.txt", 5, 400, 0.7, "Daud Khan overthrew King Zahir Shah.")]
    store.clock = lambda: 1_764_000_000.0  # 2025-11-24
    store.vote("t1", AnswerRecord("Who overthrew King Zahir Shah?", "private", "B1", shown), 1, UP)
    store.clock = lambda: 1_796_000_000.0  # 2026-11-30
    store.vote("t2", AnswerRecord("What does China think?", "group", "B1", shown), 2, DOWN)
    for question in ("What does China think of the Taliban?", "China's view of the Taliban government"):
        store.record_question(question, abstained=True, similarity=0.2, chat_kind="private")
    store.close()


def test_feedback_lists_filters_and_exports_votes(cli_env, capsys, monkeypatch, tmp_path):
    path = tmp_path / "var" / "store.sqlite3"
    monkeypatch.setenv("CITEBOT_TELEGRAM_STORE_FILE", str(path))
    assert main(["feedback"]) == 0
    assert "No feedback stored" in capsys.readouterr().out
    _store_with_votes(path)
    assert main(["feedback"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 votes: 1 👍, 1 👎") and "Who overthrew King Zahir Shah?" in out
    assert main(["feedback", "--json", "--since", "2026-01-01"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["vote"], r["question"], r["chat"]) for r in rows] == [("down", "What does China think?", "group")]
    assert rows[0]["passages"][0]["doc_id"] == "001_1eebfef159720684.txt" and rows[0]["build_id"] == "B1"
    export = tmp_path / "fb.yaml"
    assert main(["feedback", "--export", str(export)]) == 0
    assert "1 👎 to check, 1 👍" in capsys.readouterr().out
    assert [q["q"] for q in yaml.safe_load(export.read_text())["questions"]] == [
        "What does China think?",
        "Who overthrew King Zahir Shah?",
    ]
    with pytest.raises(SystemExit):
        main(["feedback", "--since", "last week"])
    assert "is not a date" in capsys.readouterr().err


def test_gaps_groups_the_stored_questions(cli_env, capsys, monkeypatch, tmp_path):
    path = tmp_path / "store.sqlite3"
    monkeypatch.setenv("CITEBOT_TELEGRAM_STORE_FILE", str(path))
    assert main(["gaps", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"questions": 0, "gaps": []} and "store_questions" in captured.err
    _store_with_votes(path)
    assert main(["gaps", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["questions"] == 2 and len(report["gaps"]) == 1 and report["gaps"][0]["count"] == 2
    assert main(["gaps"]) == 0
    assert "2 of 2 stored questions" in capsys.readouterr().out
