"""Group health alerts reach a person (F24): each alert becomes one staff task, once.

The health report flags leave spikes, rooms where almost nobody speaks, groups silent for
days and groups full of ads, but a flag on a report page nobody opens helps nobody. The
worker checks every open group hourly (and ``qunyun report alerts`` on demand); an alert
not raised before becomes a task in ``/tasks`` (the dashboard counts open tasks). An alert
is the same one while its anchor is (the day of a spike, the last day anyone spoke, the
week of an ad wave), so a standing alert is one task, not one an hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from qunyun.adapters.storage.sql import insert_ignore
from qunyun.adapters.storage.tables import groups, health_alerts, staff_tasks
from qunyun.analytics.health import group_health
from qunyun.clock import utcnow
from qunyun.domain.groups import GroupState
from qunyun.domain.staff import Permission
from qunyun.i18n import saying
from qunyun.services import audit, tasks
from qunyun.services.users import SYSTEM, Actor

TASK_KIND = "health_alert"
# groups that are not running: no alerts for a planned or closed group
_QUIET_STATES = (GroupState.PLANNED.value, GroupState.CLOSED.value)


def do_raise_alerts(conn: Connection, *, tz: ZoneInfo, now: datetime | None = None,
                    actor: Actor = SYSTEM) -> list[dict[str, Any]]:
    """Check every running group over the last 14 days; raise each new alert as a staff
    task. Returns the alerts raised now."""
    actor.require(Permission.OPERATE)
    now = now or utcnow()
    running = {g.id for g in conn.execute(select(groups.c.id).where(
        groups.c.state.not_in(_QUIET_STATES)))}
    local_today = now.astimezone(tz).date()
    raised: list[dict[str, Any]] = []
    for report in group_health(conn, tz=tz, since=local_today - timedelta(days=13),
            until=local_today, now=now):
        if report.id not in running:
            continue
        for item in report.alert_items:
            key = f"{report.id}:{item['kind']}:{item['anchor']}"
            alert_id = insert_ignore(conn, health_alerts, {
                "key": key, "group_id": report.id, "kind": item["kind"],
                "detail": {"text": item["text"], "anchor": item["anchor"],
                           "score": report.score, "says": item["says"]},
                "raised_at": now}, ["key"])
            if alert_id is None:
                continue  # raised before: one alert, one task
            task_id = tasks.create_task(
                conn, kind=TASK_KIND, title=f"{report.name}：{item['text']}",
                reason=f"群健康预警（健康分 {report.score:.0f}）", platform=report.platform,
                group_id=report.id, payload={"alert": key, "says": {
                    "title": saying("health.task_title", group=report.name,
                                   alert=item["says"]),
                    "reason": saying("health.task_reason", score=f"{report.score:.0f}")}},
                now=now, actor=actor.label)
            conn.execute(health_alerts.update().where(health_alerts.c.id == alert_id)
                         .values(task_id=task_id))
            raised.append({"id": int(alert_id), "group_id": report.id, "group": report.name,
                           "kind": item["kind"], "text": item["text"], "says": item["says"],
                           "task_id": task_id})
    if raised:
        audit.record(conn, actor=actor.label, action="health.alerts", object_type="team",
                     detail={"raised": len(raised)})
    return raised


def list_alerts(conn: Connection, *, actor: Actor, group_id: int | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    """Alerts raised, newest first, with the state of their task."""
    actor.require(Permission.VIEW)
    stmt = (select(health_alerts, groups.c.name.label("group_name"),
                   staff_tasks.c.status.label("task_status"))
            .join(groups, groups.c.id == health_alerts.c.group_id)
            .outerjoin(staff_tasks, staff_tasks.c.id == health_alerts.c.task_id)
            .order_by(health_alerts.c.raised_at.desc(), health_alerts.c.id.desc())
            .limit(limit))
    if group_id is not None:
        stmt = stmt.where(health_alerts.c.group_id == group_id)
    return [{**dict(r), "text": (r["detail"] or {}).get("text", ""),
             "says": (r["detail"] or {}).get("says") or (r["detail"] or {}).get("text", "")}
            for r in conn.execute(stmt).mappings()]
