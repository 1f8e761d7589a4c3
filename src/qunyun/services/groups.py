"""Group registry (F7): upsert from events, list, read, edit settings (its state is the
lifecycle's: services/lifecycle.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from qunyun.adapters.storage.sql import insert_ignore
from qunyun.adapters.storage.tables import groups, members, memberships, messages
from qunyun.domain.events import ChatRef
from qunyun.domain.groups import GroupState, GroupType, next_states
from qunyun.domain.staff import Permission
from qunyun.i18n import Terms
from qunyun.services import audit
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.listing import Columns, Listing, Page, fetch
from qunyun.services.members import staff_among
from qunyun.services.users import Actor

# a group's state is not here: only the lifecycle moves it (services/lifecycle.py)
EDITABLE = ("name", "group_type", "series", "capacity", "rules_text", "announcement",
            "welcome_template", "tags", "starts_at", "cooling_speakers", "cooling_days",
            "cooling_health")
_LIFECYCLE = {"cooling_speakers": ("speakers", 1, 500), "cooling_days": ("days", 1, 90),
              "cooling_health": ("health", 0, 100)}


_GROUP_BY_KEY = select(groups.c.id, groups.c.name).where(
    groups.c.platform == bindparam("platform"), groups.c.external_id == bindparam("external_id"))
_RENAME_GROUP = (update(groups).where(groups.c.id == bindparam("group_id"))
                 .values(name=bindparam("new_name"), updated_at=bindparam("at")))


def upsert_group(conn: Connection, *, platform: str, chat: ChatRef, at: datetime) -> int:
    """The group's id, creating it on first sight; a non-empty name refreshes the stored one."""
    row = conn.execute(_GROUP_BY_KEY, {"platform": platform,
                                       "external_id": chat.external_id}).first()
    if row is None:  # look first: nearly every event names a group we already have
        new_id = insert_ignore(conn, groups, {
            "platform": platform, "external_id": chat.external_id, "name": chat.name,
            "group_type": GroupType.LONG_TERM.value, "series": "", "capacity": 500,
            "state": GroupState.ACTIVE.value, "rules_text": "", "announcement": "",
            "settings": {}, "created_at": at, "updated_at": at,
        }, ["platform", "external_id"])
        if new_id is not None:
            return int(new_id)
        row = conn.execute(_GROUP_BY_KEY, {"platform": platform,
                                           "external_id": chat.external_id}).one()
    if chat.name and chat.name != row.name:
        conn.execute(_RENAME_GROUP, {"group_id": row.id, "new_name": chat.name, "at": at})
    return int(row.id)


def move_group(conn: Connection, *, platform: str, old: str, new: str, at: datetime) -> bool:
    """The platform gave a group a new id (a Telegram group upgraded to a supergroup): the
    same qunyun group from now on, with its members and history. False when the old id is
    unknown or the new one already names another group (then both stay as they are)."""
    taken = conn.execute(_GROUP_BY_KEY, {"platform": platform, "external_id": new}).first()
    if taken is not None:
        return False
    moved = conn.execute(update(groups).where(groups.c.platform == platform,
                                              groups.c.external_id == old)
                         .values(external_id=new, updated_at=at))
    if moved.rowcount:
        audit.record(conn, actor="system", action="group.move", object_type="group",
                     object_id=new, detail={"platform": platform, "from": old})
    return bool(moved.rowcount)


def _current_members() -> Any:
    return (select(memberships.c.group_id, func.count().label("n"))
            .where(memberships.c.left_at.is_(None)).group_by(memberships.c.group_id)
            .subquery())


def list_groups(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    current = _current_members()
    msg = (select(messages.c.group_id, func.count().label("n"),
                  func.max(messages.c.sent_at).label("last"))
           .where(messages.c.direction == "in").group_by(messages.c.group_id).subquery())
    rows = conn.execute(
        select(groups.c.id, groups.c.platform, groups.c.external_id, groups.c.name,
               groups.c.group_type, groups.c.state, groups.c.capacity,
               func.coalesce(current.c.n, 0).label("members"),
               func.coalesce(msg.c.n, 0).label("messages"), msg.c.last.label("last_message_at"))
        .outerjoin(current, current.c.group_id == groups.c.id)
        .outerjoin(msg, msg.c.group_id == groups.c.id)
        .order_by(groups.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def access_group_by_id(conn: Connection, *, actor: Actor, group_id: int,
                       write: bool = False) -> dict[str, Any]:
    """The one way a staff request reaches a group: role check, then fetch or 404."""
    actor.require(Permission.OPERATE if write else Permission.VIEW)
    row = conn.execute(select(groups).where(groups.c.id == group_id)).mappings().first()
    if row is None:
        raise NotFound("group {group_id} not found", group_id=group_id)
    return dict(row)


def get_group_detail(conn: Connection, *, actor: Actor, group_id: int) -> dict[str, Any]:
    data = access_group_by_id(conn, actor=actor, group_id=group_id)
    data["members"] = page_group_members(conn, actor=actor, group_id=group_id,
                                         listing=Listing(per_page=200)).rows
    data["next_states"] = next_states(data["state"])
    data["member_count"] = conn.execute(
        select(func.count()).select_from(memberships)
        .where(memberships.c.group_id == group_id, memberships.c.left_at.is_(None))).scalar_one()
    data["recent_messages"] = [dict(r) for r in conn.execute(
        select(messages.c.id, messages.c.sent_at, messages.c.direction, messages.c.text,
               messages.c.message_type, messages.c.recalled, members.c.display_name)
        .outerjoin(members, members.c.id == messages.c.member_id)
        .where(messages.c.group_id == group_id)
        .order_by(messages.c.sent_at.desc(), messages.c.id.desc()).limit(50)).mappings()]
    return data


GROUP_MEMBER_COLUMNS = Columns(
    sortable={"joined_at": (memberships.c.joined_at, "desc"),
              "number": (members.c.number, "asc"), "name": (members.c.display_name, "asc"),
              "channel": (memberships.c.channel, "asc"),
              "last_seen": (members.c.last_seen_at, "desc")},
    searched=(members.c.display_name, memberships.c.channel), number=members.c.number,
    tiebreak=members.c.number.asc())


def page_group_members(conn: Connection, *, actor: Actor, group_id: int,
                       listing: Listing = Listing()) -> Page:
    """Who is in the group now (the latest joins first), searched by name, number or
    channel, each marked when they are staff."""
    actor.require(Permission.VIEW)
    stmt = (select(members.c.id, members.c.number, members.c.display_name,
                   members.c.last_seen_at, memberships.c.joined_at, memberships.c.join_scene,
                   memberships.c.channel)
            .join(memberships, memberships.c.member_id == members.c.id)
            .where(memberships.c.group_id == group_id, memberships.c.left_at.is_(None)))

    def mark(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        staff = staff_among(conn, [int(r["id"]) for r in rows])
        return [{**r, "staff": int(r["id"]) in staff} for r in rows]

    return fetch(conn, stmt, listing, GROUP_MEMBER_COLUMNS, mark)


def do_update_group(conn: Connection, *, actor: Actor, group_id: int,
                    changes: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Edit registry fields and the welcome template; validates every field first."""
    group = access_group_by_id(conn, actor=actor, group_id=group_id, write=True)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput("unknown fields: {unknown}", unknown=', '.join(sorted(unknown)))
    values: dict[str, Any] = {}
    settings = dict(group["settings"] or {})
    for key, value in changes.items():
        if key == "group_type" and value not in GroupType.__members__.values():
            raise InvalidInput("group_type: one of {choices}", choices=Terms(
                "gtype", (t.value for t in GroupType)))
        if key == "starts_at":  # aware, or empty to clear (the caller reads local times)
            if value not in (None, "") and not (isinstance(value, datetime)
                                                and value.tzinfo is not None):
                raise InvalidInput("starts_at: a date and time")
            values[key] = value or None
            continue
        if key in _LIFECYCLE:
            name, low, high = _LIFECYCLE[key]
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise InvalidInput("{field}: a whole number", field=key) from None
            if not low <= number <= high:
                raise InvalidInput("{field}: between {low} and {high}", field=key, low=low,
                                   high=high)
            settings["lifecycle"] = {**settings.get("lifecycle", {}), name: number}
            continue
        if key == "capacity":
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise InvalidInput("capacity: a whole number") from None
            if not 2 <= value <= 2000:
                raise InvalidInput("capacity: between 2 and 2000")
        if key == "welcome_template":
            settings["welcome_template"] = str(value)
            continue
        if key == "tags":  # group tags: playbooks and broadcasts can target them
            items = value.replace("，", ",").split(",") if isinstance(value, str) else value
            tags = list(dict.fromkeys(str(t).strip() for t in items or [] if str(t).strip()))
            if any(len(t) > 32 for t in tags) or len(tags) > 20:
                raise InvalidInput("tags: at most 20 tags of at most 32 characters")
            settings["tags"] = tags
            continue
        values[key] = value
    values["settings"] = settings
    values["updated_at"] = now
    conn.execute(update(groups).where(groups.c.id == group_id).values(**values))
    audit.record(conn, actor=actor.label, action="group.update", object_type="group",
                 object_id=group_id, detail={"changes": {
                     k: v.isoformat() if isinstance(v, datetime) else v
                     for k, v in changes.items()}})
    return access_group_by_id(conn, actor=actor, group_id=group_id)
