"""What users tell the bot, kept for the curator: 👍/👎 votes on answers and the questions asked.

One SQLite file (stdlib ``sqlite3``, WAL mode) under ``var/``. Its schema is versioned
(``PRAGMA user_version``) and migrated forward when the store is opened. User ids are never
stored: only a salted SHA-256 of each (the salt is made once per file, kept in it), enough to
let one user change their own vote and nothing more.

Two switches decide what is kept: ``telegram.store_feedback`` (votes, with the question and the
passages shown) and ``telegram.store_questions`` (every question, whether it was answered and
how well, for ``citebot gaps``; deleted after ``telegram.retention_days``). With both off no file
is created at all (:func:`open_store` returns None).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .config import Settings

UP, DOWN = 1, -1

# Migration n takes a file from user_version n-1 to n. Append only: a released step never changes.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE answers (token TEXT PRIMARY KEY, question TEXT NOT NULL, chat_kind TEXT NOT NULL,"
        " asked_at REAL NOT NULL)",
        "CREATE TABLE votes (token TEXT NOT NULL REFERENCES answers(token) ON DELETE CASCADE,"
        " user_hash TEXT NOT NULL, vote INTEGER NOT NULL CHECK (vote IN (-1, 1)), voted_at REAL NOT NULL,"
        " build_id TEXT NOT NULL, passages TEXT NOT NULL, PRIMARY KEY (token, user_hash))",
        "CREATE INDEX votes_by_time ON votes (voted_at)",
        "CREATE TABLE questions (id INTEGER PRIMARY KEY, asked_at REAL NOT NULL, question TEXT NOT NULL,"
        " abstained INTEGER NOT NULL, similarity REAL NOT NULL, language TEXT, chat_kind TEXT NOT NULL)",
        "CREATE INDEX questions_by_time ON questions (asked_at)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_SECONDS = 10.0  # how long a statement waits for another replica's lock on the file


class StoreError(Exception):
    """The store file cannot be used (unreadable, or written by a newer citebot)."""


@dataclass(frozen=True)
class ShownPassage:
    """A passage as the user saw it: where it is, and the sentence shown in bold."""

    doc_id: str
    start: int
    end: int
    score: float
    best_sentence: str = ""


@dataclass
class AnswerRecord:
    """One answer message that can be voted on (kept in memory until someone votes)."""

    question: str
    chat_kind: str
    build_id: str
    shown: list[ShownPassage]
    asked_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Tally:
    up: int
    down: int
    mine: int  # the voter's own vote now: 1, -1, or 0 (none)


@dataclass(frozen=True)
class FeedbackRow:
    voted_at: float
    vote: int
    question: str
    chat_kind: str
    build_id: str
    passages: list[dict[str, Any]]
    user: str  # the salted hash, shortened: tells votes of one user apart, says nothing of who

    def as_dict(self) -> dict[str, Any]:
        return {
            "voted_at": _iso(self.voted_at),
            "vote": "up" if self.vote == UP else "down",
            "question": self.question,
            "chat": self.chat_kind,
            "build_id": self.build_id,
            "passages": self.passages,
            "user": self.user,
        }


@dataclass(frozen=True)
class QuestionRow:
    asked_at: float
    question: str
    abstained: bool
    similarity: float
    language: str | None
    chat_kind: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "asked_at": _iso(self.asked_at),
            "question": self.question,
            "abstained": self.abstained,
            "similarity": round(self.similarity, 4),
            "language": self.language,
            "chat": self.chat_kind,
        }


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


class Store:
    """The feedback and question store. Thread-safe: one connection behind a lock (every call
    is a few milliseconds; the bot calls it from its worker threads)."""

    def __init__(
        self,
        path: Path,
        *,
        store_feedback: bool = True,
        store_questions: bool = False,
        retention_days: float = 90,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.store_feedback = store_feedback
        self.store_questions = store_questions
        self.retention_seconds = retention_days * 86400
        self.clock = clock
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS
            )
            _enable_wal(self._db)
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
            self._salt = self._meta_salt()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use the store {path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot create the store {path}: {exc.strerror}") from None
        self.purge()

    # ------------------------------------------------------------------------- schema

    def _migrate(self) -> None:
        # The version is read under the write lock (BEGIN IMMEDIATE), one step at a time: replicas
        # started together on a new file each found version 0 before any had written, and all but
        # the first then failed on "table meta already exists".
        while True:
            with self._transaction():
                version = self.schema_version
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path} has schema version {version}, newer than this citebot ({SCHEMA_VERSION}): "
                        "upgrade citebot"
                    )
                if version == SCHEMA_VERSION:
                    return
                for statement in MIGRATIONS[version]:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {version + 1}")

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _meta_salt(self) -> str:
        with self._transaction():
            row = self._db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
            if row is not None:
                return row[0]
            salt = secrets.token_hex(16)
            self._db.execute("INSERT INTO meta (key, value) VALUES ('salt', ?)", (salt,))
            return salt

    def _transaction(self) -> Any:
        db = self._db

        class _Tx:
            def __enter__(self) -> None:
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind: object, *rest: object) -> None:
                db.execute("COMMIT" if kind is None else "ROLLBACK")

        return _Tx()

    def user_hash(self, user_id: int) -> str:
        return hashlib.sha256(f"{self._salt}:{user_id}".encode()).hexdigest()

    # -------------------------------------------------------------------------- votes

    def vote(self, token: str, answer: Any, user_id: int, vote: int) -> Tally:
        """Record ``user_id``'s vote (UP or DOWN) on the answer under ``token`` (an
        :class:`AnswerRecord`, or anything with its fields; ``shown`` as :class:`ShownPassage` or
        dicts of its fields). Pressing the vote one already gave withdraws it; pressing the other
        changes it. Returns the new tally."""
        if vote not in (UP, DOWN):
            raise ValueError("vote must be UP or DOWN")
        user = self.user_hash(user_id)
        if not self.store_feedback:
            return Tally(0, 0, 0)
        passages = json.dumps([p if isinstance(p, dict) else asdict(p) for p in answer.shown], ensure_ascii=False)
        now = self.clock()
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO answers (token, question, chat_kind, asked_at) VALUES (?,?,?,?)",
                (token, answer.question, answer.chat_kind, answer.asked_at),
            )
            row = self._db.execute("SELECT vote FROM votes WHERE token = ? AND user_hash = ?", (token, user)).fetchone()
            if row is not None and row[0] == vote:
                self._db.execute("DELETE FROM votes WHERE token = ? AND user_hash = ?", (token, user))
            else:
                self._db.execute(
                    "INSERT INTO votes (token, user_hash, vote, voted_at, build_id, passages) VALUES (?,?,?,?,?,?)"
                    " ON CONFLICT (token, user_hash) DO UPDATE SET vote = excluded.vote,"
                    " voted_at = excluded.voted_at, build_id = excluded.build_id, passages = excluded.passages",
                    (token, user, vote, now, answer.build_id, passages),
                )
            return self._tally(token, user)

    def tally(self, token: str, user_id: int | None = None) -> Tally:
        with self._lock:
            return self._tally(token, self.user_hash(user_id) if user_id is not None else None)

    def _tally(self, token: str, user: str | None) -> Tally:
        up, down = self._db.execute(
            "SELECT COALESCE(SUM(vote = 1), 0), COALESCE(SUM(vote = -1), 0) FROM votes WHERE token = ?", (token,)
        ).fetchone()
        mine = 0
        if user is not None:
            row = self._db.execute("SELECT vote FROM votes WHERE token = ? AND user_hash = ?", (token, user)).fetchone()
            mine = row[0] if row else 0
        return Tally(int(up), int(down), mine)

    def answer(self, token: str) -> AnswerRecord | None:
        """An answer someone already voted on (what a vote button needs after a restart)."""
        with self._lock:
            row = self._db.execute(
                "SELECT question, chat_kind, asked_at FROM answers WHERE token = ?", (token,)
            ).fetchone()
            if row is None:
                return None
            last = self._db.execute(
                "SELECT build_id, passages FROM votes WHERE token = ? ORDER BY voted_at DESC LIMIT 1", (token,)
            ).fetchone()
        build_id, passages = last if last else ("", "[]")
        return AnswerRecord(row[0], row[1], build_id, [ShownPassage(**p) for p in json.loads(passages)], row[2])

    def feedback(self, since: float | None = None) -> list[FeedbackRow]:
        """Every vote (the latest per user and answer), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT v.voted_at, v.vote, a.question, a.chat_kind, v.build_id, v.passages, v.user_hash"
                " FROM votes v JOIN answers a USING (token) WHERE v.voted_at >= ? ORDER BY v.voted_at, v.rowid",
                (since or 0,),
            ).fetchall()
        return [FeedbackRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6][:12]) for r in rows]

    # ---------------------------------------------------------------------- questions

    def record_question(
        self, question: str, *, abstained: bool, similarity: float, chat_kind: str, language: str | None = None
    ) -> bool:
        """Keep one asked question (only with ``store_questions``); True if it was stored."""
        if not self.store_questions:
            return False
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO questions (asked_at, question, abstained, similarity, language, chat_kind)"
                " VALUES (?,?,?,?,?,?)",
                (self.clock(), question, int(abstained), float(similarity), language, chat_kind),
            )
        return True

    def questions(self, since: float | None = None) -> list[QuestionRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT asked_at, question, abstained, similarity, language, chat_kind FROM questions"
                " WHERE asked_at >= ? ORDER BY asked_at, id",
                (since or 0,),
            ).fetchall()
        return [QuestionRow(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in rows]

    def purge(self) -> int:
        """Delete questions older than the retention period; how many were deleted."""
        cutoff = self.clock() - self.retention_seconds
        with self._lock, self._transaction():
            return self._db.execute("DELETE FROM questions WHERE asked_at < ?", (cutoff,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _enable_wal(db: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode=WAL``, tried again while the file is locked, for as long as any other
    statement waits (BUSY_TIMEOUT_SECONDS). On a new file opened by several replicas at once the
    switch needs the file to itself, and SQLite answers "database is locked" at once, not after
    the busy timeout, to a connection that would deadlock waiting (1 start in 20 of 8 at once,
    tests/test_store.py)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def store_path(settings: Settings) -> Path:
    return settings.path(settings.telegram.store_file)


def open_store(settings: Settings, *, force: bool = False) -> Store | None:
    """The store the settings ask for, or None when neither switch is on (no file is made).
    ``force`` opens it anyway (the CLI reads what earlier runs kept)."""
    telegram = settings.telegram
    if not (telegram.store_feedback or telegram.store_questions or force):
        return None
    return Store(
        store_path(settings),
        store_feedback=telegram.store_feedback,
        store_questions=telegram.store_questions,
        retention_days=telegram.retention_days,
    )


def read_store(settings: Settings) -> Store | None:
    """The store file earlier runs left, for reading (the CLI); None when there is none."""
    path = store_path(settings)
    if not path.exists():
        return None
    telegram = settings.telegram
    return Store(
        path,
        store_feedback=telegram.store_feedback,
        store_questions=telegram.store_questions,
        retention_days=telegram.retention_days,
    )
