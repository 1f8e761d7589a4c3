"""Lurkers (F10): members of a group silent for N days — listed with when they joined, when
they last spoke, their channel and activities — and removed with a notice, through the
outbox (a staff task where the platform cannot remove). Never staff, never the group's
owner, never someone who joined less than N days ago; a dry run first shows exactly who
would go, and the removal re-checks each person at the moment it is made."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, or_, select

from qunyun.adapters.storage.tables import enrolments, members, memberships
from qunyun.domain.actions import Action, Capability, CapabilityLookup, RemoveMember, SendPrivate
from qunyun.domain.content import fill_slots
from qunyun.domain.groups import GroupState
from qunyun.domain.staff import Permission
from qunyun.i18n import Term
from qunyun.services import audit, outbox
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.groups import access_group_by_id
from qunyun.services.members import shown_name, staff_among
from qunyun.services.users import Actor

RULE = "lurkers"
DEFAULT_NOTICE = ("{name}，你在「{group}」已经 {days} 天没有发言，我们先请你离开，"
                  "需要时欢迎随时回来。")
MAX_NOTICE = 500


def _check_days(days: int) -> None:
    if not 1 <= days <= 3650:
        raise InvalidInput("days: between {low} and {high}", low=1, high=3650)


def list_lurkers(conn: Connection, *, actor: Actor, group_id: int, days: int, now: datetime
                 ) -> list[dict[str, Any]]:
    """Who has been silent in the group for ``days`` days (never spoke, or last spoke
    before then) and joined at least that long ago; staff and the owner left out. The
    quietest first."""
    group = access_group_by_id(conn, actor=actor, group_id=group_id)
    _check_days(days)
    since = now - timedelta(days=days)
    took_part = (select(enrolments.c.member_id, func.count().label("n"))
                 .group_by(enrolments.c.member_id).subquery())
    rows = [dict(r) for r in conn.execute(
        select(members.c.id.label("member_id"), members.c.number, members.c.display_name,
               memberships.c.joined_at, memberships.c.last_message_at, memberships.c.channel,
               func.coalesce(took_part.c.n, 0).label("activities"))
        .join(memberships, memberships.c.member_id == members.c.id)
        .outerjoin(took_part, took_part.c.member_id == members.c.id)
        .where(memberships.c.group_id == group_id, memberships.c.left_at.is_(None),
               memberships.c.joined_at <= since,
               or_(memberships.c.last_message_at.is_(None),
                   memberships.c.last_message_at < since))
        .order_by(memberships.c.last_message_at.is_not(None),
                  memberships.c.last_message_at, memberships.c.joined_at, members.c.number)
    ).mappings()]
    kept_out = staff_among(conn, [r["member_id"] for r in rows]) | (
        {int(group["owner_member_id"])} if group["owner_member_id"] else set())
    out = []
    for r in rows:
        if int(r["member_id"]) in kept_out:
            continue
        r["name"] = shown_name(r.pop("display_name"), r["number"])
        r["silent_days"] = (now - (r["last_message_at"] or r["joined_at"])).days
        out.append(r)
    return out


def do_remove_lurkers(conn: Connection, *, actor: Actor, group_id: int, days: int,
                      member_ids: Sequence[int] | None, notice: str | None, dry_run: bool,
                      capabilities: CapabilityLookup, now: datetime) -> dict[str, Any]:
    """Remove the chosen lurkers (``member_ids``; None: every one listed) with a private
    notice where the platform can send one. Someone chosen who is no longer a lurker (they
    spoke, left, became staff) is skipped and named. ``dry_run``: the same answer, nothing
    queued. Returns ``removing`` (who goes), ``skipped`` (chosen ids that are not lurkers),
    ``tasks`` (how many removals wait for a person) and ``dry_run``."""
    actor.require(Permission.OPERATE)
    group = access_group_by_id(conn, actor=actor, group_id=group_id, write=True)
    if group["state"] == GroupState.CLOSED.value:
        raise Conflict("group {group_id} is {state}: nobody is removed from it",
                       group_id=group_id, state=Term("gstate", group["state"]))
    text = DEFAULT_NOTICE if notice is None else notice.strip()
    if len(text) > MAX_NOTICE:
        raise InvalidInput("notice: at most {n} characters", n=MAX_NOTICE)
    lurkers = {int(r["member_id"]): r for r in list_lurkers(
        conn, actor=actor, group_id=group_id, days=days, now=now)}
    chosen = list(lurkers) if member_ids is None else list(dict.fromkeys(member_ids))
    removing = [lurkers[m] for m in chosen if m in lurkers]
    skipped = [m for m in chosen if m not in lurkers]
    can = capabilities(group["platform"])
    waiting = 0 if Capability.REMOVE_MEMBER in can else len(removing)
    if dry_run or not removing:
        return {"removing": removing, "skipped": skipped, "tasks": waiting, "dry_run": True}
    name = group["name"] or group["external_id"]
    day = now.date().isoformat()
    for r in removing:
        member_id = int(r["member_id"])
        actions: list[tuple[str, Action]] = []
        if text and Capability.SEND_PRIVATE in can:
            actions.append((RULE, SendPrivate(group_id=group_id, member_id=member_id,
                                              text=fill_slots(text, {
                                                  "name": r["name"], "group": name,
                                                  "days": days}))))
        actions.append((RULE, RemoveMember(
            group_id=group_id, member_id=member_id, reason=f"{days} 天未发言",
            key=f"lurkers:{group_id}:{member_id}:{day}")))
        outbox.enqueue(conn, platform=group["platform"], actions=actions, capabilities=can,
                       key_prefix=f"lurkers:{group_id}:{member_id}:{day}", now=now)
    audit.record(conn, actor=actor.label, action="group.lurkers_removed", object_type="group",
                 object_id=group_id, detail={"days": days, "members": [
                     int(r["member_id"]) for r in removing], "skipped": skipped})
    return {"removing": removing, "skipped": skipped, "tasks": waiting, "dry_run": False}
