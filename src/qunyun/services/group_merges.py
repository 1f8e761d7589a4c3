"""Merging small groups (F10): the members of groups under a size or activity threshold are
invited into a target group; those the target cannot hold go to an overflow group (one the
team names, or one planned for it); each member's move is tracked until they have joined;
when the time is up the emptied groups go through the dissolution SOP.

The one writer of ``group_merges`` and ``group_merge_members``. Invitations are group
messages in each source group that @mention the members going to each destination with its
join code (the newest shared code that hands out the chat) — through the outbox, so a
platform that cannot post or mention makes a staff task. A destination without a join code
yet (a planned group before its chat) gets a staff task, and its members are invited by
the worker's round (:func:`invite_pending`) as soon as a code hands it out. Staff and the
groups' owners stay where they are; members already in a destination are not moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update

from qunyun.adapters.storage.tables import (
    group_merge_members,
    group_merges,
    groups,
    members,
    memberships,
    messages,
)
from qunyun.domain.actions import Action, CapabilityLookup, HandToStaff, SendText
from qunyun.domain.content import fill_slots
from qunyun.domain.events import ScheduleFired
from qunyun.domain.groups import GroupState, is_placeholder
from qunyun.domain.staff import Permission
from qunyun.i18n import Term, Terms
from qunyun.services import audit, dissolution, join_codes, lifecycle, outbox, schedules
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.groups import access_group_by_id
from qunyun.services.ingest import IngestConfig
from qunyun.services.members import shown_name, staff_among
from qunyun.services.users import SYSTEM, Actor

RULE = "group_merge"
JOB_KIND = "group_merge_finish"
RUNNING, DONE = "running", "done"
DEFAULT_INVITE = "各位好，「{group}」将合并到「{target}」，请点链接加入新群：{link}"
MERGED_NOTICE = "本群已合并到「{target}」，没进新群的朋友请私信群主，感谢大家的陪伴！"
OVERFLOW_NAME = "{target}（二群）"
MENTIONS_PER_MESSAGE = 40  # one message @mentions at most this many
MIN_WAIT, MAX_WAIT = timedelta(hours=1), timedelta(days=30)
SOURCE_STATES = (GroupState.RECRUITING.value, GroupState.ACTIVE.value,
                 GroupState.COOLING.value)
TARGET_STATES = (GroupState.PLANNED.value, *SOURCE_STATES)
MAX_SOURCES = 50


def _sizes(conn: Connection, ids: Sequence[int]) -> dict[int, int]:
    return {int(g): int(n) for g, n in conn.execute(
        select(memberships.c.group_id, func.count()).where(
            memberships.c.group_id.in_(list(ids)), memberships.c.left_at.is_(None))
        .group_by(memberships.c.group_id))} if ids else {}


def candidates(conn: Connection, *, actor: Actor, max_members: int, max_messages: int,
               days: int, now: datetime) -> list[dict[str, Any]]:
    """Running groups small enough to merge: at most ``max_members`` members and at most
    ``max_messages`` member messages in the last ``days`` days — the smallest first."""
    actor.require(Permission.VIEW)
    if not 1 <= max_members <= 2000 or not 0 <= max_messages <= 1_000_000:
        raise InvalidInput("max_members: 1 to 2000; max_messages: 0 or more")
    if not 1 <= days <= 365:
        raise InvalidInput("days: between {low} and {high}", low=1, high=365)
    rows = [dict(r) for r in conn.execute(select(
        groups.c.id, groups.c.name, groups.c.platform, groups.c.state, groups.c.capacity,
        groups.c.group_type).where(groups.c.state.in_(SOURCE_STATES))).mappings()]
    ids = [int(r["id"]) for r in rows]
    sizes = _sizes(conn, ids)
    talk = {int(g): int(n) for g, n in conn.execute(
        select(messages.c.group_id, func.count()).where(
            messages.c.group_id.in_(ids), messages.c.direction == "in",
            messages.c.sent_at >= now - timedelta(days=days), messages.c.sent_at <= now)
        .group_by(messages.c.group_id))} if ids else {}
    out = []
    for r in rows:
        r["members"] = sizes.get(int(r["id"]), 0)
        r["messages"] = talk.get(int(r["id"]), 0)
        if r["members"] <= max_members and r["messages"] <= max_messages:
            out.append(r)
    return sorted(out, key=lambda r: (r["members"], r["messages"], r["id"]))


def _group(conn: Connection, actor: Actor, group_id: int, role: str,
           states: Sequence[str]) -> dict[str, Any]:
    group = access_group_by_id(conn, actor=actor, group_id=group_id, write=True)
    if group["state"] not in states:
        raise Conflict("group {group_id} is {state}: a {role} must be {states}",
                       group_id=group_id, state=Term("gstate", group["state"]),
                       role=Term("merge.role", role), states=Terms("gstate", states))
    return group


def _movers(conn: Connection, sources: list[dict[str, Any]], staying: set[int]
            ) -> list[dict[str, Any]]:
    """Who moves: the sources' current members, each once (from the first source listed),
    not staff nor a source's owner nor someone already in a destination — the most recently
    active first (they get the target's places)."""
    order = {int(g["id"]): i for i, g in enumerate(sources)}
    rows = conn.execute(select(
        memberships.c.member_id, memberships.c.group_id, memberships.c.last_message_at,
        memberships.c.joined_at).where(memberships.c.group_id.in_(list(order)),
                                        memberships.c.left_at.is_(None))).all()
    owners = {int(g["owner_member_id"]) for g in sources if g["owner_member_id"]}
    kept = staff_among(conn, sorted({int(r.member_id) for r in rows})) | owners | staying
    first: dict[int, Any] = {}
    for r in sorted(rows, key=lambda r: order[int(r.group_id)]):
        if int(r.member_id) not in kept and int(r.member_id) not in first:
            first[int(r.member_id)] = r
    picked = sorted(first.values(), key=lambda r: (
        r.last_message_at is None, -(r.last_message_at.timestamp() if r.last_message_at
                                     else 0), r.joined_at, r.member_id))
    return [{"member_id": int(r.member_id), "from": int(r.group_id)} for r in picked]


def do_merge(conn: Connection, *, actor: Actor, source_ids: Sequence[int], target_id: int,
             overflow_id: int | None = None, invite: str | None = None,
             wait: timedelta = timedelta(days=3), gap: timedelta = timedelta(days=1),
             dry_run: bool = True, capabilities: CapabilityLookup, now: datetime
             ) -> dict[str, Any]:
    """Merge ``source_ids`` into ``target_id`` (``dry_run``: only the plan). Members go to
    the target while it has room (its capacity less its members), the rest to the overflow
    group (``overflow_id``, else one planned now beside the target); more than both hold
    is refused. After ``wait`` the sources go through the dissolution SOP (``gap``)."""
    ids = list(dict.fromkeys(int(i) for i in source_ids))
    if not ids:
        raise InvalidInput("groups: choose at least one group to merge")
    if len(ids) > MAX_SOURCES:
        raise InvalidInput("groups: at most {n} at a time", n=MAX_SOURCES)
    if target_id in ids or (overflow_id is not None and overflow_id in (*ids, target_id)):
        raise InvalidInput("groups: the target and the overflow group are not merged away")
    if not MIN_WAIT <= wait <= MAX_WAIT:
        raise InvalidInput("wait: between 1 hour and 30 days")
    if not dissolution.MIN_GAP <= gap <= dissolution.MAX_GAP:
        raise InvalidInput("gap: between 1 minute and 30 days")
    text = (DEFAULT_INVITE if invite is None else invite).strip()
    if not text or len(text) > 1000:
        raise InvalidInput("invitation: 1 to 1000 characters")
    target = _group(conn, actor, target_id, "target", TARGET_STATES)
    sources = [_group(conn, actor, i, "source", SOURCE_STATES) for i in ids]
    overflow = (_group(conn, actor, overflow_id, "overflow", TARGET_STATES)
                if overflow_id is not None else None)
    platforms = {g["platform"] for g in (target, *sources, *([overflow] if overflow else []))}
    if len(platforms) > 1:
        raise InvalidInput("groups: all on one platform (members move within it)")
    dest_ids = [target_id] + ([overflow_id] if overflow_id is not None else [])
    staying = {int(m) for m in conn.execute(select(memberships.c.member_id).where(
        memberships.c.group_id.in_(dest_ids), memberships.c.left_at.is_(None))).scalars()}
    movers = _movers(conn, sources, staying)
    sizes = _sizes(conn, dest_ids)
    room = max(0, int(target["capacity"]) - sizes.get(target_id, 0))
    to_target, rest = movers[:room], movers[room:]
    overflow_name = (overflow["name"] if overflow is not None
                     else fill_slots(OVERFLOW_NAME, {"target": target["name"]}) if rest else "")
    if overflow is not None:
        room2 = max(0, int(overflow["capacity"]) - sizes.get(int(overflow["id"]), 0))
        if len(rest) > room2:
            raise Conflict("{n} members do not fit: the target has room for {a}, the overflow "
                           "group for {b}", n=len(rest) - room2, a=room, b=room2)
    plan = {"dry_run": dry_run, "platform": platforms.pop(),
            "target": {"id": target_id, "name": target["name"], "room": room,
                       "members": len(to_target)},
            "overflow": ({"id": overflow_id, "name": overflow_name, "planned": overflow is None,
                          "members": len(rest)} if rest or overflow is not None else None),
            "sources": [{"id": int(g["id"]), "name": g["name"],
                         "members": sum(1 for m in movers if m["from"] == g["id"])}
                        for g in sources],
            "moving": len(movers), "finish_at": now + wait}
    if dry_run:
        return plan
    if rest and overflow is None:
        made = lifecycle.do_plan_group(
            conn, actor=actor, platform=plan["platform"], name=overflow_name[:255],
            group_type=target["group_type"], capacity=max(2, min(2000, int(target["capacity"]))),
            now=now)
        overflow_id = int(made["id"])
        plan["overflow"]["id"] = overflow_id
    merge_id = int(conn.execute(group_merges.insert().values(
        platform=plan["platform"], target_group_id=target_id, overflow_group_id=overflow_id,
        source_group_ids=ids, invite_text=text, gap_minutes=int(gap.total_seconds() // 60),
        status=RUNNING, created_by=actor.label, created_at=now, finish_at=now + wait)
        .returning(group_merges.c.id)).scalar_one())
    rows = [{"merge_id": merge_id, "member_id": m["member_id"], "from_group_id": m["from"],
             "to_group_id": target_id, "invited_at": None} for m in to_target]
    rows += [{"merge_id": merge_id, "member_id": m["member_id"], "from_group_id": m["from"],
              "to_group_id": overflow_id, "invited_at": None} for m in rest]
    if rows:
        conn.execute(group_merge_members.insert(), rows)
    schedules.do_schedule_job(conn, key=f"group_merge:{merge_id}:finish", kind=JOB_KIND,
                              run_at=now + wait, actor=actor.label,
                              payload={"merge_id": merge_id})
    audit.record(conn, actor=actor.label, action="group.merge", object_type="group",
                 object_id=target_id, detail={"merge": merge_id, "sources": ids,
                                              "overflow": overflow_id, "moving": len(rows)})
    _invite(conn, merge_id, capabilities=capabilities, now=now, first=True)
    return {**plan, "merge_id": merge_id, **access_merge(conn, actor=actor, merge_id=merge_id)}


def _invite(conn: Connection, merge_id: int, *, capabilities: CapabilityLookup,
            now: datetime, first: bool = False) -> int:
    """Invite the merge's members not invited yet whose destination has a join code now:
    one message per source and destination (@mentioning them, in chunks). On the first
    round a destination without a code is a staff task. Returns how many were invited."""
    merge = conn.execute(select(group_merges).where(group_merges.c.id == merge_id)
                         ).mappings().one()
    pending = conn.execute(select(group_merge_members.c.member_id,
                                  group_merge_members.c.from_group_id,
                                  group_merge_members.c.to_group_id).where(
        group_merge_members.c.merge_id == merge_id,
        group_merge_members.c.invited_at.is_(None))).all()
    if not pending:
        return 0
    names = {int(r.id): dict(r._mapping) for r in conn.execute(
        select(groups.c.id, groups.c.name, groups.c.external_id).where(groups.c.id.in_(
            {int(p.from_group_id) for p in pending} | {int(p.to_group_id) for p in pending})))}
    by_pair: dict[tuple[int, int], list[int]] = {}
    for p in pending:
        by_pair.setdefault((int(p.from_group_id), int(p.to_group_id)), []).append(
            int(p.member_id))
    links = {to: ("" if is_placeholder(str(names[to]["external_id"])) else
                  join_codes.link_for_group(conn, platform=merge["platform"],
                                            chat_id=str(names[to]["external_id"])))
             for to in {to for _f, to in by_pair}}
    actions: list[tuple[str, Action]] = []
    invited: list[int] = []
    for (source, to), ids in sorted(by_pair.items()):
        if not links[to]:
            continue
        text = fill_slots(merge["invite_text"], {
            "group": names[source]["name"], "target": names[to]["name"], "link": links[to]})
        for start in range(0, len(ids), MENTIONS_PER_MESSAGE):
            actions.append((RULE, SendText(group_id=source, text=text, mention_member_ids=tuple(
                ids[start:start + MENTIONS_PER_MESSAGE]))))
        invited += ids
    if first:
        for to in sorted(to for to, link in links.items() if not link):
            count = sum(len(ids) for (_s, t), ids in by_pair.items() if t == to)
            actions.append((RULE, HandToStaff(
                group_id=to, title=f"为「{names[to]['name']}」建群并生成群活码，"
                                   f"合并的 {count} 位成员等着入群",
                reason="群合并")))
    if actions:
        outbox.enqueue(conn, platform=merge["platform"], actions=actions,
                       capabilities=capabilities(merge["platform"]),
                       key_prefix=f"group_merge:{merge_id}:{now.isoformat()}", now=now)
    if invited:
        for start in range(0, len(invited), 500):
            conn.execute(update(group_merge_members).where(
                group_merge_members.c.merge_id == merge_id,
                group_merge_members.c.member_id.in_(invited[start:start + 500]))
                .values(invited_at=now))
    return len(invited)


def invite_pending(conn: Connection, *, capabilities: CapabilityLookup, now: datetime) -> int:
    """The worker's round: running merges' members whose destination got a join code since
    (the overflow group linked to its chat) are invited now."""
    total = 0
    for merge_id in conn.execute(select(group_merges.c.id).where(
            group_merges.c.status == RUNNING).order_by(group_merges.c.id)).scalars():
        total += _invite(conn, int(merge_id), capabilities=capabilities, now=now)
    return total


def do_finish(conn: Connection, *, actor: Actor, merge_id: int, capabilities: CapabilityLookup,
              now: datetime) -> dict[str, Any]:
    """End the merge now (not waiting for its time): the sources start dissolving."""
    actor.require(Permission.OPERATE)
    merge = access_merge(conn, actor=actor, merge_id=merge_id)
    if merge["status"] != RUNNING:
        raise Conflict("merge {merge_id} is already finished", merge_id=merge_id)
    _finish(conn, merge_id, actor=actor, capabilities=capabilities, now=now)
    return access_merge(conn, actor=actor, merge_id=merge_id)


def _finish(conn: Connection, merge_id: int, *, actor: Actor, capabilities: CapabilityLookup,
            now: datetime) -> None:
    done = conn.execute(update(group_merges).where(
        group_merges.c.id == merge_id, group_merges.c.status == RUNNING)
        .values(status=DONE, finished_at=now)).rowcount
    if not done:
        return  # finished already (by hand, or the job fired twice)
    merge = conn.execute(select(group_merges).where(group_merges.c.id == merge_id)
                         ).mappings().one()
    target = conn.execute(select(groups.c.name).where(
        groups.c.id == merge["target_group_id"])).scalar_one()
    for gid in merge["source_group_ids"]:
        state = conn.execute(select(groups.c.state).where(groups.c.id == int(gid))).scalar()
        if state not in SOURCE_STATES:
            continue  # dissolving or closed meanwhile
        dissolution.do_dissolve(
            conn, actor=actor, group_id=int(gid),
            gap=timedelta(minutes=int(merge["gap_minutes"])),
            notice=fill_slots(MERGED_NOTICE, {"target": target}), new_name=None,
            dry_run=False, capabilities=capabilities, now=now)
    audit.record(conn, actor=actor.label, action="group.merge_finish", object_type="group",
                 object_id=int(merge["target_group_id"]), detail={"merge": merge_id})


def fire_finish(conn: Connection, event: ScheduleFired, config: IngestConfig,
                now: datetime) -> list[int]:
    """The job handler: the merge's time is up, the emptied groups start dissolving."""
    _finish(conn, int(event.payload.get("merge_id", 0)), actor=SYSTEM,
            capabilities=config.capabilities, now=now)
    return []


def access_merge(conn: Connection, *, actor: Actor, merge_id: int) -> dict[str, Any]:
    """A merge with each member's move (``invited``, ``joined``: in the destination now)
    and the counts per destination."""
    actor.require(Permission.VIEW)
    row = conn.execute(select(group_merges).where(group_merges.c.id == merge_id)
                       ).mappings().first()
    if row is None:
        raise NotFound("merge {merge_id} not found", merge_id=merge_id)
    merge = dict(row)
    people = [dict(r) for r in conn.execute(select(
        group_merge_members.c.member_id, group_merge_members.c.from_group_id,
        group_merge_members.c.to_group_id, group_merge_members.c.invited_at,
        members.c.display_name, members.c.number)
        .join(members, members.c.id == group_merge_members.c.member_id)
        .where(group_merge_members.c.merge_id == merge_id)
        .order_by(group_merge_members.c.id)).mappings()]
    inside = {(int(m), int(g)) for m, g in conn.execute(
        select(memberships.c.member_id, memberships.c.group_id)
        .join(group_merge_members, (group_merge_members.c.member_id == memberships.c.member_id)
              & (group_merge_members.c.to_group_id == memberships.c.group_id))
        .where(group_merge_members.c.merge_id == merge_id, memberships.c.left_at.is_(None)))}
    ids = {merge["target_group_id"], *(int(g) for g in merge["source_group_ids"])}
    if merge["overflow_group_id"] is not None:
        ids.add(merge["overflow_group_id"])
    info = {int(r.id): {"id": int(r.id), "name": r.name, "state": r.state}
            for r in conn.execute(select(groups.c.id, groups.c.name, groups.c.state)
                                  .where(groups.c.id.in_(ids)))}
    for p in people:
        p["name"] = shown_name(p.pop("display_name"), p["number"])
        p["joined"] = (p["member_id"], p["to_group_id"]) in inside
        p["invited"] = p["invited_at"] is not None
    destinations = []
    for gid in (merge["target_group_id"], merge["overflow_group_id"]):
        if gid is None:
            continue
        mine = [p for p in people if p["to_group_id"] == gid]
        destinations.append({**info[int(gid)], "assigned": len(mine),
                             "invited": sum(p["invited"] for p in mine),
                             "joined": sum(p["joined"] for p in mine)})
    return {**merge, "merge_id": merge_id, "people": people, "destinations": destinations,
            "sources_now": [info[int(g)] for g in merge["source_group_ids"]],
            "joined": sum(p["joined"] for p in people), "assigned": len(people)}


def list_merges(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    out = []
    for merge_id in conn.execute(select(group_merges.c.id).order_by(
            group_merges.c.id.desc()).limit(200)).scalars():
        merge = access_merge(conn, actor=actor, merge_id=int(merge_id))
        merge.pop("people")
        out.append(merge)
    return out



def repoint_group(conn: Connection, *, old: int, new: int) -> None:
    """A planned group linked to a chat the bot saw first: merges into the plan (as their
    target or overflow) and their movers go to the chat's group."""
    for column in (group_merges.c.target_group_id, group_merges.c.overflow_group_id):
        conn.execute(update(group_merges).where(column == old).values({column.name: new}))
    conn.execute(update(group_merge_members).where(group_merge_members.c.to_group_id == old)
                 .values(to_group_id=new))


__all__ = ["DEFAULT_INVITE", "JOB_KIND", "access_merge", "candidates", "do_finish",
           "do_merge", "fire_finish", "invite_pending", "list_merges", "repoint_group"]
