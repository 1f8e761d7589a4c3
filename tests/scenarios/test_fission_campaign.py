"""Seeds 001/002, a referral campaign run end to end with every automation on: three
members take part with their own codes, fourteen friends arrive through them within
minutes saying the same words, one leaves before the two-hour window passes, one comes back
through another's code, and the small stock runs out.

Where the features meet: the newcomers are greeted in batches and never moderated for the
shared words; the inviters hear their progress only when an invite is valid (after the
window), are told when a friend leaving takes one back and when the stock is gone; the
report's numbers are the hand-counted ones.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection

from qunyun.domain.fission import Stage
from qunyun.services import fission
from qunyun.services.users import SYSTEM
from tests.scenarios.live import TZ, Live, days_ago

SAID = "已转发朋友圈"


def test_a_referral_campaign_with_everything_on(conn: Connection, live: Live) -> None:
    live.switch_everything_on()
    t0 = days_ago(1) + timedelta(hours=20)
    gid = live.group("fx", "福利资料群", t0 - timedelta(days=1),
                     welcome="欢迎 @{name}！邀请 3 位好友进群即可领取资料包～")
    seeds = {f"seed{i}": f"老用户{i}" for i in range(3)}
    for i, (who, name) in enumerate(seeds.items()):
        live.join("fx", who, name, t0 - timedelta(hours=1, minutes=-i), scene="qr",
                  channel="poster")
    account = getattr(live, "bot_id", "demo")  # the Telegram bot, or the sandbox
    campaign = fission.do_create_campaign(
        conn, actor=SYSTEM, name="邀 3 人领资料包", group_ids=[gid], account=account,
        stages=[Stage(3, "资料包", 2), Stage(6, "训练营名额", 1)], valid_hours=2,
        now=t0 - timedelta(minutes=30))
    codes = {who: fission.do_join(live.runtime.uow, actor=SYSTEM,
                                  adapter_for=live.runtime.adapter,
                                  campaign_id=campaign["id"], member_id=live.member(who),
                                  now=t0 - timedelta(minutes=20))["code"]
             for who in seeds}

    def arrive(i: int, inviter: str) -> None:
        at = t0 + timedelta(seconds=i * 15)
        live.join("fx", f"n{i}", f"新朋友{i}", at, scene="qr", channel=codes[inviter])
        live.say("fx", f"n{i}", SAID, at + timedelta(seconds=5))

    for i in range(6):
        arrive(i, "seed0")
    for i in (6, 7, 8):
        arrive(i, "seed1")
    for i in (9, 10, 11):
        arrive(i, "seed2")
    arrive(13, "seed1")
    # n11 leaves within the window: taken back, seed2 is told at once
    live.feed({"type": "leave", "at": t0 + timedelta(minutes=20), "chat": "fx",
               "user": "n11"})
    # n3 leaves and comes back through seed2's code: a rejoin is nobody's invite
    live.feed({"type": "leave", "at": t0 + timedelta(minutes=21), "chat": "fx", "user": "n3"})
    live.join("fx", "n3", "新朋友3", t0 + timedelta(minutes=22), scene="qr",
              channel=codes["seed2"])
    arrive(14, "seed2")
    live.catch_up(t0 + timedelta(minutes=30))
    told = [r["payload"]["text"] for r in live.sent(rule="fission")]
    assert told == ["@老用户2 新朋友11 退群了，这次邀请不计，当前有效邀请 0 人",
                    "@老用户0 新朋友3 退群了，这次邀请不计，当前有效邀请 0 人"]
    # greeted in batches, each once; the shared words moderated for nobody
    newcomers = {live.member(f"n{i}") for i in (*range(12), 13, 14)}
    rows = [r for r in live.sent(rule="welcome")
            if set(r["payload"]["mention_member_ids"]) & newcomers]
    greeted = [m for r in rows for m in r["payload"]["mention_member_ids"]]
    assert set(greeted) == newcomers and len(greeted) == len(newcomers)
    assert len(rows) < len(newcomers)  # batched
    assert live.decisions() == []

    # the window passes: the worker settles it (n3 left within it, so theirs is gone too)
    later = t0 + timedelta(hours=2, minutes=10)
    fission.validate_due(conn, now=later, capabilities=live.runtime.capabilities)
    live.catch_up(later + timedelta(minutes=1))
    told = [r["payload"]["text"] for r in live.sent(rule="fission")][2:]
    by = {name: [t for t in told if t.startswith(f"@{name} ")] for name in seeds.values()}
    assert [t.split(" ", 1)[1][:12] for t in by["老用户0"]] == [
        "你邀请的 新朋友0 已入", "你邀请的 新朋友1 已入", "恭喜完成「资料包」任务！",
        "你邀请的 新朋友4 已入", "你邀请的 新朋友5 已入"]
    assert by["老用户1"][-2:] == [
        "@老用户1 恭喜完成「资料包」任务！已有效邀请 3 人，工作人员会私聊你领取奖励",
        "@老用户1 你邀请的 新朋友13 已入群，已有效邀请 4 人，再邀请 2 人可得「训练营名额」"]
    assert by["老用户2"][-1] == "@老用户2 已有效邀请 3 人，「资料包」已经发完了，感谢参与"
    report = fission.report(conn, actor=SYSTEM, campaign_id=campaign["id"], tz=TZ)
    # seed0: n0–n5 less n3 (left within the window) = 5; seed1: 4; seed2: n9, n10, n14 = 3
    assert (report["participants"], report["invites_sent"], report["valid_invites"],
            report["revoked"]) == (3, 14, 12, 2)
    assert [(t["name"], t["valid_invites"]) for t in report["top_inviters"]] == [
        ("老用户0", 5), ("老用户1", 4), ("老用户2", 3)]
    assert [(s["taken"], s["left"]) for s in report["stages"]] == [(2, 0), (0, 1)]
    assert report["rewards"] == {"reserved": 2, "sold_out": 1}
    assert report["k_factor"]["k"] == round(14 / 3 * (12 / 14), 4)
