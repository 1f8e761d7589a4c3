"""Seeds 001/002, a fission group: a poster goes out and 80 people arrive within minutes.

Newcomers scan the poster or are invited by members who shared it; the bot greets them in
batches (never one message per person, never anyone twice), and inviters earn points. The
new crowd says the same things (已转发朋友圈, 收到, +1) and is new (moderation is stricter
for members of under three days) — none of that is a violation. Among them: a QR-code
poster from a stranger, and three fresh accounts posting the same shop ad.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import points_ledger
from qunyun.analytics.health import group_health
from tests.scenarios.live import TZ, Live, days_ago
from tests.scenarios.telegram_live import TelegramLive

SHOP = "本店新品上架，欢迎光临"  # borderline alone: a person reviews it


def test_eighty_newcomers_in_five_minutes(conn: Connection, live: Live) -> None:
    live.switch_everything_on()
    t0 = days_ago(2) + timedelta(hours=20)
    gid = live.group("fx", "裂变福利群", t0 - timedelta(days=1),
                     welcome="欢迎 @{name}！分享海报邀请 3 位好友即可领取资料包～")
    seeds = [f"seed{i}" for i in range(5)]
    for i, who in enumerate(seeds):
        live.join("fx", who, f"老用户{i}", t0 - timedelta(hours=1, minutes=-i), scene="qr",
                  channel="fission-poster")
    newcomers = []
    for i in range(80):
        who = f"n{i}"
        at = t0 + timedelta(seconds=i * 3.5)  # 80 people in under five minutes
        if i % 3 == 0:
            live.join("fx", who, f"新朋友{i}", at, inviter=seeds[i % 5],
                      inviter_name=f"老用户{i % 5}", channel="member-invite")
        else:
            live.join("fx", who, f"新朋友{i}", at, scene="qr", channel="fission-poster")
        newcomers.append(who)
    chatter = ("已转发朋友圈", "收到", "+1", "已分享，求资料包", "已转发朋友圈")
    for i, who in enumerate(newcomers):
        live.say("fx", who, chatter[i % len(chatter)], t0 + timedelta(minutes=6, seconds=i * 4))
    stranger_at = t0 + timedelta(minutes=15)
    live.join("fx", "qr", "资源分享", stranger_at, scene="qr", channel="fission-poster")
    live.say("fx", "qr", "", stranger_at + timedelta(minutes=1), message_type="qrcode")
    for i in range(3):
        live.join("fx", f"shop{i}", f"小店{i}", stranger_at + timedelta(minutes=2, seconds=i),
                  scene="qr", channel="fission-poster")
        live.say("fx", f"shop{i}", SHOP, stranger_at + timedelta(minutes=3, seconds=i * 20))
    live.catch_up(t0 + timedelta(hours=1))

    greeted = Counter(live.greeted())
    joined = {live.member(w) for w in [*seeds, *newcomers, "qr", "shop0", "shop1", "shop2"]}
    assert set(greeted) == joined and set(greeted.values()) == {1}
    crowd = {live.member(w) for w in newcomers}
    batches = [r for r in live.sent(rule="welcome")
               if crowd & set(r["payload"]["mention_member_ids"])]
    assert len(batches) <= 6  # a minute at a time over under five minutes, not 80 messages
    # the 27 invited newcomers earned their inviters 10 points each
    invites = conn.execute(select(func.count()).select_from(points_ledger).where(
        points_ledger.c.reason == "invite")).scalar_one()
    assert invites == 27
    # nobody who only said the same as everyone else is touched
    decisions = live.decisions()
    flagged = {d["member_id"] for d in decisions}
    shops = {live.member("shop0"), live.member("shop1"), live.member("shop2")}
    if isinstance(live, TelegramLive):
        # a QR code arrives on Telegram as a photo, and the bot does not read pictures
        assert flagged == shops
    else:
        assert flagged == {live.member("qr"), *shops}
        qr = next(d for d in decisions if d["member_id"] == live.member("qr"))
        assert qr["action"] == "warn" and "二维码图片" in qr["reasons"]
    # the shop ad alone is borderline; three fresh accounts posting it is a coordinated ad
    shop = [d for d in decisions if d["member_id"] != live.member("qr")]
    assert [(d["verdict"], d["action"]) for d in shop] == [
        ("review", "review"), ("review", "review"), ("block", "warn")]
    assert any("人发了同样的广告" in r for r in shop[-1]["reasons"])
    [health] = group_health(conn, tz=TZ, group_id=gid, since=t0.date(), until=t0.date(),
                            now=t0 + timedelta(hours=2))
    assert health.joins == 89 and health.speakers >= 80
