"""SOP playbooks (F17): steps with a step time, a target and a script, run in many groups.

Each step of a playbook has one scheduled job (key ``playbook:<id>:step:<id>``). Pausing,
skipping, shifting the campaign start or editing a step re-computes the jobs; a step that
already ran stays done. A fired job enters the event path and :func:`fire_step` fans the
script out through :mod:`qunyun.services.pushes`; the event id (job + due time) makes a
second firing of the same occurrence a no-op, so a restart neither skips nor repeats a step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, select, update

from qunyun.adapters.storage.tables import (
    groups,
    playbook_groups,
    playbook_steps,
    playbooks,
    scheduled_jobs,
    scripts,
)
from qunyun.clock import Clock, utcnow
from qunyun.domain.content import ContentError, When, parse_when
from qunyun.domain.events import ScheduleFired
from qunyun.domain.groups import GroupState
from qunyun.domain.staff import Permission
from qunyun.i18n import Terms
from qunyun.services import audit, pushes, schedules, timeline
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.scripts import get_script
from qunyun.services.users import SYSTEM, Actor

if TYPE_CHECKING:
    from qunyun.services.ingest import IngestConfig

ACTIVE = "active"
PAUSED = "paused"
JOB_KIND = "playbook_step"


def job_key(playbook_id: int, step_id: int) -> str:
    return f"playbook:{playbook_id}:step:{step_id}"


def _when(spec: str) -> When:
    try:
        return parse_when(spec)
    except ContentError as exc:
        raise InvalidInput.wrap(exc) from None


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput("{field}: give a time zone", field=field)
    return value


# --- playbooks ----------------------------------------------------------------------------

def _on_state(value: Any) -> str:
    state = str(value or "").strip()
    if state and state not in {s.value for s in GroupState}:
        raise InvalidInput("on_state: one of {choices}", choices=Terms(
            "gstate", (s.value for s in GroupState)))
    return state


def do_create_playbook(conn: Connection, *, actor: Actor, name: str, description: str = "",
                       campaign_start: datetime | None = None,
                       variables: Mapping[str, Any] | None = None,
                       group_ids: Sequence[int] = (), on_state: str = "") -> dict[str, Any]:
    """A playbook over its groups from a campaign start, or — with ``on_state`` — one that
    runs in each group (of its groups; any group when it has none) as it enters that
    lifecycle state, its relative steps counted from the move."""
    actor.require(Permission.OPERATE)
    on_state = _on_state(on_state)
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("name: 1–128 characters")
    if conn.execute(select(playbooks.c.id).where(playbooks.c.name == name)).first():
        raise Conflict("a playbook named {name!r} exists", name=name)
    now = utcnow()
    pid = int(conn.execute(playbooks.insert().values(
        name=name, description=description, status=ACTIVE, on_state=on_state,
        campaign_start=_aware(campaign_start, "campaign_start"),
        variables={str(k): str(v) for k, v in (variables or {}).items()},
        created_at=now, updated_at=now).returning(playbooks.c.id)).scalar_one())
    audit.record(conn, actor=actor.label, action="playbook.create", object_type="playbook",
                 object_id=pid, detail={"name": name})
    if group_ids:
        do_attach_groups(conn, actor=actor, playbook_id=pid, group_ids=group_ids)
    return get_playbook(conn, actor=actor, playbook_id=pid)


def _playbook_row(conn: Connection, playbook_id: int) -> dict[str, Any]:
    row = conn.execute(select(playbooks).where(playbooks.c.id == playbook_id)).mappings().first()
    if row is None:
        raise NotFound("playbook {playbook_id} not found", playbook_id=playbook_id)
    return dict(row)


def get_playbook(conn: Connection, *, actor: Actor, playbook_id: int) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    out = _playbook_row(conn, playbook_id)
    out["steps"] = _steps(conn, playbook_id)
    out["groups"] = [dict(r) for r in conn.execute(
        select(groups.c.id, groups.c.name, groups.c.platform, groups.c.state)
        .join(playbook_groups, playbook_groups.c.group_id == groups.c.id)
        .where(playbook_groups.c.playbook_id == playbook_id).order_by(groups.c.id)).mappings()]
    return out


def find_playbook(conn: Connection, *, actor: Actor, ref: str | int) -> dict[str, Any]:
    text = str(ref).strip()
    if text.isdigit():
        return get_playbook(conn, actor=actor, playbook_id=int(text))
    actor.require(Permission.VIEW)
    pid = conn.execute(select(playbooks.c.id).where(playbooks.c.name == text)).scalar()
    if pid is None:
        raise NotFound("playbook {text!r} not found", text=text)
    return get_playbook(conn, actor=actor, playbook_id=int(pid))


def _jobs(conn: Connection, playbook_id: int) -> dict[str, dict[str, Any]]:
    return schedules.jobs_by_prefix(conn, f"playbook:{playbook_id}:")


def _steps(conn: Connection, playbook_id: int) -> list[dict[str, Any]]:
    jobs = _jobs(conn, playbook_id)
    out = []
    for r in conn.execute(select(playbook_steps, scripts.c.name.label("script_name"),
                                 scripts.c.body.label("script_body"))
                          .join(scripts, scripts.c.id == playbook_steps.c.script_id)
                          .where(playbook_steps.c.playbook_id == playbook_id,
                                 playbook_steps.c.position >= 0)
                          .order_by(playbook_steps.c.position, playbook_steps.c.id)).mappings():
        step = dict(r)
        job = jobs.get(job_key(playbook_id, step["id"]))
        step["next_run_at"] = job["next_run_at"] if job and job["status"] == ACTIVE else None
        step["job_status"] = job["status"] if job else None
        step["runs"] = job["runs"] if job else 0
        step["target_text"] = pushes.describe_target(step["target"])
        out.append(step)
    return out


def list_playbooks(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    steps: dict[int, int] = dict(conn.execute(select(playbook_steps.c.playbook_id, func.count())
                              .group_by(playbook_steps.c.playbook_id)).all())
    attached: dict[int, int] = dict(conn.execute(select(playbook_groups.c.playbook_id, func.count())
                                 .group_by(playbook_groups.c.playbook_id)).all())
    rows = [dict(r) for r in conn.execute(select(playbooks).order_by(playbooks.c.name))
            .mappings()]
    for r in rows:
        r["step_count"] = int(steps.get(r["id"], 0))
        r["group_count"] = int(attached.get(r["id"], 0))
    return rows


def do_update_playbook(conn: Connection, *, actor: Actor, playbook_id: int,
                       changes: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """Edit name, description, variables, status (pause/resume) or campaign start; the jobs
    follow at once. Returns the playbook with ``missed``: steps whose new time has passed."""
    actor.require(Permission.OPERATE)
    current = _playbook_row(conn, playbook_id)
    allowed = {"name", "description", "variables", "status", "campaign_start", "on_state"}
    if unknown := set(changes) - allowed:
        raise InvalidInput("unknown fields: {unknown}", unknown=', '.join(sorted(unknown)))
    values: dict[str, Any] = {}
    if "name" in changes:
        name = str(changes["name"]).strip()
        if not name or len(name) > 128:
            raise InvalidInput("name: 1–128 characters")
        if name != current["name"] and conn.execute(
                select(playbooks.c.id).where(playbooks.c.name == name)).first():
            raise Conflict("a playbook named {name!r} exists", name=name)
        values["name"] = name
    if "description" in changes:
        values["description"] = str(changes["description"])
    if "variables" in changes:
        values["variables"] = {str(k): str(v) for k, v in dict(changes["variables"]).items()}
    if "status" in changes:
        if changes["status"] not in (ACTIVE, PAUSED):
            raise InvalidInput("status: active or paused")
        values["status"] = changes["status"]
    if "campaign_start" in changes:
        values["campaign_start"] = _aware(changes["campaign_start"], "campaign_start")
    if "on_state" in changes:
        values["on_state"] = _on_state(changes["on_state"])
    values["updated_at"] = utcnow()
    conn.execute(update(playbooks).where(playbooks.c.id == playbook_id).values(**values))
    missed = sync_jobs(conn, playbook_id=playbook_id, tz=tz)
    audit.record(conn, actor=actor.label, action="playbook.update", object_type="playbook",
                 object_id=playbook_id, detail={k: str(v) for k, v in changes.items()}
                 | {"missed": missed})
    out = get_playbook(conn, actor=actor, playbook_id=playbook_id)
    out["missed"] = missed
    return out


def do_shift_campaign(conn: Connection, *, actor: Actor, playbook_id: int,
                      by: timedelta | None = None, to: datetime | None = None,
                      tz: ZoneInfo) -> dict[str, Any]:
    """Move the campaign start (by a delta or to a time): every pending relative step moves."""
    current = _playbook_row(conn, playbook_id)
    if to is None:
        if current["campaign_start"] is None or by is None:
            raise InvalidInput("campaign_start: set a start first, or give the new start")
        to = current["campaign_start"] + by
    return do_update_playbook(conn, actor=actor, playbook_id=playbook_id,
                              changes={"campaign_start": to}, tz=tz)


def do_set_groups(conn: Connection, *, actor: Actor, playbook_id: int,
                  group_ids: Sequence[int]) -> dict[str, Any]:
    """Make exactly these groups the playbook's (the editor's checkboxes)."""
    current = {g["id"] for g in get_playbook(conn, actor=actor, playbook_id=playbook_id)
               ["groups"]}
    gone = sorted(current - set(group_ids))
    if gone:
        do_attach_groups(conn, actor=actor, playbook_id=playbook_id, group_ids=gone,
                         detach=True)
    return do_attach_groups(conn, actor=actor, playbook_id=playbook_id, group_ids=group_ids)


def do_attach_groups(conn: Connection, *, actor: Actor, playbook_id: int,
                     group_ids: Sequence[int], detach: bool = False) -> dict[str, Any]:
    """Attach (or detach) many groups at once; unknown group ids are refused."""
    actor.require(Permission.OPERATE)
    _playbook_row(conn, playbook_id)
    ids = list(dict.fromkeys(int(g) for g in group_ids))
    found = set(conn.execute(select(groups.c.id).where(groups.c.id.in_(ids))).scalars())
    if missing := [g for g in ids if g not in found]:
        raise InvalidInput("groups: no group {missing}", missing=missing[0])
    if detach:
        conn.execute(delete(playbook_groups).where(playbook_groups.c.playbook_id == playbook_id,
                                                   playbook_groups.c.group_id.in_(ids)))
    else:
        have = set(conn.execute(select(playbook_groups.c.group_id).where(
            playbook_groups.c.playbook_id == playbook_id)).scalars())
        new = [{"playbook_id": playbook_id, "group_id": g} for g in ids if g not in have]
        if new:
            conn.execute(playbook_groups.insert(), new)
    audit.record(conn, actor=actor.label,
                 action="playbook.detach" if detach else "playbook.attach",
                 object_type="playbook", object_id=playbook_id, detail={"groups": ids})
    return get_playbook(conn, actor=actor, playbook_id=playbook_id)


# --- steps --------------------------------------------------------------------------------

def _step_values(conn: Connection, actor: Actor, values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "at" in values:
        out["at"] = _when(str(values["at"])).spec
    if "script_id" in values:
        script = get_script(conn, actor=actor, script_id=int(values["script_id"]))
        if script["archived"]:
            raise InvalidInput("script_id: script {id} is archived", id=script['id'])
        out["script_id"] = script["id"]
    if "name" in values:
        out["name"] = str(values["name"] or "")[:128]
    if "target" in values:
        out["target"] = pushes.check_target(conn, actor=actor, target=values["target"])
    if "max_messages_last_hour" in values:
        n = values["max_messages_last_hour"]
        if n in (None, ""):
            out["max_messages_last_hour"] = None
        else:
            try:
                out["max_messages_last_hour"] = int(n)
            except (TypeError, ValueError):
                raise InvalidInput("max_messages_last_hour: a whole number") from None
            if not 1 <= out["max_messages_last_hour"] <= 10000:
                raise InvalidInput("max_messages_last_hour: between 1 and 10000")
    return out


def do_add_step(conn: Connection, *, actor: Actor, playbook_id: int, values: Mapping[str, Any],
                tz: ZoneInfo) -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    _playbook_row(conn, playbook_id)
    if "at" not in values or "script_id" not in values:
        raise InvalidInput("a step needs at (its time) and script_id")
    data = _step_values(conn, actor, values)
    position = int(conn.execute(select(func.coalesce(func.max(playbook_steps.c.position), 0))
                                .where(playbook_steps.c.playbook_id == playbook_id))
                   .scalar_one()) + 1
    sid = int(conn.execute(playbook_steps.insert().values(
        playbook_id=playbook_id, position=position, skipped=False,
        **{"name": "", "target": None, "max_messages_last_hour": None, **data})
        .returning(playbook_steps.c.id)).scalar_one())
    sync_jobs(conn, playbook_id=playbook_id, tz=tz)
    audit.record(conn, actor=actor.label, action="playbook.step_add", object_type="playbook",
                 object_id=playbook_id, detail={"step_id": sid, "at": data["at"]})
    return _step(conn, playbook_id, sid)


def _step(conn: Connection, playbook_id: int, step_id: int) -> dict[str, Any]:
    for s in _steps(conn, playbook_id):
        if s["id"] == step_id:
            return s
    raise NotFound("step {step_id} not found in playbook {playbook_id}",
                   step_id=step_id, playbook_id=playbook_id)


def do_update_step(conn: Connection, *, actor: Actor, playbook_id: int, step_id: int,
                   values: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    _step(conn, playbook_id, step_id)
    if unknown := set(values) - {"at", "script_id", "name", "target", "max_messages_last_hour"}:
        raise InvalidInput("unknown fields: {unknown}", unknown=', '.join(sorted(unknown)))
    data = _step_values(conn, actor, values)
    if data:
        conn.execute(update(playbook_steps).where(playbook_steps.c.id == step_id).values(**data))
        if "at" in data:  # a new time is a new step: a done one-off runs again at it
            schedules.do_drop_jobs(conn, [job_key(playbook_id, step_id)])
        sync_jobs(conn, playbook_id=playbook_id, tz=tz)
    audit.record(conn, actor=actor.label, action="playbook.step_update",
                 object_type="playbook", object_id=playbook_id,
                 detail={"step_id": step_id, **{k: str(v) for k, v in data.items()}})
    return _step(conn, playbook_id, step_id)


def do_skip_step(conn: Connection, *, actor: Actor, playbook_id: int, step_id: int,
                 skipped: bool = True, once: bool = False, tz: ZoneInfo) -> dict[str, Any]:
    """Skip a step for good (or take it back), or with ``once`` only its next occurrence."""
    actor.require(Permission.OPERATE)
    step = _step(conn, playbook_id, step_id)
    key = job_key(playbook_id, step_id)
    if once:
        job = _jobs(conn, playbook_id).get(key)
        if job is None or job["status"] != ACTIVE:
            raise Conflict("this step has no next occurrence to skip")
        when = _when(step["at"])
        nxt = when.next_at(job["next_run_at"] + timedelta(seconds=1), tz=tz) \
            if when.recurring else None
        schedules.do_set_jobs(conn, [key], status=None if nxt else "done",
                              next_run_at={key: nxt[0]} if nxt else None)
    else:
        conn.execute(update(playbook_steps).where(playbook_steps.c.id == step_id)
                     .values(skipped=skipped))
        sync_jobs(conn, playbook_id=playbook_id, tz=tz)
    audit.record(conn, actor=actor.label, action="playbook.step_skip", object_type="playbook",
                 object_id=playbook_id, detail={"step_id": step_id, "skipped": skipped,
                                                "once": once})
    return _step(conn, playbook_id, step_id)


def do_delete_step(conn: Connection, *, actor: Actor, playbook_id: int, step_id: int) -> None:
    actor.require(Permission.OPERATE)
    _step(conn, playbook_id, step_id)
    schedules.do_set_jobs(conn, [job_key(playbook_id, step_id)], status="cancelled")
    conn.execute(update(playbook_steps).where(playbook_steps.c.id == step_id)
                 .values(skipped=True, position=-1))
    audit.record(conn, actor=actor.label, action="playbook.step_delete",
                 object_type="playbook", object_id=playbook_id, detail={"step_id": step_id})


def sync_jobs(conn: Connection, *, playbook_id: int, tz: ZoneInfo,
              now: datetime | None = None) -> list[str]:
    """Make each step's job match the playbook: next time, paused or active. Returns the
    steps whose (new) time had already passed and that will therefore not run."""
    now = now or utcnow()
    pb = _playbook_row(conn, playbook_id)
    jobs = _jobs(conn, playbook_id)
    missed: list[str] = []
    for step in conn.execute(select(playbook_steps).where(
            playbook_steps.c.playbook_id == playbook_id, playbook_steps.c.position >= 0)
            ).mappings():
        key = job_key(playbook_id, step["id"])
        job = jobs.get(key)
        when = _when(step["at"])
        if pb["on_state"]:  # runs start per group with its state moves (start_runs)
            if job is not None and job["status"] not in ("done", "cancelled"):
                schedules.do_set_jobs(conn, [key], status="cancelled")
            continue
        if job is not None and job["status"] in ("done", "cancelled") and not when.recurring:
            continue  # ran (or was dropped): a one-off never runs twice
        nxt = when.next_at(now, tz=tz, campaign_start=pb["campaign_start"])
        status = ACTIVE if pb["status"] == ACTIVE and not step["skipped"] else PAUSED
        if nxt is None:
            if when.needs_start and pb["campaign_start"] is None:
                status = PAUSED  # waits for a campaign start
                run_at = now
            else:
                if job is not None:
                    schedules.do_set_jobs(conn, [key], status="done")
                missed.append(step["name"] or step["at"])
                continue
        else:
            run_at = nxt[0]
        schedules.do_put_job(conn, key=key, kind=JOB_KIND, run_at=run_at, status=status,
                             payload={"playbook_id": playbook_id, "step_id": step["id"]},
                             recurrence=when.spec if when.recurring else None)
    return missed


def start_runs(conn: Connection, *, group: Mapping[str, Any], state: str, now: datetime,
               tz: ZoneInfo) -> list[str]:
    """The group just entered ``state``: every active playbook triggered by it (and meant
    for this group) schedules its relative steps in this group, T being now; a step whose
    time is already past (T-1d) is left out. Returns the jobs' keys."""
    gid = int(group["id"])
    keys: list[str] = []
    for pb in conn.execute(select(playbooks).where(playbooks.c.on_state == state,
                                                   playbooks.c.status == ACTIVE)).mappings():
        pid = int(pb["id"])
        attached = set(conn.execute(select(playbook_groups.c.group_id).where(
            playbook_groups.c.playbook_id == pid)).scalars())
        if attached and gid not in attached:
            continue
        stamp = now.strftime("%Y%m%d%H%M%S")
        for step in conn.execute(select(playbook_steps).where(
                playbook_steps.c.playbook_id == pid, playbook_steps.c.position >= 0,
                playbook_steps.c.skipped.is_(False))).mappings():
            when = _when(step["at"])
            nxt = when.next_at(now, tz=tz, campaign_start=now) if when.needs_start else None
            if nxt is None:
                continue
            key = f"{job_key(pid, int(step['id']))}:group:{gid}:{stamp}"
            if conn.execute(select(scheduled_jobs.c.id).where(
                    scheduled_jobs.c.key == key)).first() is not None:
                continue  # the same move seen twice
            schedules.do_schedule_job(
                conn, key=key, kind=JOB_KIND, run_at=nxt[0], group_id=gid,
                payload={"playbook_id": pid, "step_id": int(step["id"]), "group_id": gid,
                         "state": state, "start": now.isoformat()})
            keys.append(key)
    return keys


def fire_step(conn: Connection, event: ScheduleFired, config: IngestConfig,
              now: datetime) -> list[int]:
    """The job handler: fan one step's script out to its target, once per occurrence (a
    triggered run's step only to its group, and only while the group is still in the state
    that started it: a cooling group that recovered gets no revival messages)."""
    pid, sid = int(event.payload.get("playbook_id", 0)), int(event.payload.get("step_id", 0))
    pb_row = conn.execute(select(playbooks).where(playbooks.c.id == pid)).mappings().first()
    step_row = conn.execute(select(playbook_steps).where(playbook_steps.c.id == sid)
                            ).mappings().first()
    if pb_row is None or step_row is None:
        return []
    pb, step = dict(pb_row), dict(step_row)
    if pb["status"] != ACTIVE or step["skipped"]:
        return []
    script = conn.execute(select(scripts).where(scripts.c.id == step["script_id"])
                          ).mappings().one()
    tz = ZoneInfo(config.timezone)
    due = event.occurred_at
    run_group = event.payload.get("group_id")
    key = f"{job_key(pid, sid)}@{due.isoformat()}"
    if run_group is not None:
        state = conn.execute(select(groups.c.state).where(
            groups.c.id == int(run_group))).scalar()
        if state != event.payload.get("state"):
            return []
        recipients = pushes.resolve(conn, actor=SYSTEM, target=None,
                                    default_groups=[int(run_group)], clock=Clock(now, tz))
        key = f"{job_key(pid, sid)}:group:{int(run_group)}@{due.isoformat()}"
        values = timeline.step_values(pb, "")
    else:
        default_groups = list(conn.execute(select(playbook_groups.c.group_id).where(
            playbook_groups.c.playbook_id == pid)).scalars())
        recipients = pushes.resolve(conn, actor=SYSTEM, target=step["target"],
                                    default_groups=default_groups, clock=Clock(now, tz))
        values = timeline.step_values(pb, _holiday(step["at"], due, tz))
    skip = _condition(conn, step, recipients, due)
    rank = timeline.step_rank(step["at"])
    result = pushes.fan_out(
        conn, key=key, source="playbook", due_at=due,
        now=now, recipients=recipients, body=script["body"],
        values=values,
        attachments=script["attachments"], capabilities=config.capabilities, tz=tz, skip=skip,
        playbook_id=pid, step_id=sid, priority=rank,
        ahead=timeline.ahead(conn, recipients=recipients, after=due, priority=rank,
                             clock=Clock(now, tz)))
    return result.outbox_ids


def _holiday(spec: str, at: datetime, tz: ZoneInfo) -> str:
    when = parse_when(spec)
    if when.kind != "holiday":
        return ""
    found = when.occurrences(at - timedelta(minutes=1), at + timedelta(minutes=1), tz=tz)
    return found[0][1] if found else ""


def _condition(conn: Connection, step: Mapping[str, Any], recipients: Sequence[pushes.Recipient],
               at: datetime) -> Any:
    """The warm-up trigger: skip groups that already had enough talk in the last hour."""
    limit = step["max_messages_last_hour"]
    if not limit:
        return None
    counts = pushes.messages_last_hour(conn, [r.key for r in recipients if r.scope == "group"],
                                       at)

    def skip(r: pushes.Recipient) -> str:
        n = counts.get(r.key, 0)
        return f"最近一小时已有 {n} 条消息（≥{limit}），无需暖场" if n >= limit else ""

    return skip


# --- dry run ------------------------------------------------------------------------------

def preview_playbook(conn: Connection, *, actor: Actor, playbook_id: int,
                     start: date | None = None, days: int = 7, clock: Clock) -> dict[str, Any]:
    """Every push the playbook would make from ``start`` for ``days`` days, in time order,
    placed among everything else its groups receive (other playbooks, broadcasts) with quiet
    hours, caps and ranks applied as the real fan-out will (a routine step that would
    crowd out a launch notice gives way). Warm-up conditions depend on future talk, so those
    sends are marked conditional. Without ``start``: today, or two days before a campaign
    still ahead (its warm-up)."""
    actor.require(Permission.VIEW)
    pb = get_playbook(conn, actor=actor, playbook_id=playbook_id)
    if start is None:
        first = pb["campaign_start"] - timedelta(days=2) if pb["campaign_start"] else clock.now
        start = max(first, clock.now).astimezone(clock.tz).date()
    start, begin, _end = timeline.window(start, days, clock)
    default_groups = [g["id"] for g in pb["groups"]]
    notes: list[str] = []
    reached: dict[tuple[str, int], pushes.Recipient] = {}
    for step in pb["steps"]:
        if _when(step["at"]).needs_start and pb["campaign_start"] is None:
            notes.append(f"{step['name'] or step['at']}：未设置活动开始时间")
            continue
        for r in pushes.resolve(conn, actor=actor, target=step["target"],
                                default_groups=default_groups, clock=clock):
            reached[(r.scope, r.key)] = r
    rows = timeline.preview_playbook_rows(conn, playbook_id=playbook_id,
                                          recipients=list(reached.values()), begin=begin,
                                          days=days, clock=clock)
    return {"playbook_id": playbook_id, "name": pb["name"], "from": start.isoformat(),
            "days": days, "counts": dict(Counter(r["status"] for r in rows)), "notes": notes,
            "rows": rows}


def repoint_group(conn: Connection, *, old: int, new: int) -> None:
    """A planned group linked to a chat the bot saw first: the playbooks attached to the
    plan are attached to the chat's group (once)."""
    have = set(conn.execute(select(playbook_groups.c.playbook_id).where(
        playbook_groups.c.group_id == new)).scalars())
    conn.execute(delete(playbook_groups).where(playbook_groups.c.group_id == old,
                                               playbook_groups.c.playbook_id.in_(have)))
    conn.execute(update(playbook_groups).where(playbook_groups.c.group_id == old)
                 .values(group_id=new))

