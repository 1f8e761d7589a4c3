"""Small SQL helpers that differ by dialect; the only place services meet dialect names."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Executable, Table
from sqlalchemy.dialects import postgresql, sqlite


@lru_cache(maxsize=64)
def _insert_ignore_stmt(dialect: str, table: Table, conflict: tuple[str, ...],
                        returning: bool = True) -> Executable:
    """Built once per table: values go in as parameters, so the compiled form is reused
    (building ``.values(**literal)`` per call cost more than the database round trip)."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = dialect_insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    return stmt.returning(table.c.id) if returning and "id" in table.c else stmt


def insert_ignore(
    conn: Connection, table: Table, values: dict[str, Any], conflict: Sequence[str]
) -> Any | None:
    """Insert unless a row with the same ``conflict`` columns exists; return the new id or None."""
    stmt = _insert_ignore_stmt(conn.dialect.name, table, tuple(conflict))
    result = conn.execute(stmt, values)
    if "id" in table.c:
        row = result.first()
        return None if row is None else row[0]
    return True if result.rowcount else None


def insert_ignore_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                       conflict: Sequence[str]) -> int:
    """Insert many rows in one executemany, skipping those that conflict; returns how many
    were inserted (counted from RETURNING: drivers' executemany rowcounts disagree)."""
    if not rows:
        return 0
    returning = "id" in table.c
    stmt = _insert_ignore_stmt(conn.dialect.name, table, tuple(conflict), returning)
    result = conn.execute(stmt, list(rows))
    return len(result.all()) if returning else int(result.rowcount)


def supports_skip_locked(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"
