"""Segment count and lead export over 1M members and 10M member_events (issue 4).

Generates the rows with DuckDB (deterministic, hash-based): members, 200 groups in 10 series,
~1.5M memberships, error-rate and spend attributes, 10M member_events (60 % check-ins), then
loads them into a fresh, migrated qunyun database (SQLite by default, ``--postgres``), with
the schema's indexes in place and ANALYZE run as an operator's database would be.

Measured (each the best of 3 after one warm-up):
- count of the three-condition segment through ``services.segments.count_expression``;
- export: ranking the whole segment by a two-term formula with recency decay and writing the
  CSV, through ``services.leads.do_export_leads``.
Baseline in the same run: DuckDB running the same count as one SQL query over the same rows
in memory (the floor: a columnar engine with the data already loaded).

    .venv/bin/python bench/segments_bench.py [--members 1000000] [--events 10000000] [--postgres]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SEGMENT = 'series = "奥数" and attr.错题率 > 30% and events.checkin >= 5'
FORMULA = "1 * attr.spend + 5 * events.checkin @30d"
SERIES = ["奥数", "阅读", "英语", "编程", "科学", "书法", "围棋", "口才", "美术", "音乐"]
NOW = datetime(2026, 11, 25, tzinfo=UTC)

GENERATE = """
CREATE TABLE members AS SELECT i AS id, 10000 + i AS number, '成员' || i AS display_name,
  TIMESTAMP '2025-01-01' + to_seconds((hash(i, 1) % 25000000)::BIGINT) AS first_seen_at,
  TIMESTAMP '2026-06-01' + to_seconds((hash(i, 2) % 15000000)::BIGINT) AS last_seen_at,
  CASE WHEN hash(i, 3) % 10 < 3 THEN '13' || lpad((hash(i, 4) % 1000000000)::VARCHAR, 9, '0')
       ELSE '' END AS phone
  FROM range(1, {members} + 1) t(i);
CREATE TABLE groups AS SELECT g AS id, 'g' || g AS external_id, '群' || g AS name,
  ({series})[(g % 10) + 1] AS series FROM range(1, 201) t(g);
CREATE TABLE memberships AS
  SELECT row_number() OVER () AS id, member_id, group_id, joined_at FROM (
    SELECT i AS member_id, (hash(i, 5) % 200) + 1 AS group_id,
           TIMESTAMP '2025-01-01' + to_seconds((hash(i, 6) % 30000000)::BIGINT) AS joined_at
      FROM range(1, {members} + 1) t(i)
    UNION ALL
    SELECT i, (hash(i, 7) % 200) + 1,
           TIMESTAMP '2025-03-01' + to_seconds((hash(i, 8) % 30000000)::BIGINT)
      FROM range(1, {members} + 1) t(i) WHERE hash(i, 9) % 2 = 0);
CREATE TABLE member_attributes AS
  SELECT i AS member_id, '错题率' AS name, ((hash(i, 10) % 1000) / 1000.0) AS value_num
    FROM range(1, {members} + 1) t(i) WHERE hash(i, 11) % 2 = 0
  UNION ALL
  SELECT i, 'spend', (hash(i, 12) % 5000)::DOUBLE
    FROM range(1, {members} + 1) t(i) WHERE hash(i, 13) % 10 < 3;
CREATE TABLE member_events AS SELECT e AS id,
  CAST(floor(pow((hash(e, 14) % 1000000) / 1000000.0, 1.7) * {members}) + 1 AS BIGINT)
    AS member_id,
  (hash(e, 15) % 200) + 1 AS group_id,
  CASE WHEN hash(e, 16) % 10 < 6 THEN 'checkin' WHEN hash(e, 16) % 10 < 8 THEN 'joined'
       WHEN hash(e, 16) % 10 < 9 THEN 'left' ELSE 'recalled' END AS kind,
  TIMESTAMP '2025-01-01' + to_seconds((hash(e, 17) % 59000000)::BIGINT) AS occurred_at
  FROM range(1, {events} + 1) t(e);
"""

FLOOR = """
SELECT count(*) FROM members m
WHERE m.id IN (SELECT ms.member_id FROM memberships ms JOIN groups g ON g.id = ms.group_id
               WHERE g.series = '奥数')
  AND m.id IN (SELECT member_id FROM member_attributes WHERE name = '错题率'
               AND value_num > 0.3)
  AND m.id IN (SELECT member_id FROM member_events WHERE kind = 'checkin'
               GROUP BY member_id HAVING count(*) >= 5)
"""

# (table, DuckDB select producing the qunyun columns in order)
LOADS: list[tuple[str, str]] = [
    ("members", "SELECT id, number, display_name, NULL, first_seen_at, first_seen_at, "
                "last_seen_at, phone, '' FROM members"),
    ("groups", "SELECT id, 'bench', external_id, name, NULL, 'long_term', series, 500, "
               "'active', '', '', '{{}}', TIMESTAMP '2025-01-01', TIMESTAMP '2025-01-01' "
               "FROM groups"),
    ("memberships", "SELECT id, member_id, group_id, joined_at, 'qr', NULL, '', true, NULL, "
                    "NULL, NULL, NULL FROM memberships"),
    ("member_attributes", "SELECT member_id, name, value_num::VARCHAR, value_num, "
                          "TIMESTAMP '2026-01-01', 'bench' FROM member_attributes"),
    ("member_events", "SELECT id, member_id, group_id, kind, occurred_at, NULL, '{{}}', NULL "
                      "FROM member_events"),
]
COLUMNS = {
    "members": "id, number, display_name, merged_into_id, created_at, "
               "first_seen_at, last_seen_at, phone, address",
    "groups": "id, platform, external_id, name, owner_member_id, group_type, series, "
              "capacity, state, rules_text, announcement, settings, created_at, updated_at",
    "memberships": "id, member_id, group_id, joined_at, join_scene, inviter_member_id, "
                   "channel, join_observed, left_at, leave_scene, first_message_at, "
                   "last_message_at",
    "member_attributes": "member_id, name, value_text, value_num, updated_at, source",
    "member_events": "id, member_id, group_id, kind, occurred_at, actor_member_id, data, "
                     "inbound_event_id",
}


def generate(members: int, events: int) -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    series = "[" + ", ".join(f"'{s}'" for s in SERIES) + "]"
    con.execute(GENERATE.format(members=members, events=events, series=series))
    return con


def load_sqlite(con: Any, url: str, loads: list[tuple[str, str]] | None = None) -> None:
    import sqlite3

    path = url.removeprefix("sqlite:///")
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA foreign_keys=OFF")
    for table, query in loads or LOADS:
        indexes = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                             "tbl_name = ? AND name LIKE 'ix_%'", (table,)).fetchall()
        for name, _ in indexes:  # rebuilt after the load, as bulk loads do
            db.execute(f"DROP INDEX {name}")
        cols = COLUMNS[table]
        marks = ", ".join("?" for _ in cols.split(","))
        cur = con.execute(query.format())
        while batch := cur.fetchmany(200_000):
            rows = [tuple(v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v
                          for v in row) for row in batch]
            db.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
        for _, definition in indexes:
            db.execute(definition)
        db.commit()
        print(f"  loaded {table}", flush=True)
    db.execute("ANALYZE")
    db.commit()
    db.close()


def load_postgres(con: Any, url: str, tmp: Path,
                  loads: list[tuple[str, str]] | None = None) -> None:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as pg:
        for table, query in loads or LOADS:
            # bulk-load practice: indexes rebuilt and foreign keys unchecked during COPY (the
            # rows are generated consistent); the database ends with the schema's indexes
            indexes = pg.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename "
                                 "= %s AND indexname LIKE 'ix_%%'", (table,)).fetchall()
            for name, _ in indexes:
                pg.execute(f"DROP INDEX {name}")
            pg.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
            csv = tmp / f"{table}.csv"
            con.execute(f"COPY ({query.format()}) TO '{csv}' (HEADER false, "
                        "TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S+00')")
            with pg.cursor() as cur, cur.copy(
                    f"COPY {table} ({COLUMNS[table]}) FROM STDIN WITH (FORMAT csv)") as copy, \
                    csv.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
            csv.unlink()
            pg.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
            for _, definition in indexes:
                pg.execute(definition)
            print(f"  loaded {table}", flush=True)
        for table in ("members", "groups", "memberships", "member_events"):
            pg.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                       f"(SELECT max(id) FROM {table}))")
        pg.execute("VACUUM ANALYZE")


def best_of(fn: Any, runs: int = 3) -> tuple[float, Any]:
    fn()  # warm-up
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--keep", action="store_true",
                        help="keep the PostgreSQL database (its URL is printed) for EXPLAIN")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from zoneinfo import ZoneInfo

    from sqlalchemy import text

    from qunyun.adapters.storage import migrate
    from qunyun.adapters.storage.db import make_engine
    from qunyun.clock import Clock
    from qunyun.services import leads, segments
    from qunyun.services.counts import do_recount
    from qunyun.services.users import SYSTEM

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        con = generate(args.members, args.events)
        print(f"generated {args.members:,} members, {args.events:,} member_events in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        floor_s, floor_count = best_of(lambda: con.execute(FLOOR).fetchone()[0])
        print(f"baseline DuckDB (same count, in memory): {floor_s * 1000:.0f} ms "
              f"-> {floor_count:,} members", flush=True)
        handle = None
        if args.postgres:
            from outbox_bench import drop_database, new_database

            url, handle = new_database("postgresql", tmp)
        else:
            url = f"sqlite:///{tmp / f'seg-{uuid.uuid4().hex[:6]}.db'}"
        try:
            engine = make_engine(url)
            migrate.upgrade(engine)
            t0 = time.perf_counter()
            if args.postgres:
                load_postgres(con, url, tmp)
            else:
                engine.dispose()
                load_sqlite(con, url)
            print(f"loaded into qunyun's schema in {time.perf_counter() - t0:.0f} s",
                  flush=True)
            engine = make_engine(url)
            t0 = time.perf_counter()
            with engine.begin() as conn:  # what migration 0004 / `qunyun db recount` do
                totals = do_recount(conn, actor=SYSTEM)
            with engine.connect() as conn:
                conn.execute(text("ANALYZE member_counts"))
                conn.commit()
            print(f"built {totals:,} per-member totals in {time.perf_counter() - t0:.1f} s",
                  flush=True)
            clock = Clock(NOW, ZoneInfo("Asia/Shanghai"))
            with engine.connect() as conn:
                count_s, count = best_of(lambda: segments.count_expression(
                    conn, actor=SYSTEM, expression=SEGMENT, clock=clock))
                assert count == floor_count, (count, floor_count)

                def export() -> int:
                    body, rows = leads.do_export_leads(conn, actor=SYSTEM, expression=SEGMENT,
                                                       formula=FORMULA, clock=clock,
                                                       fmt="csv")
                    (tmp / "leads.csv").write_bytes(body)
                    conn.rollback()  # the audit row of a bench export is not kept
                    return rows

                export_s, rows = best_of(export)
            engine.dispose()
        finally:
            if handle is not None and not args.keep:
                drop_database(handle)
            elif handle is not None:
                print(f"kept {url}")
        kind = "PostgreSQL" if args.postgres else "SQLite"
        print(f"segment: {SEGMENT}")
        print(f"qunyun count ({kind}): {count_s * 1000:.0f} ms -> {count:,} members "
              f"({count_s / floor_s:.1f}x DuckDB)")
        print(f"qunyun lead export ({kind}, formula {FORMULA!r}): {export_s:.2f} s for "
              f"{rows:,} rows")


if __name__ == "__main__":
    main()
