"""Seeds 001/002, a referral campaign run end to end with every automation on: three
members take part with their own codes, fourteen friends arrive through them within
minutes saying the same words, one leaves before the two-hour window passes, one comes back
through another's code, and the small stock runs out.

Where the features meet: the newcomers are greeted in batches and never moderated for the
shared words; the inviters hear their progress only when an invite is valid (after the
window), are told when a friend leaving takes one back and when the stock is gone; the
report's numbers are the hand-counted ones. The worker's follow-ups run as they would:
each newcomer through a code is welcomed within seconds with their own link and poster
(and so takes part); after the window, the two completers get their claim link and the
completers' group invitation privately (they had started the team's bot), and the tag.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import join_codes
from qunyun.domain.fission import Stage
from qunyun.services import fission
from qunyun.services.errors import Conflict
from qunyun.services.tags import member_tag_list
from qunyun.services.users import SYSTEM
from tests.scenarios.live import TZ, Live, days_ago

SAID = "已转发朋友圈"
SITE = "https://qunyun.example"


def follow_up(live: Live, at: datetime) -> None:
    """The worker's fission follow-ups at ``at``, and what they queued goes out."""
    fission.follow_up(live.runtime.uow, adapter_for=live.runtime.adapter,
                      capabilities=live.runtime.capabilities, now=at, public_url=SITE)
    live.catch_up(at)


def test_a_referral_campaign_with_everything_on(conn: Connection, live: Live) -> None:
    live.switch_everything_on()
    t0 = days_ago(1) + timedelta(hours=20)
    gid = live.group("fx", "福利资料群", t0 - timedelta(days=1),
                     welcome="欢迎 @{name}！邀请 3 位好友进群即可领取资料包～")
    done_gid = live.group("fxdone", "资料包完成群", t0 - timedelta(days=1))
    seeds = {f"seed{i}": f"老用户{i}" for i in range(3)}
    for i, (who, name) in enumerate(seeds.items()):
        live.join("fx", who, name, t0 - timedelta(hours=1, minutes=-i), scene="qr",
                  channel="poster")
        live.answer(who, "/start", t0 - timedelta(minutes=50 - i))  # they started the bot
    account = getattr(live, "bot_id", "demo")  # the Telegram bot, or the sandbox
    campaign = fission.do_create_campaign(
        conn, actor=SYSTEM, name="邀 3 人领资料包", group_ids=[gid], account=account,
        stages=[Stage(3, "资料包", 2, 500), Stage(6, "训练营名额", 1, 9900)], valid_hours=2,
        completers_group_id=done_gid, now=t0 - timedelta(minutes=30))
    codes = {who: fission.do_join(live.runtime.uow, actor=SYSTEM,
                                  adapter_for=live.runtime.adapter,
                                  campaign_id=campaign["id"], member_id=live.member(who),
                                  now=t0 - timedelta(minutes=20))["code"]
             for who in seeds}

    def arrive(i: int, inviter: str) -> None:
        at = t0 + timedelta(seconds=i * 15)
        live.join("fx", f"n{i}", f"新朋友{i}", at, scene="qr", channel=codes[inviter])
        live.say("fx", f"n{i}", SAID, at + timedelta(seconds=5))
        follow_up(live, at + timedelta(seconds=10))

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
    # each newcomer through a code was welcomed once, with their own link and poster
    welcomes = [r for r in live.sent(rule="fission") if r["payload"]["text"].startswith("@新")]
    invitees = [live.member(f"n{i}") for i in (*range(12), 13, 14)]
    assert [r["payload"]["mention_member_ids"] for r in welcomes] == [[m] for m in invitees]
    for row, member_id in zip(welcomes, invitees, strict=True):
        mine = fission._participant(conn, campaign["id"], member_id)
        assert mine is not None and mine["link"] in row["payload"]["text"]
        assert "「邀 3 人领资料包」：邀请 3 位好友入群即可得「资料包」" in row["payload"]["text"]
        pictures = [a["url"] for a in row["payload"]["attachments"]]
        can_send_pictures = "send_image" in live.runtime.capabilities(campaign["platform"])
        assert pictures == ([f"{SITE}/fission/p/{mine['token']}.png"]
                            if can_send_pictures else [])
    told = [r["payload"]["text"] for r in live.sent(rule="fission")
            if not r["payload"]["text"].startswith("@新")]
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
    told = [r["payload"]["text"] for r in live.sent(rule="fission")
            if not r["payload"]["text"].startswith("@新")][2:]
    by = {name: [t for t in told if t.startswith(f"@{name} ")] for name in seeds.values()}
    # settled together: each inviter hears once (the stage reached, then where they are)
    assert by["老用户0"] == [
        "@老用户0 恭喜完成「资料包」任务！已有效邀请 3 人，领奖链接已私信发给你",
        "@老用户0 你邀请的 新朋友0、新朋友1、新朋友2、新朋友4、新朋友5 已入群，已有效邀请 5 人，"
        "再邀请 1 人可得「训练营名额」"]
    assert by["老用户1"] == [
        "@老用户1 恭喜完成「资料包」任务！已有效邀请 3 人，领奖链接已私信发给你",
        "@老用户1 你邀请的 新朋友6、新朋友7、新朋友8、新朋友13 已入群，已有效邀请 4 人，"
        "再邀请 2 人可得「训练营名额」"]
    assert by["老用户2"][-1] == "@老用户2 已有效邀请 3 人，「资料包」已经发完了，感谢参与"
    report = fission.report(conn, actor=SYSTEM, campaign_id=campaign["id"], tz=TZ)
    # seed0: n0–n5 less n3 (left within the window) = 5; seed1: 4; seed2: n9, n10, n14 = 3
    # the fourteen newcomers took part too (welcomed with their own code within seconds)
    assert (report["participants"], report["invites_sent"], report["valid_invites"],
            report["revoked"]) == (17, 14, 12, 2)
    assert [(t["name"], t["valid_invites"]) for t in report["top_inviters"]] == [
        ("老用户0", 5), ("老用户1", 4), ("老用户2", 3)]
    assert [(s["taken"], s["left"]) for s in report["stages"]] == [(2, 0), (0, 1)]
    assert report["rewards"] == {"reserved": 2, "sold_out": 1, "shipped": 0, "cancelled": 0,
                                 "claimed": 0}
    assert report["cost"] == {"total_cents": 1000, "per_valid_newcomer_cents": round(1000 / 12)}
    assert report["k_factor"]["k"] == round(14 / 17 * (12 / 14), 4)

    # the worker's next round: the two completers hear privately (never in the group) where
    # to claim and where their group is, and are tagged; the sold-out one gets nothing
    follow_up(live, later + timedelta(minutes=2))
    private = live.sent("send_private", rule="fission")
    completers = [live.member("seed0"), live.member("seed1")]
    assert [r["member_id"] for r in private] == [completers[0]] * 2 + [completers[1]] * 2
    claim, invitation = private[0]["payload"]["text"], private[1]["payload"]["text"]
    assert claim.startswith("老用户0，你在「邀 3 人领资料包」中获得了「资料包」")
    assert f"{SITE}/claim/" in claim
    assert invitation.startswith(
        "老用户0，恭喜完成「邀 3 人领资料包」！欢迎加入完成者专属群「资料包完成群」：")
    code = conn.execute(select(join_codes.c.qr_code).where(
        join_codes.c.channel == f"fx{campaign['id']}done")).scalar_one()
    assert invitation.endswith(code)
    for member_id in completers:
        assert ("裂变完成", "邀 3 人领资料包") in [
            (t["tag_group"], t["name"]) for t in member_tag_list(conn, member_id)]
    assert not [r for r in live.sent(rule="fission") if f"{SITE}/claim/" in r["payload"]["text"]]
    # the first completer fills in the form once; the link then stops working
    token = claim.rsplit("/", 1)[1]
    fission.do_claim(conn, token=token, name="王小明", phone="13800138000",
                     address="上海市徐汇区某路 1 号", now=later + timedelta(minutes=5))
    with pytest.raises(Conflict):
        fission.claim_form(conn, token=token)
    rewards = fission.list_rewards(conn, actor=SYSTEM, campaign_id=campaign["id"])
    assert [(r["number"], r["claim"].get("name")) for r in rewards if r["status"] == "reserved"
            ] == [(n, w) for n, w in zip([r["number"] for r in rewards
                                          if r["status"] == "reserved"], ["王小明", None],
                                         strict=True)]
    again = fission.report(conn, actor=SYSTEM, campaign_id=campaign["id"], tz=TZ)
    assert again["rewards"]["claimed"] == 1
