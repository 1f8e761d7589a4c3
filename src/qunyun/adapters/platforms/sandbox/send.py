"""The sandbox platform's own store: what the simulated platform received.

It lives in its own SQLite file, outside qunyun's database and transactions, as a real platform
would; a repeated idempotency key is applied once and counted as a duplicate.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qunyun.adapters.storage.sqlite_setup import prepare_connection

SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    action_type TEXT NOT NULL,
    chat TEXT,
    payload TEXT NOT NULL,
    at TEXT NOT NULL,
    duplicates INTEGER NOT NULL DEFAULT 0
);
"""


class SandboxStore:
    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=30, check_same_thread=False,
                                     isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            prepare_connection(self._conn, foreign_keys=False)
            self._conn.executescript(SCHEMA)

    def record(self, key: str, action_type: str, chat: str | None,
               payload: dict[str, Any]) -> tuple[int, bool]:
        """Apply a send once per key; return (sequence number, was it a duplicate)."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO sent (idempotency_key, action_type, chat, payload, at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(idempotency_key) DO NOTHING RETURNING seq",
                (key, action_type, chat, json.dumps(payload, ensure_ascii=False),
                 datetime.now(UTC).isoformat()),
            )
            row = cur.fetchone()
            if row is not None:
                return int(row[0]), False
            self._conn.execute(
                "UPDATE sent SET duplicates = duplicates + 1 WHERE idempotency_key = ?", (key,))
            seq = self._conn.execute(
                "SELECT seq FROM sent WHERE idempotency_key = ?", (key,)).fetchone()[0]
            return int(seq), True

    def sent(self, limit: int = 1000) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, idempotency_key, action_type, chat, payload, at, duplicates "
                "FROM sent ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [
            {"seq": r[0], "idempotency_key": r[1], "action_type": r[2], "chat": r[3],
             "payload": json.loads(r[4]), "at": r[5], "duplicates": r[6]}
            for r in rows
        ]

    def counts(self) -> tuple[int, int]:
        """(distinct sends applied, duplicate requests suppressed)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(duplicates), 0) FROM sent").fetchone()
        return int(row[0]), int(row[1])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
