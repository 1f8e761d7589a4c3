"""The demo goes through the real event path and loads once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select

from qunyun import sample_playbooks
from qunyun.adapters.storage.tables import (
    checkins,
    groups,
    inbound_events,
    member_events,
    members,
    messages,
    outbox,
)
from qunyun.bootstrap import Runtime
from qunyun.demo import ensure_demo_admin, load_demo
from qunyun.services import (
    activities,
    blacklist,
    broadcasts,
    fission,
    fission_shots,
    leads,
    playbooks,
    segments,
    tags,
    users,
)
from qunyun.services.reports import get_cohort_report, get_funnel
from qunyun.services.users import SYSTEM


@pytest.mark.slow  # 36–77 s: the whole demo, twice (`make test-fast` leaves it out)
def test_demo_loads_seed_shape_once(conn: Connection, runtime: Runtime, tmp_path: Path) -> None:
    first = load_demo(runtime, group_count=2)
    assert first["events"] > 1000 and first["already_loaded"] == 0
    names = conn.execute(select(groups.c.name).where(groups.c.external_id.like("demo-g%"))
                         .order_by(groups.c.name)).scalars().all()
    assert names == ["业主福利群1", "业主福利群2"]
    numbers = conn.execute(select(func.min(members.c.number), func.count())).one()
    assert numbers[0] == 10001 and numbers[1] > 150
    kinds = dict(conn.execute(select(member_events.c.kind, func.count())
                              .group_by(member_events.c.kind)).all())
    assert kinds["joined"] > 150 and kinds["removed"] == 2 and kinds["left"] > 0
    # a few people write most messages (heavy tail)
    per_member = sorted(conn.execute(select(func.count()).select_from(messages)
                                     .group_by(messages.c.member_id)).scalars(), reverse=True)
    top_share = sum(per_member[: max(1, len(per_member) // 10)]) / sum(per_member)
    assert top_share > 0.3
    # the history is recorded and counted, never answered at start-up: no greeting, check-in
    # reply or warning for events of days ago waits in the outbox
    # (the last few minutes of the simulated history are live: those may be answered)
    answered = conn.execute(select(inbound_events.c.occurred_at, inbound_events.c.received_at)
                            .join(outbox, outbox.c.inbound_event_id == inbound_events.c.id)
                            .where(outbox.c.rule.in_(("welcome", "checkin", "faq",
                                                      "moderation")))).all()
    assert all(got - at <= timedelta(minutes=10) for at, got in answered)
    assert conn.execute(select(func.sum(inbound_events.c.stale_actions))).scalar_one() > 10
    assert conn.execute(select(func.count()).select_from(checkins)).scalar_one() > 20
    # the CRM side: rule tags applied, a spreadsheet joined, segments and a lead list that
    # hold people, the advertiser blacklisted
    tag_counts = {t["name"]: t["members"] for t in tags.list_tags(conn, actor=SYSTEM)}
    assert tag_counts["问过价格"] > 5 and tag_counts["海报进群"] > 20
    assert tag_counts["高意向"] == 3
    clock = runtime.clock()
    for seg in segments.list_segments(conn, actor=SYSTEM):
        assert segments.count_expression(conn, actor=SYSTEM, expression=seg["expression"],
                                         clock=clock) > 0, seg["name"]
    (lead_list,) = leads.list_lead_lists(conn, actor=SYSTEM)
    rows, _ = leads.score(conn, actor=SYSTEM, expression=lead_list["expression"],
                          formula=lead_list["formula"], clock=clock, limit=5)
    assert rows and rows[0].score > rows[-1].score
    assert len(blacklist.list_blacklist(conn, actor=SYSTEM)) == 1
    books = {p["name"]: p for p in playbooks.list_playbooks(conn, actor=SYSTEM)}
    assert books[sample_playbooks.LAUNCH]["step_count"] == 8
    assert books[sample_playbooks.DAILY]["group_count"] == 2
    assert broadcasts.list_broadcasts(conn, actor=SYSTEM)[0]["status"] == "scheduled"
    # seed 000 part 2: series X in three issues beside Y and Z, shaped like the seed
    report = get_cohort_report(conn, actor=SYSTEM, tz=runtime.settings.tz, series="X")
    x1, _x2, x3 = report["issues"]
    assert (x1["code"], x1["participants"], x1["renewal_next"]) == ("X1", 177, 0.339)
    assert (x3["code"], x3["new"], x3["returning"]) == ("X3", 160, 170)
    assert 0.4 < x1["after"]["active_rate"] < 0.55 and x1["after"]["churn_observed_rate"] < 0.15
    assert set(x3["source"]) == {"new", "X1", "X2", "Y1", "Y2", "Z1"}
    # people talk during an issue: the funnel's 发言 step is not empty (it was 0 for all)
    steps = {st["step"]: st["count"] for st in get_funnel(
        conn, actor=SYSTEM, tz=runtime.settings.tz, activity="X1")["steps"]}
    assert steps["joined"] == 177 and 60 < steps["spoke"] < 150
    assert {s["code"] for s in activities.list_series(conn, actor=SYSTEM)} == {"X", "Y", "Z"}
    # seed 001's referral campaign, a screenshot waiting, and its plan rehearsed
    main, rehearsal = sorted(fission.list_campaigns(conn, actor=SYSTEM), key=lambda c: c["id"])
    assert (main["name"], main["participants"], rehearsal["name"]) == (
        "邻居互邀领福利", 12, "彩排·邻居互邀领福利")
    assert len(fission_shots.list_shots(conn, actor=SYSTEM, campaign_id=main["id"])) == 1
    rehearsed = fission.report(conn, actor=SYSTEM, campaign_id=rehearsal["id"],
                               tz=runtime.settings.tz)
    assert rehearsed["participants"] > 30 and rehearsed["valid_invites"] > 10
    assert load_demo(runtime, group_count=2) == {"events": 0, "already_loaded": 1}
    login = ensure_demo_admin(runtime, tmp_path / "pw", "demo-password-1")
    assert login == ("admin", "demo-password-1")
    assert ensure_demo_admin(runtime, tmp_path / "pw", "other") == ("admin", "demo-password-1")
    assert users.authenticate(conn, username="admin", password="demo-password-1") is not None
