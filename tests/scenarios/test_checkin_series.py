"""Seed 000 part 2, the online-English check-in series, with every automation on.

Thirty students join issue X1's group by the official account's QR code, are greeted, and
for seven mornings post their check-in, mostly in the same words (今天的内容打卡了) within a
quarter of an hour, then say 好的 / 收到 / +1. The teacher (the group's owner) posts the
day's lesson and, one evening, a live-stream offer. An advertiser slips in. Afterwards the
issue is settled by check-ins (7 → 100 %, 5 → 50 %) and some students renew into X2.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import checkins
from qunyun.analytics.health import group_health
from qunyun.services import activities, enrolments, settlements
from qunyun.services.reports import get_cohort_report
from qunyun.services.users import SYSTEM
from tests.scenarios.live import TZ, Live, days_ago

SHARED = "今天的内容打卡了"
AD = "招兼职刷单，日结300，加V：abc12345"


def days_checked_in(i: int) -> list[int]:
    """Students 0–9 every day, 10–19 miss one day, 20–24 miss two, 25–29 come three days."""
    if i < 10:
        return list(range(7))
    if i < 20:
        return [d for d in range(7) if d != i % 7]
    if i < 25:
        return [d for d in range(7) if d not in (i % 7, (i + 3) % 7)]
    return [0, 2, 4]


def test_a_week_of_checkins_in_shared_words(conn: Connection, live: Live) -> None:
    live.switch_everything_on()
    start = days_ago(12)  # X1's first day, local midnight
    gid = live.group("x1", "X1 21天英语打卡群", start - timedelta(days=3), owner="teacher",
                     owner_name="Amy老师", welcome="欢迎 @{name} 加入{group}，每天早上打卡哦",
                     series="X")
    for i in range(30):
        live.join("x1", f"s{i}", f"学员{i:02d}", start - timedelta(days=2, minutes=-i * 0.5),
                  scene="qr", channel="公众号")
    x1 = activities.do_create_series(conn, actor=SYSTEM, code="X", name="21天英语打卡")
    assert x1
    issue = activities.do_create_activity(
        conn, actor=SYSTEM, series="X", starts_on=start.date(),
        ends_on=(start + timedelta(days=6)).date(), group_ids=[gid], deposit_fen=9900,
        refund_tiers="7:100,5:50", capacity=100)
    enrolments.do_enrol_many(conn, actor=SYSTEM, activity_id=issue, source="form",
                             member_ids=[live.member(f"s{i}") for i in range(30)],
                             at=start - timedelta(days=1))

    for d in range(7):
        morning = start + timedelta(days=d, hours=7)
        lesson = f"Day{d + 1} 今日内容：跟读第{d + 1}课，打卡截止今晚22点"
        live.say("x1", "teacher", lesson, morning, name="Amy老师")
        for i in range(30):
            if d not in days_checked_in(i):
                continue
            text = SHARED if i % 5 else ("打卡✅" if i % 2 else f"Day{d + 1} 打卡")
            live.say("x1", f"s{i}", text, morning + timedelta(minutes=1 + i * 0.4))
        for i, reply in enumerate(("好的", "收到", "+1", "谢谢老师", "好的", "收到", "+1")):
            live.say("x1", f"s{(i * 3 + d) % 30}", reply, morning + timedelta(minutes=15 + i))
        if d == 2:
            evening = start + timedelta(days=d, hours=19)
            live.say("x1", "teacher", "今晚直播有优惠，有需要的可以私聊我", evening, name="Amy老师")
            live.join("x1", "ad", "兼职日结", evening + timedelta(minutes=5), scene="qr",
                      channel="公众号")
            live.say("x1", "ad", AD, evening + timedelta(minutes=7), name="兼职日结")
            live.say("x1", "ad", AD + "!", evening + timedelta(minutes=9), name="兼职日结")
    live.catch_up(start + timedelta(days=7))

    # greeted: every student, each once, in batches of joins a minute apart — not the
    # account named 兼职日结 (a name like an ad: queued for a person on joining)
    greeted = Counter(live.greeted())
    assert set(greeted) == {live.member(f"s{i}") for i in range(30)}
    assert set(greeted.values()) == {1}
    assert len(live.sent(rule="welcome")) < 31
    # every check-in counted and answered, the streak right
    expected = sum(len(days_checked_in(i)) for i in range(30))
    assert conn.execute(select(func.count()).select_from(checkins)).scalar_one() == expected
    replies = live.sent(rule="checkin")
    assert len(replies) == expected
    last = {r["payload"]["mention_member_ids"][0]: r["payload"]["text"] for r in replies}
    assert last[live.member("s0")].endswith("已连续 7 天，累计 7 天")
    assert last[live.member("s10")].endswith("已连续 3 天，累计 6 天")  # missed day 4
    assert live.member("teacher") not in last  # the lesson notice says 打卡 but is no check-in
    # moderation touched the advertiser only: warned in plain words, then removed
    decisions = live.decisions()
    assert {d["member_id"] for d in decisions} == {live.member("ad")}
    assert [(d["action"], d["status"]) for d in decisions] == [
        ("review", "pending"), ("warn", "logged"), ("remove", "logged")]
    assert decisions[0]["text"] == "兼职日结"  # the name, waiting for a person
    warning = next(r for r in live.sent(rule="moderation"))["payload"]["text"]
    assert "发广告" in warning and "模型" not in warning and "从严" not in warning
    assert [r["member_id"] for r in live.sent("remove_member")] == [live.member("ad")]

    # settlement by check-ins: 10 full refunds, 15 half, 5 none
    plan = settlements.do_settle(conn, actor=SYSTEM, activity_id=issue)
    percents = Counter(r["percent"] for r in plan["rows"])
    assert percents == {100.0: 10, 50.0: 15, 0.0: 5}
    assert plan["refunds"] == round(10 * 99 + 15 * 49.5, 2)

    # twelve students renew into X2
    x2_start = start + timedelta(days=9)
    gid2 = live.group("x2", "X2 21天英语打卡群", x2_start - timedelta(days=2), owner="teacher",
                      owner_name="Amy老师", series="X")
    for i in range(12):
        live.join("x2", f"s{i}", f"学员{i:02d}", x2_start - timedelta(days=1, minutes=-i),
                  scene="qr", channel="老用户召回")
    x2 = activities.do_create_activity(
        conn, actor=SYSTEM, series="X", starts_on=x2_start.date(),
        ends_on=(x2_start + timedelta(days=6)).date(), group_ids=[gid2], deposit_fen=9900)
    enrolments.do_enrol_many(conn, actor=SYSTEM, activity_id=x2,
                             member_ids=[live.member(f"s{i}") for i in range(12)],
                             at=x2_start - timedelta(days=1))
    report = get_cohort_report(conn, actor=SYSTEM, tz=TZ, series="X", with_activity=False)
    first = report["issues"][0]
    assert (first["code"], first["participants"], first["renewal_next"]) == ("X1", 30, 0.4)

    # the group's health over the issue: 31 people, the ad counted, nothing to alert
    [health] = group_health(conn, tz=TZ, group_id=gid, since=start.date(),
                            until=(start + timedelta(days=6)).date(),
                            now=start + timedelta(days=7))
    assert health.messages == 7 + expected + 7 * 7 + 1 + 2
    assert health.ads == 2 and health.alerts == []
    assert health.kicks == 0  # the sandbox removal is a send; the platform reports the leave
