"""The citebot command, run in-process on the real index."""

import json
import shutil

import pytest

from citebot.cli import main


@pytest.fixture
def cli_env(monkeypatch, built_index_dir, tmp_path):
    """Point the CLI at a private copy of the built index, with no stray settings."""
    for name in list(__import__("os").environ):
        if name.startswith("CITEBOT_") or name == "TELEGRAM_BOT_TOKEN":
            monkeypatch.delenv(name)
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
    assert set(first) == {"rank", "score", "text", "doc_id", "title", "citation", "start", "end"}
    assert first["rank"] == 1 and "Daud Khan" in first["text"] and first["end"] - first["start"] == len(first["text"])


def test_ask_reads_one_question_per_stdin_line(cli_env, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("Do Afghans still speak Russian?\n\nWhat is the capital of France?\n"))
    assert main(["ask", "--json"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [a["query"] for a in answers] == ["Do Afghans still speak Russian?", "What is the capital of France?"]
    assert not answers[0]["abstained"] and answers[1] == {"query": "What is the capital of France?",
                                                         "abstained": True, "results": []}


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


def test_eval_reports_pipelines_side_by_side(cli_env, capsys, tmp_path):
    small = tmp_path / "eval.yaml"
    small.write_text(
        "questions:\n"
        "- q: Who overthrew King Zahir Shah?\n  doc: '001'\n  evidence: ['overthrowing king zahir shah']\n"
        "- q: Do Afghans still speak Russian?\n  doc: '003'\n  evidence: ['some older afghans still speak russian']\n"
        "off_topic:\n- What is the boiling point of water at sea level?\n")
    assert main(["eval", str(small), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["pipelines"]) == {"full", "dense-only", "bm25-only", "naive-1000/200-dense"}
    full = report["pipelines"]["full"]
    assert full["hit@5"] == 1.0 and full["abstained_off_topic"] == 1.0
    assert main(["eval", str(small)]) == 0
    assert "| full |" in capsys.readouterr().out


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
