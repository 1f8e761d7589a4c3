"""Merging members (F1): one person, two member rows → one, recorded so it can be undone.

The merge moves the source's rows to the target and remembers exactly which rows moved
(``member_merges.moved``); undo moves those rows back. Rows that would collide (a tag or an
attribute the target already has, an open membership in a group the target is in now) stay
with the source, so undo needs nothing but the recorded ids.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, func, or_, select, update

from qunyun.adapters.storage.sql import insert_ignore
from qunyun.adapters.storage.tables import (
    blacklist,
    identities,
    member_attributes,
    member_events,
    member_merges,
    member_tags,
    members,
    memberships,
    merge_dismissals,
    messages,
    service_records,
    tag_events,
)
from qunyun.clock import utcnow
from qunyun.domain.staff import Permission
from qunyun.services import audit, counts
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.members import STRONG_KINDS
from qunyun.services.users import Actor

# Tables whose rows carry the person's history; moved wholesale by id.
_BY_ID: dict[str, Table] = {
    "identities": identities, "messages": messages, "member_events": member_events,
    "tag_events": tag_events, "service_records": service_records, "blacklist": blacklist,
}
_MEMBER_FIELDS = ("display_name", "first_seen_at", "last_seen_at", "phone", "address")


def _member(conn: Connection, member_id: int) -> dict[str, Any]:
    row = conn.execute(select(members).where(members.c.id == member_id)).mappings().first()
    if row is None:
        raise NotFound("member {member_id} not found", member_id=member_id)
    if row["merged_into_id"] is not None:
        raise InvalidInput("member {number} was already merged into another member",
                           number=row['number'])
    return dict(row)


def _ids(conn: Connection, table: Table, member_id: int) -> list[int]:
    return [int(v) for v in conn.execute(select(table.c.id).where(
        table.c.member_id == member_id)).scalars()]


def _move(conn: Connection, table: Table, ids: list[int], to: int) -> None:
    for start in range(0, len(ids), 500):
        conn.execute(update(table).where(table.c.id.in_(ids[start:start + 500]))
                     .values(member_id=to))


def do_merge(conn: Connection, *, actor: Actor, source_id: int, target_id: int,
             reason: str = "") -> int:
    """Merge ``source`` into ``target``; returns the merge id (for undo)."""
    actor.require(Permission.OPERATE)
    if source_id == target_id:
        raise InvalidInput("a member cannot be merged into itself")
    source, target = _member(conn, source_id), _member(conn, target_id)
    moved: dict[str, Any] = {}
    for name, table in _BY_ID.items():
        moved[name] = _ids(conn, table, source_id)
        _move(conn, table, moved[name], target_id)

    target_open = set(conn.execute(select(memberships.c.group_id).where(
        memberships.c.member_id == target_id, memberships.c.left_at.is_(None))).scalars())
    moved["memberships"] = [int(r.id) for r in conn.execute(
        select(memberships.c.id, memberships.c.group_id, memberships.c.left_at)
        .where(memberships.c.member_id == source_id))
        if not (r.left_at is None and r.group_id in target_open)]
    _move(conn, memberships, moved["memberships"], target_id)

    target_tags = select(member_tags.c.tag_id).where(member_tags.c.member_id == target_id)
    moved["tags"] = [int(v) for v in conn.execute(select(member_tags.c.tag_id).where(
        member_tags.c.member_id == source_id, member_tags.c.tag_id.not_in(target_tags)))
        .scalars()]
    if moved["tags"]:
        conn.execute(update(member_tags).where(member_tags.c.member_id == source_id,
                                               member_tags.c.tag_id.in_(moved["tags"]))
                     .values(member_id=target_id))
    target_attrs = select(member_attributes.c.name).where(
        member_attributes.c.member_id == target_id)
    moved["attributes"] = list(conn.execute(select(member_attributes.c.name).where(
        member_attributes.c.member_id == source_id,
        member_attributes.c.name.not_in(target_attrs))).scalars())
    if moved["attributes"]:
        conn.execute(update(member_attributes).where(
            member_attributes.c.member_id == source_id,
            member_attributes.c.name.in_(moved["attributes"])).values(member_id=target_id))

    moved["target_before"] = {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                              for k, v in target.items() if k in _MEMBER_FIELDS}
    conn.execute(update(members).where(members.c.id == target_id).values(
        first_seen_at=min(source["first_seen_at"], target["first_seen_at"]),
        last_seen_at=max(source["last_seen_at"], target["last_seen_at"]),
        phone=target["phone"] or source["phone"],
        address=target["address"] or source["address"],
        display_name=target["display_name"] or source["display_name"]))
    conn.execute(update(members).where(members.c.id == source_id)
                 .values(merged_into_id=target_id))
    counts.recount(conn, [source_id, target_id])
    merge_id = int(conn.execute(member_merges.insert().values(
        source_member_id=source_id, target_member_id=target_id, at=utcnow(), by=actor.label,
        reason=reason, moved=moved).returning(member_merges.c.id)).scalar_one())
    audit.record(conn, actor=actor.label, action="member.merge", object_type="member",
                 object_id=target_id, detail={
                     "merge": merge_id, "source": source["number"], "target": target["number"],
                     "reason": reason,
                     "moved": {k: len(v) for k, v in moved.items() if isinstance(v, list)}})
    return merge_id


def do_undo_merge(conn: Connection, *, actor: Actor, merge_id: int) -> None:
    """Move back exactly what the merge moved; refused when the target was merged since."""
    actor.require(Permission.OPERATE)
    row = conn.execute(select(member_merges).where(member_merges.c.id == merge_id)).first()
    if row is None:
        raise NotFound("merge {merge_id} not found", merge_id=merge_id)
    if row.undone_at is not None:
        raise Conflict("this merge was already undone")
    target = conn.execute(select(members).where(
        members.c.id == row.target_member_id)).mappings().one()
    if target["merged_into_id"] is not None:
        raise Conflict("the target was merged again since: undo that merge first")
    source_id, target_id, moved = row.source_member_id, row.target_member_id, row.moved
    for name, table in {**_BY_ID, "memberships": memberships}.items():
        _move(conn, table, moved.get(name, []), source_id)
    if moved.get("tags"):
        conn.execute(update(member_tags).where(member_tags.c.member_id == target_id,
                                               member_tags.c.tag_id.in_(moved["tags"]))
                     .values(member_id=source_id))
    if moved.get("attributes"):
        conn.execute(update(member_attributes).where(
            member_attributes.c.member_id == target_id,
            member_attributes.c.name.in_(moved["attributes"])).values(member_id=source_id))
    before = dict(moved.get("target_before", {}))
    for key in ("first_seen_at", "last_seen_at"):
        if key in before:
            before[key] = datetime.fromisoformat(before[key])
    if before:
        conn.execute(update(members).where(members.c.id == target_id).values(**before))
    conn.execute(update(members).where(members.c.id == source_id).values(merged_into_id=None))
    counts.recount(conn, [source_id, target_id])
    conn.execute(update(member_merges).where(member_merges.c.id == merge_id)
                 .values(undone_at=utcnow(), undone_by=actor.label))
    audit.record(conn, actor=actor.label, action="member.unmerge", object_type="member",
                 object_id=target_id, detail={"merge": merge_id, "source": source_id})


def list_merges(conn: Connection, *, actor: Actor, member_id: int | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    src, tgt = members.alias("src"), members.alias("tgt")
    stmt = (select(member_merges.c.id, member_merges.c.at, member_merges.c.by,
                   member_merges.c.reason, member_merges.c.undone_at,
                   member_merges.c.source_member_id, member_merges.c.target_member_id,
                   src.c.number.label("source_number"), tgt.c.number.label("target_number"))
            .join(src, src.c.id == member_merges.c.source_member_id)
            .join(tgt, tgt.c.id == member_merges.c.target_member_id)
            .order_by(member_merges.c.id.desc()).limit(limit))
    if member_id is not None:
        stmt = stmt.where(or_(member_merges.c.source_member_id == member_id,
                              member_merges.c.target_member_id == member_id))
    return [dict(r) for r in conn.execute(stmt).mappings()]


# ---- suggestions ----------------------------------------------------------------------

def merge_suggestions(conn: Connection, *, actor: Actor, limit: int = 100
                      ) -> list[dict[str, Any]]:
    """Pairs that look like one person, with the reason: same phone, same union id or wxid
    on two platforms, or a nickname-only identity named like a member of the same group."""
    actor.require(Permission.VIEW)
    a, b = members.alias("a"), members.alias("b")
    live = and_(a.c.merged_into_id.is_(None), b.c.merged_into_id.is_(None))
    pairs: dict[tuple[int, int], list[str]] = {}

    def add(rows: Any, reason: str) -> None:
        for x, y in rows:
            key = (min(x, y), max(x, y))
            pairs.setdefault(key, [])
            if reason not in pairs[key]:
                pairs[key].append(reason)

    add(conn.execute(select(a.c.id, b.c.id).join(b, and_(a.c.phone == b.c.phone, a.c.id < b.c.id))
                     .where(a.c.phone != "", live).limit(limit)), "phone")
    i1, i2 = identities.alias("i1"), identities.alias("i2")
    add(conn.execute(
        select(i1.c.member_id, i2.c.member_id)
        .join(i2, and_(i1.c.kind == i2.c.kind, i1.c.external_id == i2.c.external_id,
                       i1.c.member_id < i2.c.member_id))
        .join(a, a.c.id == i1.c.member_id).join(b, b.c.id == i2.c.member_id)
        .where(i1.c.kind.in_(STRONG_KINDS), live).limit(limit)), "same_id")
    m1, m2 = memberships.alias("m1"), memberships.alias("m2")
    add(conn.execute(
        select(a.c.id, b.c.id).distinct()
        .join(i1, and_(i1.c.member_id == a.c.id, i1.c.weak.is_(True)))
        .join(b, and_(b.c.display_name == i1.c.display_name, b.c.id != a.c.id))
        .join(m1, m1.c.member_id == a.c.id)
        .join(m2, and_(m2.c.member_id == b.c.id, m2.c.group_id == m1.c.group_id))
        .where(live, i1.c.display_name != "").limit(limit)), "nickname_in_group")

    dismissed = {(int(r.member_a), int(r.member_b))
                 for r in conn.execute(select(merge_dismissals))}
    keys = [k for k in sorted(pairs) if k not in dismissed][:limit]
    if not keys:
        return []
    ids = {i for k in keys for i in k}
    info = {r.id: dict(r._mapping) for r in conn.execute(
        select(members.c.id, members.c.number, members.c.display_name, members.c.last_seen_at,
               func.count(memberships.c.id).label("groups"))
        .outerjoin(memberships, memberships.c.member_id == members.c.id)
        .where(members.c.id.in_(ids)).group_by(members.c.id))}
    return [{"a": info[x], "b": info[y], "reasons": pairs[(x, y)]} for x, y in keys]


def do_dismiss_suggestion(conn: Connection, *, actor: Actor, member_a: int,
                          member_b: int) -> None:
    actor.require(Permission.OPERATE)
    low, high = min(member_a, member_b), max(member_a, member_b)
    if low == high:
        raise InvalidInput("member_b: a different member than member_a")
    found = set(conn.execute(select(members.c.id).where(members.c.id.in_((low, high))))
                .scalars())
    if missing := sorted({low, high} - found):
        raise NotFound("member {missing} not found", missing=missing[0])
    insert_ignore(conn, merge_dismissals, {"member_a": low, "member_b": high, "at": utcnow(),
                                           "by": actor.label}, ["member_a", "member_b"])
    audit.record(conn, actor=actor.label, action="member.merge_dismiss", object_type="member",
                 object_id=low, detail={"other": high})
