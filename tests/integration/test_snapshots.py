"""Member-list snapshots turn into leaves (basis 'snapshot') and implied memberships."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import member_events, memberships
from qunyun.analytics.health import group_health
from qunyun.bootstrap import Runtime
from qunyun.clock import utcnow
from qunyun.services.imports import ImportFailed, do_import_file, do_import_snapshot
from tests.dbhelpers import snapshot
from tests.integration.test_imports import FIXTURES

AT = datetime(2025, 11, 21, 12, 0, tzinfo=UTC)


def open_members(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(memberships)
                            .where(memberships.c.left_at.is_(None))).scalar_one())


def test_chatroom_snapshot_derives_leaves(conn: Connection, runtime: Runtime) -> None:
    do_import_file(runtime.uow, FIXTURES / "memotrace__group.csv", now=utcnow())
    before = open_members(conn)
    report = do_import_snapshot(runtime.uow, FIXTURES / "snapshot__chatroom.json", at=AT)
    assert (report.format, report.groups, report.listed) == ("chatroom-json", 1, 4)
    assert report.joined_implied == 1  # wxid_new
    assert report.left_derived == before - 3  # everyone but owner, 张三, 李四
    assert open_members(conn) == 4
    kinds = conn.execute(select(member_events.c.kind).where(
        member_events.c.kind == "left_snapshot")).scalars().all()
    assert len(kinds) == report.left_derived
    same = snapshot(conn)
    again = do_import_snapshot(runtime.uow, FIXTURES / "snapshot__chatroom.json", at=AT)
    assert (again.left_derived, again.joined_implied) == (0, 0) and snapshot(conn) == same
    [health] = group_health(conn, tz=ZoneInfo("Asia/Shanghai"), since=date(2025, 11, 1),
                            until=date(2025, 11, 30), now=AT)
    assert health.leaves_from_snapshots == report.left_derived
    assert health.leaves == report.left_derived and health.kicks == 1


def test_members_csv_and_bad_files(conn: Connection, runtime: Runtime) -> None:
    report = do_import_snapshot(runtime.uow, FIXTURES / "snapshot__members.csv", at=AT)
    assert (report.format, report.listed, report.joined_implied) == ("members-csv", 2, 2)
    before = snapshot(conn)
    with pytest.raises(ImportFailed) as failed:
        do_import_snapshot(runtime.uow, FIXTURES / "snapshot__bad.csv", at=AT)
    assert failed.value.error["line"] == 3 and "chat_id" in failed.value.error["reason"]
    assert snapshot(conn) == before
    with pytest.raises(ImportFailed, match="unknown snapshot format"):
        do_import_snapshot(runtime.uow, FIXTURES / "irc__channel.txt", at=AT)
