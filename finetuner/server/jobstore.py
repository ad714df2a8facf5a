"""The job table: which runs wait, run or ended, for whom, in what order. Survives restarts.

SQLite in FINETUNER_HOME/jobs.sqlite (WAL, one connection guarded by a lock); `JobStore(None)`
keeps the table in memory for the CLI and tests. No torch here.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    run_id      TEXT PRIMARY KEY,
    user        TEXT NOT NULL,
    run_dir     TEXT NOT NULL,
    status      TEXT NOT NULL,
    queued_at   REAL NOT NULL,
    started_at  REAL,
    finished_at REAL,
    pid         INTEGER,
    fingerprint TEXT,
    gpus        TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, queued_at);
"""
ACTIVE = ("queued", "running")


class JobStore:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = str(path) if path else ":memory:"
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(jobs)").fetchall()}
        if "gpus" not in columns:  # a table from before GPU slots
            self._db.execute("ALTER TABLE jobs ADD COLUMN gpus TEXT")
        self._lock = threading.Lock()

    def _run(self, sql: str, args: tuple = ()) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, args).fetchall()]

    def add(self, run_id: str, user: str, run_dir: str, fingerprint: str = "",
            status: str = "queued") -> None:
        self._run("INSERT OR REPLACE INTO jobs (run_id, user, run_dir, status, queued_at, "
                  "fingerprint) VALUES (?, ?, ?, ?, ?, ?)",
                  (run_id, user, run_dir, status, time.time(), fingerprint))

    def set(self, run_id: str, **fields) -> None:
        if not fields:
            return
        names = ", ".join(f"{k} = ?" for k in fields)
        self._run(f"UPDATE jobs SET {names} WHERE run_id = ?", (*fields.values(), run_id))

    def get(self, run_id: str) -> dict | None:
        rows = self._run("SELECT * FROM jobs WHERE run_id = ?", (run_id,))
        return rows[0] if rows else None

    def with_status(self, *statuses: str) -> list[dict]:
        marks = ", ".join("?" for _ in statuses)
        return self._run(f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY queued_at, "
                         "rowid", statuses)

    def active(self, user: str) -> list[dict]:
        return self._run("SELECT * FROM jobs WHERE user = ? AND status IN ('queued', "
                         "'running') ORDER BY queued_at", (user,))

    def delete(self, run_id: str) -> None:
        self._run("DELETE FROM jobs WHERE run_id = ?", (run_id,))
