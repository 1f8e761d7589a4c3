"""Small SQL helpers that differ by dialect; the only place services meet dialect names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(
    conn: Connection, table: Table, values: dict[str, Any], conflict: Sequence[str]
) -> Any | None:
    """Insert unless a row with the same ``conflict`` columns exists; return the new id or None."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    if "id" in table.c:
        row = conn.execute(stmt.returning(table.c.id)).first()
        return None if row is None else row[0]
    result = conn.execute(stmt)
    return True if result.rowcount else None


def supports_skip_locked(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"
