"""Seed 002's pyramid over a wave of groups, with every automation on: the next camp is
planned before its chat exists, recruits through its join code and turns active when full;
the last waves' small groups are merged into it — the most active into its last places,
the rest into an overflow group opened for them — and then dissolve step by step.

What must hold where the features meet: the merge's invitations are the bot's own words
(never moderated), the movers are greeted once when they arrive, the camp's staff and
owners stay where they are, a plan linked to a chat the bot saw first keeps the merge's
members waiting for it, and the emptied groups end closed with their history kept.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import groups, memberships, messages, staff_tasks
from qunyun.services import group_merges, join_codes, lifecycle
from qunyun.services.users import SYSTEM
from tests.scenarios.live import Live, days_ago


def chat_of(conn: Connection, gid: int) -> str:
    return str(conn.execute(select(groups.c.external_id).where(groups.c.id == gid))
               .scalar_one())


def state_of(conn: Connection, gid: int) -> str:
    return str(conn.execute(select(groups.c.state).where(groups.c.id == gid)).scalar_one())


def test_a_wave_from_plan_to_merge_to_dissolution(conn: Connection, live: Live) -> None:
    live.switch_everything_on()
    start = days_ago(5) + timedelta(hours=10)
    tz = live.runtime.settings.tz
    # the last two waves' groups: small now, and quiet
    old1 = live.group("old1", "1期交流群", start - timedelta(days=40))
    old2 = live.group("old2", "2期交流群", start - timedelta(days=30))
    alumni = {"a1": "阿一", "a2": "阿二", "a3": "阿三", "b1": "贝一", "b2": "贝二"}
    for i, user in enumerate(("a1", "a2", "a3")):
        live.join("old1", user, alumni[user], start - timedelta(days=39, minutes=-i))
    for i, user in enumerate(("b1", "b2", "a3")):  # 阿三 is in both
        live.join("old2", user, alumni.get(user, user), start - timedelta(days=29, minutes=-i))
    live.say("old1", "a2", "老师什么时候开下一期？", start - timedelta(days=2))
    live.say("old2", "b1", "下一期我还报", start - timedelta(days=2, minutes=-5))
    platform = str(conn.execute(select(groups.c.platform).where(groups.c.id == old1))
                   .scalar_one())
    account = getattr(live, "bot_id", "demo")

    # the next camp is planned ahead; its chat is opened later and linked to the plan
    plan = lifecycle.do_plan_group(conn, actor=SYSTEM, platform=platform, name="3期训练营",
                                   capacity=8, now=start - timedelta(days=3))
    camp = live.group("camp3", "3期训练营", start - timedelta(days=1))
    camp = int(lifecycle.do_link_chat(conn, actor=SYSTEM, group_id=plan["id"],
                                      chat_id=chat_of(conn, camp),
                                      now=start - timedelta(days=1))["id"])
    assert state_of(conn, camp) == "planned"
    poster = join_codes.do_create_join_code(
        live.runtime.uow, actor=SYSTEM, adapter=live.runtime.adapter(platform),
        account=account, channel="3期海报", chats=[chat_of(conn, camp)])
    moves = lifecycle.advance(conn, now=start, tz=tz)
    # the camp opens; the old groups, quiet for weeks, turn cooling (small and quiet: to merge)
    assert sorted((m["group_id"], m["to"]) for m in moves) == sorted(
        [(camp, "recruiting"), (old1, "cooling"), (old2, "cooling")])
    small = group_merges.candidates(conn, actor=SYSTEM, max_members=5, max_messages=5, days=7,
                                    now=start)
    assert {old1, old2} <= {g["id"] for g in small}
    for i in range(4):
        at = start + timedelta(minutes=10 + i)
        live.join("camp3", f"n{i}", f"新学员{i}", at, scene="qr", channel="3期海报")
        live.say("camp3", f"n{i}", "大家好，请多关照", at + timedelta(seconds=20))
    live.catch_up(start + timedelta(minutes=30))
    size = int(conn.execute(select(func.count()).select_from(memberships).where(
        memberships.c.group_id == camp, memberships.c.left_at.is_(None))).scalar_one())

    # the old groups merge into the camp: its last places to the most recently active
    at = start + timedelta(hours=1)
    made = group_merges.do_merge(conn, actor=SYSTEM, source_ids=[old1, old2], target_id=camp,
                                 wait=timedelta(days=2), gap=timedelta(hours=2), dry_run=False,
                                 capabilities=live.runtime.capabilities, now=at)
    assert made["moving"] == 5 and made["target"]["room"] == 8 - size
    people = {p["member_id"]: p for p in made["people"]}
    into_camp = {m for m, p in people.items() if p["to_group_id"] == camp}
    assert len(into_camp) == 8 - size
    # 阿二 and 贝一 spoke most recently: they are among the first in
    assert {live.member("a2"), live.member("b1")} <= into_camp
    overflow = made["overflow"]["id"]
    live.catch_up(at + timedelta(minutes=5))
    posted = [r for r in live.sent(rule="group_merge") if r["group_id"] in (old1, old2)]
    assert posted and all(poster["qr_code"] in r["payload"]["text"] for r in posted)
    assert sorted(m for r in posted for m in r["payload"]["mention_member_ids"]) == sorted(
        into_camp)
    # staff who own the old groups stay; the plan's task asks for the overflow chat
    assert all(live.member(u) in people for u in alumni)
    assert conn.execute(select(func.count()).select_from(staff_tasks).where(
        staff_tasks.c.group_id == overflow)).scalar_one() == 1

    # the invited arrive through the camp's code: greeted once, never moderated
    arrive = at + timedelta(minutes=20)
    users = {live.member(u): u for u in alumni}
    for i, member_id in enumerate(sorted(into_camp)):
        user = users[member_id]
        live.join("camp3", user, alumni[user], arrive + timedelta(seconds=i), scene="qr",
                  channel="3期海报")
        live.say("camp3", user, "大家好，请多关照", arrive + timedelta(seconds=30 + i))
    live.catch_up(arrive + timedelta(minutes=5))
    greeted = [m for r in live.sent(rule="welcome") if r["group_id"] == camp
               for m in r["payload"]["mention_member_ids"] if m in into_camp]
    assert sorted(greeted) == sorted(into_camp)  # each once, in the camp
    assert live.decisions() == []
    moves = lifecycle.advance(conn, now=arrive + timedelta(minutes=10), tz=tz)
    assert [(m["group_id"], m["to"], m["why"]) for m in moves] == [(camp, "active", "full")]

    # the overflow group's chat is opened (the bot sees it first) and linked to the plan:
    # its members, waiting for it, are invited once it has a join code
    opened = arrive + timedelta(hours=1)
    second = live.group("camp3b", "3期训练营（二群）", opened)
    second = int(lifecycle.do_link_chat(conn, actor=SYSTEM, group_id=overflow,
                                        chat_id=chat_of(conn, second), now=opened)["id"])
    join_codes.do_create_join_code(
        live.runtime.uow, actor=SYSTEM, adapter=live.runtime.adapter(platform),
        account=account, channel="3期二群", chats=[chat_of(conn, second)])
    assert group_merges.invite_pending(conn, capabilities=live.runtime.capabilities,
                                       now=opened + timedelta(minutes=5)) == 5 - len(into_camp)
    progress = group_merges.access_merge(conn, actor=SYSTEM, merge_id=made["merge_id"])
    assert [(d["id"], d["assigned"], d["invited"], d["joined"])
            for d in progress["destinations"]] == [
        (camp, len(into_camp), len(into_camp), len(into_camp)),
        (second, 5 - len(into_camp), 5 - len(into_camp), 0)]

    # two days on the old groups dissolve: notice, grey avatar, rename, dismiss
    finish = at + timedelta(days=2)
    live.run_schedule([finish])
    assert state_of(conn, old1) == "dissolving" and state_of(conn, old2) == "dissolving"
    live.run_schedule([finish + timedelta(hours=h) for h in (2, 4, 6)])
    assert state_of(conn, old1) == "closed" and state_of(conn, old2) == "closed"
    notices = [r["payload"]["text"] for r in live.sent(rule="dissolution")]
    assert len(notices) == 2 and all("本群已合并到「3期训练营」" in n for n in notices)
    # their history stays for the reports
    assert conn.execute(select(func.count()).select_from(messages).where(
        messages.c.group_id.in_([old1, old2]))).scalar_one() >= 2
    assert state_of(conn, camp) == "active" and live.decisions() == []
