"""Seed 000 part 1, the home-furnishing launch, with every automation on.

Six owner groups (split at ~100 in the seed; 20 each here) are filled over ten days by
five advisers inviting contacts and a QR poster. Newcomers are greeted, price questions
answered by the FAQ, many say the same things (已转发朋友圈, 收到), the owner announces the
evening's offer, and one advertiser comes in by the poster. Then the launch-day playbook
runs in all six groups beside the daily SOP: three notices on the day, a warm-up an hour
before, the 20:00 start and an interaction after it.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from sqlalchemy import Connection, select

from qunyun import sample_playbooks
from qunyun.adapters.storage.tables import deliveries, points_ledger
from qunyun.analytics.health import group_health
from qunyun.clock import Clock, utcnow
from qunyun.services import tags
from qunyun.services.users import SYSTEM
from tests.scenarios.live import TZ, Live, days_ago, local
from tests.scenarios.telegram_live import TelegramLive

ADVISERS = ("顾问小林", "顾问阿杰", "顾问美美", "顾问大刘", "顾问小周")
TALK = ("已转发朋友圈", "收到👍", "好的", "已报名", "我家是三居室，推荐哪款？", "沙发有现货吗",
        "窗帘可以上门量尺寸吗", "哈哈哈", "支持！")
AD = "招兼职刷单，日结300，加V：abc12345，名额有限"


def test_six_groups_filled_greeted_answered_and_launched(conn: Connection, live: Live) -> None:
    live.switch_everything_on()
    rng = random.Random(0)
    opened = days_ago(10)
    gids = [live.group(f"home{g}", f"业主福利群{g}", opened + timedelta(minutes=g),
                       admins=[f"staff-{k}" for k in range(1, 5)], group_type="temporary",
                       capacity=100) for g in range(1, 7)]
    owners: dict[str, list[str]] = {}
    for day in range(9):
        for g in range(1, 7):
            t = opened + timedelta(days=day, hours=19, minutes=rng.randrange(60))
            for k in range(2 if day < 8 else 4):  # a few arrive together
                who = f"o{g}-{day}-{k}"
                owners.setdefault(f"home{g}", []).append(who)
                if rng.random() < 0.3:
                    live.join(f"home{g}", who, f"业主{who}", t + timedelta(seconds=20 * k),
                              scene="qr", channel="poster-a")
                else:
                    s = rng.randrange(5)
                    live.join(f"home{g}", who, f"业主{who}", t + timedelta(seconds=20 * k),
                              inviter=f"staff-{s}", inviter_name=ADVISERS[s],
                              channel=f"staff-{s}")
            talk_at = t + timedelta(minutes=5)
            for n, who in enumerate(owners[f"home{g}"][-6:]):
                live.say(f"home{g}", who, rng.choice(TALK), talk_at + timedelta(minutes=n))
            if day == 4:
                live.say(f"home{g}", "staff-0", "今晚直播有优惠，有需要的可以私聊我",
                         talk_at + timedelta(minutes=20), name="顾问小林")
                live.say(f"home{g}", owners[f"home{g}"][0], "请问团购价格多少？",
                         talk_at + timedelta(minutes=30))
                live.say(f"home{g}", owners[f"home{g}"][1], "团购价是多少",
                         talk_at + timedelta(minutes=32))  # within the FAQ's cool-down
        if day == 6:
            t = opened + timedelta(days=day, hours=21)
            live.join("home3", "ad", "兼职日结", t, scene="qr", channel="poster-a")
            live.say("home3", "ad", AD, t + timedelta(minutes=2), name="兼职日结")
            live.say("home3", "ad", AD + "!", t + timedelta(minutes=4), name="兼职日结")
            # the platform reports the removal the bot asked for
            live.feed({"type": "leave", "at": t + timedelta(minutes=5), "chat": "home3",
                       "user": "ad", "by": "staff-0"})
    live.catch_up(days_ago(0))

    everyone = {live.member(w) for ws in owners.values() for w in ws}
    # greeted: every owner once (batched when they came together), the advisers never
    greeted = Counter(live.greeted())
    # the account named 兼职日结 reads like an ad: queued for a person, not greeted
    assert set(greeted) == everyone and set(greeted.values()) == {1}
    assert live.member("staff-1") not in greeted
    # the advisers' invitations and the owner's messages are work: no points for staff
    earners = set(conn.execute(select(points_ledger.c.member_id).distinct()).scalars())
    staff = {live.member(f"staff-{k}") for k in range(5)}
    assert earners and not earners & staff
    assert earners <= everyone | {live.member("ad")}
    # answered: the price question once per group, the second asker inside the cool-down not
    answers = live.sent(rule="faq")
    assert len(answers) == 6
    assert all("团购价以今晚 20:00 直播公布为准" in a["payload"]["text"] for a in answers)
    # each answers the question it was asked (Telegram threads it as a reply)
    assert all(a["payload"]["reply_to"] for a in answers)
    if isinstance(live, TelegramLive):
        replies = [c for c in live.tg.called("sendMessage") if "团购价以今晚" in c["text"]]
        assert len(replies) == 6 and all("reply_parameters" in c for c in replies)
    # moderated: the advertiser alone (not the owner's offer, not the shared words)
    decisions = live.decisions()
    assert {d["member_id"] for d in decisions} == {live.member("ad")}
    assert [d["action"] for d in decisions] == ["review", "warn", "remove"]
    assert [r["member_id"] for r in live.sent("remove_member")] == [live.member("ad")]
    tags.do_create_tag(conn, actor=SYSTEM, name="广告号", kind="rule",
                       rule="events.ad_flagged >= 1", clock=Clock(utcnow(), TZ))
    assert {t["name"]: t["members"] for t in tags.list_tags(conn, actor=SYSTEM)} == {"广告号": 1}

    # launch day, three days from now at 20:00, in all six groups beside the daily SOP
    start = local(utcnow() + timedelta(days=3), 20)
    sample_playbooks.install(conn, actor=SYSTEM, group_ids=gids, campaign_start=start,
                                 tz=TZ, activity="业主福利日", deadline="今晚19:30",
                                 daily_group_ids=gids)
    times = [local(start - timedelta(days=d), hh, mm) for d in range(4)
             for hh, mm in ((8, 0), (9, 0), (12, 0), (14, 0), (18, 30), (19, 0), (20, 0),
                            (20, 30), (21, 30))]
    live.run_schedule(t for t in times if utcnow() < t <= start + timedelta(hours=2))
    day = conn.execute(select(deliveries).where(
        deliveries.c.due_at >= local(start), deliveries.c.due_at < local(start, 23, 59))
        .order_by(deliveries.c.due_at)).mappings().all()
    assert sum(d["planned"] for d in day) == 6 * 6  # six launch sends in each group
    assert sum(d["dropped"] for d in day) == 4 * 6  # the daily SOP gave way
    assert sum(d["queued"] for d in day) == 0  # no launch notice pushed to the next morning
    sent = live.sent(rule="delivery:%")
    on_day = [r for r in sent if r["delivered_at"] is not None
              and local(start) <= r["next_attempt_at"] < local(start, 23, 59)]
    assert Counter(r["group_id"] for r in on_day) == {g: 6 for g in gids}
    start_notice = [r for r in on_day if r["payload"]["text"] == "「业主福利日」现在开始！🎉"]
    assert len(start_notice) == 6 and all(r["next_attempt_at"] == start for r in start_notice)

    # health: talk spread over many, the ad counted in group 3
    reports = {r.id: r for r in group_health(conn, tz=TZ, since=opened.date(),
                                             until=(opened + timedelta(days=8)).date(),
                                             now=opened + timedelta(days=9))}
    assert [reports[g].members for g in gids] == [21] * 6  # 20 owners and the group owner
    assert reports[gids[2]].ads == 2 and reports[gids[2]].kicks == 1
    assert all(reports[g].ads == 0 for g in gids if g != gids[2])
    assert all(reports[g].speakers >= 10 for g in gids)
    if isinstance(live, TelegramLive):  # the bot did it all itself, over the Bot API
        tg, ad = live.tg, live.users["ad"]
        assert [c["user_id"] for c in tg.called("banChatMember")] == [ad]
        assert [c["user_id"] for c in tg.called("unbanChatMember")] == [ad]  # a kick
        assert len(tg.called("deleteMessage")) == 2  # both ads, the warned one too
        texts = [c["text"] for c in tg.called("sendMessage")]
        assert sum("团购价以今晚 20:00 直播公布为准" in t for t in texts) == 6
        assert sum("「业主福利日」现在开始！🎉" in t for t in texts) == 6
        assert any(f"tg://user?id={live.users['o1-0-0']}" in t for t in texts)  # a welcome
