"""Campaign plans (F28/F29): the one writer of ``plans``, ``plan_stages``,
``plan_targets``, ``plan_roles``, ``plan_items`` and ``plan_budget``.

A plan runs from one date to another over groups (its own, or its activity's), with the
calculator's goal, stages with dates (warm-up, recruiting, launch, follow-up — the Gantt's
bars) and daily targets per metric (joined, active, enrolled, deposit, purchase). Plan
versus actual reads what qunyun already collects — joins and talk in the groups, the
activity's enrolments, deposits and orders — per team-local day; a finished day under its
target by more than the plan's margin is flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, select, update

from qunyun.adapters.storage.tables import (
    groups,
    plan_budget,
    plan_items,
    plan_problems,
    plan_roles,
    plan_stages,
    plan_targets,
    plans,
    staff_users,
)
from qunyun.analytics.funnels import daily_counts
from qunyun.clock import Clock
from qunyun.domain.planning import (
    BUDGET_CATEGORIES,
    ITEM_KINDS,
    ITEM_STATUSES,
    METRICS,
    ROLES,
    STAGE_KINDS,
    compare,
    spread,
)
from qunyun.domain.staff import Permission
from qunyun.i18n import Terms, saying, translate
from qunyun.services import audit, planning, tasks, timeline
from qunyun.services.activities import access_activity
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.users import SYSTEM, Actor

MAX_DAYS = 366
VARIANCE_TASK = "plan_variance"
# where each metric's total goes when a goal sets the targets: joins over the recruiting
# stage (else the whole plan), money over the whole plan
GOAL_METRICS = {"joined": "members", "deposit": "deposits", "purchase": "purchases"}


def parse_day(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise InvalidInput("{field}: a date like 2026-12-01", field=field) from None


def _days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _span(starts_on: Any, ends_on: Any) -> tuple[date, date]:
    first, last = parse_day(starts_on, "from"), parse_day(ends_on, "to")
    if last < first:
        raise InvalidInput("to: not before from")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput("to: a plan spans at most {n} days", n=MAX_DAYS)
    return first, last


def _row(conn: Connection, plan_id: int) -> dict[str, Any]:
    row = conn.execute(select(plans).where(plans.c.id == plan_id)).mappings().first()
    if row is None:
        raise NotFound("plan {plan_id} not found", plan_id=plan_id)
    return dict(row)


def find_plan(conn: Connection, *, actor: Actor, ref: int | str) -> int:
    """A plan by id or name."""
    actor.require(Permission.VIEW)
    text = str(ref).strip()
    if text.isdigit() and len(text) < 19:
        return int(_row(conn, int(text))["id"])
    found = conn.execute(select(plans.c.id).where(plans.c.name == text)).scalar()
    if found is None:
        raise NotFound("plan {ref!r} not found", ref=text)
    return int(found)


def _check_groups(conn: Connection, group_ids: Sequence[int]) -> list[int]:
    ids = sorted({int(g) for g in group_ids})
    if any(not 1 <= g <= 2**62 for g in ids):
        raise InvalidInput("groups: not a group")
    known = set(conn.execute(select(groups.c.id).where(groups.c.id.in_(ids))).scalars())
    if missing := [g for g in ids if g not in known]:
        raise NotFound("group {group_id} not found", group_id=missing[0])
    return ids


def do_create_plan(conn: Connection, *, actor: Actor, name: str, starts_on: Any,
                   ends_on: Any, activity: int | str | None = None,
                   group_ids: Sequence[int] = (), goal: Mapping[str, Any] | None = None,
                   margin: float = 0.2, tz: ZoneInfo, now: datetime) -> dict[str, Any]:
    """A plan; with ``goal`` (the calculator's inputs) its answer is kept and the daily
    targets for joins, deposits and purchases are spread over the plan's days."""
    actor.require(Permission.OPERATE)
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("name: 1–128 characters")
    if conn.execute(select(plans.c.id).where(plans.c.name == name)).first():
        raise Conflict("a plan named {name!r} exists", name=name)
    first, last = _span(starts_on, ends_on)
    if not 0 <= margin < 1:
        raise InvalidInput("margin: from 0 to under 1")
    activity_id = (int(access_activity(conn, actor=actor, ref=activity)["id"])
                   if activity not in (None, "") else None)
    ids = _check_groups(conn, group_ids)
    answer = (planning.do_calculate(conn, actor=actor, values=goal, tz=tz, now=now)
              if goal else None)
    plan_id = int(conn.execute(plans.insert().values(
        name=name, activity_id=activity_id, group_ids=ids, starts_on=first.isoformat(),
        ends_on=last.isoformat(),
        goal={"inputs": dict(goal), "answer": answer} if goal else {}, margin=margin,
        created_by=actor.label, created_at=now, updated_at=now)
        .returning(plans.c.id)).scalar_one())
    if answer is not None:
        days = _days(first, last)
        for metric, key in GOAL_METRICS.items():
            _put_targets(conn, plan_id, metric, spread(int(answer[key]), days))
    audit.record(conn, actor=actor.label, action="plan.create", object_type="plan",
                 object_id=plan_id, detail={"name": name})
    return access_plan(conn, actor=actor, plan_id=plan_id)


def do_edit_plan(conn: Connection, *, actor: Actor, plan_id: int,
                 changes: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Rename, move the dates (targets outside them go), change the margin, the activity
    or the groups."""
    actor.require(Permission.OPERATE)
    plan = _row(conn, plan_id)
    allowed = {"name", "starts_on", "ends_on", "margin", "activity", "group_ids"}
    if unknown := set(changes) - allowed:
        raise InvalidInput("unknown fields: {unknown}", unknown=", ".join(sorted(unknown)))
    values: dict[str, Any] = {}
    if "name" in changes:
        name = str(changes["name"]).strip()
        if not name or len(name) > 128:
            raise InvalidInput("name: 1–128 characters")
        if name != plan["name"] and conn.execute(
                select(plans.c.id).where(plans.c.name == name)).first():
            raise Conflict("a plan named {name!r} exists", name=name)
        values["name"] = name
    if "starts_on" in changes or "ends_on" in changes:
        first, last = _span(changes.get("starts_on", plan["starts_on"]),
                            changes.get("ends_on", plan["ends_on"]))
        values.update(starts_on=first.isoformat(), ends_on=last.isoformat())
        conn.execute(delete(plan_targets).where(
            plan_targets.c.plan_id == plan_id,
            (plan_targets.c.day < first.isoformat()) | (plan_targets.c.day > last.isoformat())))
    if "margin" in changes:
        margin = float(changes["margin"])
        if not 0 <= margin < 1:
            raise InvalidInput("margin: from 0 to under 1")
        values["margin"] = margin
    if "activity" in changes:
        ref = changes["activity"]
        values["activity_id"] = (int(access_activity(conn, actor=actor, ref=ref)["id"])
                                 if ref not in (None, "") else None)
    if "group_ids" in changes:
        values["group_ids"] = _check_groups(conn, changes["group_ids"] or [])
    conn.execute(update(plans).where(plans.c.id == plan_id).values(**values, updated_at=now))
    audit.record(conn, actor=actor.label, action="plan.edit", object_type="plan",
                 object_id=plan_id, detail={k: str(v) for k, v in changes.items()})
    return access_plan(conn, actor=actor, plan_id=plan_id)


def do_add_stage(conn: Connection, *, actor: Actor, plan_id: int, kind: str, name: str,
                 starts_on: Any, ends_on: Any, now: datetime) -> dict[str, Any]:
    """A stage with its dates, inside the plan's."""
    actor.require(Permission.OPERATE)
    plan = _row(conn, plan_id)
    if kind not in STAGE_KINDS:
        raise InvalidInput("kind: one of {choices}", choices=Terms("plan.stage", STAGE_KINDS))
    name = name.strip()
    if len(name) > 128:
        raise InvalidInput("name: 1–128 characters")
    first, last = _span(starts_on, ends_on)
    if first.isoformat() < plan["starts_on"] or last.isoformat() > plan["ends_on"]:
        raise InvalidInput("from, to: inside the plan ({first} to {last})",
                           first=plan["starts_on"], last=plan["ends_on"])
    stage_id = int(conn.execute(plan_stages.insert().values(
        plan_id=plan_id, kind=kind, name=name, starts_on=first.isoformat(),
        ends_on=last.isoformat()).returning(plan_stages.c.id)).scalar_one())
    conn.execute(update(plans).where(plans.c.id == plan_id).values(updated_at=now))
    audit.record(conn, actor=actor.label, action="plan.stage", object_type="plan",
                 object_id=plan_id, detail={"stage": stage_id, "kind": kind})
    return access_plan(conn, actor=actor, plan_id=plan_id)


def do_remove_stage(conn: Connection, *, actor: Actor, plan_id: int, stage_id: int,
                    now: datetime) -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    _row(conn, plan_id)
    gone = conn.execute(delete(plan_stages).where(plan_stages.c.id == stage_id,
                                                  plan_stages.c.plan_id == plan_id)).rowcount
    if not gone:
        raise NotFound("stage {stage_id} not found", stage_id=stage_id)
    conn.execute(update(plans).where(plans.c.id == plan_id).values(updated_at=now))
    audit.record(conn, actor=actor.label, action="plan.stage_remove", object_type="plan",
                 object_id=plan_id, detail={"stage": stage_id})
    return access_plan(conn, actor=actor, plan_id=plan_id)


def _put_targets(conn: Connection, plan_id: int, metric: str, values: Mapping[str, int]
                 ) -> None:
    conn.execute(delete(plan_targets).where(plan_targets.c.plan_id == plan_id,
                                            plan_targets.c.metric == metric,
                                            plan_targets.c.day.in_(list(values))))
    if values:  # those days' old targets went just above
        conn.execute(plan_targets.insert(), [
            {"plan_id": plan_id, "day": day, "metric": metric, "value": int(value)}
            for day, value in values.items()])


def do_set_targets(conn: Connection, *, actor: Actor, plan_id: int, metric: str,
                   total: int | None = None, value: int | None = None,
                   day: Any = None, starts_on: Any = None, ends_on: Any = None,
                   now: datetime) -> dict[str, Any]:
    """A metric's targets: ``total`` spread over a range of days (the plan's by default),
    or one ``day``'s ``value``."""
    actor.require(Permission.OPERATE)
    plan = _row(conn, plan_id)
    if metric not in METRICS:
        raise InvalidInput("metric: one of {choices}", choices=Terms("plan.metric", METRICS))
    if (total is None) == (value is None):
        raise InvalidInput("give a total to spread, or one day's value")
    number = total if total is not None else value
    assert number is not None
    if not 0 <= number <= 100_000_000:
        raise InvalidInput("value: from 0 to 100000000")
    if value is not None:
        if day is None:
            raise InvalidInput("day: which day the value is for")
        first = last = parse_day(day, "day")
    else:
        first, last = _span(starts_on or plan["starts_on"], ends_on or plan["ends_on"])
    if first.isoformat() < plan["starts_on"] or last.isoformat() > plan["ends_on"]:
        raise InvalidInput("from, to: inside the plan ({first} to {last})",
                           first=plan["starts_on"], last=plan["ends_on"])
    days = _days(first, last)
    _put_targets(conn, plan_id, metric, spread(number, days) if total is not None
                 else {days[0]: number})
    conn.execute(update(plans).where(plans.c.id == plan_id).values(updated_at=now))
    audit.record(conn, actor=actor.label, action="plan.targets", object_type="plan",
                 object_id=plan_id, detail={"metric": metric, "total": total, "value": value,
                                            "from": days[0], "to": days[-1]})
    return access_plan(conn, actor=actor, plan_id=plan_id)


def access_plan(conn: Connection, *, actor: Actor, plan_id: int) -> dict[str, Any]:
    """The plan with its stages (in date order) and each metric's target total."""
    actor.require(Permission.VIEW)
    plan = _row(conn, plan_id)
    plan["stages"] = [dict(r) for r in conn.execute(select(plan_stages).where(
        plan_stages.c.plan_id == plan_id).order_by(plan_stages.c.starts_on,
                                                   plan_stages.c.id)).mappings()]
    totals = dict.fromkeys(METRICS, 0)
    for metric, value in conn.execute(select(plan_targets.c.metric, plan_targets.c.value)
                                      .where(plan_targets.c.plan_id == plan_id)):
        totals[str(metric)] += int(value)
    plan["target_totals"] = totals
    plan["days"] = len(_days(date.fromisoformat(plan["starts_on"]),
                             date.fromisoformat(plan["ends_on"])))
    plan["roles"] = [dict(r) for r in conn.execute(
        select(plan_roles.c.id, plan_roles.c.role, plan_roles.c.group_id,
               staff_users.c.username, groups.c.name.label("group_name"))
        .join(staff_users, staff_users.c.id == plan_roles.c.user_id)
        .outerjoin(groups, groups.c.id == plan_roles.c.group_id)
        .where(plan_roles.c.plan_id == plan_id)
        .order_by(plan_roles.c.role, staff_users.c.username)).mappings()]
    plan["checklist"] = [dict(r) for r in conn.execute(
        select(plan_items, staff_users.c.username.label("owner"))
        .outerjoin(staff_users, staff_users.c.id == plan_items.c.owner_id)
        .where(plan_items.c.plan_id == plan_id)
        .order_by(plan_items.c.due_on, plan_items.c.id)).mappings()]
    plan["problems"] = [dict(r) for r in conn.execute(
        select(plan_problems, staff_users.c.username.label("owner"))
        .outerjoin(staff_users, staff_users.c.id == plan_problems.c.owner_id)
        .where(plan_problems.c.plan_id == plan_id)
        .order_by(plan_problems.c.status.desc(), plan_problems.c.id)).mappings()]
    plan["budget"] = [dict(r) for r in conn.execute(select(plan_budget).where(
        plan_budget.c.plan_id == plan_id).order_by(plan_budget.c.id)).mappings()]
    plan["budget_totals"] = {
        "planned_fen": sum(int(b["planned_fen"]) for b in plan["budget"]),
        "actual_fen": sum(int(b["actual_fen"]) for b in plan["budget"])}
    return plan


def _user(conn: Connection, username: str) -> int:
    found = conn.execute(select(staff_users.c.id).where(
        staff_users.c.username == username.strip())).scalar()
    if found is None:
        raise NotFound("user {username!r} not found", username=username.strip())
    return int(found)


def _touch(conn: Connection, plan_id: int, now: datetime) -> None:
    conn.execute(update(plans).where(plans.c.id == plan_id).values(updated_at=now))


def do_set_role(conn: Connection, *, actor: Actor, plan_id: int, username: str, role: str,
                group_id: int | None = None, remove: bool = False, now: datetime
                ) -> dict[str, Any]:
    """Give a staff member a role in the plan (in one group, or the whole plan), or take it
    away. The plan's PMs hear of its short days."""
    actor.require(Permission.OPERATE)
    _row(conn, plan_id)
    if role not in ROLES:
        raise InvalidInput("role: one of {choices}", choices=Terms("plan.role", ROLES))
    user_id = _user(conn, username)
    if group_id is not None:
        _check_groups(conn, [group_id])
    same = ((plan_roles.c.plan_id == plan_id) & (plan_roles.c.user_id == user_id)
            & (plan_roles.c.role == role)
            & (plan_roles.c.group_id.is_(None) if group_id is None
               else plan_roles.c.group_id == group_id))
    if remove:
        conn.execute(delete(plan_roles).where(same))
    elif conn.execute(select(plan_roles.c.id).where(same)).first() is None:
        conn.execute(plan_roles.insert().values(plan_id=plan_id, user_id=user_id, role=role,
                                                group_id=group_id))
    _touch(conn, plan_id, now)
    audit.record(conn, actor=actor.label, action="plan.role", object_type="plan",
                 object_id=plan_id, detail={"user": username, "role": role,
                                            "group": group_id, "remove": remove})
    return access_plan(conn, actor=actor, plan_id=plan_id)


def do_add_item(conn: Connection, *, actor: Actor, plan_id: int, kind: str, title: str,
                owner: str | None = None, due_on: Any = None, now: datetime
                ) -> dict[str, Any]:
    """A line of the materials checklist (a poster, a script, gifts…), to do."""
    actor.require(Permission.OPERATE)
    _row(conn, plan_id)
    if kind not in ITEM_KINDS:
        raise InvalidInput("kind: one of {choices}", choices=Terms("plan.item", ITEM_KINDS))
    title = title.strip()
    if not title or len(title) > 200:
        raise InvalidInput("title: 1–200 characters")
    conn.execute(plan_items.insert().values(
        plan_id=plan_id, kind=kind, title=title,
        owner_id=_user(conn, owner) if owner else None,
        due_on=parse_day(due_on, "due").isoformat() if due_on else None, status="todo"))
    _touch(conn, plan_id, now)
    audit.record(conn, actor=actor.label, action="plan.item", object_type="plan",
                 object_id=plan_id, detail={"title": title})
    return access_plan(conn, actor=actor, plan_id=plan_id)


def do_set_item_status(conn: Connection, *, actor: Actor, plan_id: int, item_id: int,
                       status: str, now: datetime) -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    if status not in ITEM_STATUSES:
        raise InvalidInput("status: one of {choices}",
                           choices=Terms("plan.item_status", ITEM_STATUSES))
    done = conn.execute(update(plan_items).where(plan_items.c.id == item_id,
                                                 plan_items.c.plan_id == plan_id)
                        .values(status=status)).rowcount
    if not done:
        raise NotFound("checklist item {item_id} not found", item_id=item_id)
    _touch(conn, plan_id, now)
    audit.record(conn, actor=actor.label, action="plan.item_status", object_type="plan",
                 object_id=plan_id, detail={"item": item_id, "status": status})
    return access_plan(conn, actor=actor, plan_id=plan_id)


def _fen(value: Any, field: str) -> int:
    try:
        fen = round(float(str(value).strip()) * 100)
    except ValueError:
        raise InvalidInput("{field}: an amount in yuan", field=field) from None
    if not 0 <= fen <= 10**13:
        raise InvalidInput("{field}: an amount in yuan", field=field)
    return fen


def do_add_budget(conn: Connection, *, actor: Actor, plan_id: int, category: str,
                  title: str, planned: Any, actual: Any = 0, now: datetime
                  ) -> dict[str, Any]:
    """A budget line: what it is planned to cost and what it cost (yuan)."""
    actor.require(Permission.OPERATE)
    _row(conn, plan_id)
    if category not in BUDGET_CATEGORIES:
        raise InvalidInput("category: one of {choices}",
                           choices=Terms("plan.budget", BUDGET_CATEGORIES))
    title = title.strip()
    if not title or len(title) > 200:
        raise InvalidInput("title: 1–200 characters")
    conn.execute(plan_budget.insert().values(
        plan_id=plan_id, category=category, title=title,
        planned_fen=_fen(planned, "planned"), actual_fen=_fen(actual or 0, "actual")))
    _touch(conn, plan_id, now)
    audit.record(conn, actor=actor.label, action="plan.budget", object_type="plan",
                 object_id=plan_id, detail={"title": title, "category": category})
    return access_plan(conn, actor=actor, plan_id=plan_id)


def do_set_budget_actual(conn: Connection, *, actor: Actor, plan_id: int, line_id: int,
                         actual: Any, now: datetime) -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    done = conn.execute(update(plan_budget).where(plan_budget.c.id == line_id,
                                                  plan_budget.c.plan_id == plan_id)
                        .values(actual_fen=_fen(actual, "actual"))).rowcount
    if not done:
        raise NotFound("budget line {line_id} not found", line_id=line_id)
    _touch(conn, plan_id, now)
    audit.record(conn, actor=actor.label, action="plan.budget", object_type="plan",
                 object_id=plan_id, detail={"line": line_id, "actual": str(actual)})
    return access_plan(conn, actor=actor, plan_id=plan_id)


def _zh_metric(metric: str) -> str:
    return translate(f"plan.metric.{metric}", "zh-CN")


RETRO_MAX = 2000


def do_stage_retro(conn: Connection, *, actor: Actor, plan_id: int, stage_id: int,
                   worked: str, did_not: str, change: str, now: datetime) -> dict[str, Any]:
    """The stage's retro: what worked, what did not, what to change next time."""
    actor.require(Permission.OPERATE)
    texts = {"retro_worked": worked.strip(), "retro_not": did_not.strip(),
             "retro_change": change.strip()}
    if any(len(t) > RETRO_MAX for t in texts.values()):
        raise InvalidInput("retro: at most {n} characters each", n=RETRO_MAX)
    done = conn.execute(update(plan_stages).where(plan_stages.c.id == stage_id,
                                                  plan_stages.c.plan_id == plan_id)
                        .values(**texts)).rowcount
    if not done:
        raise NotFound("stage {stage_id} not found", stage_id=stage_id)
    _touch(conn, plan_id, now)
    audit.record(conn, actor=actor.label, action="plan.retro", object_type="plan",
                 object_id=plan_id, detail={"stage": stage_id})
    return access_plan(conn, actor=actor, plan_id=plan_id)


def do_add_problem(conn: Connection, *, actor: Actor, plan_id: int, issue: str,
                   owner: str | None = None, now: datetime) -> dict[str, Any]:
    """A problem met during the plan, open, with who owns it."""
    actor.require(Permission.OPERATE)
    _row(conn, plan_id)
    issue = issue.strip()
    if not issue or len(issue) > RETRO_MAX:
        raise InvalidInput("issue: 1 to {n} characters", n=RETRO_MAX)
    conn.execute(plan_problems.insert().values(
        plan_id=plan_id, issue=issue, owner_id=_user(conn, owner) if owner else None,
        status="open", resolution="", created_at=now))
    _touch(conn, plan_id, now)
    audit.record(conn, actor=actor.label, action="plan.problem", object_type="plan",
                 object_id=plan_id, detail={"issue": issue[:200]})
    return access_plan(conn, actor=actor, plan_id=plan_id)


def do_close_problem(conn: Connection, *, actor: Actor, plan_id: int, problem_id: int,
                     resolution: str, now: datetime) -> dict[str, Any]:
    """Close a problem with how it was resolved (closing it again is refused)."""
    actor.require(Permission.OPERATE)
    resolution = resolution.strip()
    if not resolution or len(resolution) > RETRO_MAX:
        raise InvalidInput("resolution: 1 to {n} characters", n=RETRO_MAX)
    done = conn.execute(update(plan_problems).where(
        plan_problems.c.id == problem_id, plan_problems.c.plan_id == plan_id,
        plan_problems.c.status == "open").values(
        status="closed", resolution=resolution, closed_at=now)).rowcount
    if not done:
        if conn.execute(select(plan_problems.c.id).where(
                plan_problems.c.id == problem_id,
                plan_problems.c.plan_id == plan_id)).first() is None:
            raise NotFound("problem {problem_id} not found", problem_id=problem_id)
        raise Conflict("problem {problem_id} is already closed", problem_id=problem_id)
    _touch(conn, plan_id, now)
    audit.record(conn, actor=actor.label, action="plan.problem_close", object_type="plan",
                 object_id=plan_id, detail={"problem": problem_id})
    return access_plan(conn, actor=actor, plan_id=plan_id)


def closing_report(conn: Connection, *, actor: Actor, plan_id: int, tz: ZoneInfo,
                   now: datetime) -> dict[str, Any]:
    """What the manager reads at the end: the plan's numbers against the outcome (the
    goal's members, deposits and purchases against what happened, every metric's target
    against actual), the stages with their totals and retros, the problems, the budget."""
    report = plan_actual(conn, actor=actor, plan_id=plan_id, tz=tz, now=now)
    answer = (report["plan"]["goal"] or {}).get("answer") or {}
    goal = [{"metric": metric, "planned": answer.get(key), "actual":
             report["totals"][metric]["actual"]}
            for metric, key in (("joined", "members"), ("deposit", "deposits"),
                                ("purchase", "purchases")) if answer.get(key) is not None]
    return {**report, "goal_vs_outcome": goal, "made_at": now}


def raise_variance(conn: Connection, *, tz: ZoneInfo, now: datetime) -> list[int]:
    """The worker's round: each plan's finished days that fell short and were not raised
    yet become one staff task per plan and day for its PMs (each short metric with target
    and actual), once. Returns the tasks made."""
    today = now.astimezone(tz).date().isoformat()
    made: list[int] = []
    running = conn.execute(select(plans.c.id, plans.c.name).where(
        plans.c.starts_on < today)).all()
    for plan_id, name in running:
        pending = {(str(d), str(m)) for d, m in conn.execute(
            select(plan_targets.c.day, plan_targets.c.metric).where(
                plan_targets.c.plan_id == plan_id, plan_targets.c.day < today,
                plan_targets.c.alerted_at.is_(None)))}
        if not pending:
            continue
        report = plan_actual(conn, actor=SYSTEM, plan_id=int(plan_id), tz=tz, now=now)
        short = [s for s in report["short"] if (s["day"], s["metric"]) in pending]
        leads = sorted(r["username"] for r in report["plan"]["roles"] if r["role"] == "pm")
        by_day: dict[str, list[dict[str, Any]]] = {}
        for s in short:
            by_day.setdefault(s["day"], []).append(s)
        for day, misses in sorted(by_day.items()):
            words = "、".join(f"{_zh_metric(s['metric'])} {s['actual']}/{s['target']}"
                             for s in misses)
            made.append(tasks.create_task(
                conn, kind=VARIANCE_TASK, title=f"{name}：{day} 未达目标（{words}）",
                reason="计划与实际", payload={"plan_id": int(plan_id), "day": day,
                                              "leads": leads, "misses": misses, "says": {
                    "title": saying("plan.variance_task", plan=name, day=day,
                                    n=len(misses)),
                    "reason": saying("plan.variance_reason")}},
                now=now))
        # every finished day looked at is settled: raised if short, else nothing to raise
        conn.execute(update(plan_targets).where(
            plan_targets.c.plan_id == plan_id, plan_targets.c.day < today,
            plan_targets.c.alerted_at.is_(None)).values(alerted_at=now))
    return made


def list_plans(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    return [access_plan(conn, actor=actor, plan_id=int(i)) for i in conn.execute(
        select(plans.c.id).order_by(plans.c.starts_on.desc(), plans.c.id.desc())).scalars()]


def plan_actual(conn: Connection, *, actor: Actor, plan_id: int, tz: ZoneInfo,
                now: datetime) -> dict[str, Any]:
    """Plan versus actual per day and metric (days to come carry their targets and what
    has happened so far), totals per metric and per stage, and the short days."""
    plan = access_plan(conn, actor=actor, plan_id=plan_id)
    first = date.fromisoformat(plan["starts_on"])
    last = date.fromisoformat(plan["ends_on"])
    group_ids = plan_group_ids(conn, actor=actor, plan=plan)
    counted = daily_counts(
        conn, tz=tz, group_ids=group_ids, activity_id=plan["activity_id"],
        start=datetime.combine(first, time.min, tzinfo=tz),
        end=datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz))
    actual = {(row["day"], metric): int(row["new" if metric == "joined" else metric])
              for row in counted for metric in METRICS}
    targets = {(str(d), str(m)): int(v) for d, m, v in conn.execute(
        select(plan_targets.c.day, plan_targets.c.metric, plan_targets.c.value)
        .where(plan_targets.c.plan_id == plan_id))}
    days = _days(first, last)
    today = now.astimezone(tz).date().isoformat()
    results = compare(targets, actual, days, today, float(plan["margin"]))
    by_day: dict[str, dict[str, Any]] = {d: {"day": d, "past": d < today} for d in days}
    for r in results:
        by_day[r.day][r.metric] = {"target": r.target, "actual": r.actual, "short": r.short}

    def total(metric: str, within: tuple[str, str] | None = None) -> dict[str, int]:
        keep = [r for r in results if r.metric == metric
                and (within is None or within[0] <= r.day <= within[1])]
        return {"target": sum(r.target or 0 for r in keep), "actual": sum(r.actual for r in keep)}

    return {"plan": plan, "days": list(by_day.values()),
            "totals": {m: total(m) for m in METRICS},
            "stages": [{**s, "totals": {m: total(m, (s["starts_on"], s["ends_on"]))
                                        for m in METRICS}} for s in plan["stages"]],
            "short": [{"day": r.day, "metric": r.metric, "target": r.target,
                       "actual": r.actual} for r in results if r.short]}


def plan_group_ids(conn: Connection, *, actor: Actor, plan: Mapping[str, Any]) -> list[int]:
    """The plan's groups: its own, else its activity's."""
    ids = list(plan["group_ids"])
    if not ids and plan["activity_id"] is not None:
        ids = list(access_activity(conn, actor=actor, ref=plan["activity_id"])["group_ids"])
    return ids


def scheduled_pushes(conn: Connection, *, actor: Actor, plan_id: int, tz: ZoneInfo,
                     now: datetime) -> list[dict[str, Any]]:
    """The playbook steps and broadcasts that reach the plan's groups between now (or the
    plan's first day, if later) and its last day — the timeline's pushes, each with the
    number of the plan's groups it reaches and why it would not go out (paused)."""
    plan = access_plan(conn, actor=actor, plan_id=plan_id)
    gids = set(plan_group_ids(conn, actor=actor, plan=plan))
    begin = max(now, datetime.combine(date.fromisoformat(plan["starts_on"]), time.min,
                                      tzinfo=tz))
    end = datetime.combine(date.fromisoformat(plan["ends_on"]) + timedelta(days=1), time.min,
                           tzinfo=tz)
    if not gids or begin >= end:
        return []
    planned = timeline.planned_pushes(
        conn, begin=begin, end=end, clock=Clock(now, tz), members_too=False,
        wanted=lambda r: r.scope == "group" and r.key in gids)
    return [{"at": p.at, "day": p.at.astimezone(tz).date().isoformat(),
             "time": p.at.astimezone(tz).strftime("%H:%M"), "source": p.source,
             "source_id": p.source_id, "name": p.name, "step": p.step,
             "groups": len(p.recipients), "paused": p.paused} for p in planned]


__all__ = [
    "VARIANCE_TASK",
    "access_plan",
    "closing_report",
    "do_add_budget",
    "do_add_item",
    "do_add_problem",
    "do_add_stage",
    "do_close_problem",
    "do_create_plan",
    "do_edit_plan",
    "do_remove_stage",
    "do_set_budget_actual",
    "do_set_item_status",
    "do_set_role",
    "do_set_targets",
    "do_stage_retro",
    "find_plan",
    "list_plans",
    "plan_actual",
    "plan_group_ids",
    "raise_variance",
    "scheduled_pushes",
]
