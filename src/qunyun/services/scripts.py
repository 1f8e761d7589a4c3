"""The script library (话术, F16): validated at save time, every change a new version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from qunyun.adapters.storage.tables import (
    groups,
    members,
    playbook_steps,
    script_versions,
    scripts,
)
from qunyun.clock import utcnow
from qunyun.domain.content import ContentError, ScriptKind, check_script, render
from qunyun.domain.staff import Permission
from qunyun.i18n import Terms
from qunyun.services import audit
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.users import Actor

_FIELDS = ("name", "kind", "body", "variables", "attachments")


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    name = str(values.get("name", "")).strip()
    if not name or len(name) > 128:
        raise InvalidInput("name: 1–128 characters")
    kind = str(values.get("kind") or ScriptKind.ANNOUNCEMENT)
    if kind not in ScriptKind.__members__.values():
        raise InvalidInput("kind: one of {choices}", choices=Terms("content.kind", ScriptKind))
    declared = [str(v).strip() for v in values.get("variables") or [] if str(v).strip()]
    body = str(values.get("body", ""))
    try:
        attachments = check_script(body, declared, list(values.get("attachments") or []))
    except ContentError as exc:
        raise InvalidInput.wrap(exc) from None
    return {"name": name, "kind": kind, "body": body, "variables": declared,
            "attachments": attachments}


def _version_row(script_id: int, version: int, data: dict[str, Any], actor: str,
                 at: datetime, note: str) -> dict[str, Any]:
    return {"script_id": script_id, "version": version, **data, "changed_by": actor,
            "changed_at": at, "note": note[:255]}


def do_create_script(conn: Connection, *, actor: Actor,
                     values: Mapping[str, Any]) -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    data = _clean(values)
    if conn.execute(select(scripts.c.id).where(scripts.c.name == data["name"])).first():
        raise Conflict("a script named {name!r} exists", name=data['name'])
    now = utcnow()
    script_id = int(conn.execute(scripts.insert().values(
        **data, version=1, archived=False, created_at=now, updated_at=now,
        updated_by=actor.label).returning(scripts.c.id)).scalar_one())
    conn.execute(script_versions.insert().values(
        _version_row(script_id, 1, data, actor.label, now, "created")))
    audit.record(conn, actor=actor.label, action="script.create", object_type="script",
                 object_id=script_id, detail={"name": data["name"]})
    return get_script(conn, actor=actor, script_id=script_id)


def do_update_script(conn: Connection, *, actor: Actor, script_id: int,
                     values: Mapping[str, Any], note: str = "") -> dict[str, Any]:
    """Save a new version; fields not given keep their value. Unchanged saves add nothing."""
    actor.require(Permission.OPERATE)
    current = get_script(conn, actor=actor, script_id=script_id)
    data = _clean({k: values.get(k, current[k]) for k in _FIELDS})
    if all(data[k] == current[k] for k in _FIELDS):
        return current
    if data["name"] != current["name"] and conn.execute(
            select(scripts.c.id).where(scripts.c.name == data["name"])).first():
        raise Conflict("a script named {name!r} exists", name=data['name'])
    version = int(current["version"]) + 1
    now = utcnow()
    conn.execute(update(scripts).where(scripts.c.id == script_id).values(
        **data, version=version, updated_at=now, updated_by=actor.label))
    conn.execute(script_versions.insert().values(
        _version_row(script_id, version, data, actor.label, now, note)))
    changed = [k for k in _FIELDS if data[k] != current[k]]
    audit.record(conn, actor=actor.label, action="script.update", object_type="script",
                 object_id=script_id, detail={"version": version, "changed": changed,
                                              "note": note})
    return get_script(conn, actor=actor, script_id=script_id)


def do_archive_script(conn: Connection, *, actor: Actor, script_id: int,
                      archived: bool = True) -> dict[str, Any]:
    """Archive (hide from pickers); a script a live playbook step uses cannot be archived."""
    actor.require(Permission.OPERATE)
    get_script(conn, actor=actor, script_id=script_id)
    if archived and conn.execute(select(playbook_steps.c.id).where(
            playbook_steps.c.script_id == script_id, ~playbook_steps.c.skipped)).first():
        raise Conflict("a playbook step uses this script; change the step first")
    conn.execute(update(scripts).where(scripts.c.id == script_id).values(archived=archived))
    audit.record(conn, actor=actor.label, action="script.archive" if archived else
                 "script.restore", object_type="script", object_id=script_id)
    return get_script(conn, actor=actor, script_id=script_id)


def get_script(conn: Connection, *, actor: Actor, script_id: int) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    row = conn.execute(select(scripts).where(scripts.c.id == script_id)).mappings().first()
    if row is None:
        raise NotFound("script {script_id} not found", script_id=script_id)
    return dict(row)


def find_script(conn: Connection, *, actor: Actor, ref: str | int) -> dict[str, Any]:
    """By id or by name."""
    text = str(ref).strip()
    if text.isdigit():
        return get_script(conn, actor=actor, script_id=int(text))
    actor.require(Permission.VIEW)
    row = conn.execute(select(scripts).where(scripts.c.name == text)).mappings().first()
    if row is None:
        raise NotFound("script {text!r} not found", text=text)
    return dict(row)


def list_scripts(conn: Connection, *, actor: Actor, kind: str | None = None,
                 archived: bool = False) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    stmt = select(scripts).where(scripts.c.archived == archived)
    if kind:
        stmt = stmt.where(scripts.c.kind == kind)
    return [dict(r) for r in conn.execute(stmt.order_by(scripts.c.kind, scripts.c.name))
            .mappings()]


def script_history(conn: Connection, *, actor: Actor, script_id: int) -> list[dict[str, Any]]:
    get_script(conn, actor=actor, script_id=script_id)
    return [dict(r) for r in conn.execute(
        select(script_versions).where(script_versions.c.script_id == script_id)
        .order_by(script_versions.c.version.desc())).mappings()]


def standard_values(*, group_name: str = "", member_name: str = "", at: datetime | None = None,
                    tz: Any = None, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The variables qunyun fills for a send; ``extra`` (the playbook's or broadcast's own
    values) may override any of them."""
    values = {"group": group_name, "name": member_name or "大家"}
    if at is not None:
        values["date"] = (at.astimezone(tz) if tz else at).strftime("%m月%d日")
    values.update({k: str(v) for k, v in (extra or {}).items() if v is not None})
    return values


def preview_script(conn: Connection, *, actor: Actor, script_id: int,
                   group_id: int | None = None, member_id: int | None = None,
                   values: Mapping[str, Any] | None = None, tz: Any = None) -> dict[str, Any]:
    """The script as a chosen group and member would receive it, and what is missing."""
    script = get_script(conn, actor=actor, script_id=script_id)
    group_name = member_name = ""
    if group_id is not None:
        group_name = conn.execute(select(groups.c.name).where(groups.c.id == group_id)).scalar() \
            or ""
    if member_id is not None:
        member_name = conn.execute(select(members.c.display_name)
                                   .where(members.c.id == member_id)).scalar() or ""
    text, missing = render(script["body"], standard_values(
        group_name=group_name, member_name=member_name, at=utcnow(), tz=tz, extra=values))
    return {"script_id": script_id, "version": script["version"], "text": text,
            "missing": missing, "attachments": script["attachments"]}


def ensure_scripts(conn: Connection, *, actor: Actor,
                   wanted: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Create the named scripts that do not exist yet (demo and sample playbooks)."""
    out: dict[str, int] = {}
    for values in wanted:
        row = conn.execute(select(scripts.c.id).where(scripts.c.name == values["name"])).first()
        out[str(values["name"])] = int(row.id) if row else int(
            do_create_script(conn, actor=actor, values=values)["id"])
    return out
