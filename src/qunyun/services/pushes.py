"""Pushes: what broadcasts and playbook steps share (F18, F19).

A target names recipients (groups, a group tag, a series, all groups, or a segment's
members); :func:`fan_out` renders the script for each, places it with the team's quiet hours
and frequency caps (:class:`~qunyun.domain.content.SendPlanner`), and stores outbox rows, the
push log the caps count, and one row of the delivery log, in the caller's transaction. A push
the platform cannot send unconfirmed (WeCom group sends) becomes one confirmation task per
platform for the whole occurrence, not a task per group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, func, select, update

from qunyun.adapters.storage.sql import bulk_insert_ignore, in_id_list
from qunyun.adapters.storage.tables import (
    blacklist,
    deliveries,
    groups,
    identities,
    members,
    messages,
    outbox,
    push_log,
    staff_tasks,
)
from qunyun.clock import Clock
from qunyun.domain.actions import (
    Action,
    CapabilityLookup,
    SendPrivate,
    SendText,
    describe_missing,
)
from qunyun.domain.content import (
    CAMPAIGN,
    Placement,
    QuietHours,
    SendPlanner,
    parse_caps,
    period_bounds,
    render,
)
from qunyun.domain.groups import GroupState
from qunyun.domain.staff import Permission
from qunyun.i18n import Phrase
from qunyun.services import audit, automation, segments, tasks
from qunyun.services import outbox as outbox_service
from qunyun.services.errors import InvalidInput
from qunyun.services.listing import Columns, Listing, Page, fetch
from qunyun.services.members import shown_name
from qunyun.services.scripts import standard_values
from qunyun.services.users import Actor

_LOG_COLUMNS = ("platform", "group_id", "member_id", "at", "delivery_id")
TARGET_KEYS = ("groups", "group_tag", "series", "all", "segment")
# groups that take no pushes: not yet open, or closed
_SILENT_STATES = (GroupState.PLANNED.value, GroupState.CLOSED.value)
CONFIRM_TASK = "confirm_broadcast"
Scope = Literal["group", "member"]

# a push's outbox rows name their delivery: rule "delivery:<id>" (the delivery log counts them)
RULE_PREFIX = "delivery:"


def is_push() -> ColumnElement[bool]:
    """Outbox rows that are pushes (broadcasts and playbook steps), not replies."""
    return outbox.c.rule.startswith(RULE_PREFIX)


@dataclass(frozen=True, slots=True)
class Recipient:
    scope: Scope
    key: int  # group id or member id
    platform: str
    name: str
    group_name: str = ""


def check_target(conn: Connection, *, actor: Actor, target: Mapping[str, Any] | None
                 ) -> dict[str, Any] | None:
    """A normalised target (exactly one kind), or None for "the playbook's groups"."""
    if not target:
        return None
    given = {k: v for k, v in target.items() if v not in (None, "", [], False)}
    unknown = set(given) - set(TARGET_KEYS)
    if unknown:
        raise InvalidInput("target: unknown key {key!r}; one of {choices}",
                           key=sorted(unknown)[0], choices=", ".join(TARGET_KEYS))
    if len(given) != 1:
        raise InvalidInput("target: give exactly one of {choices}",
                           choices=", ".join(TARGET_KEYS))
    (kind, value), = given.items()
    if kind == "groups":
        ids = _ids(value)
        found = set(conn.execute(select(groups.c.id).where(groups.c.id.in_(ids))).scalars())
        if missing := [i for i in ids if i not in found]:
            raise InvalidInput("target.groups: no group {missing}", missing=missing[0])
        return {"groups": ids}
    if kind == "segment":
        expression, name = segments.resolve_expression(conn, actor=actor, segment=str(value))
        segments.parse(expression)
        return {"segment": name or expression}
    if kind == "all":
        return {"all": True}
    return {kind: str(value).strip()}


def _ids(value: Any) -> list[int]:
    items = value.replace("，", ",").split(",") if isinstance(value, str) else list(value)
    try:
        ids = list(dict.fromkeys(int(str(i).strip()) for i in items if str(i).strip()))
    except ValueError:
        raise InvalidInput("target.groups: group ids, comma-separated") from None
    if not ids:
        raise InvalidInput("target.groups: at least one group")
    return ids


def describe_target(target: Mapping[str, Any] | None) -> Phrase:
    """Who a send goes to, in words (English by ``str()``, the reader's by ``said``)."""
    if not target:
        return Phrase("the playbook's groups")
    (kind, value), = target.items()
    if kind == "groups":
        return Phrase("{n} groups", n=len(value))
    if kind == "all":
        return Phrase("all groups")
    if kind == "group_tag":
        return Phrase("group tag “{value}”", value=value)
    if kind == "series":
        return Phrase("series “{value}”", value=value)
    return Phrase("segment “{value}” (private messages)", value=value)


def resolve(conn: Connection, *, actor: Actor, target: Mapping[str, Any] | None,
            default_groups: Sequence[int] = (), clock: Clock) -> list[Recipient]:
    """Who a target reaches now: open groups, or a segment's members (one platform each,
    blacklisted members left out)."""
    if target and "segment" in target:
        return _segment_members(conn, actor=actor, ref=str(target["segment"]), clock=clock)
    stmt = select(groups.c.id, groups.c.name, groups.c.platform, groups.c.settings).where(
        groups.c.state.not_in(_SILENT_STATES))
    if not target:
        if not default_groups:
            return []
        stmt = stmt.where(groups.c.id.in_(list(default_groups)))
    elif "groups" in target:
        stmt = stmt.where(groups.c.id.in_(list(target["groups"])))
    elif "series" in target:
        stmt = stmt.where(groups.c.series == target["series"])
    rows = conn.execute(stmt.order_by(groups.c.id)).all()
    if target and "group_tag" in target:
        rows = [r for r in rows if target["group_tag"] in (r.settings or {}).get("tags", [])]
    return [Recipient("group", r.id, r.platform, r.name, r.name) for r in rows]


def _segment_members(conn: Connection, *, actor: Actor, ref: str,
                     clock: Clock) -> list[Recipient]:
    expression, _name = segments.resolve_expression(conn, actor=actor, segment=ref)
    ids = segments.member_ids(segments.parse(expression), clock).where(
        members.c.id.not_in(select(blacklist.c.member_id).where(
            segments.active_blacklist(clock.now))))
    sub = ids.subquery()
    rows = conn.execute(
        select(members.c.id, members.c.display_name, members.c.number, identities.c.platform)
        .join(identities, identities.c.member_id == members.c.id)
        .where(members.c.id.in_(select(sub.c.id)))
        .order_by(members.c.id, identities.c.id)).all()
    out: list[Recipient] = []
    last = None
    for r in rows:
        if r.id != last:  # the member's first identity names the platform to reach them on
            out.append(Recipient("member", r.id, r.platform, shown_name(r.display_name, r.number)))
            last = r.id
    return out


def load_planner(conn: Connection, *, tz: ZoneInfo, recipients: Sequence[Recipient],
                 around: datetime, days: int = 0) -> SendPlanner:
    """The team's quiet hours and caps, with the pushes already logged for these recipients
    in every period that can touch ``around`` … ``around + days``."""
    settings = automation.effective_settings(conn, None).broadcast
    caps = parse_caps(c.model_dump() for c in settings.caps)
    planner = SendPlanner(caps=caps, tz=tz, quiet=QuietHours.parse(settings.quiet_hours),
                          over_cap=settings.over_cap)
    start = period_bounds("month", around, tz)[0] - timedelta(days=7)
    end = period_bounds("month", around + timedelta(days=days + 62), tz)[1]
    for scope, column in (("group", push_log.c.group_id), ("member", push_log.c.member_id)):
        keys = {r.key for r in recipients if r.scope == scope}
        if not keys:
            continue
        stmt = (select(column, push_log.c.at)
                .where(column.is_not(None), push_log.c.at >= start, push_log.c.at < end)
                .order_by(push_log.c.at))
        if len(keys) <= 5000:
            stmt = stmt.where(in_id_list(conn, column, sorted(keys)))
        for key, at in conn.execute(stmt):
            if key in keys:
                planner.history.setdefault((scope, key), []).append(at)
    return planner


@dataclass
class PushOutcome:
    recipient: Recipient
    text: str
    placement: Placement | None  # None: skipped before placing
    reason: str = ""


@dataclass
class FanOut:
    delivery_id: int
    outbox_ids: list[int] = field(default_factory=list)
    outcomes: list[PushOutcome] = field(default_factory=list)
    tasks: list[int] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.placement and o.placement.status == status)


def place_all(planner: SendPlanner, recipients: Sequence[Recipient], *, body: str,
              values: Mapping[str, Any], at: datetime,
              skip: Callable[[Recipient], str] | None = None,
              priority: int = CAMPAIGN) -> list[PushOutcome]:
    """Render and place each recipient's push (pure given the planner): the same code runs
    for a dry run and for the real fan-out."""
    out: list[PushOutcome] = []
    for r in recipients:
        text, missing = render(body, standard_values(
            group_name=r.group_name, member_name=r.name if r.scope == "member" else "",
            at=at, tz=planner.tz, extra=values))
        reason = skip(r) if skip else ""
        if not reason and missing:
            reason = "缺少变量 " + "、".join("{" + m + "}" for m in missing)
        if reason:
            out.append(PushOutcome(r, text, None, reason))
            continue
        out.append(PushOutcome(r, text, planner.place(r.platform, r.scope, r.key, at,
                                                      priority)))
    return out


def outcome_row(o: PushOutcome, tz: ZoneInfo) -> dict[str, Any]:
    """One push as the dry run and the composer show it."""
    p = o.placement
    return {"recipient": o.recipient.name, "scope": o.recipient.scope,
            "platform": o.recipient.platform, "text": o.text,
            "status": p.status if p else "skipped",
            "at": p.at.astimezone(tz).isoformat(timespec="minutes") if p else None,
            "reason": p.reason if p else o.reason}


def fan_out(
    conn: Connection, *, key: str, source: Literal["broadcast", "playbook"], due_at: datetime,
    now: datetime, recipients: Sequence[Recipient], body: str, values: Mapping[str, Any],
    attachments: Sequence[Mapping[str, str]], capabilities: CapabilityLookup,
    tz: ZoneInfo, actor: str = "system", skip: Callable[[Recipient], str] | None = None,
    broadcast_id: int | None = None, playbook_id: int | None = None, step_id: int | None = None,
    priority: int = CAMPAIGN, ahead: Sequence[tuple[Scope, int, datetime, int]] = (),
    pin: bool = False,
) -> FanOut:
    """Place, store and log one occurrence of a push. ``ahead``: pushes still to come to
    the same recipients, (scope, id, at, rank); those that outrank this one keep their
    room under the caps."""
    planner = load_planner(conn, tz=tz, recipients=recipients, around=due_at)
    for scope, ident, at, rank in ahead:
        planner.reserve(scope, ident, at, rank)
    outcomes = place_all(planner, recipients, body=body, values=values, at=due_at, skip=skip,
                         priority=priority)
    delivery_id = int(conn.execute(deliveries.insert().values(
        key=key, source=source, broadcast_id=broadcast_id, playbook_id=playbook_id,
        step_id=step_id, due_at=due_at, fired_at=now, text=body, recipients=len(recipients),
        detail={}).returning(deliveries.c.id)).scalar_one())
    result = FanOut(delivery_id, outcomes=outcomes)
    attach = tuple(dict(a) for a in attachments)
    task_for: dict[str, int] = {}
    sends: list[outbox_service.BulkSend] = []
    log_rows: list[dict[str, Any]] = []
    for o in outcomes:
        p = o.placement
        if p is None or p.status == "dropped":
            continue
        r = o.recipient
        action: Action = (SendText(group_id=r.key, text=o.text, broadcast=True,
                                   attachments=attach, pin=pin) if r.scope == "group" else
                          SendPrivate(member_id=r.key, text=o.text, broadcast=True,
                                      attachments=attach))
        sends.append(outbox_service.BulkSend(key=f"push:{key}:{r.scope}:{r.key}",
                                             platform=r.platform, action=action,
                                             rule=f"{RULE_PREFIX}{delivery_id}", due=p.at))
        log_rows.append({"platform": r.platform, "group_id": action.group_id,
                         "member_id": r.key if r.scope == "member" else None, "at": p.at,
                         "delivery_id": delivery_id})

    def confirmation(send: outbox_service.BulkSend, missing: list[str]) -> int:
        """One task per platform for the whole occurrence (the owner confirms one send)."""
        if send.platform not in task_for:
            assert isinstance(send.action, SendText | SendPrivate)
            task_for[send.platform] = _confirmation_task(
                conn, platform=send.platform, body=send.action.text,
                delivery_id=delivery_id, missing=missing, outcomes=outcomes,
                due=max(send.due, now), now=now)
        return task_for[send.platform]

    if sends:
        # COPY on PostgreSQL, the C executemany on SQLite: a 100k-member push is one write
        result.outbox_ids = outbox_service.enqueue_many(
            conn, sends, capabilities=capabilities, staff_task=confirmation, now=now)
        bulk_insert_ignore(conn, push_log, _LOG_COLUMNS,
                           [[r[c] for c in _LOG_COLUMNS] for r in log_rows], ["id"])
    result.tasks = list(task_for.values())
    detail = {
        status: [{"name": o.recipient.name, "at": o.placement.at.isoformat(),
                  "reason": o.placement.reason} for o in outcomes
                 if o.placement and o.placement.status == status][:200]
        for status in ("deferred", "queued", "dropped")}
    detail["skipped"] = [{"name": o.recipient.name, "reason": o.reason}
                         for o in outcomes if o.placement is None][:200]
    conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(
        planned=len(sends), deferred=result.count("deferred"), queued=result.count("queued"),
        dropped=result.count("dropped"), skipped=len(detail["skipped"]),
        confirmations=len(task_for), detail=detail))
    audit.record(conn, actor=actor, action=f"{source}.fan_out", object_type="delivery",
                 object_id=delivery_id, detail={"key": key, "planned": len(sends),
                                                "dropped": result.count("dropped")})
    return result


def _confirmation_task(conn: Connection, *, platform: str, body: str, delivery_id: int,
                       missing: list[str], outcomes: Sequence[PushOutcome], due: datetime,
                       now: datetime) -> int:
    """One task for a whole occurrence on a platform that needs a person to confirm."""
    n = sum(1 for o in outcomes if o.placement and o.placement.status != "dropped"
            and o.recipient.platform == platform)
    scope = outcomes[0].recipient.scope if outcomes else "group"
    unit = "个群" if scope == "group" else "人"
    summary = body if len(body) <= 40 else body[:37] + "..."
    return tasks.create_task(
        conn, kind=CONFIRM_TASK, title=f"确认群发：{summary} → {n} {unit}",
        reason=describe_missing(missing), platform=platform,
        payload={"delivery_id": delivery_id, "recipients": n, "reminders": 0},
        now=now, due_at=due)


def remind_confirmations(conn: Connection, *, now: datetime,
                         after: timedelta = timedelta(minutes=30),
                         every: timedelta = timedelta(hours=2)) -> int:
    """Record a reminder on each confirmation task overdue by ``after`` and not reminded in
    ``every``; the task list and dashboard show the count. Returns how many were reminded."""
    rows = conn.execute(select(staff_tasks.c.id, staff_tasks.c.payload).where(
        staff_tasks.c.kind == CONFIRM_TASK, staff_tasks.c.status == tasks.OPEN,
        staff_tasks.c.due_at < now - after)).all()
    reminded = 0
    for row in rows:
        payload = dict(row.payload or {})
        last = payload.get("reminded_at")
        if last and datetime.fromisoformat(last) > now - every:
            continue
        payload["reminders"] = int(payload.get("reminders", 0)) + 1
        payload["reminded_at"] = now.isoformat()
        conn.execute(update(staff_tasks).where(staff_tasks.c.id == row.id)
                     .values(payload=payload))
        audit.record(conn, actor="system", action="task.remind", object_type="staff_task",
                     object_id=row.id, detail={"reminders": payload["reminders"]})
        reminded += 1
    return reminded


def delivery_status(conn: Connection, delivery_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Outbox rows of each delivery by status (pending, delivered, staff_task, …)."""
    if not delivery_ids:
        return {}
    out: dict[int, dict[str, int]] = {i: {} for i in delivery_ids}
    for rule, status, n in conn.execute(
            select(outbox.c.rule, outbox.c.status, func.count())
            .where(outbox.c.rule.in_([f"{RULE_PREFIX}{i}" for i in delivery_ids]))
            .group_by(outbox.c.rule, outbox.c.status)):
        out[int(rule.split(":")[1])][status] = int(n)
    return out


DELIVERY_COLUMNS = Columns(
    sortable={"due": (deliveries.c.due_at, "desc"),
              "recipients": (deliveries.c.recipients, "desc"),
              "dropped": (deliveries.c.dropped, "desc")},
    searched=(deliveries.c.text,), tiebreak=deliveries.c.id.desc())


def list_deliveries(conn: Connection, *, actor: Actor, limit: int = 100,
                    broadcast_id: int | None = None,
                    playbook_id: int | None = None) -> list[dict[str, Any]]:
    """The latest ``limit`` sends (``page_deliveries`` reaches the older ones)."""
    return page_deliveries(conn, actor=actor, broadcast_id=broadcast_id,
                           playbook_id=playbook_id, listing=Listing(per_page=limit)).rows


def page_deliveries(conn: Connection, *, actor: Actor, broadcast_id: int | None = None,
                    playbook_id: int | None = None, listing: Listing = Listing()) -> Page:
    """The send log, newest first, searched by the text sent, with each send's outbox
    states and confirmation tasks."""
    actor.require(Permission.VIEW)
    stmt = select(deliveries)
    if broadcast_id is not None:
        stmt = stmt.where(deliveries.c.broadcast_id == broadcast_id)
    if playbook_id is not None:
        stmt = stmt.where(deliveries.c.playbook_id == playbook_id)
    return fetch(conn, stmt, listing, DELIVERY_COLUMNS, lambda rows: _with_status(conn, rows))


def _with_status(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    status = delivery_status(conn, [r["id"] for r in rows])
    # the confirmation tasks of these deliveries, found through their outbox rows (indexed)
    links = conn.execute(select(outbox.c.rule, outbox.c.staff_task_id).distinct().where(
        outbox.c.rule.in_([f"{RULE_PREFIX}{r['id']}" for r in rows]),
        outbox.c.staff_task_id.is_not(None))).all() if rows else []
    task_rows = {t.id: t for t in conn.execute(
        select(staff_tasks.c.id, staff_tasks.c.status, staff_tasks.c.payload).where(
            staff_tasks.c.id.in_([t for _r, t in links]),
            staff_tasks.c.kind == CONFIRM_TASK))} if links else {}
    confirm: dict[int, list[dict[str, Any]]] = {}
    for rule, task_id in links:
        t = task_rows.get(task_id)
        if t is not None:
            confirm.setdefault(int(rule.split(":")[1]), []).append({
                "task_id": t.id, "status": t.status,
                "reminders": (t.payload or {}).get("reminders", 0)})
    for r in rows:
        r["outbox"] = status.get(r["id"], {})
        r["confirmation"] = confirm.get(r["id"], [])
    return rows


def messages_last_hour(conn: Connection, group_ids: Sequence[int], at: datetime) -> dict[int, int]:
    """Member messages per group in the hour before ``at`` (the warm-up condition)."""
    if not group_ids:
        return {}
    return {g: int(n) for g, n in conn.execute(
        select(messages.c.group_id, func.count()).where(and_(
            messages.c.group_id.in_(list(group_ids)), messages.c.direction == "in",
            messages.c.sent_at >= at - timedelta(hours=1), messages.c.sent_at < at))
        .group_by(messages.c.group_id))}
