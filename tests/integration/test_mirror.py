"""The analytics mirror: a DuckDB copy of what the cohort report reads, refreshed from the
store in one snapshot. Its reports must equal the store's, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from sqlalchemy import Connection, func, select

from qunyun.adapters.storage import mirror
from qunyun.adapters.storage.tables import member_events, members
from qunyun.bootstrap import Runtime
from qunyun.services import activities
from qunyun.services.reports import get_cohort_report
from qunyun.services.users import SYSTEM
from tests.activity_scenario import TZ
from tests.integration.test_cohort_sql import NOW, build_random

BERLIN = ZoneInfo("Europe/Berlin")  # summer time ends inside the history


def test_the_mirror_gives_the_stores_cohort_reports(conn: Connection, runtime: Runtime,
                                                   tmp_path: Path) -> None:
    build_random(conn, runtime, 5)
    if conn.dialect.name == "postgresql":  # COPY writes times in the session's zone
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'Asia/Shanghai'")
    # text a CSV must quote, and text that must not come back as NULL
    activities.do_create_series(conn, actor=SYSTEM, code="Q", name='引号"与,逗号\'和\n换行',
                                description="")
    activities.do_create_series(conn, actor=SYSTEM, code="N", name="NULL", description="\\N")
    path = tmp_path / "analytics.duckdb"
    info = mirror.refresh(conn, path)
    assert info.rows["member_events"] == conn.execute(
        select(func.count()).select_from(member_events)).scalar_one() > 0
    assert info.rows["members"] == conn.execute(
        select(func.count()).select_from(members)).scalar_one()
    with mirror.connect(path) as copy:
        assert copy.dialect.name == "duckdb"
        for table, names in mirror.MIRRORED:  # the copied columns hold what the store holds
            cols = list(table.c) if names is None else [table.c[n] for n in names]
            stmt = select(*cols).order_by(*table.primary_key)
            assert copy.execute(stmt).all() == conn.execute(stmt).all(), table.name
        for series, period, tz in ((None, "week", TZ), ("A", "week", TZ),
                                   ("B", "month", TZ), ("C", "week", TZ),
                                   (None, "week", BERLIN), ("B", "month", BERLIN)):
            want = get_cohort_report(conn, actor=SYSTEM, tz=tz, series=series, period=period,
                                 now=NOW)
            got = get_cohort_report(copy, actor=SYSTEM, tz=tz, series=series, period=period,
                                now=NOW)
            assert want["participants"] > 0 and want.get("lifecycle")
            assert got == want, (series, period, tz)
    read = mirror.info(path)
    assert read is not None and read.rows == info.rows
    assert read.refreshed_at == info.refreshed_at


def test_the_mirror_holds_no_personal_data_and_is_stored_by_group_and_time(
        conn: Connection, runtime: Runtime, tmp_path: Path) -> None:
    build_random(conn, runtime, 3)
    path = tmp_path / "analytics.duckdb"
    mirror.refresh(conn, path)
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = {(t, c) for t, c in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns").fetchall()}
        stored = {table: con.execute(f"SELECT {', '.join(order)} FROM {table}").fetchall()
                  for table, order in mirror.CLUSTERED.items()}  # in storage order
    finally:
        con.close()
    assert ("member_events", "kind") in columns
    for table, column in (("members", "display_name"), ("members", "phone"),
                          ("members", "address"), ("messages", "text")):
        assert (table, column) not in columns
    for table, rows in stored.items():
        assert rows == sorted(rows) and len(rows) > 10, table


def test_a_failed_refresh_keeps_the_old_copy(conn: Connection, runtime: Runtime,
                                             tmp_path: Path) -> None:
    build_random(conn, runtime, 3)
    path = tmp_path / "analytics.duckdb"
    first = mirror.refresh(conn, path)
    # the new file's place is taken by a directory: DuckDB cannot create it
    (tmp_path / "analytics.duckdb.new").mkdir()
    (tmp_path / "analytics.duckdb.new" / "x").write_text("keep")
    with pytest.raises(mirror.MirrorError, match=r"analytics\.duckdb"):
        mirror.refresh(conn, path)
    kept = mirror.info(path)
    assert kept is not None and kept.refreshed_at == first.refreshed_at


def test_a_second_refresh_at_the_same_time_is_refused(conn: Connection, runtime: Runtime,
                                                      tmp_path: Path) -> None:
    import fcntl

    build_random(conn, runtime, 3)
    path = tmp_path / "analytics.duckdb"
    first = mirror.refresh(conn, path)
    with (tmp_path / "analytics.duckdb.lock").open("a") as held:  # another process's refresh
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(mirror.MirrorError, match="another refresh of this mirror"):
            mirror.refresh(conn, path)
        assert mirror.refreshing(path)  # what the status reports, whichever process holds it
        fcntl.flock(held, fcntl.LOCK_UN)
    assert not mirror.refreshing(path)
    kept = mirror.info(path)
    assert kept is not None and kept.refreshed_at == first.refreshed_at
    assert mirror.refresh(conn, path).refreshed_at > first.refreshed_at  # free again


def test_a_status_probe_at_the_start_of_a_refresh_does_not_refuse_it(
        conn: Connection, runtime: Runtime, tmp_path: Path) -> None:
    """``refreshing`` takes the lock for an instant; a refresh starting then used to be
    refused as if another refresh ran (seen as a flaky dashboard test under load)."""
    import fcntl
    import threading

    build_random(conn, runtime, 3)
    path = tmp_path / "analytics.duckdb"
    held = (tmp_path / "analytics.duckdb.lock").open("a")
    fcntl.flock(held, fcntl.LOCK_EX)
    timer = threading.Timer(0.2, lambda: fcntl.flock(held, fcntl.LOCK_UN))
    timer.start()
    try:
        assert mirror.refresh(conn, path).refreshed_at is not None
    finally:
        timer.join()
        held.close()


def test_missing_or_broken_mirror_is_named(tmp_path: Path) -> None:
    assert mirror.info(tmp_path / "none.duckdb") is None
    with pytest.raises(mirror.MirrorError, match="no analytics mirror yet"), \
            mirror.connect(tmp_path / "none.duckdb"):
        pass
    (tmp_path / "bad.duckdb").write_text("not a database")
    with pytest.raises(mirror.MirrorError, match=r"bad\.duckdb"):
        mirror.info(tmp_path / "bad.duckdb")


def test_the_worker_refreshes_the_mirror_in_a_thread_of_its_own(
        runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qunyun.analytics import mirror as analytics_mirror
    from qunyun.bootstrap import build_runtime
    from qunyun.config import Settings

    off = build_runtime(Settings(data_dir=tmp_path), engine=runtime.engine)
    on = build_runtime(Settings(data_dir=tmp_path, analytics_mirror=True,
                                analytics_mirror_minutes=30), engine=runtime.engine)
    assert "analytics_mirror" not in {name for name, _every, _job in off.periodic}
    assert ("analytics_mirror", 1800.0) in {(n, every) for n, every, _job in on.periodic}
    path = tmp_path / "analytics.duckdb"
    assert on.settings.resolved_mirror_path() == path
    job = next(job for name, _every, job in on.periodic if name == "analytics_mirror")
    assert job(on) == 0  # returns at once
    assert analytics_mirror.wait_for_refresh(120)  # the thread has finished
    found = mirror.info(path)
    assert found is not None and set(found.rows) >= {"member_events", "enrolments"}
