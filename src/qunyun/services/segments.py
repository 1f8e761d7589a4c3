"""Segments (F5): compile the segment language to one SQL statement; save, count, list.

Every condition becomes ``members.id IN (subquery)`` (or ``NOT IN``), so the same statement
runs on SQLite and PostgreSQL and the planner can hash each subquery once. Counting
conditions that zero satisfies (``messages < 3``) are compiled as "not among those whose
count fails", so members with no rows at all are included.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    false,
    func,
    not_,
    or_,
    select,
    true,
    update,
)

from qunyun.adapters.storage.tables import (
    blacklist,
    groups,
    lead_lists,
    member_attributes,
    member_counts,
    member_events,
    member_tags,
    members,
    memberships,
    messages,
    segments,
    tags,
)
from qunyun.clock import Clock, utcnow
from qunyun.domain.segments import (
    AllOf,
    AnyOf,
    Condition,
    Node,
    Not,
    SegmentError,
    attribute_names,
    describe,
    parse_segment,
)
from qunyun.domain.staff import Permission
from qunyun.services import attributes, audit
from qunyun.services.counts import MESSAGE
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.users import Actor

_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
    "<": operator.lt, "<=": operator.le,
}




def parse(expression: str) -> Node:
    """Parse for a service: a SegmentError becomes InvalidInput naming the column."""
    try:
        return parse_segment(expression)
    except SegmentError as exc:
        raise InvalidInput("segment: {exc}", exc=exc) from None


def _text_match(column: Any, op: str, value: str) -> ColumnElement[bool]:
    if op == "~":
        return column.contains(value, autoescape=True)  # type: ignore[no-any-return]
    return column == value  # type: ignore[no-any-return]


def _member_in(subquery: Select[Any], negate: bool) -> ColumnElement[bool]:
    return members.c.id.not_in(subquery) if negate else members.c.id.in_(subquery)


def _tag_ids(op: str, value: str) -> Select[Any]:
    if op == "~":
        return select(tags.c.id).where(tags.c.name.contains(value, autoescape=True))
    group, _, name = value.rpartition("/")
    stmt = select(tags.c.id).where(tags.c.name == name)
    return stmt.where(tags.c.tag_group == group) if group else stmt


def _time_condition(column: Any, cond: Condition, clock: Clock) -> ColumnElement[bool]:
    """Dates mean the team's local days: ``>= 2026-01-01`` starts at local midnight."""
    value = cond.value
    op = cond.op or "="
    if isinstance(value, timedelta):
        instant = clock.now - value
        if op in ("=", "!="):
            value = instant.astimezone(clock.tz).date()
        else:
            return _CMP[op](column, instant)  # type: ignore[no-any-return]
    assert isinstance(value, date)
    start, end = clock.day_start(value), clock.day_start(value + timedelta(days=1))
    match op:
        case "=":
            return and_(column >= start, column < end)
        case "!=":
            return or_(column < start, column >= end)
        case ">":
            return column >= end  # type: ignore[no-any-return]
        case ">=":
            return column >= start  # type: ignore[no-any-return]
        case "<":
            return column < start  # type: ignore[no-any-return]
        case _:
            return column < end  # type: ignore[no-any-return]


def _threshold(cond: Condition,
               members_where: Callable[[Callable[[Any], Any]], Select[Any]]
               ) -> ColumnElement[bool]:
    """Members whose count satisfies ``cond``. ``members_where(test)`` selects the member ids
    whose count passes ``test``. When zero satisfies the condition (``messages < 3``) it is
    compiled as "not among those whose count fails", so members with no rows count too."""
    assert isinstance(cond.value, float) and cond.op is not None
    compare, value = _CMP[cond.op], cond.value
    zero_passes = bool(compare(0, value))
    if zero_passes:
        return _member_in(members_where(lambda n: not_(compare(n, value))), negate=True)
    return _member_in(members_where(lambda n: compare(n, value)), negate=False)


def _count_condition(table: Any, time_column: Any, where: list[Any], cond: Condition,
                     clock: Clock) -> ColumnElement[bool]:
    """A count over the rows themselves (windowed conditions)."""
    filters = [table.c.member_id.is_not(None), *where]
    if cond.window is not None:
        filters.append(time_column >= clock.now - cond.window)
    return _threshold(cond, lambda test: select(table.c.member_id).where(*filters)
                      .group_by(table.c.member_id).having(test(func.count())))


def _total_condition(kind: str, cond: Condition) -> ColumnElement[bool]:
    """An all-time count, read from the per-member totals (an index range on (kind, n))."""
    return _threshold(cond, lambda test: select(member_counts.c.member_id).where(
        member_counts.c.kind == kind, test(member_counts.c.n)))


def _condition(cond: Condition, clock: Clock) -> ColumnElement[bool]:
    op, value = cond.op, cond.value
    match cond.field:
        case "tag":
            assert isinstance(value, str) and op is not None
            sub = select(member_tags.c.member_id).where(
                member_tags.c.tag_id.in_(_tag_ids("=" if op == "!=" else op, value)))
            return _member_in(sub, negate=op == "!=")
        case "group" | "current_group" | "series":
            assert isinstance(value, str) and op is not None
            column = groups.c.series if cond.field == "series" else groups.c.name
            sub = (select(memberships.c.member_id)
                   .join(groups, groups.c.id == memberships.c.group_id)
                   .where(_text_match(column, "=" if op == "!=" else op, value)))
            if cond.field == "current_group":
                sub = sub.where(memberships.c.left_at.is_(None))
            return _member_in(sub, negate=op == "!=")
        case "channel":
            assert isinstance(value, str) and op is not None
            sub = select(memberships.c.member_id).where(
                _text_match(memberships.c.channel, "=" if op == "!=" else op, value))
            return _member_in(sub, negate=op == "!=")
        case "joined":
            sub = select(memberships.c.member_id).where(
                _time_condition(memberships.c.joined_at, cond, clock))
            return members.c.id.in_(sub)
        case "first_seen":
            return _time_condition(members.c.first_seen_at, cond, clock)
        case "last_seen":
            return _time_condition(members.c.last_seen_at, cond, clock)
        case "messages" if cond.window is None:
            return _total_condition(MESSAGE, cond)
        case "events" if cond.window is None:
            return _total_condition(cond.key, cond)
        case "messages":
            return _count_condition(messages, messages.c.sent_at,
                                    [messages.c.direction == "in"], cond, clock)
        case "events":
            return _count_condition(member_events, member_events.c.occurred_at,
                                    [member_events.c.kind == cond.key], cond, clock)
        case "attr":
            assert op is not None
            positive = "=" if op == "!=" else op
            if isinstance(value, float):
                test = _CMP[positive](member_attributes.c.value_num, value)
            else:
                assert isinstance(value, str)
                test = _text_match(member_attributes.c.value_text, positive, value)
            sub = select(member_attributes.c.member_id).where(
                member_attributes.c.name == cond.key, test)
            return _member_in(sub, negate=op == "!=")
        case "said":
            assert isinstance(value, str)
            filters = [messages.c.member_id.is_not(None), messages.c.direction == "in",
                       messages.c.text.contains(value, autoescape=True)]
            if cond.window is not None:
                filters.append(messages.c.sent_at >= clock.now - cond.window)
            return members.c.id.in_(select(messages.c.member_id).where(*filters))
        case "number":
            assert op is not None
            return _CMP[op](members.c.number, int(value))  # type: ignore[arg-type,no-any-return]
        case "blacklisted":
            return members.c.id.in_(select(blacklist.c.member_id).where(
                active_blacklist(clock.now)))
        case "has_phone":
            return members.c.phone != ""
    raise InvalidInput("segment: field {field} cannot be compiled",
                       field=cond.field)  # pragma: no cover


def active_blacklist(at: datetime) -> ColumnElement[bool]:
    """Blacklist rows in force at ``at``: not lifted and not expired."""
    return and_(blacklist.c.lifted_at.is_(None),
                or_(blacklist.c.expires_at.is_(None), blacklist.c.expires_at > at))


def compile_node(node: Node, clock: Clock) -> ColumnElement[bool]:
    match node:
        case Condition():
            return _condition(node, clock)
        case Not():
            return not_(compile_node(node.inner, clock))
        case AllOf():
            return and_(true(), *(compile_node(p, clock) for p in node.parts))
        case AnyOf():
            return or_(false(), *(compile_node(p, clock) for p in node.parts))


def member_ids(node: Node, clock: Clock) -> Select[Any]:
    """``SELECT members.id`` of the segment (merged-away members never count)."""
    return select(members.c.id).where(members.c.merged_into_id.is_(None),
                                      compile_node(node, clock))


def parse_for(conn: Connection, actor: Actor, expression: str) -> Node:
    """Parse a segment for this staff user: conditions on personal attributes are refused
    to staff who may not see personal data."""
    node = parse(expression)
    attributes.check_personal_access(conn, actor=actor, names=attribute_names(node))
    return node


def count_expression(conn: Connection, *, actor: Actor, expression: str, clock: Clock) -> int:
    actor.require(Permission.VIEW)
    sub = member_ids(parse_for(conn, actor, expression), clock).subquery()
    return int(conn.execute(select(func.count()).select_from(sub)).scalar_one())


def list_expression_members(conn: Connection, *, actor: Actor, expression: str, clock: Clock,
                            limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    node = parse_for(conn, actor, expression)
    stmt = (select(members.c.id, members.c.number, members.c.display_name,
                   members.c.first_seen_at, members.c.last_seen_at)
            .where(members.c.merged_into_id.is_(None), compile_node(node, clock))
            .order_by(members.c.number).limit(limit).offset(offset))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def members_matching_each(conn: Connection, nodes: Sequence[Node], clock: Clock,
                          candidate_ids: list[int]) -> list[set[int]]:
    """For each segment, which of ``candidate_ids`` it holds — in one query (a column per
    segment), as the rule tags re-checked on every event need."""
    if not candidate_ids or not nodes:
        return [set() for _ in nodes]
    columns = [compile_node(n, clock).label(f"s{i}") for i, n in enumerate(nodes)]
    rows = conn.execute(select(members.c.id, *columns).where(
        members.c.merged_into_id.is_(None), members.c.id.in_(candidate_ids))).all()
    return [{int(r[0]) for r in rows if r[i + 1]} for i in range(len(nodes))]


# ---- saved segments -------------------------------------------------------------------

def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("name: 1–128 characters")
    return name


def do_create_segment(conn: Connection, *, actor: Actor, name: str, expression: str,
                      description: str = "") -> int:
    actor.require(Permission.OPERATE)
    name = _check_name(name)
    canonical = describe(parse(expression))
    if conn.execute(select(segments.c.id).where(segments.c.name == name)).first():
        raise Conflict("a segment named {name!r} exists", name=name)
    now = utcnow()
    segment_id = int(conn.execute(segments.insert().values(
        name=name, expression=canonical, description=description, created_by=actor.label,
        created_at=now, updated_at=now).returning(segments.c.id)).scalar_one())
    audit.record(conn, actor=actor.label, action="segment.create", object_type="segment",
                 object_id=segment_id, detail={"name": name, "expression": canonical})
    return segment_id


def do_update_segment(conn: Connection, *, actor: Actor, segment_id: int,
                      name: str | None = None, expression: str | None = None,
                      description: str | None = None) -> None:
    actor.require(Permission.OPERATE)
    before = get_segment(conn, actor=actor, segment_id=segment_id)
    values: dict[str, Any] = {"updated_at": utcnow()}
    if name is not None:
        values["name"] = _check_name(name)
        clash = conn.execute(select(segments.c.id).where(
            segments.c.name == values["name"], segments.c.id != segment_id)).first()
        if clash:
            raise Conflict("a segment named {name!r} exists", name=values['name'])
    if expression is not None:
        values["expression"] = describe(parse(expression))
    if description is not None:
        values["description"] = description
    conn.execute(update(segments).where(segments.c.id == segment_id).values(**values))
    audit.record(conn, actor=actor.label, action="segment.update", object_type="segment",
                 object_id=segment_id, detail={
                     "before": {k: before[k] for k in ("name", "expression", "description")},
                     "after": {k: v for k, v in values.items() if k != "updated_at"}})


def do_delete_segment(conn: Connection, *, actor: Actor, segment_id: int) -> None:
    actor.require(Permission.OPERATE)
    before = get_segment(conn, actor=actor, segment_id=segment_id)
    users = conn.execute(select(lead_lists.c.name).where(
        lead_lists.c.segment_id == segment_id)).scalars().all()
    if users:
        raise Conflict("segment is used by lead lists: {users}", users=', '.join(users))
    conn.execute(segments.delete().where(segments.c.id == segment_id))
    audit.record(conn, actor=actor.label, action="segment.delete", object_type="segment",
                 object_id=segment_id, detail={"name": before["name"],
                                               "expression": before["expression"]})


def get_segment(conn: Connection, *, actor: Actor, segment_id: int) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    row = conn.execute(select(segments).where(segments.c.id == segment_id)).mappings().first()
    if row is None:
        raise NotFound("segment {segment_id} not found", segment_id=segment_id)
    return dict(row)


def find_segment(conn: Connection, *, actor: Actor, ref: str) -> dict[str, Any]:
    """A saved segment by id or by name (CLI and API accept either)."""
    actor.require(Permission.VIEW)
    where = segments.c.id == int(ref) if ref.isdigit() else segments.c.name == ref
    row = conn.execute(select(segments).where(where)).mappings().first()
    if row is None:
        raise NotFound("segment {ref!r} not found", ref=ref)
    return dict(row)


def resolve_expression(conn: Connection, *, actor: Actor, segment: str | int | None = None,
                       expression: str | None = None) -> tuple[str, str]:
    """(expression, saved name) for what a caller was given: a saved segment by id or name,
    else ``segment`` itself read as an expression, else ``expression``."""
    if segment is not None and str(segment).strip():
        try:
            seg = find_segment(conn, actor=actor, ref=str(segment).strip())
            return str(seg["expression"]), str(seg["name"])
        except NotFound:
            if isinstance(segment, int) or str(segment).strip().isdigit():
                raise
            return str(segment), ""
    if expression is not None and expression.strip():
        actor.require(Permission.VIEW)
        return expression, ""
    raise InvalidInput("give a saved segment or an expression")


def list_segments(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    return [dict(r) for r in conn.execute(select(segments).order_by(segments.c.name)).mappings()]
