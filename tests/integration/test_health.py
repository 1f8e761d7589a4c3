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
    assert parts == {"activity": 25.0, "speakers": 25.0, "retention": 16.7,
                     "concentration": 25.0}
    assert r.score == 91.7 and r.alerts == []


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
