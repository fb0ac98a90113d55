"""The survey's answers in SQLite: written as they are given, read back for the summary.

One database belongs to one survey (its id and questions are stored in it, so
the summary needs only the database). WAL mode with `synchronous=FULL`: an
answer the server acknowledged is on disk, whatever happens to the process
afterwards. Each operation opens its own short-lived connection, so any number
of request threads can share a `SurveyDB`; SQLite serialises the writers and
`busy_timeout` makes them wait instead of failing.

Tables:
  meta          survey id, fingerprint, the server's cookie/CSRF secret
  questions     id, training point, position (the order asked), source image
  participants  id, optional age band
  shown         (participant, question) -> whether the mouth model was on top,
                recorded the first time the question is shown
  answers       (participant, question) UNIQUE -> choice 1..5 as clicked, and the
                orientation copied from `shown`
  resume_codes  participant -> the hash of the code that lets another browser
                continue as them (`resume_codes.hash_code`); added after the
                first surveys, so older databases get it, empty, when opened
"""

import contextlib
import secrets
import sqlite3
import time

from glcic_jax.survey import design as survey_lib

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS questions (
  id TEXT PRIMARY KEY,
  point INTEGER NOT NULL,
  position INTEGER NOT NULL UNIQUE,
  image_index INTEGER NOT NULL,
  source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS participants (
  id TEXT PRIMARY KEY,
  age_band TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shown (
  participant TEXT NOT NULL REFERENCES participants(id),
  question TEXT NOT NULL REFERENCES questions(id),
  mouth_on_top INTEGER NOT NULL CHECK (mouth_on_top IN (0, 1)),
  shown_at REAL NOT NULL,
  PRIMARY KEY (participant, question)
);
CREATE TABLE IF NOT EXISTS answers (
  id INTEGER PRIMARY KEY,
  participant TEXT NOT NULL REFERENCES participants(id),
  question TEXT NOT NULL REFERENCES questions(id),
  choice INTEGER NOT NULL CHECK (choice BETWEEN 1 AND 5),
  mouth_on_top INTEGER NOT NULL CHECK (mouth_on_top IN (0, 1)),
  answered_at REAL NOT NULL,
  UNIQUE (participant, question)
);
CREATE TABLE IF NOT EXISTS resume_codes (
  participant TEXT PRIMARY KEY REFERENCES participants(id),
  code_hash TEXT NOT NULL,
  created_at REAL NOT NULL
);
"""


class NotShown(Exception):
    """An answer to a question the participant was never shown (so its orientation is unknown)."""


class SurveyDB:
    """The answers database of one survey."""

    def __init__(self, path, timeout_s: float = 30.0):
        self.path = str(path)
        self.timeout_s = timeout_s
        with self.connect() as db:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RuntimeError(f"{self.path}: SQLite refused WAL mode ({mode})")
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def connect(self):
        """A fresh autocommit connection; each statement is its own transaction."""
        db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            yield db
        finally:
            db.close()

    def attach(self, survey: "survey_lib.Survey") -> None:
        """Bind the database to `survey`: store its questions, or check they are the same."""
        fingerprint = survey_lib.fingerprint(survey)
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
                if row and row[0] != fingerprint:
                    raise survey_lib.SurveyError(
                        f"{self.path} holds answers to another survey; use a new --db"
                    )
                if not row:
                    db.executemany(
                        "INSERT INTO meta VALUES (?, ?)",
                        [
                            ("fingerprint", fingerprint),
                            ("survey_id", survey.survey_id),
                            ("survey_folder", str(survey.folder)),
                            ("points", ",".join(str(p) for p in survey.points)),
                        ],
                    )
                    db.executemany(
                        "INSERT INTO questions VALUES (?, ?, ?, ?, ?)",
                        [
                            (q.id, q.point, i, q.index, q.source)
                            for i, q in enumerate(survey.questions)
                        ],
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def server_secret(self) -> str:
        """The key of the server's cookies and CSRF tokens; kept here so it survives restarts."""
        with self.connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('server_secret', ?)", (secrets.token_hex(32),)
            )
            return db.execute("SELECT value FROM meta WHERE key='server_secret'").fetchone()[0]

    def add_participant(self, participant: str, age_band: str = "") -> None:
        """Register a participant (again: keeps the first age band given)."""
        with self.connect() as db:
            db.execute(
                "INSERT INTO participants VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "age_band = excluded.age_band WHERE participants.age_band = ''",
                (participant, age_band, time.time()),
            )

    def register(self, participant: str, age_band: str, code_hash: str) -> bool:
        """Register a new participant with the hash of their resume code, in one transaction.

        Returns False, and changes nothing, if the id is already taken (also by
        a concurrent registration).
        """
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                added = db.execute(
                    "INSERT INTO participants VALUES (?, ?, ?) ON CONFLICT(id) DO NOTHING",
                    (participant, age_band, now),
                ).rowcount
                if added:
                    db.execute(
                        "INSERT INTO resume_codes VALUES (?, ?, ?)", (participant, code_hash, now)
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return added == 1

    def resume_code_hash(self, participant: str) -> str | None:
        """The stored hash of `participant`'s resume code; None if unknown or registered without."""
        with self.connect() as db:
            row = db.execute(
                "SELECT code_hash FROM resume_codes WHERE participant = ?", (participant,)
            ).fetchone()
        return row[0] if row else None

    def has_participant(self, participant: str) -> bool:
        with self.connect() as db:
            row = db.execute("SELECT 1 FROM participants WHERE id = ?", (participant,)).fetchone()
        return row is not None

    def record_shown(self, participant: str, question: str, mouth_top: bool) -> bool:
        """Record the orientation of a question the first time it is shown; returns the recorded one."""
        with self.connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO shown VALUES (?, ?, ?, ?)",
                (participant, question, int(mouth_top), time.time()),
            )
            row = db.execute(
                "SELECT mouth_on_top FROM shown WHERE participant = ? AND question = ?",
                (participant, question),
            ).fetchone()
        return bool(row[0])

    def answer(self, participant: str, question: str, choice: int) -> bool:
        """Store one answer; False if this participant already answered this question.

        Raises:
          NotShown: the question was never shown to this participant.
        """
        if choice not in survey_lib.CHOICES:
            raise ValueError(f"choice must be 1..5, not {choice!r}")
        with self.connect() as db:
            try:
                cursor = db.execute(
                    "INSERT INTO answers (participant, question, choice, mouth_on_top, "
                    "answered_at) SELECT participant, question, ?, mouth_on_top, ? FROM shown "
                    "WHERE participant = ? AND question = ?",
                    (choice, time.time(), participant, question),
                )
            except sqlite3.IntegrityError as e:
                if "UNIQUE" in str(e):
                    return False
                raise
        if cursor.rowcount != 1:
            raise NotShown(f"{participant} was never shown {question}")
        return True

    def answered(self, participant: str) -> set[str]:
        with self.connect() as db:
            rows = db.execute(
                "SELECT question FROM answers WHERE participant = ?", (participant,)
            ).fetchall()
        return {r[0] for r in rows}

    def rows(self) -> list[dict]:
        """Every answer with its question, training point and participant's age band."""
        with self.connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT a.participant, p.age_band, a.question, q.point, q.position, "
                "q.image_index, q.source, a.choice, a.mouth_on_top, a.answered_at "
                "FROM answers a JOIN questions q ON q.id = a.question "
                "JOIN participants p ON p.id = a.participant ORDER BY q.position, a.participant"
            ).fetchall()
        return [dict(r) for r in rows]

    def questions(self) -> list[dict]:
        with self.connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM questions ORDER BY position").fetchall()
        return [dict(r) for r in rows]

    def meta(self) -> dict:
        with self.connect() as db:
            return {
                k: v for k, v in db.execute("SELECT key, value FROM meta") if k != "server_secret"
            }
