"""A small activity history whose cohort, funnel and money figures are worked out by hand
(see tests/integration/test_activities.py for the arithmetic).

Issues in time order: X1 (Sep 1–5), Y1 (Sep 15–19), X2 (Oct 1–5), Z1 (Oct 15–19),
X3 (Nov 2–6). Members a … j; each joins the group of every issue they take part in two days
before it starts. Participation:

    X1: a b c d     Y1: c e f     X2: a b e g     Z1: b h     X3: a e f h i j

In X1's group (the funnel and "after" figures): a speaks during and after X1, x joins through
the poster and speaks but never enrols, d leaves after X1 ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from qunyun.bootstrap import Runtime
from qunyun.services import activities, enrolments
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM
from tests.factories import T0, event, raw_join, raw_leave, raw_message

TZ = ZoneInfo("Asia/Shanghai")
NOW = T0  # 2026-11-20 20:00 Shanghai
ISSUES = {  # code → (series, first day, last day, participants)
    "X1": ("X", "2026-09-01", "2026-09-05", "abcd"),
    "Y1": ("Y", "2026-09-15", "2026-09-19", "cef"),
    "X2": ("X", "2026-10-01", "2026-10-05", "abeg"),
    "Z1": ("Z", "2026-10-15", "2026-10-19", "bh"),
    "X3": ("X", "2026-11-02", "2026-11-06", "aefhij"),
}
CHANNEL = {"a": "poster", "b": "poster", "c": "staff", "d": "staff", "x": "poster"}


def minutes(local: str) -> float:
    """Minutes from T0 to a Shanghai wall time like '2026-09-01 09:00'."""
    t = datetime.fromisoformat(local).replace(tzinfo=TZ).astimezone(UTC)
    return (t - T0).total_seconds() / 60


@dataclass
class Scenario:
    members: dict[str, int]  # letter → member id
    issues: dict[str, int]  # code → activity id
    groups: dict[str, int]  # code → group id


def build(conn: Connection, runtime: Runtime) -> Scenario:
    n = 0

    def ingest(raw: dict[str, object]) -> tuple[int | None, int | None]:
        result = do_ingest_event(conn, event(raw), config=runtime.ingest_config,
                                 received_at=NOW)
        return result.group_id, result.member_id

    member_ids: dict[str, int] = {}
    group_ids: dict[str, int] = {}
    for code, (_, first, _last, people) in ISSUES.items():
        join_day = (datetime.fromisoformat(first) - timedelta(days=2)).date().isoformat()
        for p in people + ("x" if code == "X1" else ""):
            n += 1
            gid, mid = ingest(raw_join(f"j{n}", f"chat-{code}", f"user-{p}", name=p,
                                       minutes=minutes(f"{join_day} 10:{n:02d}"),
                                       scene="qr", channel=CHANNEL.get(p, "")
                                       if code == "X1" else ""))
            assert gid is not None and mid is not None
            group_ids[code], member_ids[p] = gid, mid
    # X1's group: a and x speak during X1, a again after it; d leaves after it
    ingest(raw_message("m1", "chat-X1", "user-a", "打卡第一天", minutes=minutes(
        "2026-09-01 08:00")))
    ingest(raw_message("m2", "chat-X1", "user-x", "请问怎么报名", minutes=minutes(
        "2026-09-02 21:00")))
    ingest(raw_message("m3", "chat-X1", "user-a", "下期什么时候开始？", minutes=minutes(
        "2026-09-10 20:00")))
    ingest(raw_leave("l1", "chat-X1", "user-d", minutes=minutes("2026-09-12 09:00")))
    for s in "XYZ":
        activities.do_create_series(conn, actor=SYSTEM, code=s, name=f"系列{s}")
    issue_ids = {}
    for code, (series, first, last, people) in ISSUES.items():
        issue_ids[code] = activities.do_create_activity(
            conn, actor=SYSTEM, series=series, starts_on=first, ends_on=last,
            group_ids=[group_ids[code]], deposit_fen=9900,
            refund_tiers="5:100,3:50" if code == "X1" else "")
        for p in people:
            enrolments.do_enrol(
                conn, actor=SYSTEM, activity_id=issue_ids[code], member_id=member_ids[p],
                channel=CHANNEL.get(p, "") if code == "X1" else "",
                deposit_fen=0 if (code, p) == ("X1", "d") else None,
                at=datetime.fromisoformat(f"{first} 09:00").replace(tzinfo=TZ)
                - timedelta(days=1))
    return Scenario(members=member_ids, issues=issue_ids, groups=group_ids)
