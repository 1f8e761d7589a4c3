"""The inbox gathers what needs a person today from every feature, with counts and links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from qunyun.bootstrap import Runtime
from qunyun.clock import FixedTime
from qunyun.services import records, tasks
from qunyun.services.inbox import get_inbox
from qunyun.services.members import member_id_by_number
from qunyun.services.users import SYSTEM
from tests.integration.test_join_codes import join

NOW = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)  # noon in Shanghai


def test_today_is_the_teams_day_and_each_entry_counts_and_links(
        conn: Connection, runtime: Runtime) -> None:
    runtime.now = FixedTime(NOW)
    empty = get_inbox(conn, actor=SYSTEM, clock=runtime.clock())
    assert empty.total == 0 and [e.kind for e in empty.entries] == [
        "tasks", "follow_ups", "reviews", "alerts", "failed_sends"]
    join(conn, runtime, "j1", "g1", "u1")
    member = member_id_by_number(conn, 10001)
    for hours, body in ((11, "今晚回访"), (13, "明天回访")):  # 23:00 today, 01:00 tomorrow
        records.do_add_record(conn, actor=SYSTEM, member_id=member, kind="follow_up",
                              body=body, due_at=NOW + timedelta(hours=hours))
    tasks.create_task(conn, kind="manual", title="手动移出广告号", reason="平台不能自动移出",
                      now=NOW)
    box = get_inbox(conn, actor=SYSTEM, clock=runtime.clock())
    by_kind = {e.kind: e for e in box.entries}
    assert by_kind["follow_ups"].count == 1
    assert [i["text"] for i in by_kind["follow_ups"].items] == ["今晚回访"]
    assert by_kind["tasks"].count == 1 and by_kind["tasks"].link == "/tasks"
    assert box.total == 2 and box.as_dict()["total"] == 2



def test_a_health_alert_is_counted_once_not_also_as_a_task(conn: Connection,
                                                            runtime: Runtime) -> None:
    """An alert is raised as a staff task; the inbox lists it under alerts only."""
    from qunyun.services import health

    runtime.now = FixedTime(NOW)
    join(conn, runtime, "j1", "g1", "u1")
    tasks.create_task(conn, kind=health.TASK_KIND, title="群g1：最近 3 天无人发言",
                      reason="群健康预警", now=NOW)
    box = get_inbox(conn, actor=SYSTEM, clock=runtime.clock())
    by_kind = {e.kind: e.count for e in box.entries}
    assert by_kind["tasks"] == 0 and by_kind["alerts"] == 1 and box.total == 1
