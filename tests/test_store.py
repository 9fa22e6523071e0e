"""The feedback and question store (citebot/store.py) and what the CLI makes of it."""

from __future__ import annotations

import sqlite3

import pytest
import yaml

from citebot import store as store_module
from citebot.feedback import doc_prefix, export_yaml
from citebot.store import DOWN, UP, AnswerRecord, ShownPassage, Store, StoreError, open_store
from embeddings.evaluation import load_eval_set

SHOWN = [
    ShownPassage(
        "001_1eebfef159720684.txt", 100, 480, 0.81, "A coup by Mohammed Daud Khan overthrowing King Zahir Shah in 1973."
    ),
    ShownPassage("003_5af5b48806b72163.txt", 10, 300, 0.52, "Some older Afghans still speak Russian."),
]


def answer(question: str = "Who overthrew King Zahir Shah?") -> AnswerRecord:
    return AnswerRecord(question, "private", "20261201T000000000000", SHOWN, asked_at=1_000.0)


def test_one_vote_per_user_changeable_and_withdrawn_by_pressing_again(tmp_path):
    store = Store(tmp_path / "s.sqlite3")
    assert store.vote("tok", answer(), 1, UP) == store_module.Tally(1, 0, UP)
    assert store.vote("tok", answer(), 2, UP) == store_module.Tally(2, 0, UP)
    assert store.vote("tok", answer(), 1, DOWN) == store_module.Tally(1, 1, DOWN)  # changed, not added
    assert store.vote("tok", answer(), 1, DOWN) == store_module.Tally(1, 0, 0)  # the same again: withdrawn
    assert store.tally("tok", 2).mine == UP and store.tally("other") == store_module.Tally(0, 0, 0)
    rows = store.feedback()
    assert [(r.vote, r.question) for r in rows] == [(UP, "Who overthrew King Zahir Shah?")]
    assert rows[0].passages[0] == {
        "doc_id": SHOWN[0].doc_id,
        "start": 100,
        "end": 480,
        "score": 0.81,
        "best_sentence": SHOWN[0].best_sentence,
    }
    assert rows[0].build_id == "20261201T000000000000"


def test_user_ids_are_kept_only_as_salted_hashes(tmp_path):
    path = tmp_path / "s.sqlite3"
    store = Store(path)
    store.vote("tok", answer(), 123456789, UP)
    store.close()
    raw = path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("s.sqlite3-*"))
    assert b"123456789" not in raw
    other = Store(tmp_path / "other.sqlite3")  # another file, another salt: hashes cannot be joined
    assert other.user_hash(123456789) != Store(path).user_hash(123456789)


def test_feedback_and_questions_survive_a_restart(tmp_path):
    path = tmp_path / "s.sqlite3"
    first = Store(path, store_questions=True)
    first.vote("tok", answer(), 7, DOWN)
    first.record_question("What does Iran think?", abstained=True, similarity=0.2, chat_kind="private")
    first.close()
    again = Store(path, store_questions=True)
    assert again.tally("tok", 7) == store_module.Tally(0, 1, DOWN)
    assert [q.question for q in again.questions()] == ["What does Iran think?"]
    assert again.answer("tok").shown == SHOWN  # a vote button of an old answer still works
    assert again.schema_version == store_module.SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_questions_are_kept_only_when_asked_for_and_only_for_the_retention_period(tmp_path):
    now = [10 * 86400.0]
    off = Store(tmp_path / "off.sqlite3", store_questions=False)
    assert not off.record_question("q", abstained=True, similarity=0.1, chat_kind="private")
    assert off.questions() == []
    store = Store(tmp_path / "on.sqlite3", store_questions=True, retention_days=2, clock=lambda: now[0])
    store.record_question("old", abstained=True, similarity=0.1, chat_kind="private")
    now[0] += 1.5 * 86400
    store.record_question("new", abstained=False, similarity=0.4, chat_kind="group", language="en")
    assert [q.question for q in store.questions(since=now[0] - 10)] == ["new"]
    now[0] += 1 * 86400
    assert store.purge() == 1
    assert [q.question for q in store.questions()] == ["new"]


def test_nothing_is_stored_when_both_switches_are_off(tmp_path, make_settings):
    path = tmp_path / "var" / "store.sqlite3"
    settings = make_settings(
        telegram_store_file=path, telegram_store_feedback="false", telegram_store_questions="false"
    )
    assert open_store(settings) is None and not path.parent.exists()
    on = open_store(make_settings(telegram_store_file=path))
    assert on is not None and path.exists() and on.store_feedback and not on.store_questions


def test_schema_is_migrated_forward_and_a_newer_file_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "s.sqlite3"
    Store(path).close()
    extra = ("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)",)
    monkeypatch.setattr(store_module, "MIGRATIONS", (*store_module.MIGRATIONS, extra))
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", len(store_module.MIGRATIONS))
    migrated = Store(path)
    assert migrated.schema_version == store_module.SCHEMA_VERSION
    migrated.close()
    monkeypatch.undo()
    with pytest.raises(StoreError, match="newer than this citebot"):
        Store(path)
    (tmp_path / "junk.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot use the store"):
        Store(tmp_path / "junk.sqlite3")


def test_export_is_an_eval_file_a_person_completes(tmp_path):
    store = Store(tmp_path / "s.sqlite3")
    store.vote("a", answer(), 1, UP)
    store.vote("b", answer('What did the Taliban say about "opium"?\nTwice'), 1, DOWN)
    text = export_yaml(store.feedback())
    assert "👎" in text and "replace `kind: unanswerable`" in text
    data = yaml.safe_load(text)
    assert data["off_topic"] == []
    down, up = data["questions"]
    assert down == {"q": 'What did the Taliban say about "opium"?\nTwice', "kind": "unanswerable"}
    assert up == {
        "q": "Who overthrew King Zahir Shah?",
        "doc": "001",
        "evidence": ["a coup by mohammed daud khan overthrowing king zahir shah in 1973"],
    }
    path = tmp_path / "eval.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = load_eval_set(path)
    assert [(q.question, q.kind) for q in loaded.questions] == [(down["q"], "unanswerable"), (up["q"], "lookup")]
    assert loaded.questions[1].docs == ("001",)
    assert yaml.safe_load(export_yaml([])) == {"questions": [], "off_topic": []}
    assert doc_prefix("my-report.pdf") == "my-report.pdf"


@pytest.mark.parametrize("round_", range(50))
def test_replicas_creating_a_new_store_at_once_all_open_it(tmp_path, round_):
    """Replicas started together on a new file (a fresh machine, `make test` in a fresh clone): each
    reads the schema version under the write lock, so only the first creates the tables (the others
    failed with "table meta already exists" and exited), and the switch to WAL is tried again while
    another holds the file (about one start in 20 to 60 failed with "database is locked": 50 rounds)."""
    import threading

    path = tmp_path / "shared.sqlite3"
    opened: list[Store] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def open_it() -> None:
        start.wait()
        try:
            opened.append(Store(path))
        except BaseException as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and len(opened) == 8, errors
    assert {s.schema_version for s in opened} == {store_module.SCHEMA_VERSION}
    assert len({s.user_hash(42) for s in opened}) == 1  # one salt, written once
    for s in opened:
        s.close()
