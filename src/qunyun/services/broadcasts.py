"""Broadcasts (F18): one push to groups or to a segment's members, now or at a set time.

Creating one stores it and a scheduled job; the worker fires the job through the event path
(``ScheduleFired`` → :func:`fire_broadcast`), so a restart neither loses nor repeats it.
The text is fixed when the broadcast is saved (the script's version is kept), so what the
composer previewed is what goes out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Select, select, update

from qunyun.adapters.storage.tables import broadcasts, scripts
from qunyun.clock import Clock, utcnow
from qunyun.domain.content import ContentError, check_script
from qunyun.domain.events import ScheduleFired
from qunyun.domain.staff import Permission
from qunyun.i18n import Term
from qunyun.services import audit, pushes, schedules
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.scripts import get_script
from qunyun.services.users import SYSTEM, Actor

if TYPE_CHECKING:
    from qunyun.services.ingest import IngestConfig

SCHEDULED = "scheduled"
SENT = "sent"
CANCELLED = "cancelled"
JOB_KIND = "broadcast"


def _content(conn: Connection, actor: Actor, script_id: int | None, text: str | None,
             attachments: Sequence[Mapping[str, Any]] | None) -> tuple[str, list[dict[str, str]],
                                                                       dict[str, Any]]:
    """The body and attachments to send: the script's, or the text given (not both)."""
    if script_id is not None and (text or "").strip():
        raise InvalidInput("give a script or a text, not both")
    if script_id is not None:
        script = get_script(conn, actor=actor, script_id=script_id)
        return script["body"], list(script["attachments"]), {
            "script": script["name"], "version": script["version"],
            "declared": script["variables"]}
    body = (text or "").strip()
    try:
        return body, check_script(body, [], list(attachments or [])), {}
    except ContentError as exc:
        raise InvalidInput.wrap(exc) from None


def _validate(conn: Connection, *, actor: Actor, name: str, target: Mapping[str, Any] | None,
              send_at: datetime | None, now: datetime) -> tuple[str, dict[str, Any], datetime]:
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("name: 1–128 characters")
    checked = pushes.check_target(conn, actor=actor, target=target)
    if checked is None:
        raise InvalidInput("target: give groups, a group tag, a series, all or a segment")
    if send_at is not None and send_at.tzinfo is None:
        raise InvalidInput("send_at: give a time zone")
    at = send_at or now
    if at < now - timedelta(minutes=1):
        raise InvalidInput("send_at: that time has passed")
    return name, checked, at


def preview_broadcast(conn: Connection, *, actor: Actor, target: Mapping[str, Any] | None,
                      script_id: int | None = None, text: str | None = None,
                      attachments: Sequence[Mapping[str, Any]] | None = None,
                      variables: Mapping[str, Any] | None = None,
                      send_at: datetime | None = None, clock: Clock,
                      sample: int = 20, pin: bool = False) -> dict[str, Any]:
    """The composer's dry run: how many recipients, how the caps and quiet hours place them,
    and a sample of the rendered texts. Stores nothing."""
    actor.require(Permission.VIEW)
    checked = pushes.check_target(conn, actor=actor, target=target)
    body, attach, _meta = _content(conn, actor, script_id, text, attachments)
    at = send_at or clock.now
    recipients = pushes.resolve(conn, actor=actor, target=checked, clock=clock)
    planner = pushes.load_planner(conn, tz=clock.tz, recipients=recipients, around=at)
    outcomes = pushes.place_all(planner, recipients, body=body, values=variables or {}, at=at)
    counts = {s: 0 for s in ("send", "deferred", "queued", "dropped", "skipped")}
    for o in outcomes:
        counts[o.placement.status if o.placement else "skipped"] += 1
    warnings = sorted({o.placement.reason for o in outcomes
                       if o.placement and o.placement.status in ("queued", "dropped")}
                      | {o.reason for o in outcomes if o.placement is None})
    groups = sorted({r.group_name or r.name for r in recipients})
    return {"recipients": len(recipients), "target": pushes.describe_target(checked),
            "at": at, "groups": groups[:30], "more_groups": max(0, len(groups) - 30),
            "counts": counts, "warnings": warnings, "attachments": attach, "pin": bool(pin),
            "sample": [pushes.outcome_row(o, clock.tz) for o in outcomes[:sample]]}


def do_create_broadcast(conn: Connection, *, actor: Actor, name: str,
                        target: Mapping[str, Any] | None, script_id: int | None = None,
                        text: str | None = None,
                        attachments: Sequence[Mapping[str, Any]] | None = None,
                        variables: Mapping[str, Any] | None = None,
                        send_at: datetime | None = None, now: datetime | None = None,
                        clock: Clock | None = None, pin: bool = False) -> dict[str, Any]:
    """Store a broadcast and its job (immediate ones are due now; the worker sends them).
    Refused when the target reaches nobody now (``clock`` places segment days; UTC if not
    given): a broadcast to zero groups is a mistake, not a send."""
    actor.require(Permission.OPERATE)
    now = now or utcnow()
    name, checked, at = _validate(conn, actor=actor, name=name, target=target,
                                  send_at=send_at, now=now)
    if checked is not None and not pushes.resolve(conn, actor=actor, target=checked,
                                                  clock=clock or Clock(now, ZoneInfo("UTC"))):
        raise InvalidInput("target: {target} reaches no group or member now",
                           target=pushes.describe_target(checked))
    body, attach, meta = _content(conn, actor, script_id, text, attachments)
    values = {str(k): str(v) for k, v in (variables or {}).items() if str(v).strip()}
    if missing := [v for v in meta.get("declared", []) if v not in values]:
        raise InvalidInput("variables: the script needs a value for {{{missing}}}",
                           missing=missing[0])
    bid = int(conn.execute(broadcasts.insert().values(
        name=name, script_id=script_id, text=body, attachments=attach, variables=values,
        target=checked, send_at=at, status=SCHEDULED, created_by=actor.label, created_at=now,
        pin=bool(pin),
    ).returning(broadcasts.c.id)).scalar_one())
    schedules.do_schedule_job(conn, key=f"broadcast:{bid}", kind=JOB_KIND, run_at=at,
                              actor=actor.label, payload={"broadcast_id": bid})
    audit.record(conn, actor=actor.label, action="broadcast.create", object_type="broadcast",
                 object_id=bid, detail={"target": checked, "send_at": at.isoformat(),
                                        "pin": bool(pin), **meta})
    return get_broadcast(conn, actor=actor, broadcast_id=bid)


def do_cancel_broadcast(conn: Connection, *, actor: Actor, broadcast_id: int) -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    current = get_broadcast(conn, actor=actor, broadcast_id=broadcast_id)
    if current["status"] != SCHEDULED:
        raise Conflict("broadcast {broadcast_id} is already {status}",
                       broadcast_id=broadcast_id, status=Term("content.bstatus", current["status"]))
    conn.execute(update(broadcasts).where(broadcasts.c.id == broadcast_id)
                 .values(status=CANCELLED))
    schedules.do_set_jobs(conn, [f"broadcast:{broadcast_id}"], status="cancelled")
    audit.record(conn, actor=actor.label, action="broadcast.cancel", object_type="broadcast",
                 object_id=broadcast_id)
    return get_broadcast(conn, actor=actor, broadcast_id=broadcast_id)


def fire_broadcast(conn: Connection, event: ScheduleFired, config: IngestConfig,
                   now: datetime) -> list[int]:
    """The job handler: fan the broadcast out (once: the event id is the job's)."""
    bid = int(event.payload.get("broadcast_id", 0))
    row = conn.execute(select(broadcasts).where(broadcasts.c.id == bid)).mappings().first()
    if row is None or row["status"] != SCHEDULED:
        return []
    tz = ZoneInfo(config.timezone)
    recipients = pushes.resolve(conn, actor=SYSTEM, target=row["target"], clock=Clock(now, tz))
    result = pushes.fan_out(
        conn, key=f"broadcast:{bid}", source="broadcast", due_at=event.occurred_at, now=now,
        recipients=recipients, body=row["text"], values=row["variables"],
        attachments=row["attachments"], capabilities=config.capabilities, tz=tz,
        broadcast_id=bid, pin=bool(row["pin"]))
    conn.execute(update(broadcasts).where(broadcasts.c.id == bid).values(status=SENT))
    return result.outbox_ids


def _with_script() -> Select[Any]:
    return select(broadcasts, scripts.c.name.label("script_name")).outerjoin(
        scripts, scripts.c.id == broadcasts.c.script_id)


def get_broadcast(conn: Connection, *, actor: Actor, broadcast_id: int) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    row = conn.execute(_with_script().where(broadcasts.c.id == broadcast_id)).mappings().first()
    if row is None:
        raise NotFound("broadcast {broadcast_id} not found", broadcast_id=broadcast_id)
    out = dict(row)
    out["target_text"] = pushes.describe_target(out["target"])
    out["deliveries"] = pushes.list_deliveries(conn, actor=actor, broadcast_id=broadcast_id)
    return out


def list_broadcasts(conn: Connection, *, actor: Actor, limit: int = 100) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    rows = [dict(r) for r in conn.execute(
        _with_script().order_by(broadcasts.c.send_at.desc(), broadcasts.c.id.desc())
        .limit(limit)).mappings()]
    for r in rows:
        r["target_text"] = pushes.describe_target(r["target"])
    return rows
