"""Group health on a hand-computed fixture, on both databases.

T0 = 2026-11-20 12:00 UTC = Friday 20:00 in Shanghai. owner invites u1, u1 invites u2,
u2 invites u3 (all at 19:00); u1 speaks at 20:00, 20:01, 20:02; u2 at 21:00; u3 leaves at
01:00 on the 21st.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection

from qunyun.analytics.health import gini, group_health
from qunyun.bootstrap import Runtime
from qunyun.services.ingest import do_ingest_event
from tests.factories import event, raw_join, raw_leave, raw_message

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def load(conn: Connection, runtime: Runtime) -> None:
    raws = [
        raw_join("j1", "g1", "u1", minutes=-60, inviter="owner"),
        raw_join("j2", "g1", "u2", minutes=-60, inviter="u1"),
        raw_join("j3", "g1", "u3", minutes=-60, inviter="u2"),
        raw_message("m1", "g1", "u1", "a", minutes=0),
        raw_message("m2", "g1", "u1", "b", minutes=1),
        raw_message("m3", "g1", "u1", "c", minutes=2),
        raw_message("m4", "g1", "u2", "d", minutes=60),
        raw_leave("l1", "g1", "u3", minutes=300),
    ]
    for raw in raws:
        do_ingest_event(conn, event(raw), config=runtime.ingest_config)


def test_gini() -> None:
    assert gini([]) == 0 and gini([5, 5, 5]) == 0
    assert gini([3, 1]) == pytest.approx(0.25)
    assert gini([0, 0, 0, 10]) == pytest.approx(0.75)


def test_hand_computed_group(conn: Connection, runtime: Runtime) -> None:
    load(conn, runtime)
    [r] = group_health(conn, tz=SH, since=date(2026, 11, 20), until=date(2026, 11, 21),
                       now=NOW)
    assert (r.members, r.messages, r.speakers, r.joins, r.leaves, r.kicks) == (2, 4, 2, 3, 1, 0)
    assert r.days == ["2026-11-20", "2026-11-21"]
    assert r.messages_per_day == [4, 0] and r.speakers_per_day == [2, 0]
    assert r.joins_per_day == [3, 0] and r.leaves_per_day == [0, 1]
    assert r.speaker_ratio == 1.0 and r.never_spoke == 0 and r.gone_quiet == 0
    assert r.churn_basis == "observed"
    assert r.heatmap[4][20] == 3 and r.heatmap[4][21] == 1  # Friday 20:00 and 21:00
    assert sum(map(sum, r.heatmap)) == 4 and r.peak_hours[:2] == [20, 21]
    assert r.gini == pytest.approx(0.25) and r.top10_share == 0.75
    assert [s["messages"] for s in r.top_speakers] == [3, 1]
    assert r.invited == 3 and r.invite_depth == 3
    assert r.hours_to_first_message == 1.5  # u1 after 1 h, u2 after 2 h
    parts = {p.key: p.points for p in r.score_parts}
    # four messages from two people are too little talk to call it even or not
    assert parts == {"activity": 25.0, "speakers": 25.0, "retention": 16.7,
                     "concentration": 0.0}
    assert r.score == 66.7 and r.alerts == []


def test_window_and_lurkers(conn: Connection, runtime: Runtime) -> None:
    load(conn, runtime)
    [later] = group_health(conn, tz=SH, since=date(2026, 11, 21), until=date(2026, 12, 20),
                           now=datetime(2026, 12, 20, 12, 0, tzinfo=UTC))
    assert later.messages == 0 and later.joins == 0 and later.leaves == 1
    assert later.gone_quiet == 2  # silent for 14+ days before the window's end
    assert later.churn_basis == "observed" and later.alerts == ["最近 3 天无人发言"]
    with pytest.raises(ValueError, match="after"):
        group_health(conn, tz=SH, since=date(2026, 11, 22), until=date(2026, 11, 21))
    assert group_health(conn, tz=SH, group_id=999_999) == []


def test_a_silent_group_scores_no_better_than_one_where_a_few_spoke(
        conn: Connection, runtime: Runtime) -> None:
    """A group with 0 messages scored 50 (an even Gini of nobody talking earned 25 points)
    and one with 6 messages scored 6."""
    for chat in ("quiet", "some"):
        for i in range(40):
            do_ingest_event(conn, event(raw_join(f"{chat}-j{i}", chat, f"{chat}-u{i}",
                                                 minutes=-120)), config=runtime.ingest_config)
    for i in range(6):
        do_ingest_event(conn, event(raw_message(f"some-m{i}", "some", f"some-u{i % 2}", "在吗",
                                                minutes=i)), config=runtime.ingest_config)
    quiet, some = group_health(conn, tz=SH, since=date(2026, 11, 20), until=date(2026, 11, 21),
                               now=NOW)
    assert quiet.messages == 0 and some.messages == 6
    assert quiet.score < some.score
    parts = {p.key: p for p in quiet.score_parts}
    assert parts["concentration"].points == 0 and "发言太少" in parts["concentration"].note
    assert quiet.score == sum(p.points for p in quiet.score_parts)
    empty = group_health(conn, tz=SH, group_id=quiet.id, since=date(2026, 12, 1),
                         until=date(2026, 12, 2), now=datetime(2026, 12, 2, 12, tzinfo=UTC))
    assert empty[0].members == 40


def test_ad_rate_and_alerts_become_one_task_each(conn: Connection, runtime: Runtime) -> None:
    from sqlalchemy import func, select

    from qunyun.adapters.storage.tables import staff_tasks
    from qunyun.services import automation, health
    from qunyun.services.users import SYSTEM

    automation.do_update_settings(conn, actor=SYSTEM, section="moderation",
                                  values={"enabled": True})
    for i in range(60):
        ev = event(raw_message(f"t{i}", "ads", f"u{i % 20}", f"今天第{i}次聊天", minutes=i))
        do_ingest_event(conn, ev, config=runtime.ingest_config, received_at=ev.occurred_at)
    for i in range(4):
        ev = event(raw_message(f"ad{i}", "ads", f"spam{i}",
                               f"兼职刷单日结300，加微信 abc_1234{i} 详聊", minutes=70 + i))
        do_ingest_event(conn, ev, config=runtime.ingest_config, received_at=ev.occurred_at)
    [r] = group_health(conn, tz=SH, since=date(2026, 11, 20), until=date(2026, 11, 21), now=NOW)
    assert r.ads == 4 and r.ad_rate == round(4 / 64, 4)
    assert any(a.startswith("广告偏多：4 条") for a in r.alerts)
    raised = health.do_raise_alerts(conn, tz=SH, now=NOW)
    kinds = sorted(a["kind"] for a in raised)
    assert kinds == ["ads"]
    # checked again an hour later: the same alerts, no new tasks
    assert health.do_raise_alerts(conn, tz=SH, now=NOW) == []
    tasks = conn.execute(select(func.count()).select_from(staff_tasks).where(
        staff_tasks.c.kind == "health_alert")).scalar_one()
    assert tasks == len(raised)
    listed = health.list_alerts(conn, actor=SYSTEM)
    assert {a["task_status"] for a in listed} == {"open"}
