"""Fission campaigns through the event path on the sandbox: personal codes, crediting joins
(the first inviter only; never a rejoin or one's own code), the validity window and its
take-back, stages with stock that runs out, and the report's numbers on a hand-computed
case."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, func, select

from qunyun.adapters.platforms.sandbox import SandboxAdapter
from qunyun.adapters.platforms.wecom.adapter import CAPABILITIES as WECOM_CAPABILITIES
from qunyun.adapters.storage.tables import fission_invites, join_codes, outbox, staff_tasks
from qunyun.bootstrap import Runtime, build_runtime
from qunyun.config import Settings
from qunyun.domain.actions import Capability
from qunyun.domain.fission import (
    FissionError,
    Stage,
    check_stages,
    check_texts,
    code_parts,
    completing,
    fill,
    k_factor,
    parse_stage,
)
from qunyun.services import (
    activities,
    blacklist,
    conversions,
    enrolments,
    fission,
    fission_rehearsal,
)
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.ingest import IngestResult, do_ingest_event
from qunyun.services.members import member_id_by_number
from qunyun.services.users import SYSTEM
from tests.factories import T0, event, raw_join, raw_leave, raw_message

TZ = ZoneInfo("Asia/Shanghai")


class Feed:
    def __init__(self, conn: Connection, runtime: Runtime) -> None:
        self.conn, self.runtime, self.n = conn, runtime, 0
        self.settle = True

    def __call__(self, raw: dict) -> IngestResult:  # type: ignore[type-arg]
        """Ingest one event, then settle what is due as the worker does between events
        (``settle = False``: leave that to the test)."""
        self.n += 1
        ev = event(raw)
        result = do_ingest_event(self.conn, ev, config=self.runtime.ingest_config,
                                 received_at=ev.occurred_at)
        if self.settle:
            fission.validate_due(self.conn, now=ev.occurred_at,
                                 capabilities=self.runtime.capabilities)
        return result

    def join(self, chat: str, user: str, minutes: float, channel: str = "") -> IngestResult:
        return self(raw_join(f"j{self.n}", chat, user, name=f"用户{user}", minutes=minutes,
                             scene="qr" if channel else "invite", channel=channel))

    def leave(self, chat: str, user: str, minutes: float) -> IngestResult:
        return self(raw_leave(f"l{self.n}", chat, user, minutes=minutes))



def one_participant(feed: Feed, *, name: str, valid_hours: int = 0
                    ) -> tuple[dict[str, Any], str]:
    """Group g1 with member a (10001) taking part in a campaign of one stage (5 invites):
    the campaign and a's code."""
    gid = feed.join("g1", "a", 0).group_id
    assert gid is not None
    campaign = fission.do_create_campaign(
        feed.conn, actor=SYSTEM, name=name, group_ids=[gid], account="demo",
        stages=[Stage(5, "资料包", 10)], valid_hours=valid_hours, now=T0)
    code = fission.do_join(feed.runtime.uow, actor=SYSTEM, adapter_for=feed.runtime.adapter,
                           campaign_id=campaign["id"],
                           member_id=member_id_by_number(feed.conn, 10001), now=T0)["code"]
    return campaign, str(code)


def said(conn: Connection) -> list[str]:
    return [r["text"] for r in conn.execute(select(outbox.c.payload).where(
        outbox.c.rule == "fission").order_by(outbox.c.id)).scalars()]


def test_stages_parse_and_codes_read_back() -> None:
    assert parse_stage("3:保温杯:100") == Stage(3, "保温杯", 100)
    for bad in ("3:保温杯", "x:杯:1", "0:杯:1", "3::1"):
        with pytest.raises(ValueError):
            parse_stage(bad)
    assert parse_stage("3:保温杯:100:25.5") == Stage(3, "保温杯", 100, 2550)
    assert parse_stage("3:保温杯:100:0.05").cost_cents == 5
    for bad in ("3:杯:1:1.234", "3:杯:1:-2", "3:杯:1:abc", "3:杯:1:99999999", "3:杯:1:2:3"):
        with pytest.raises(ValueError):
            parse_stage(bad)
    # a share task: no invites, one per campaign, anywhere in the list; either task completes
    share = parse_stage("截图:电子书:10")
    assert (share.kind, share.invites) == ("share", 0)
    assert parse_stage("share:电子书:10:2").cost_cents == 200
    assert check_stages([share, Stage(3, "杯", 5), Stage(6, "营", 1)])
    with pytest.raises(FissionError):
        check_stages([share, Stage(3, "杯", 5), parse_stage("分享:书:1")])
    plan = [{"position": 0, "invites": 0, "kind": "share"},
            {"position": 1, "invites": 3}, {"position": 2, "invites": 6, "kind": "invites"}]
    assert completing(plan) == {0, 1}
    assert code_parts("fx12m10005") == (12, 10005)
    assert code_parts("海报A") is None and code_parts("fx1") is None
    assert code_parts("fx12done") is None  # the completers' group code credits nobody
    # a team's own words: known steps, only the placeholders a step fills, empty = default
    assert check_texts({"progress": " 还差 {left} 人 ", "done": ""}) == {
        "progress": "还差 {left} 人"}
    for bad_texts in ({"farewell": "x"}, {"claim": "{link} {count}"}, {"done": "x" * 1001}):
        with pytest.raises(FissionError):
            check_texts(bad_texts)
    # slots filled in one pass: a nickname that reads like a slot stays as written
    assert fill("@{name} 已有效邀请 {count} 人 {stray", name="{count}", count=3) == (
        "@{count} 已有效邀请 3 人 {stray")
    # the K-factor of the report's hand-computed case below
    assert k_factor(participants=3, invites_sent=5, valid_invites=4) == {
        "invites_per_participant": 1.6667, "conversion": 0.8, "k": 1.3333,
        "valid_per_participant": 1.3333}


def test_invites_are_credited_to_the_first_inviter_and_rewards_stop_at_stock(
        conn: Connection, runtime: Runtime, sandbox: SandboxAdapter) -> None:
    feed = Feed(conn, runtime)
    for user in ("a", "d"):
        feed.join("g1", user, 0)
    gid = conn.execute(select(outbox.c.id)).first()  # nothing sent yet
    assert gid is None
    g1 = feed.join("g1", "owner", 0).group_id
    assert g1 is not None
    campaign = fission.do_create_campaign(
        conn, actor=SYSTEM, name="邀 2 人领保温杯", group_ids=[g1], account="demo",
        stages=[Stage(2, "保温杯", 1), Stage(3, "训练营名额", 10)], now=T0)
    a, d = member_id_by_number(conn, 10001), member_id_by_number(conn, 10002)
    pa = fission.do_join(runtime.uow, actor=SYSTEM, adapter_for=runtime.adapter,
                         campaign_id=campaign["id"], member_id=a, now=T0)
    assert pa["code"] == f"fx{campaign['id']}m10001" and pa["link"].startswith("https://")
    assert fission.do_join(runtime.uow, actor=SYSTEM, adapter_for=runtime.adapter,
                           campaign_id=campaign["id"], member_id=a, now=T0) == pa  # once
    pd = fission.do_join(runtime.uow, actor=SYSTEM, adapter_for=runtime.adapter,
                         campaign_id=campaign["id"], member_id=d, now=T0)
    feed.join("g1", "b", 1, channel=pa["code"])
    feed.join("g1", "c", 2, channel=pa["code"])
    feed.join("g1", "c", 3, channel=pd["code"])  # c again, through d's code: a keeps c
    feed.join("g1", "a", 4, channel=pa["code"])  # their own code
    feed.join("g1", "e", 5, channel=pd["code"])
    feed.join("g1", "f", 6, channel=pd["code"])  # d reaches 2: the only cup is gone
    feed.join("g1", "g", 7, channel=pa["code"])  # a reaches 3
    assert said(conn) == [
        "@用户a 你邀请的 用户b 已入群，已有效邀请 1 人，再邀请 1 人可得「保温杯」",
        "@用户a 恭喜完成「保温杯」任务！已有效邀请 2 人，领奖链接已私信发给你",
        "@用户d 你邀请的 用户e 已入群，已有效邀请 1 人，再邀请 1 人可得「保温杯」",
        "@用户d 已有效邀请 2 人，「保温杯」已经发完了，感谢参与",
        "@用户a 恭喜完成「训练营名额」任务！已有效邀请 3 人，领奖链接已私信发给你"]
    out = fission.report(conn, actor=SYSTEM, campaign_id=campaign["id"], tz=TZ)
    assert (out["participants"], out["invites_sent"], out["valid_invites"]) == (2, 5, 5)
    assert [(s["taken"], s["left"]) for s in out["stages"]] == [(1, 0), (1, 9)]
    assert out["completed"] == 2 and out["rewards"] == {
            "reserved": 2, "sold_out": 1, "shipped": 0, "cancelled": 0, "claimed": 0}
    assert [(t["name"], t["valid_invites"]) for t in out["top_inviters"]] == [
        ("用户a", 3), ("用户d", 2)]
    tree = {n["name"]: sorted(c["name"] for c in n["children"]) for n in out["tree"]}
    assert tree == {"用户a": ["用户b", "用户c", "用户g"], "用户d": ["用户e", "用户f"]}
    assert [(n["name"], n["brought"]) for n in out["tree"]] == [("用户a", 3), ("用户d", 2)]
    rewards = fission.list_rewards(conn, actor=SYSTEM, campaign_id=campaign["id"])
    assert [(r["display_name"], r["reward"], r["status"]) for r in rewards] == [
        ("用户a", "保温杯", "reserved"), ("用户d", "保温杯", "sold_out"),
        ("用户a", "训练营名额", "reserved")]


def test_invites_settled_together_count_once_and_tell_each_inviter_once(
        conn: Connection, runtime: Runtime, sandbox: SandboxAdapter) -> None:
    """Joins arriving faster than the worker settles them (a busy evening, a worker back
    after a pause): one settlement counts them all, the first to pass a stage gets the last
    of its stock, each inviter hears once, naming everyone they brought; someone who left
    or was blacklisted meanwhile is taken back; a backlog older than a reply may wait is
    counted and rewarded without a message."""
    feed = Feed(conn, runtime)
    for user in ("a", "d"):
        feed.join("g1", user, 0)
    g1 = feed.join("g1", "owner", 0).group_id
    assert g1 is not None
    campaign = fission.do_create_campaign(
        conn, actor=SYSTEM, name="一起结算", group_ids=[g1], account="demo",
        stages=[Stage(2, "保温杯", 1), Stage(4, "训练营名额", 10)], now=T0)
    code = {who: fission.do_join(runtime.uow, actor=SYSTEM, adapter_for=runtime.adapter,
                                 campaign_id=campaign["id"],
                                 member_id=member_id_by_number(conn, number), now=T0)["code"]
            for who, number in (("a", 10001), ("d", 10002))}
    feed.settle = False
    for minute, (user, via) in enumerate((("b", "a"), ("f", "d"), ("c", "a"), ("g", "d"),
                                          ("e", "a"), ("h", "a"), ("i", "d")), start=1):
        feed.join("g1", user, minute, channel=code[via])
    feed.leave("g1", "h", 9)
    blacklist.do_blacklist(conn, actor=SYSTEM, member_id=member_id_by_number(
        conn, 10010), reason="广告", capabilities=runtime.capabilities)  # i
    fresh = runtime.automation.get(conn).team.freshness
    assert fission.validate_due(conn, now=T0 + timedelta(minutes=10),
                                capabilities=runtime.capabilities, freshness=fresh) == 6
    assert said(conn) == [
        "@用户a 用户h 退群了，这次邀请不计，当前有效邀请 0 人",  # told at the leave
        "@用户a 恭喜完成「保温杯」任务！已有效邀请 2 人，领奖链接已私信发给你",
        "@用户a 你邀请的 用户b、用户c、用户e 已入群，已有效邀请 3 人，"
        "再邀请 1 人可得「训练营名额」",
        "@用户d 已有效邀请 2 人，「保温杯」已经发完了，感谢参与"]
    status = dict(conn.execute(select(fission_invites.c.invitee_id, fission_invites.c.reason)
                               .where(fission_invites.c.status == "revoked")).all())
    assert status == {member_id_by_number(conn, 10009): "left",
                      member_id_by_number(conn, 10010): "blacklisted"}
    assert fission.validate_due(conn, now=T0 + timedelta(minutes=11),
                                capabilities=runtime.capabilities) == 0  # decided once
    # a backlog: j joins through a's code, settled a day later — a reaches 4 unannounced
    feed.join("g1", "j", 12, channel=code["a"])
    before = len(said(conn))
    assert fission.validate_due(conn, now=T0 + timedelta(days=1),
                                capabilities=runtime.capabilities, freshness=fresh) == 1
    assert len(said(conn)) == before
    out = fission.report(conn, actor=SYSTEM, campaign_id=campaign["id"], tz=TZ)
    assert [(t["name"], t["valid_invites"]) for t in out["top_inviters"]] == [
        ("用户a", 4), ("用户d", 2)]
    assert out["rewards"]["reserved"] == 2 and out["rewards"]["sold_out"] == 1


def test_leaving_within_the_window_takes_the_invite_back(conn: Connection, runtime: Runtime,
                                                        sandbox: SandboxAdapter) -> None:
    feed = Feed(conn, runtime)
    g1 = feed.join("g1", "a", 0).group_id
    assert g1 is not None
    campaign = fission.do_create_campaign(
        conn, actor=SYSTEM, name="留满一天才算", group_ids=[g1], account="demo",
        stages=[Stage(2, "资料包", 100)], valid_hours=24, now=T0)
    pa = fission.do_join(runtime.uow, actor=SYSTEM, adapter_for=runtime.adapter,
                         campaign_id=campaign["id"], member_id=member_id_by_number(conn, 10001),
                         now=T0)
    feed.join("g1", "b", 10, channel=pa["code"])
    feed.join("g1", "c", 11, channel=pa["code"])
    feed.join("g1", "x", 12, channel=pa["code"])
    feed.leave("g1", "c", 60)  # within the day: taken back, and a is told
    assert said(conn) == ["@用户a 用户c 退群了，这次邀请不计，当前有效邀请 0 人"]
    # a day on, the worker settles the window: b and x stayed; x is blacklisted meanwhile
    from qunyun.services import blacklist
    blacklist.do_blacklist(conn, actor=SYSTEM, member_id=member_id_by_number(conn, 10004),
                           reason="广告", capabilities=runtime.capabilities)
    assert fission.validate_due(conn, now=T0 + timedelta(hours=23),
                                capabilities=runtime.capabilities) == 0
    assert fission.validate_due(conn, now=T0 + timedelta(hours=25),
                                capabilities=runtime.capabilities) == 2
    statuses = dict(conn.execute(select(fission_invites.c.invitee_id, fission_invites.c.status)
                                 ).all())
    assert sorted(statuses.values()) == ["revoked", "revoked", "valid"]
    assert said(conn)[-1] == (
        "@用户a 你邀请的 用户b 已入群，已有效邀请 1 人，再邀请 1 人可得「资料包」")


def test_a_campaign_refuses_bad_definitions_and_pauses(conn: Connection, runtime: Runtime,
                                                       sandbox: SandboxAdapter) -> None:
    feed = Feed(conn, runtime)
    g1 = feed.join("g1", "a", 0).group_id
    assert g1 is not None
    with pytest.raises(InvalidInput, match="more invites"):
        fission.do_create_campaign(conn, actor=SYSTEM, name="x", group_ids=[g1],
                                   account="demo", now=T0,
                                   stages=[Stage(3, "a", 1), Stage(2, "b", 1)])
    with pytest.raises(NotFound):
        fission.do_create_campaign(conn, actor=SYSTEM, name="x", group_ids=[999999],
                                   account="demo", now=T0, stages=[Stage(1, "a", 1)])
    campaign = fission.do_create_campaign(conn, actor=SYSTEM, name="x", group_ids=[g1],
                                          account="demo", now=T0, stages=[Stage(1, "a", 5)])
    pa = fission.do_join(runtime.uow, actor=SYSTEM, adapter_for=runtime.adapter,
                         campaign_id=campaign["id"], member_id=member_id_by_number(conn, 10001),
                         now=T0)
    fission.do_set_status(conn, actor=SYSTEM, campaign_id=campaign["id"], status="paused",
                          now=T0)
    feed.join("g1", "b", 1, channel=pa["code"])  # paused: not credited
    assert said(conn) == []
    fission.do_set_status(conn, actor=SYSTEM, campaign_id=campaign["id"], status="active",
                          now=T0)
    feed.join("g1", "c", 2, channel=pa["code"])
    assert len(said(conn)) == 1


def test_two_workers_settling_at_once_never_hand_out_more_than_the_stock(
        fresh_db_url: str, tmp_path: Path) -> None:
    """Twenty inviters each finish the stage in the same minute and two workers settle the
    window at once: exactly the stock (5) is reserved, the rest told it ran out, no invite
    settled twice, on real commits and separate connections."""
    settings = Settings(database_url=fresh_db_url, data_dir=tmp_path / "var",
                        sandbox_store=str(tmp_path / "sandbox.db"))
    rt = build_runtime(settings)
    try:
        with rt.uow.write() as conn:
            g1 = do_ingest_event(conn, event(raw_join("g", "g1", "owner")),
                                 config=rt.ingest_config).group_id
            g2 = do_ingest_event(conn, event(raw_join("g2", "g2", "owner")),
                                 config=rt.ingest_config).group_id
            assert g1 is not None
            campaign = fission.do_create_campaign(
                conn, actor=SYSTEM, name="抢保温杯", group_ids=[g1], account="demo",
                stages=[Stage(1, "保温杯", 5)], valid_hours=1, completers_group_id=g2,
                now=T0)
            for i in range(20):
                do_ingest_event(conn, event(raw_join(f"p{i}", "g1", f"p{i}")),
                                config=rt.ingest_config)
        codes = []
        for i in range(20):
            with rt.uow.read() as conn:
                member_id = member_id_by_number(conn, 10002 + i)
            codes.append(fission.do_join(rt.uow, actor=SYSTEM, adapter_for=rt.adapter,
                                         campaign_id=campaign["id"], member_id=member_id,
                                         now=T0)["code"])
        with rt.uow.write() as conn:
            for i, code in enumerate(codes):
                do_ingest_event(conn, event(raw_join(f"f{i}", "g1", f"f{i}", minutes=1,
                                                     scene="qr", channel=code)),
                                config=rt.ingest_config)
        barrier = threading.Barrier(2)
        settled: list[int] = []

        def worker() -> None:
            barrier.wait()
            with rt.uow.write() as conn:
                settled.append(fission.validate_due(conn, now=T0 + timedelta(hours=2),
                                                    capabilities=rt.capabilities))

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        with rt.uow.read() as conn:
            stage = fission.report(conn, actor=SYSTEM, campaign_id=campaign["id"],
                                   tz=TZ)["stages"][0]
            rewards = Counter(r["status"] for r in fission.list_rewards(
                conn, actor=SYSTEM, campaign_id=campaign["id"]))
            texts = [p["text"] for p in conn.execute(select(outbox.c.payload).where(
                outbox.c.rule == "fission")).scalars()]
        assert (stage["taken"], stage["left"]) == (5, 0)
        assert rewards == {"reserved": 5, "sold_out": 15}
        assert len(texts) == 20 and sum("恭喜完成" in t for t in texts) == 5
        assert sum(settled) >= 20  # both looked; each invite was decided once

        # the follow-ups, two workers at once: each newcomer welcomed once, each reward's
        # claim link sent once, the completers' group code made once
        followed: list[int] = []

        def follower() -> None:
            barrier.wait()
            followed.append(fission.follow_up(
                rt.uow, adapter_for=rt.adapter, capabilities=rt.capabilities,
                now=T0 + timedelta(hours=2), public_url="https://qy.example"))

        threads = [threading.Thread(target=follower) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sum(followed) == 25  # 20 welcomes and 5 rewards, split between the two
        with rt.uow.read() as conn:
            rows = conn.execute(select(outbox.c.action_type, outbox.c.payload).where(
                outbox.c.rule == "fission", outbox.c.action_type != "send_text"
            ).order_by(outbox.c.id)).all()
            welcomed = conn.execute(select(outbox.c.payload).where(
                outbox.c.rule == "fission",
                outbox.c.idempotency_key.like("fission-welcome:%"))).scalars().all()
            done_codes = conn.execute(select(join_codes.c.id).where(
                join_codes.c.channel == f"fx{campaign['id']}done")).all()
        assert sorted(m for p in welcomed for m in p["mention_member_ids"]) == sorted(
            set(m for p in welcomed for m in p["mention_member_ids"]))
        assert len(welcomed) == 20
        claims = [p for kind, p in rows if "/claim/" in p.get("text", "")]
        invitations = [p for kind, p in rows if "完成者专属群" in p.get("text", "")]
        tasks_ = [p for kind, p in rows if kind == "hand_to_staff"]
        assert len(claims) == 5 and len({p["member_id"] for p in claims}) == 5
        assert len(invitations) + len(tasks_) == 5 and len(done_codes) == 1
    finally:
        rt.engine.dispose()


def test_rewards_are_shipped_cancelled_and_exported_safely(conn: Connection, runtime: Runtime,
                                                          sandbox: SandboxAdapter) -> None:
    """A reward ships with its tracking number; a cancelled one gives its stock back; the
    warehouse's sheet keeps a member's formula-looking name inert."""
    from qunyun.adapters.storage.tables import members

    feed = Feed(conn, runtime)
    g1 = feed(raw_join("j0", "g1", "a", name="=HYPERLINK(\"http://x\")")).group_id
    assert g1 is not None
    conn.execute(members.update().values(phone="13812345678"))
    campaign = fission.do_create_campaign(conn, actor=SYSTEM, name="x", group_ids=[g1],
                                          account="demo", now=T0, stages=[Stage(1, "杯", 1)])
    pa = fission.do_join(runtime.uow, actor=SYSTEM, adapter_for=runtime.adapter,
                         campaign_id=campaign["id"], member_id=member_id_by_number(conn, 10001),
                         now=T0)
    feed.join("g1", "b", 1, channel=pa["code"])
    (reward,) = fission.list_rewards(conn, actor=SYSTEM, campaign_id=campaign["id"])
    shipped = fission.do_update_reward(conn, actor=SYSTEM, reward_id=reward["id"],
                                       status="shipped", tracking=" SF1234567890 ", now=T0)
    assert (shipped["status"], shipped["tracking"]) == ("shipped", "SF1234567890")
    with pytest.raises(Conflict):
        fission.do_update_reward(conn, actor=SYSTEM, reward_id=reward["id"],
                                 status="shipped", now=T0)
    fission.do_update_reward(conn, actor=SYSTEM, reward_id=reward["id"], status="cancelled",
                             now=T0)
    stage = fission.access_campaign(conn, actor=SYSTEM, campaign_id=campaign["id"])["stages"][0]
    assert (stage["taken"], stage["left"]) == (0, 1)  # the stock came back
    fission.do_update_reward(conn, actor=SYSTEM, reward_id=reward["id"], status="reserved",
                             now=T0)
    sheet = fission.export_rewards(conn, actor=SYSTEM, campaign_id=campaign["id"], fmt="csv",
                                   tz=TZ).decode("utf-8-sig")
    assert "'=HYPERLINK" in sheet and "13812345678" in sheet and "待发放" in sheet
    from qunyun.domain.staff import Role
    from qunyun.services.users import Actor
    viewer = Actor(id=99, username="viewer", role=Role.VIEWER)  # may not see phones
    masked = fission.list_rewards(conn, actor=viewer, campaign_id=campaign["id"])
    assert masked[0]["phone"] != "13812345678" and masked[0]["phone"].endswith("5678")
    with pytest.raises(InvalidInput):
        fission.export_rewards(conn, actor=SYSTEM, campaign_id=campaign["id"], fmt="pdf",
                               tz=TZ)


def test_a_participants_poster_carries_their_code_and_name_inside_it(
        conn: Connection, runtime: Runtime, sandbox: SandboxAdapter, tmp_path: Path) -> None:
    import io

    import zxingcpp
    from PIL import Image

    from qunyun.services import posters

    feed = Feed(conn, runtime)
    g1 = feed(raw_join("j0", "g1", "a", name="🌸小王的妈妈" * 12)).group_id
    assert g1 is not None
    campaign = fission.do_create_campaign(conn, actor=SYSTEM, name="邀好友领资料",
                                          group_ids=[g1], account="demo", now=T0,
                                          stages=[Stage(1, "资料", 5)])
    folder = tmp_path / "posters"
    mine = fission.do_join(runtime.uow, actor=SYSTEM, adapter_for=runtime.adapter,
                           campaign_id=campaign["id"],
                           member_id=member_id_by_number(conn, 10001), now=T0)
    png = fission.poster_for(conn, actor=SYSTEM, campaign_id=campaign["id"],
                             member_id=member_id_by_number(conn, 10001), folder=folder)
    image = Image.open(io.BytesIO(png))
    assert image.size == (750, 1334)
    (found,) = zxingcpp.read_barcodes(image)
    assert found.text == mine["link"]  # the code is theirs
    # the long name shrank and was cut to stay inside the poster
    layout = posters.render(settings={}, title="x", nickname="🌸小王的妈妈" * 12,
                            link=mine["link"])
    left, top, right, bottom = layout.name_box
    assert 0 <= left < right <= 750 and 0 <= top < bottom <= 1334
    # served from the cache the second time
    assert fission.poster_for(conn, actor=SYSTEM, campaign_id=campaign["id"],
                              member_id=member_id_by_number(conn, 10001), folder=folder) == png
    assert len(list((folder / "cache").glob("*.png"))) == 1
    # a new layout and background: checked, kept, and the poster follows them
    with pytest.raises(InvalidInput, match="poster qr"):
        fission.do_set_poster(conn, actor=SYSTEM, campaign_id=campaign["id"],
                              values={"qr": {"x": 700, "y": 0, "size": 300}}, folder=folder)
    with pytest.raises(InvalidInput, match="not a PNG or JPEG"):
        fission.do_set_poster(conn, actor=SYSTEM, campaign_id=campaign["id"], values={},
                              background=b"<svg onload=alert(1)>", folder=folder)
    buf = io.BytesIO()
    Image.new("RGB", (300, 500), "#ffe0e0").save(buf, format="JPEG")
    saved = fission.do_set_poster(conn, actor=SYSTEM, campaign_id=campaign["id"],
                                  values={"qr": {"x": 40, "y": 40, "size": 200}},
                                  background=buf.getvalue(), folder=folder)
    assert saved["poster"]["background"].endswith(".png")
    again = Image.open(io.BytesIO(fission.poster_for(
        conn, actor=SYSTEM, campaign_id=campaign["id"],
        member_id=member_id_by_number(conn, 10001), folder=folder)))
    corner = again.getpixel((745, 5))  # the background (a JPEG: nearly its colour)
    assert isinstance(corner, tuple)
    assert all(abs(a - b) <= 4 for a, b in zip(corner, (255, 224, 224), strict=True))
    (code,) = zxingcpp.read_barcodes(again.crop((40, 40, 240, 240)))
    assert code.text == mine["link"]
    # the code rotated into another group under a new link (Telegram makes a new one): the
    # poster carries the live link, not the one stored when the code was made
    from qunyun.adapters.storage.tables import join_codes
    conn.execute(join_codes.update().where(join_codes.c.id == mine["join_code_id"])
                 .values(qr_code="https://t.me/+rotated0001"))
    rotated = Image.open(io.BytesIO(fission.poster_for(
        conn, actor=SYSTEM, campaign_id=campaign["id"],
        member_id=member_id_by_number(conn, 10001), folder=folder)))
    (live,) = zxingcpp.read_barcodes(rotated.crop((40, 40, 240, 240)))
    assert live.text == "https://t.me/+rotated0001"
    with pytest.raises(NotFound, match="does not take part"):
        fission.poster_for(conn, actor=SYSTEM, campaign_id=campaign["id"],
                           member_id=999999, folder=folder)


def test_a_rehearsal_on_the_sandbox_grows_in_generations_and_repeats(
        conn: Connection, runtime: Runtime) -> None:
    """The plan of a campaign, rehearsed with simulated people through the real path: seeds
    share, friends join through their codes and take part in turn, some leave within the
    window; the numbers add up, the stock is never overdrawn, and the same seed gives the
    same rehearsal."""
    feed = Feed(conn, runtime)
    gid = feed.join("g1", "owner", 0).group_id
    assert gid is not None
    source = fission.do_create_campaign(
        conn, actor=SYSTEM, name="邀 2 人领资料", group_ids=[gid], account="demo",
        stages=[Stage(2, "资料包", 15, 300), Stage(5, "训练营名额", 2)], valid_hours=2,
        now=T0)
    plan = fission_rehearsal.Rehearsal(seeds=20, share=0.7, friends=2.5, leave=0.2, days=2,
                                       seed=11)
    results = []
    for minute in (0, 1):  # twice, at different times: separate groups, the same story
        results.append(fission_rehearsal.do_rehearse(
            runtime.uow, actor=SYSTEM, campaign_id=source["id"], plan=plan,
            adapter_for=runtime.adapter, config=runtime.ingest_config,
            capabilities=runtime.capabilities, now=T0 + timedelta(days=5, minutes=minute)))
    first, second = results
    assert first["campaign_id"] != second["campaign_id"]
    report = first["report"]
    assert report == second["report"] | {"daily": report["daily"]}  # days shift by a minute
    assert report["participants"] > 20 + 10  # newcomers took part: a second generation
    assert report["invites_sent"] == first["joins"]
    assert report["valid_invites"] + report["revoked"] <= report["invites_sent"]
    assert 0 < report["revoked"] < report["invites_sent"] * 0.4
    taken = [s["taken"] for s in report["stages"]]
    assert taken[0] <= 15 and taken[1] <= 2 and taken[0] == min(15, report["completed"])
    with pytest.raises(InvalidInput):
        fission_rehearsal.do_rehearse(
            runtime.uow, actor=SYSTEM, campaign_id=source["id"],
            plan=fission_rehearsal.Rehearsal(share=1.5), adapter_for=runtime.adapter,
            config=runtime.ingest_config, capabilities=runtime.capabilities, now=T0)


def test_what_each_inviters_newcomers_did_after_joining(conn: Connection,
                                                        runtime: Runtime) -> None:
    """Channel precision per inviter, counted by hand: a's three valid newcomers — one
    spoke, one enrolled with a deposit, one bought (and spoke); b's one did nothing; an
    enrolment from before joining does not count."""
    feed = Feed(conn, runtime)
    gid = feed.join("g1", "a", 0).group_id
    feed.join("g1", "b", 0)
    assert gid is not None
    campaign = fission.do_create_campaign(
        conn, actor=SYSTEM, name="精度", group_ids=[gid], account="demo",
        stages=[Stage(5, "资料包", 10)], now=T0)
    codes = {}
    for user, number in (("a", 10001), ("b", 10002)):
        codes[user] = fission.do_join(runtime.uow, actor=SYSTEM, adapter_for=runtime.adapter,
                                      campaign_id=campaign["id"],
                                      member_id=member_id_by_number(conn, number),
                                      now=T0)["code"]
    activities.do_create_series(conn, actor=SYSTEM, code="P", name="训练营")
    activities.do_create_activity(conn, actor=SYSTEM, series="P", starts_on="2026-11-25",
                                  ends_on="2026-12-25", deposit_fen=9900)
    early = member_id_by_number(conn, 10002)  # b enrols before anyone joined: not counted
    for i, user in enumerate(("x1", "x2", "x3")):
        feed.join("g1", user, 10 + i, channel=codes["a"])
    feed.join("g1", "y1", 20, channel=codes["b"])
    ids = {u: member_id_by_number(conn, 10003 + i) for i, u in enumerate(("x1", "x2", "x3",
                                                                         "y1"))}
    feed(raw_message("m1", "g1", "x1", "大家好", minutes=30))
    feed(raw_message("m2", "g1", "x3", "请问怎么报名", minutes=31))
    later = T0 + timedelta(hours=2)
    enrolments.do_enrol(conn, actor=SYSTEM, activity_id="P1", member_id=ids["x2"],
                        deposit_fen=9900, at=later)
    enrolments.do_enrol(conn, actor=SYSTEM, activity_id="P1", member_id=early,
                        at=T0 - timedelta(days=1))
    conversions.do_record_conversion(conn, actor=SYSTEM, kind="order", amount_fen=19900,
                                     member_id=ids["x3"], at=later)
    out = fission.report(conn, actor=SYSTEM, campaign_id=campaign["id"], tz=TZ)["precision"]
    a, b = out["inviters"]
    assert (a["name"], a["valid"], a["spoke"], a["enrolled"], a["deposit"], a["purchase"]) == (
        "用户a", 3, 2, 1, 1, 1)
    assert a["spoke_rate"] == round(2 / 3, 4)
    assert (b["valid"], b["spoke"], b["enrolled"], b["purchase"]) == (1, 0, 0, 0)
    assert {k: out["all"][k] for k in ("valid", "spoke", "enrolled", "deposit", "purchase")} == {
        "valid": 4, "spoke": 2, "enrolled": 1, "deposit": 1, "purchase": 1}


def test_the_inviter_hears_as_the_platform_allows(conn: Connection, runtime: Runtime) -> None:
    """@-mentioned in the group where a bot may post; privately where it may only write to
    people (without the leading @name); not at all on WeCom, where it may do neither — a
    staff task per invite would bury the team (their page shows the progress)."""
    campaign, code = one_participant(Feed(conn, runtime), name="告知")
    profiles = {"full": frozenset(Capability),
                "private": frozenset({Capability.SEND_PRIVATE}),
                "wecom": WECOM_CAPABILITIES}
    told = {}
    for i, (name, can) in enumerate(profiles.items()):
        config = replace(runtime.ingest_config, capabilities=lambda _p, can=can: can)
        ev = event(raw_join(f"t{i}", "g1", f"t{i}", name=f"朋友{i}", minutes=5 + i,
                            scene="qr", channel=code))
        do_ingest_event(conn, ev, config=config, received_at=ev.occurred_at)
        before = conn.execute(select(func.coalesce(func.max(outbox.c.id), 0))).scalar_one()
        fission.validate_due(conn, now=ev.occurred_at, capabilities=lambda _p, can=can: can)
        told[name] = [(r["action_type"], r["payload"]["text"]) for r in conn.execute(
            select(outbox).where(outbox.c.id > before, outbox.c.rule == "fission")
            .order_by(outbox.c.id)).mappings()]
    assert told["full"] == [("send_text", "@用户a 你邀请的 朋友0 已入群，已有效邀请 1 人，"
                                          "再邀请 4 人可得「资料包」")]
    assert told["private"] == [("send_private", "你邀请的 朋友1 已入群，已有效邀请 2 人，"
                                               "再邀请 3 人可得「资料包」")]
    assert told["wecom"] == []
    assert fission.report(conn, actor=SYSTEM, campaign_id=campaign["id"],
                          tz=TZ)["valid_invites"] == 3  # counted all the same
    assert conn.execute(select(func.count()).select_from(staff_tasks)).scalar_one() == 0


def test_a_newcomers_welcome_goes_as_the_platform_allows(conn: Connection,
                                                         runtime: Runtime) -> None:
    """The newcomer's welcome with their own link: privately where a bot may only write to
    people; on WeCom (neither posts nor writes) their code is made all the same and no
    staff task is queued per newcomer."""
    feed = Feed(conn, runtime)
    campaign, code = one_participant(feed, name="欢迎", valid_hours=1)
    for i, can in enumerate((frozenset({Capability.SEND_PRIVATE}), WECOM_CAPABILITIES)):
        feed.join("g1", f"n{i}", 2 + i, channel=code)
        assert fission.follow_up(runtime.uow, adapter_for=runtime.adapter,
                                 capabilities=lambda _p, can=can: can,
                                 now=T0 + timedelta(minutes=5 + i), public_url="") == 1
    welcomes = conn.execute(select(outbox.c.action_type, outbox.c.payload).where(
        outbox.c.idempotency_key.like("fission-welcome:%"))).all()
    assert [(kind, p["text"][:6]) for kind, p in welcomes] == [("send_private", "欢迎加入！本")]
    assert conn.execute(select(func.count()).select_from(staff_tasks)).scalar_one() == 0
    enrolled = fission.report(conn, actor=SYSTEM, campaign_id=campaign["id"], tz=TZ)
    assert enrolled["participants"] == 3  # a, and both newcomers with codes of their own
