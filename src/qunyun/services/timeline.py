"""The push timeline (F18): every playbook step and broadcast still to come, together.

A group on launch day gets the launch playbook's notices and the daily SOP's steps and any
broadcast to its tag; the caps count them all. Previewing one playbook alone cannot show
what the others take, so this module lists everything planned for a window, for the
recipients asked about, and places it all with the same planner the real fan-out uses:
quiet hours, caps, and the rank of each push (a campaign's steps and one-off broadcasts
before routine SOP steps, :data:`~qunyun.domain.content.CAMPAIGN`). The fan-out asks it for
the pushes still to come that outrank the one firing (:func:`ahead`), so the preview and
the real sends agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import (
    broadcasts,
    groups,
    members,
    memberships,
    playbook_groups,
    playbook_steps,
    playbooks,
    scheduled_jobs,
    scripts,
)
from qunyun.clock import Clock
from qunyun.domain.content import (
    CAMPAIGN,
    ROUTINE,
    ContentError,
    SendPlanner,
    parse_caps,
    parse_when,
    period_bounds,
)
from qunyun.domain.staff import Permission
from qunyun.services import automation, pushes
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.pushes import PushOutcome, Recipient, Scope
from qunyun.services.users import SYSTEM, Actor

Source = Literal["playbook", "broadcast"]
ACTIVE = "active"


@dataclass
class PlannedPush:
    """One occurrence of a step or broadcast, with the recipients it reaches."""

    at: datetime
    source: Source
    source_id: int
    name: str  # the playbook's or broadcast's name
    step: str  # the step's name (or time) for a playbook; "" for a broadcast
    step_id: int | None
    priority: int
    body: str
    values: dict[str, str]
    recipients: list[Recipient]
    condition: int | None = None  # a warm-up: only when the last hour had fewer messages
    paused: str = ""  # why it will not go out (paused playbook, skipped step)
    outcomes: list[PushOutcome] = field(default_factory=list)


def step_values(pb: Mapping[str, Any], holiday: str) -> dict[str, str]:
    """A playbook step's own variables: the activity (the playbook's name unless set), the
    playbook's values and the holiday a holiday step fires on."""
    values = {"activity": pb["name"], **dict(pb["variables"] or {})}
    if holiday:
        values["holiday"] = holiday
    return values


def step_rank(spec: str) -> int:
    """Campaign steps (relative to the start, ``T-1h``) outrank routine ones (``daily``)."""
    try:
        return CAMPAIGN if parse_when(spec).needs_start else ROUTINE
    except ContentError:
        return ROUTINE


def planned_pushes(conn: Connection, *, begin: datetime, end: datetime, clock: Clock,
                   wanted: Callable[[Recipient], bool] | None = None,
                   members_too: bool = True, with_paused: int | None = None,
                   ) -> list[PlannedPush]:
    """Every push due in ``[begin, end)`` with the recipients ``wanted`` keeps (all when
    None). Paused playbooks and skipped steps are left out, except for the playbook
    ``with_paused``, whose are marked. ``members_too=False`` skips resolving segments."""
    tz = clock.tz
    out: list[PlannedPush] = []
    resolved: dict[str, list[Recipient]] = {}

    def recipients(target: Mapping[str, Any] | None, default: Sequence[int]) -> list[Recipient]:
        if target and "segment" in target and not members_too:
            return []
        key = repr((sorted((target or {}).items()), list(default) if not target else []))
        if key not in resolved:
            found = pushes.resolve(conn, actor=SYSTEM, target=target, default_groups=default,
                                   clock=clock)
            resolved[key] = [r for r in found if wanted is None or wanted(r)]
        return resolved[key]

    books = {int(r["id"]): dict(r) for r in conn.execute(select(playbooks)).mappings()
             if r["status"] == ACTIVE or r["id"] == with_paused}
    attached: dict[int, list[int]] = {}
    for pid, gid in conn.execute(select(playbook_groups.c.playbook_id, playbook_groups.c.group_id)
                                 .order_by(playbook_groups.c.group_id)):
        attached.setdefault(int(pid), []).append(int(gid))
    jobs = {r.key: r for r in conn.execute(select(
        scheduled_jobs.c.key, scheduled_jobs.c.status, scheduled_jobs.c.next_run_at).where(
        scheduled_jobs.c.key.startswith("playbook:")))}
    steps = conn.execute(
        select(playbook_steps, scripts.c.body.label("script_body"))
        .join(scripts, scripts.c.id == playbook_steps.c.script_id)
        .where(playbook_steps.c.playbook_id.in_(list(books)), playbook_steps.c.position >= 0)
        .order_by(playbook_steps.c.playbook_id, playbook_steps.c.position)).mappings().all() \
        if books else []
    for step in steps:
        pb = books[int(step["playbook_id"])]
        try:
            when = parse_when(step["at"])
        except ContentError:
            continue
        paused = ("剧本已暂停" if pb["status"] != ACTIVE else
                  "该步骤已跳过" if step["skipped"] else "")
        job = jobs.get(f"playbook:{pb['id']}:step:{step['id']}")
        not_before = begin
        if not paused and job is not None:
            if job.status in ("done", "cancelled") and not when.recurring:
                continue  # a one-off that ran
            if job.status == ACTIVE:
                not_before = max(begin, job.next_run_at)  # a skipped next occurrence
        for at, label in when.occurrences(not_before, end, tz=tz,
                                          campaign_start=pb["campaign_start"]):
            out.append(PlannedPush(
                at=at, source="playbook", source_id=int(pb["id"]), name=pb["name"],
                step=step["name"] or step["at"], step_id=int(step["id"]),
                priority=step_rank(step["at"]), body=step["script_body"],
                values=step_values(pb, label),
                recipients=recipients(step["target"], attached.get(int(pb["id"]), [])),
                condition=step["max_messages_last_hour"], paused=paused))
    for b in conn.execute(select(broadcasts).where(
            broadcasts.c.status == "scheduled", broadcasts.c.send_at >= begin,
            broadcasts.c.send_at < end)).mappings():
        out.append(PlannedPush(
            at=b["send_at"], source="broadcast", source_id=int(b["id"]), name=b["name"],
            step="", step_id=None, priority=CAMPAIGN, body=b["text"],
            values=dict(b["variables"] or {}), recipients=recipients(b["target"], [])))
    out.sort(key=lambda p: (p.at, -p.priority, p.source, p.source_id, p.step_id or 0))
    return [p for p in out if p.recipients or p.paused]


def place(planner: SendPlanner, planned: Sequence[PlannedPush]) -> None:
    """Place every push in time order as the fan-out will, each knowing the pushes still to
    come that outrank it (fills ``outcomes``)."""
    for p in planned:
        if not p.paused:
            for r in p.recipients:
                planner.reserve(r.scope, r.key, p.at, p.priority)
    for p in planned:
        if not p.paused:
            p.outcomes = pushes.place_all(planner, p.recipients, body=p.body, values=p.values,
                                          at=p.at, priority=p.priority)


def _cap_horizon(conn: Connection, at: datetime, tz: ZoneInfo) -> datetime:
    """The end of the longest cap period that holds ``at``: later pushes cannot share a
    cap with it."""
    caps = parse_caps(c.model_dump() for c in
                      automation.effective_settings(conn, None).broadcast.caps)
    ends = [period_bounds(c.period, at, tz)[1] for c in caps]
    return max(ends, default=at)


def ahead(conn: Connection, *, recipients: Sequence[Recipient], after: datetime,
          priority: int, clock: Clock) -> list[tuple[Scope, int, datetime, int]]:
    """The pushes after ``after`` in the same cap periods that outrank ``priority``, to
    the same recipients: what a firing push must leave room for. Nothing outranks a
    campaign push, so only routine ones pay for the look-ahead."""
    if priority >= CAMPAIGN or not recipients:
        return []
    keys = {(r.scope, r.key) for r in recipients}
    end = _cap_horizon(conn, after, clock.tz)
    found = planned_pushes(conn, begin=after + timedelta(seconds=1), end=end, clock=clock,
                           wanted=lambda r: (r.scope, r.key) in keys,
                           members_too=any(r.scope == "member" for r in recipients))
    return [(r.scope, r.key, p.at, p.priority) for p in found if p.priority > priority
            for r in p.recipients]


def _planner_for(conn: Connection, planned: Iterable[PlannedPush], begin: datetime, days: int,
                 tz: ZoneInfo) -> SendPlanner:
    everyone = list({(r.scope, r.key): r for p in planned for r in p.recipients}.values())
    return pushes.load_planner(conn, tz=tz, recipients=everyone, around=begin, days=days)


def row(p: PlannedPush, o: PushOutcome | None, tz: ZoneInfo) -> dict[str, Any]:
    """One push as the previews show it."""
    base = {"due": p.at.astimezone(tz).isoformat(timespec="minutes"), "source": p.source,
            "source_id": p.source_id, "name": p.name, "step": p.step, "step_id": p.step_id,
            "rank": "campaign" if p.priority >= CAMPAIGN else "routine"}
    if o is None:
        return {**base, "recipient": "", "scope": "", "platform": "", "text": "",
                "status": "paused", "at": None, "reason": p.paused}
    out = {**base, **pushes.outcome_row(o, tz)}
    if p.condition and out["status"] != "skipped":
        out["condition"] = f"仅当最近一小时消息少于 {p.condition} 条"
    return out


def window(start: date | None, days: int, clock: Clock) -> tuple[date, datetime, datetime]:
    if not 1 <= days <= 92:
        raise InvalidInput("days: between 1 and 92")
    first = start or clock.now.astimezone(clock.tz).date()
    begin = datetime.combine(first, datetime.min.time(), tzinfo=clock.tz)
    return first, begin, begin + timedelta(days=days)


def preview_timeline(conn: Connection, *, actor: Actor, group_id: int | None = None,
                     member_id: int | None = None, start: date | None = None, days: int = 7,
                     clock: Clock) -> dict[str, Any]:
    """Everything a group (or a member) will receive from every playbook and broadcast in
    ``days`` days from ``start``, in time order, placed under the caps and quiet hours as
    the sends will be. A member's timeline has their private pushes (capped per member)
    and their groups' pushes (capped per group)."""
    actor.require(Permission.VIEW)
    if (group_id is None) == (member_id is None):
        raise InvalidInput("give a group or a member")
    first, begin, end = window(start, days, clock)
    if group_id is not None:
        name = conn.execute(select(groups.c.name).where(groups.c.id == group_id)).scalar()
        if name is None:
            raise NotFound("group {group_id} not found", group_id=group_id)
        keys = {("group", group_id)}
    else:
        name = conn.execute(select(members.c.display_name).where(
            members.c.id == member_id)).scalar()
        if name is None:
            raise NotFound("member {member_id} not found", member_id=member_id)
        assert member_id is not None
        keys = {("member", member_id)} | {("group", int(g)) for g in conn.execute(
            select(memberships.c.group_id).where(memberships.c.member_id == member_id,
                                                 memberships.c.left_at.is_(None))).scalars()}
    planned = planned_pushes(conn, begin=begin, end=end, clock=clock,
                             wanted=lambda r: (r.scope, r.key) in keys,
                             members_too=member_id is not None)
    place(_planner_for(conn, planned, begin, days, clock.tz), planned)
    rows = [row(p, o, clock.tz) for p in planned for o in p.outcomes]
    rows.sort(key=lambda r: (r["at"] or r["due"], r["due"]))
    counts = dict(Counter(r["status"] for r in rows))
    return {"group_id": group_id, "member_id": member_id, "name": name,
            "from": first.isoformat(), "days": days, "counts": counts, "rows": rows}


def preview_playbook_rows(conn: Connection, *, playbook_id: int, recipients: Sequence[Recipient],
                          begin: datetime, days: int, clock: Clock) -> list[dict[str, Any]]:
    """One playbook's pushes placed among everything else its recipients receive."""
    keys = {(r.scope, r.key) for r in recipients}
    planned = planned_pushes(conn, begin=begin, end=begin + timedelta(days=days), clock=clock,
                             wanted=lambda r: (r.scope, r.key) in keys, with_paused=playbook_id)
    place(_planner_for(conn, planned, begin, days, clock.tz), planned)
    out: list[dict[str, Any]] = []
    for p in planned:
        if p.source != "playbook" or p.source_id != playbook_id:
            continue
        out += [row(p, o, clock.tz) for o in p.outcomes] if not p.paused else [row(p, None,
                                                                                  clock.tz)]
    return out
