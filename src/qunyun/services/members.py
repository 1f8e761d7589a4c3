"""Members and their platform identities (F1, first cut: resolve or create, list, read)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, exists, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from qunyun.adapters.storage.sql import increment_counter, insert_ignore
from qunyun.adapters.storage.tables import (
    counters,
    group_roles,
    groups,
    identities,
    member_tags,
    members,
    memberships,
    tags,
)
from qunyun.clock import Clock
from qunyun.domain.events import PersonRef
from qunyun.domain.staff import Permission
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.listing import Columns, Listing, Page, fetch
from qunyun.services.users import Actor

MEMBER_NUMBER_COUNTER = "member_number"
# identity kinds that name one person for sure (merge suggestions, spreadsheet keys)
UNIONID_KINDS = ("unionid", "union_id")
WXID_KINDS = ("wxid",)
STRONG_KINDS = UNIONID_KINDS + WXID_KINDS
FIRST_MEMBER_NUMBER = 10001


@dataclass(frozen=True, slots=True)
class ResolvedMember:
    id: int
    number: int
    name: str
    created: bool


def shown_name(display_name: str | None, number: int) -> str:
    """What a person reads for a member: their nickname, or 会员<number> when they have none
    (one spelling for greetings, progress messages, queues and reports)."""
    return str(display_name or f"会员{number}")


def next_member_number(conn: Connection) -> int:
    """Take the next member number; the counter row makes numbers gap-free and never reused."""
    return increment_counter(conn, counters, MEMBER_NUMBER_COUNTER,
                             start=FIRST_MEMBER_NUMBER - 1)


def current_member_number(conn: Connection) -> int:
    """The last member number handed out (10000 before the first member)."""
    value = conn.execute(select(counters.c.value)
                         .where(counters.c.name == MEMBER_NUMBER_COUNTER)).scalar()
    return int(value) if value is not None else FIRST_MEMBER_NUMBER - 1


# Built once: resolving a member runs for every event, and building a statement object
# (coercions, cache keys) cost more than executing it on SQLite.
_FIND_MEMBER = (
    select(members.c.id, members.c.number, members.c.display_name, members.c.merged_into_id,
           identities.c.id.label("identity_id"),
           identities.c.display_name.label("identity_name"),
           identities.c.staff.label("identity_staff"))
    .join(identities, identities.c.member_id == members.c.id)
    .where(identities.c.platform == bindparam("platform"),
           identities.c.kind == bindparam("kind"),
           identities.c.external_id == bindparam("external_id")))
_RENAME_IDENTITY = (update(identities).where(identities.c.id == bindparam("identity_id"))
                    .values(display_name=bindparam("name")))
_MARK_STAFF = (update(identities).where(identities.c.id == bindparam("identity_id"))
               .values(staff=True))
_RENAME_MEMBER = (update(members).where(members.c.id == bindparam("member_id"))
                  .values(display_name=bindparam("name")))
_SEEN = (update(members).where(members.c.id == bindparam("member_id"),
                               members.c.last_seen_at < bindparam("at"))
         .values(last_seen_at=bindparam("at")))
_NEW_MEMBER = members.insert().returning(members.c.id)


def resolve_member(conn: Connection, *, platform: str, ref: PersonRef, at: datetime,
                   seen: dict[int, datetime] | None = None) -> ResolvedMember:
    """The member behind a platform identity, created (with a new number) on first sight.
    ``seen``: collects when known members were seen, for ``note_seen_many`` to write once
    for a batch of events instead of once per event."""
    row = conn.execute(_FIND_MEMBER, {"platform": platform, "kind": ref.kind,
                                      "external_id": ref.external_id}).first()
    if row is not None:
        member_id = row.merged_into_id or row.id
        name = row.display_name
        if ref.name and ref.name != row.identity_name:
            conn.execute(_RENAME_IDENTITY, {"identity_id": row.identity_id, "name": ref.name})
            conn.execute(_RENAME_MEMBER, {"member_id": member_id, "name": ref.name})
            name = ref.name
        if ref.staff and not row.identity_staff:  # staff once seen as a customer
            conn.execute(_MARK_STAFF, {"identity_id": row.identity_id})
        if seen is None:
            conn.execute(_SEEN, {"member_id": member_id, "at": at})
        elif member_id not in seen or seen[member_id] < at:
            seen[member_id] = at
        return ResolvedMember(member_id, row.number, name, created=False)
    number = next_member_number(conn)
    member_id = conn.execute(_NEW_MEMBER, {
        "number": number, "display_name": ref.name, "created_at": at, "first_seen_at": at,
        "last_seen_at": at}).scalar_one()
    conn.execute(identities.insert(), {
        "member_id": member_id, "platform": platform, "kind": ref.kind,
        "external_id": ref.external_id, "display_name": ref.name, "weak": ref.weak,
        "staff": ref.staff,
        "created_at": at})
    return ResolvedMember(member_id, number, ref.name, created=True)


def note_seen_many(conn: Connection, seen: Mapping[int, datetime]) -> None:
    """Members seen (member → when), in one executemany; a later time already stored stays."""
    if seen:
        conn.execute(_SEEN, [{"member_id": m, "at": at} for m, at in seen.items()])


def find_identity(conn: Connection, *, platform: str, kind: str, external_id: str) -> int | None:
    """The member an identity belongs to, or None."""
    value = conn.execute(select(identities.c.member_id).where(
        identities.c.platform == platform, identities.c.kind == kind,
        identities.c.external_id == external_id)).scalar()
    return None if value is None else int(value)


def attach_identity(conn: Connection, *, member_id: int, platform: str, ref: PersonRef,
                    at: datetime) -> bool:
    """Give a member one more identity; False when that identity already belongs to someone."""
    inserted = insert_ignore(conn, identities, {
        "member_id": member_id, "platform": platform, "kind": ref.kind,
        "external_id": ref.external_id, "display_name": ref.name, "weak": ref.weak,
        "staff": ref.staff,
        "created_at": at}, ["platform", "kind", "external_id"])
    return inserted is not None


MEMBER_COLUMNS = Columns(
    sortable={"number": (members.c.number, "asc"), "name": (members.c.display_name, "asc"),
              "last_seen": (members.c.last_seen_at, "desc"),
              "first_seen": (members.c.first_seen_at, "desc")},
    searched=(members.c.display_name,), number=members.c.number, tiebreak=members.c.id.asc())
WHO = ("", "staff", "customers")


def page_members(conn: Connection, *, actor: Actor, listing: Listing = Listing(),
                 who: str = "", segment: str = "", clock: Clock | None = None) -> Page:
    """Members by name or number, sorted and paged, with their groups, tags, channel and
    whether they are staff; ``who`` keeps only staff or only customers, ``segment`` (an
    expression, read at ``clock``) only the members it selects."""
    actor.require(Permission.VIEW)
    if who not in WHO:
        raise InvalidInput("who: staff or customers, not {who!r}", who=who)
    stmt = select(
        members.c.id, members.c.number, members.c.display_name, members.c.first_seen_at,
        members.c.last_seen_at,
    ).where(members.c.merged_into_id.is_(None))
    if segment.strip():
        # segments → attributes → members: read at call time, not at import
        from qunyun.services import segments

        if clock is None:
            raise TypeError("page_members: a segment needs the clock it is read at")
        stmt = stmt.where(segments.compile_node(segments.parse_for(conn, actor, segment),
                                                clock))
    if who:
        staff = _is_staff(conn)
        stmt = stmt.where(staff if who == "staff" else ~staff)
    return fetch(conn, stmt, listing, MEMBER_COLUMNS, lambda rows: with_context(conn, rows))


def _group_staff(conn: Connection) -> set[int]:
    """Group owners, the admins each group's settings name, and whoever holds a role the
    team gave them in a group (presenter, expert, atmosphere, advisor)."""
    found: set[int] = {int(m) for m in conn.execute(
        select(group_roles.c.member_id).distinct()).scalars()}
    for g in conn.execute(select(groups.c.owner_member_id, groups.c.settings)):
        if g.owner_member_id is not None:
            found.add(int(g.owner_member_id))
        found.update(int(i) for i in (g.settings or {}).get("admins", []) if str(i).isdigit())
    return found


def _is_staff(conn: Connection) -> ColumnElement[bool]:
    """A member is staff when a platform said so of one of their identities, or when they
    own or administer a group."""
    flagged = exists().where(identities.c.member_id == members.c.id, identities.c.staff)
    return or_(flagged, members.c.id.in_(_group_staff(conn) or {-1}))


def staff_among(conn: Connection, ids: list[int]) -> set[int]:
    """Which of these members are staff (see ``_is_staff``)."""
    flagged = {int(i) for i in conn.execute(
        select(identities.c.member_id).where(identities.c.member_id.in_(ids),
                                             identities.c.staff)).scalars()}
    return flagged | (_group_staff(conn) & set(ids))


def with_context(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each member's current groups, tags, the channel of the latest join that came through
    one and whether they are staff (what an operator scans a member list for)."""
    ids = [int(r["id"]) for r in rows]
    if not ids:
        return rows
    in_groups: dict[int, list[str]] = {}
    channel: dict[int, str] = {}
    for r in conn.execute(
            select(memberships.c.member_id, groups.c.name, memberships.c.channel,
                   memberships.c.left_at)
            .join(groups, groups.c.id == memberships.c.group_id)
            .where(memberships.c.member_id.in_(ids))
            .order_by(memberships.c.joined_at)):
        if r.left_at is None:
            in_groups.setdefault(int(r.member_id), []).append(str(r.name))
        if r.channel:
            channel[int(r.member_id)] = str(r.channel)  # the latest join's wins
    tagged: dict[int, list[str]] = {}
    for t in conn.execute(select(member_tags.c.member_id, tags.c.name)
                          .join(tags, tags.c.id == member_tags.c.tag_id)
                          .where(member_tags.c.member_id.in_(ids))
                          .order_by(tags.c.name)):
        tagged.setdefault(int(t.member_id), []).append(str(t.name))
    staff = staff_among(conn, ids)
    for row in rows:
        member_id = int(row["id"])
        row["staff"] = member_id in staff
        row["groups"] = in_groups.get(member_id, [])
        row["tags"] = tagged.get(member_id, [])
        row["channel"] = channel.get(member_id, "")
    return rows


def count_members(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(members)
                            .where(members.c.merged_into_id.is_(None))).scalar_one())


def access_member_by_id(conn: Connection, *, actor: Actor, member_id: int) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    row = conn.execute(select(members).where(members.c.id == member_id)).mappings().first()
    if row is None:
        raise NotFound("member {member_id} not found", member_id=member_id)
    data = dict(row)
    data["identities"] = [dict(r) for r in conn.execute(
        select(identities.c.platform, identities.c.kind, identities.c.external_id,
               identities.c.display_name, identities.c.weak)
        .where(identities.c.member_id == member_id)).mappings()]
    data["memberships"] = [dict(r) for r in conn.execute(
        select(memberships).where(memberships.c.member_id == member_id)
        .order_by(memberships.c.joined_at)).mappings()]
    return data


def member_id_by_number(conn: Connection, number: int | str) -> int:
    """The live member behind a member number; a merged-away number names where it went."""
    if not str(number).isdigit():
        raise InvalidInput("member number: digits, not {number!r}", number=number)
    row = conn.execute(select(members.c.id, members.c.merged_into_id)
                       .where(members.c.number == int(number))).first()
    if row is None:
        raise NotFound("member {number} not found", number=number)
    if row.merged_into_id is not None:
        target = conn.execute(select(members.c.number)
                              .where(members.c.id == row.merged_into_id)).scalar()
        raise InvalidInput("member {number} was merged into member {target}",
                           number=number, target=target)
    return int(row.id)
