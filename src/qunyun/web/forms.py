"""Form fields the pages read alike (scripts, playbooks, broadcasts, activities): a target of
groups, segments or members, whole numbers, ids, local times, variable values and
attachments — each refusal names the field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qunyun.domain.content import (
    ContentError,
    parse_assignments,
    parse_local_time,
)
from qunyun.i18n import Term
from qunyun.services.errors import InvalidInput


def form_target(form: Any) -> dict[str, Any] | None:
    """The target a form names with ``target_kind`` and ``target_value`` (or the ticked
    ``group_ids`` checkboxes)."""
    kind = str(form.get("target_kind") or "")
    if not kind or kind == "playbook":
        return None
    if kind == "groups":
        return {"groups": form_ids(form) or str(form.get("target_value") or "")}
    if kind == "all":
        return {"all": True}
    return {kind: str(form.get("target_value") or "")}


def form_int(value: Any, field: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise InvalidInput("{field}: a whole number", field=field) from None


def form_ids(form: Any) -> list[int]:
    return [form_int(g, "group_ids") for g in form.getlist("group_ids")]


def local_time(text: str, runtime: Any, field: str) -> datetime | None:
    try:
        return parse_local_time(text, runtime.settings.tz, field, now=runtime.now())
    except ContentError as exc:
        raise InvalidInput.wrap(exc) from None


def form_values(text: str) -> dict[str, str]:
    try:
        return parse_assignments(text.splitlines())
    except ContentError as exc:
        raise InvalidInput.wrap(exc) from None


def form_attachments(form: Any) -> list[dict[str, str]]:
    kind = str(form.get("attach_type") or "")
    if not kind:
        return []
    return [{"type": kind, "url": str(form.get("attach_url") or ""),
             "title": str(form.get("attach_title") or ""),
             "appid": str(form.get("attach_appid") or ""),
             "page": str(form.get("attach_page") or "")}]


async def form_picture(request: Any, field: str = "screenshot") -> bytes:
    """The picture uploaded in a multipart form's ``field`` (checked later, when stored)."""
    form = await request.form()
    upload = form.get(field)
    if upload is None or isinstance(upload, str):
        raise InvalidInput("{field}: choose a picture", field=Term("picture", field))
    return bytes(await upload.read())
