"""Group lifecycle (F7, F10): the one writer of a group's state.

A state moves by hand (``do_set_state``: only along the allowed transitions, with a reason)
or by the rules (``advance``, the worker's hourly round: a planned group whose join code
opened starts recruiting, a recruiting group at capacity or its start date turns active, an
active group quiet for days cools — a staff task says so — and a cooling group that
speaks again is active). Every move is one audited row (``group.state``) and sets
``state_since``, so the board can say how long a group has been where it is.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from qunyun.adapters.storage.tables import (
    groups,
    join_codes,
    memberships,
    messages,
)
from qunyun.analytics.health import group_health
from qunyun.analytics.overview import local_date
from qunyun.config import Settings
from qunyun.domain.groups import (
    PLACEHOLDER,
    GroupFacts,
    GroupState,
    GroupType,
    LifecycleError,
    Thresholds,
    automatic,
    check_transition,
    is_placeholder,
)
from qunyun.domain.staff import Permission
from qunyun.i18n import Terms, saying
from qunyun.i18n import fill as translate_fill
from qunyun.services import activities, audit, outbox, playbooks, tasks
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.groups import access_group_by_id, do_update_group
from qunyun.services.users import SYSTEM, Actor

TASK_KIND = "group_cooling"
RUNNING = (GroupState.PLANNED, GroupState.RECRUITING, GroupState.ACTIVE, GroupState.COOLING)


def do_set_state(conn: Connection, *, actor: Actor, group_id: int, state: str,
                 reason: str = "", now: datetime, tz: ZoneInfo | None = None
                 ) -> dict[str, Any]:
    """Move a group to ``state`` by hand: an unknown state is a 422, one the lifecycle does
    not allow from where the group is (closed → planned) a 409 that lists the allowed ones."""
    group = access_group_by_id(conn, actor=actor, group_id=group_id, write=True)
    if state not in {s.value for s in GroupState}:
        raise InvalidInput("state: one of {choices}", choices=Terms(
            "gstate", (s.value for s in GroupState)))
    if len(reason) > 500:
        raise InvalidInput("reason: at most 500 characters")
    try:
        target = check_transition(group["state"], state)
    except LifecycleError as exc:
        raise Conflict.wrap(exc) from None
    if target.value != group["state"]:
        _move(conn, group, target, why="by_hand", reason=reason.strip(), actor=actor.label,
              now=now, tz=tz)
    return access_group_by_id(conn, actor=actor, group_id=group_id)


def do_edit_group(conn: Connection, *, actor: Actor, group_id: int, changes: dict[str, Any],
                  state: str | None = None, reason: str = "", now: datetime,
                  tz: ZoneInfo | None = None) -> None:
    """Settings and a state move together, in the caller's one transaction (the CLI's
    ``edit`` and the API's PATCH): the move first, so a refused one keeps nothing."""
    if state is not None:
        do_set_state(conn, actor=actor, group_id=group_id, state=state, reason=reason,
                     now=now, tz=tz)
    if changes:
        do_update_group(conn, actor=actor, group_id=group_id, changes=changes, now=now)


def _move(conn: Connection, group: dict[str, Any], target: GroupState, *, why: str,
          reason: str, actor: str, now: datetime, values: dict[str, int] | None = None,
          tz: ZoneInfo | None = None) -> bool:
    """One move, once: the UPDATE holds only while the group is still where it was read.
    Playbooks triggered by the new state start their run in the group (``tz``: the team's
    time zone, for steps at a time of day)."""
    moved = conn.execute(update(groups).where(groups.c.id == group["id"],
                                              groups.c.state == group["state"])
                         .values(state=target.value, state_since=now, updated_at=now)).rowcount
    if not moved:
        return False
    audit.record(conn, actor=actor, action="group.state", object_type="group",
                 object_id=int(group["id"]), detail={
                     "from": group["state"], "to": target.value, "why": why,
                     "reason": reason})
    playbooks.start_runs(conn, group=group, state=target.value, now=now,
                         tz=tz or ZoneInfo(Settings.model_fields["timezone"].default))
    if target == GroupState.COOLING:
        name = group["name"] or group["external_id"]
        tasks.create_task(
            conn, kind=TASK_KIND, title=f"{name}：进入降温期，请安排激活",
            reason=reason, platform=group["platform"], group_id=int(group["id"]),
            payload={"says": {"title": saying("lifecycle.cooling_task", group=name),
                              "reason": saying(f"lifecycle.why.{why}", **values)
                              if values is not None else reason}},
            now=now, actor=actor)
    return True


def close_dissolved(conn: Connection, *, group: dict[str, Any], now: datetime) -> bool:
    """The dissolution SOP's last step: the group is closed (its history stays)."""
    return _move(conn, group, GroupState.CLOSED, why="dissolved", reason="", now=now,
                 actor=SYSTEM.label)


def do_advance(conn: Connection, *, actor: Actor, now: datetime, tz: ZoneInfo
               ) -> list[dict[str, Any]]:
    """The rules' round on demand (``qunyun groups advance``, the board's button)."""
    actor.require(Permission.OPERATE)
    return advance(conn, now=now, tz=tz)


def advance(conn: Connection, *, now: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The rules' round over every running group; returns the moves made."""
    rows = [dict(r) for r in conn.execute(select(groups).where(
        groups.c.state.in_([s.value for s in RUNNING]))).mappings()]
    if not rows:
        return []
    ids = [int(r["id"]) for r in rows]
    counts: dict[int, int] = dict(conn.execute(
        select(memberships.c.group_id, func.count()).where(
            memberships.c.group_id.in_(ids), memberships.c.left_at.is_(None))
        .group_by(memberships.c.group_id)).all())
    open_codes = {(p, str(c)) for p, chats in conn.execute(
        select(join_codes.c.platform, join_codes.c.chat_ids).where(
            join_codes.c.state == "active")) for c in chats or []}
    spoke = speakers_per_day(conn, ids, now=now, tz=tz, days=_longest(rows))
    moves: list[dict[str, Any]] = []
    for group in rows:
        thresholds = Thresholds.of(group["settings"])
        health = (_health(conn, int(group["id"]), thresholds.days, now=now, tz=tz)
                  if thresholds.health and group["state"] in JUDGED else None)
        facts = GroupFacts(
            state=group["state"], members=int(counts.get(group["id"], 0)),
            capacity=int(group["capacity"]),
            open_code=(group["platform"], group["external_id"]) in open_codes,
            speakers_per_day=_since(spoke[int(group["id"])], group, now, tz),
            starts_at=group["starts_at"], has_chat=not is_placeholder(group["external_id"]),
            health=health)
        decided = automatic(facts, thresholds, now)
        if decided is None:
            continue
        target, why = decided
        reason = _reason(why, thresholds)
        if _move(conn, group, target, why=why, reason=reason, actor=SYSTEM.label, now=now,
                 values=why_values(thresholds), tz=tz):
            moves.append({"group_id": int(group["id"]), "name": group["name"],
                          "from": group["state"], "to": target.value, "why": why,
                          "reason": reason, "values": why_values(thresholds)})
    return moves


JUDGED = (GroupState.ACTIVE.value, GroupState.COOLING.value)


def _health(conn: Connection, group_id: int, days: int, *, now: datetime, tz: ZoneInfo
            ) -> float | None:
    """The group's health score over its last ``days`` local days (the health report's)."""
    today = now.astimezone(tz).date()
    found = group_health(conn, tz=tz, group_id=group_id,
                         since=today - timedelta(days=days - 1), until=today, now=now)
    return found[0].score if found else None


def why_values(thresholds: Thresholds) -> dict[str, int]:
    """The numbers a rule's reason (``lifecycle.why.<why>``) names."""
    return {"days": thresholds.days, "speakers": thresholds.speakers,
            "recover_days": thresholds.recover_days, "health": thresholds.health}


def _reason(why: str, thresholds: Thresholds) -> str:
    """The reason as the team reads it (stored with the move; zh-CN, the team's default)."""
    return translate_fill(f"lifecycle.why.{why}", why_values(thresholds), "zh-CN")


def _longest(rows: list[dict[str, Any]]) -> int:
    return max(max(t.days, t.recover_days) for t in (Thresholds.of(r["settings"]) for r in rows))


def _since(per_day: dict[date, int], group: dict[str, Any], now: datetime, tz: ZoneInfo
           ) -> list[int]:
    """Speakers per local day, oldest first, ending today — from the day the group entered
    its state (a group just made active, or just recovered, is not judged on before)."""
    today = now.astimezone(tz).date()
    since = group["state_since"] or group["created_at"]
    first = since.astimezone(tz).date() if since is not None else today
    span = (today - first).days
    return [per_day.get(today - timedelta(days=back), 0) for back in range(span, -1, -1)]


def speakers_per_day(conn: Connection, group_ids: list[int], *, now: datetime, tz: ZoneInfo,
                     days: int) -> dict[int, dict[date, int]]:
    """How many members spoke in each group on each of the last ``days`` local days."""
    start = (now.astimezone(tz) - timedelta(days=days)).replace(hour=0, minute=0, second=0,
                                                               microsecond=0)
    day = local_date(conn, messages.c.sent_at, tz, (start, now)).label("day")
    per: dict[int, dict[date, int]] = defaultdict(dict)
    for gid, on, n in conn.execute(
            select(messages.c.group_id, day, func.count(func.distinct(messages.c.member_id)))
            .where(messages.c.group_id.in_(group_ids), messages.c.direction == "in",
                   messages.c.sent_at >= start, messages.c.sent_at <= now)
            .group_by(messages.c.group_id, day)):
        per[int(gid)][on if isinstance(on, date) else date.fromisoformat(str(on))] = int(n)
    return per


def board(conn: Connection, *, actor: Actor, now: datetime, tz: ZoneInfo
          ) -> list[dict[str, Any]]:
    """Groups by state, each with what needs doing, in the lifecycle's order."""
    actor.require(Permission.VIEW)
    rows = [dict(r) for r in conn.execute(select(
        groups.c.id, groups.c.name, groups.c.external_id, groups.c.platform, groups.c.state,
        groups.c.group_type, groups.c.capacity, groups.c.state_since, groups.c.starts_at,
        groups.c.created_at, groups.c.settings).order_by(groups.c.id)).mappings()]
    counts: dict[int, int] = dict(conn.execute(
        select(memberships.c.group_id, func.count()).where(memberships.c.left_at.is_(None))
        .group_by(memberships.c.group_id)).all())
    ids = [int(r["id"]) for r in rows if r["state"] in (GroupState.ACTIVE, GroupState.COOLING)]
    spoke = speakers_per_day(conn, ids, now=now, tz=tz, days=7) if ids else {}
    today = now.astimezone(tz).date()
    columns: dict[str, list[dict[str, Any]]] = {s.value: [] for s in GroupState}
    for r in rows:
        members = int(counts.get(r["id"], 0))
        since = r["state_since"] or r["created_at"]
        week = [spoke.get(int(r["id"]), {}).get(today - timedelta(days=b), 0)
                for b in range(6, -1, -1)]
        columns[r["state"]].append({
            "id": int(r["id"]), "name": r["name"] or r["external_id"],
            "platform": r["platform"], "group_type": r["group_type"], "members": members,
            "capacity": int(r["capacity"]), "since": since,
            "days_in_state": (now - since).days if since is not None else None,
            "speakers_week": week, "todo": _todo(r, members, week)})
    return [{"state": s.value, "groups": columns[s.value]} for s in GroupState]


def _todo(group: dict[str, Any], members: int, week: list[int]) -> str:
    """What the team should do next for this group, as a catalog id."""
    state = group["state"]
    if state == GroupState.PLANNED:
        return ("lifecycle.todo.link_chat" if is_placeholder(group["external_id"])
                else "lifecycle.todo.open_code")
    if state == GroupState.RECRUITING:
        return "lifecycle.todo.recruit"
    if state == GroupState.ACTIVE:
        thresholds = Thresholds.of(group["settings"])
        quiet = sum(1 for n in week if n < thresholds.speakers)
        return "lifecycle.todo.watch" if quiet >= 3 else "lifecycle.todo.none"
    if state == GroupState.COOLING:
        return "lifecycle.todo.revive"
    if state == GroupState.DISSOLVING:
        return "lifecycle.todo.dissolve"
    return "lifecycle.todo.none"


# --- planned groups (made before their chat exists) ----------------------------------------


def do_plan_group(conn: Connection, *, actor: Actor, platform: str, name: str,
                  group_type: str = GroupType.TEMPORARY.value, capacity: int = 200,
                  starts_at: datetime | None = None, now: datetime) -> dict[str, Any]:
    """A group planned ahead of a campaign: in the registry (type, capacity, start, tags,
    playbooks can be attached) before its chat exists; ``do_link_chat`` ties it to the chat
    later and keeps the plan."""
    actor.require(Permission.OPERATE)
    name = name.strip()
    if not name or len(name) > 255:
        raise InvalidInput("name: 1 to 255 characters")
    if not platform or len(platform) > 32:
        raise InvalidInput("platform: required")
    if group_type not in {t.value for t in GroupType}:
        raise InvalidInput("group_type: one of {choices}", choices=Terms(
            "gtype", (t.value for t in GroupType)))
    if not 2 <= capacity <= 2000:
        raise InvalidInput("capacity: between 2 and 2000")
    if starts_at is not None and starts_at.tzinfo is None:
        raise InvalidInput("starts_at: a date and time")
    group_id = int(conn.execute(groups.insert().values(
        platform=platform, external_id=f"{PLACEHOLDER}{secrets.token_hex(8)}", name=name,
        group_type=group_type, series="", capacity=capacity, state=GroupState.PLANNED.value,
        state_since=now, starts_at=starts_at, rules_text="", announcement="", settings={},
        created_at=now, updated_at=now).returning(groups.c.id)).scalar_one())
    audit.record(conn, actor=actor.label, action="group.plan", object_type="group",
                 object_id=group_id, detail={"platform": platform, "name": name})
    return access_group_by_id(conn, actor=actor, group_id=group_id)


_PLAN_FIELDS = ("group_type", "series", "capacity", "starts_at", "rules_text",
                "announcement")


def do_link_chat(conn: Connection, *, actor: Actor, group_id: int, chat_id: str,
                 now: datetime) -> dict[str, Any]:
    """Tie a planned group to its chat (the platform's id). A chat not seen yet simply
    becomes this group's; a chat already in the registry (the bot saw it first) takes the
    plan — its settings and playbooks, and the plan's state if the chat's group was never
    moved — and the placeholder goes. Returns the linked group."""
    plan = access_group_by_id(conn, actor=actor, group_id=group_id, write=True)
    chat_id = chat_id.strip()
    if not is_placeholder(plan["external_id"]):
        raise Conflict("group {group_id} is already linked to a chat", group_id=group_id)
    if not chat_id or len(chat_id) > 255 or is_placeholder(chat_id):
        raise InvalidInput("chat: the platform's id of the group chat")
    found = conn.execute(select(groups).where(groups.c.platform == plan["platform"],
                                              groups.c.external_id == chat_id)
                         ).mappings().first()
    if found is None:
        conn.execute(update(groups).where(groups.c.id == group_id)
                     .values(external_id=chat_id, updated_at=now))
        target = group_id
    else:
        target = int(found["id"])
        values: dict[str, Any] = {k: plan[k] for k in _PLAN_FIELDS}
        values["settings"] = {**(found["settings"] or {}), **(plan["settings"] or {})}
        if found["state_since"] is None and found["state"] == GroupState.ACTIVE.value:
            values.update(state=plan["state"], state_since=now)  # never moved: the plan's
        conn.execute(update(groups).where(groups.c.id == target).values(**values,
                                                                         updated_at=now))
        # what points at the plan now points at the chat's group, each table by its writer
        # (group_merges imports this module: its part is imported here)
        from qunyun.services import group_merges

        for service in (playbooks, activities, tasks, outbox, group_merges):
            service.repoint_group(conn, old=group_id, new=target)
        try:
            with conn.begin_nested():
                conn.execute(delete(groups).where(groups.c.id == group_id))
        except IntegrityError:  # something else already points at the plan (a sent message)
            raise Conflict("group {group_id} is in use; link it to a chat not seen yet, or "
                           "edit group {other} instead", group_id=group_id,
                           other=target) from None
    audit.record(conn, actor=actor.label, action="group.link", object_type="group",
                 object_id=target, detail={"chat": chat_id, "plan": group_id})
    return access_group_by_id(conn, actor=actor, group_id=target)
