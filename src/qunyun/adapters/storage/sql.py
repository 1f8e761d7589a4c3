"""Small SQL helpers that differ by dialect; the only place services meet dialect names."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Executable,
    Float,
    Index,
    Table,
    Text,
    any_,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from qunyun.adapters.storage.tables import UTCDateTime


@lru_cache(maxsize=64)
def _insert_ignore_stmt(dialect: str, table: Table, conflict: tuple[str, ...],
                        returning: bool = True) -> Executable:
    """Built once per table: values go in as parameters, so the compiled form is reused
    (building ``.values(**literal)`` per call cost more than the database round trip)."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = dialect_insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    if not returning:
        return stmt
    # RETURNING tells whether a row went in on every driver (psycopg reports rowcount -1)
    key = table.c.id if "id" in table.c else next(iter(table.primary_key.columns))
    return stmt.returning(key)


def insert_ignore(
    conn: Connection, table: Table, values: dict[str, Any], conflict: Sequence[str]
) -> Any | None:
    """Insert unless a row with the same ``conflict`` columns exists; return the new id or None."""
    stmt = _insert_ignore_stmt(conn.dialect.name, table, tuple(conflict))
    row = conn.execute(stmt, values).first()
    if row is None:
        return None
    return row[0] if "id" in table.c else True


def insert_ignore_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                       conflict: Sequence[str]) -> int:
    """Insert many rows in one executemany, skipping those that conflict; returns how many
    were inserted (counted from RETURNING: drivers' executemany rowcounts disagree)."""
    if not rows:
        return 0
    stmt = _insert_ignore_stmt(conn.dialect.name, table, tuple(conflict))
    return len(conn.execute(stmt, list(rows)).all())


def insert_ignore_returning(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                            conflict: Sequence[str], returning: Sequence[str]) -> list[Any]:
    """Insert many rows, skipping those that conflict; the ``returning`` columns of the rows
    that went in (in no promised order: a skipped row returns nothing)."""
    if not rows:
        return []
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (dialect_insert(table).on_conflict_do_nothing(index_elements=list(conflict))
            .returning(*(table.c[c] for c in returning)))
    return list(conn.execute(stmt, list(rows)).all())


@lru_cache(maxsize=16)
@lru_cache(maxsize=16)
def insert_select_ignore_stmt(dialect: str, table: Table, columns: tuple[str, ...],
                              source: Executable, conflict: tuple[str, ...],
                              returning: bool = True) -> Executable:
    """``INSERT INTO table (columns) <source> ON CONFLICT DO NOTHING [RETURNING id]``, built
    once per dialect and source (the caller keeps ``source`` and passes its parameters each
    time; built per call, the statement's cache key cost a tenth of a credited join): one
    statement where a lookup and an insert would be two. Without ``returning`` it can be
    executed with many parameter sets at once."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (dialect_insert(table).from_select(list(columns), source)  # type: ignore[arg-type]
            .on_conflict_do_nothing(index_elements=list(conflict)))
    return stmt.returning(table.c.id) if returning else stmt


@lru_cache(maxsize=8)
def _increment_stmt(table: Table) -> Executable:
    return (update(table).where(table.c.name == bindparam("counter"))
            .values(value=table.c.value + 1).returning(table.c.value))


def increment_counter(conn: Connection, table: Table, name: str, *, start: int) -> int:
    """Add one to the named counter row and return it; a missing row starts at ``start``
    (so the first value returned is ``start + 1``). Row-locked, so never handed out twice."""
    stmt = _increment_stmt(table)
    value = conn.execute(stmt, {"counter": name}).scalar()
    if value is None:
        insert_ignore(conn, table, {"name": name, "value": start}, ["name"])
        value = conn.execute(stmt, {"counter": name}).scalar_one()
    return int(value)


def upsert_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                conflict: Sequence[str], update_columns: Sequence[str]) -> None:
    """Insert rows, or update ``update_columns`` where a row with the same key exists."""
    if not rows:
        return
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=list(conflict),
                                      set_={c: stmt.excluded[c] for c in update_columns})
    conn.execute(stmt, list(rows))


def _sqlite_datetime(value: datetime | str | None) -> str | None:
    """The form SQLAlchemy itself stores on SQLite: naive UTC text (text passes through)."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is UTC:  # most of a bulk import's times: no conversion to make
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")
    # the same text as strftime("%Y-%m-%d %H:%M:%S.%f"), a third faster (bulk imports
    # convert hundreds of thousands)
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _with_text_times(row: Sequence[Any], times: list[int],
                     seen: dict[datetime, str] | None = None) -> list[Any]:
    """``row`` with its times as the store's text; ``seen`` remembers the conversions of
    one batch (an import's rows share their receive time, an event its notice's time)."""
    converted = list(row)
    for i in times:
        value = converted[i]
        if seen is not None and value.__class__ is datetime:
            text = seen.get(value)
            if text is None:
                text = seen[value] = _sqlite_datetime(value)  # type: ignore[assignment]
            converted[i] = text
        else:
            converted[i] = _sqlite_datetime(value)
    return converted


def bulk_insert_ignore(conn: Connection, table: Table, columns: Sequence[str],
                       rows: Sequence[Sequence[Any]], conflict: Sequence[str], *,
                       ready: bool = False) -> int:
    """Insert many plain rows fast, skipping conflicts; returns how many were inserted.

    For bulk writes (imports, a broadcast's fan-out): it bypasses SQLAlchemy's type
    processing (values must already be plain: aware datetimes, bools, text, ints, JSON as
    text; with ``ready`` the times are already the store's own text, so no row is touched
    in Python) and goes through the driver in the caller's
    transaction — the driver's C executemany on SQLite, COPY into a temporary table and one
    INSERT … SELECT … ON CONFLICT DO NOTHING on PostgreSQL.
    """
    if not rows:
        return 0
    cols = ", ".join(columns)
    raw = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" for _ in columns)
        times = [i for i, c in enumerate(columns)
                 if isinstance(table.c[c].type, (DateTime, UTCDateTime))]
        values = rows
        if times and not ready:
            seen: dict[datetime, str] = {}
            values = [_with_text_times(row, times, seen) for row in rows]
        before = raw.total_changes  # type: ignore[union-attr]
        raw.executemany(  # type: ignore[union-attr]
            f"INSERT INTO {table.name} ({cols}) VALUES ({marks}) "
            f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING", values)
        return int(raw.total_changes - before)  # type: ignore[union-attr]
    return _copy_then_insert(conn, table, cols, rows,
                             f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING")


def _copy_then_insert(conn: Connection, table: Table, cols: str,
                      rows: Sequence[Sequence[Any]], on_conflict: str) -> int:
    """PostgreSQL's bulk path: COPY the rows into a temporary twin of ``table`` (dropped at
    commit), then one INSERT … SELECT with ``on_conflict``; returns the rows it wrote."""
    temp = f"_bulk_{table.name}"
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {temp} ON COMMIT DROP AS "
                    f"SELECT {cols} FROM {table.name} WITH NO DATA")
        cur.execute(f"TRUNCATE {temp}")
        with cur.copy(f"COPY {temp} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {temp} "
                    f"{on_conflict}")
        return int(cur.rowcount)


DEFER_INDEX_MIN_ROWS = 50_000


@contextmanager
def index_built_after(conn: Connection, index: Index, *, incoming: int) -> Iterator[bool]:
    """Drop ``index`` while ``incoming`` rows go in and build it once afterwards, when that
    pays: on SQLite, for a batch that is large next to the table (one sorted build of
    1M messages' (member, time) index took 0.8 s; keeping it up to date row by row, in
    random member order, 2.8 s). The build reads the whole table, hence the comparison.

    Yields whether the index was dropped. Use it inside the write transaction and let an
    error end that transaction: the index is rebuilt only on a normal exit, and a rollback
    restores it (SQLite's DDL is transactional). PostgreSQL keeps its index: DROP INDEX
    would lock the table against every reader (ACCESS EXCLUSIVE) until the import commits.
    """
    table = index.table
    assert isinstance(table, Table)
    defer = conn.dialect.name == "sqlite" and incoming >= DEFER_INDEX_MIN_ROWS
    if defer:
        # max(id) is a look-up, count(*) a scan: ids are dense enough for an estimate
        held = conn.execute(select(func.max(table.c.id))).scalar() or 0
        defer = incoming * 2 >= held
    if defer:
        index.drop(conn)
    yield defer
    if defer:
        index.create(conn)


def supports_skip_locked(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def single_writer(engine: Engine) -> bool:
    """One write transaction at a time for the whole database (SQLite): a busy background
    writer must leave gaps, or the web process's writes wait behind it."""
    return engine.dialect.name == "sqlite"


class epoch_seconds(FunctionElement[float]):
    """Seconds since 1970 of a UTC timestamp column, on SQLite and PostgreSQL alike (used for
    recency decay in lead scores)."""

    type = Float()
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"extract(epoch from {compiler.process(element.clauses, **kw)})"


def _in_list(conn: Connection, column: Any, values: Sequence[Any], element: Any,
             name: str) -> Any:
    """``column IN (values)`` as one parameter however many values there are: an array on
    PostgreSQL, a JSON list read by ``json_each`` on SQLite (no bound-variable limit; IN
    lists of 500 cost a round trip and a plan each — a file's 20,000 people took ~0.8 s)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(name, list(values), type_=ARRAY(element)))
    listed = func.json_each(bindparam(name, json.dumps(list(values)))).table_valued("value")
    return column.in_(select(listed.c.value))


def in_id_list(conn: Connection, column: Any, ids: Sequence[int]) -> Any:
    return _in_list(conn, column, ids, BigInteger, "id_list")


def in_text_list(conn: Connection, column: Any, values: Sequence[str]) -> Any:
    return _in_list(conn, column, values, Text, "text_list")


def bulk_add_counts(conn: Connection, table: Table, keys: Sequence[str], column: str,
                    rows: Sequence[Sequence[Any]]) -> None:
    """Add ``column`` of each row (keys…, amount) onto the stored row with the same keys,
    inserting the ones not there — many at once, for bulk imports: the driver's C
    executemany on SQLite, COPY into a temporary table and one INSERT … SELECT … ON
    CONFLICT DO UPDATE on PostgreSQL (its executemany sends one statement per row).
    The keys must be unique among ``rows``."""
    if not rows:
        return
    cols = ", ".join((*keys, column))
    conflict = ", ".join(keys)
    update = f"{column} = {table.name}.{column} + excluded.{column}"
    raw = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" for _ in (*keys, column))
        raw.executemany(  # type: ignore[union-attr]
            f"INSERT INTO {table.name} ({cols}) VALUES ({marks}) "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {update}", rows)
        return
    _copy_then_insert(conn, table, cols, rows, f"ON CONFLICT ({conflict}) DO UPDATE SET {update}")


def refresh_statistics(conn: Connection, tables: Sequence[Table]) -> None:
    """After a bulk load on PostgreSQL: fresh planner statistics for the tables it grew.
    Without them the planner takes a table just filled by COPY for nearly empty and looks
    up 500 identities by reading every identity of that kind (the second of four imports
    took twice as long as the first, the fourth four times). SQLite plans by its indexes
    alone; nothing to do there."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE " + ", ".join(t.name for t in tables))
