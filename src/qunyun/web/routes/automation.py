"""Automation pages: settings per team and group, FAQ, moderation (review queue, word lists,
a try-it box), check-in leaderboards and refunds, draws. Services do the work."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from typing import Any, Literal, get_args, get_origin

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.automation import SECTIONS, AutomationSettings
from qunyun.domain.content import ContentError, caps_from_text, caps_to_text, parse_caps
from qunyun.domain.staff import Permission
from qunyun.services import attributes, automation, checkins, draws, faqs, moderation, segment_words
from qunyun.services.errors import InvalidInput
from qunyun.services.groups import list_groups
from qunyun.web.deps import (
    CurrentActor,
    ReadConn,
    RuntimeDep,
    access,
    language,
    render,
    uploaded_file,
)
from qunyun.web.listing import ListingQuery

router = APIRouter(include_in_schema=False)


def coerce(current: Any, text: str, field: str) -> Any:
    """A form string as the type the setting has now (bool, int, float, list, text)."""
    text = text.strip()
    if isinstance(current, bool):
        return text in {"1", "true", "on", "yes"}
    if current is None or isinstance(current, int | float):
        if text == "" and current is None:
            return None
        try:
            return float(text) if isinstance(current, float) else int(text)
        except ValueError:
            raise InvalidInput("{field}: not a number: {text!r}", field=field, text=text) from None
    if isinstance(current, list):
        if field.endswith("refund_tiers"):
            return [t.model_dump() for t in checkins.parse_tiers(text)]
        if field.endswith(".caps"):
            try:
                return caps_from_text(text)
            except ContentError as exc:
                raise InvalidInput("broadcast.{exc}", exc=exc) from None
        return [part.strip() for part in text.replace("，", ",").split(",") if part.strip()]
    return text


def tiers_text(value: list[dict[str, Any]]) -> str:
    return ",".join(f"{t['min_checkins']}:{t['percent']:g}" for t in value)


@router.get("/automation")
@access(Permission.VIEW)
def automation_page(request: Request, actor: CurrentActor, conn: ReadConn,
                    runtime: RuntimeDep, group: int = 0) -> Response:
    data = automation.get_settings(conn, actor=actor, group_id=group)
    return render(request, "automation.html", {
        "s": data, "group_id": group, "sections": SECTIONS, "team_only": automation.TEAM_ONLY,
        "choices": _choices(), "controls": _controls(),
        "platforms": sorted(runtime.adapters),
        "tiers_text": tiers_text,
        "caps_text": caps_to_text, "groups": list_groups(conn, actor=actor)})


@cache
def _choices() -> dict[str, dict[str, tuple[str, ...]]]:
    """Settings that take one of a few words (a ``Literal``): offered as a list of labels,
    not typed as codes."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for section, field in AutomationSettings.model_fields.items():
        model = field.annotation
        for key, inner in getattr(model, "model_fields", {}).items():
            if get_origin(inner.annotation) is Literal:
                out.setdefault(section, {})[key] = tuple(str(a) for a in get_args(
                    inner.annotation))
    return out


@cache
def _controls() -> dict[str, dict[str, dict[str, Any]]]:
    """How each setting is edited, read from the settings models: a share (a float between
    0 and 1) is a slider, a bounded number a number box with its range, a list of steps
    ordered selects, caps a table of rows, quiet hours two time pickers."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for section, field in AutomationSettings.model_fields.items():
        model = field.annotation
        for key, inner in getattr(model, "model_fields", {}).items():
            low = next((m.ge if getattr(m, "ge", None) is not None else getattr(m, "gt", None)
                        for m in inner.metadata
                        if getattr(m, "ge", None) is not None
                        or getattr(m, "gt", None) is not None), None)
            high = next((m.le for m in inner.metadata if getattr(m, "le", None) is not None),
                        None)
            control: dict[str, Any] = {"kind": "text"}
            if key == "caps":
                control = {"kind": "caps"}
            elif key == "escalation":
                control = {"kind": "steps", "choices": get_args(get_args(inner.annotation)[0])}
            elif key == "quiet_hours":
                control = {"kind": "hours"}
            elif inner.annotation is float and high is not None and high <= 1:
                control = {"kind": "slider", "min": low or 0, "max": high, "step": 0.01}
            elif inner.annotation in (int, float, int | None):
                control = {"kind": "number", "min": low, "max": high,
                           "step": "any" if inner.annotation is float else 1}
            out.setdefault(section, {})[key] = control
    return out


def _form_caps(form: Any) -> list[dict[str, Any]]:
    """The caps table's rows (a row without a limit is left out), checked like the text."""
    rows = zip(form.getlist("caps_platform"), form.getlist("caps_scope"),
               form.getlist("caps_period"), form.getlist("caps_limit"), strict=False)
    out: list[dict[str, Any]] = []
    for platform, scope, period, limit in rows:
        limit = str(limit).strip()
        if not limit:
            continue
        out.append({"platform": str(platform) or "*", "scope": str(scope),
                    "period": str(period),
                    "limit": "days" if limit == "days" else int(limit) if limit.isdigit()
                    else limit})
    try:
        parse_caps(out)
    except ContentError as exc:
        raise InvalidInput("broadcast.{exc}", exc=exc) from None
    return out


@router.post("/automation/settings/{section}")
@access(Permission.OPERATE)
async def automation_save(section: str, request: Request, actor: CurrentActor,
                          runtime: RuntimeDep) -> Response:
    form = await request.form()
    group = int(str(form.get("group_id") or 0))
    with runtime.uow.write() as conn:
        current = automation.get_settings(conn, actor=actor, group_id=group)["effective"]
        if section not in current:
            raise InvalidInput("section: one of {sections}", sections=', '.join(SECTIONS))
        values: dict[str, Any] = {}
        reset: list[str] = []
        for key, now in current[section].items():
            if isinstance(now, bool):
                values[key] = form.get(key) == "on"
                continue
            if group and form.get(f"inherit_{key}") == "on":
                reset.append(key)
                continue
            if key == "caps" and "caps_scope" in form:
                values[key] = _form_caps(form)
                continue
            if key == "escalation" and "escalation_step" in form:
                values[key] = [str(s) for s in form.getlist("escalation_step") if s]
                continue
            if key == "quiet_hours" and "quiet_from" in form:
                start, end = str(form.get("quiet_from") or ""), str(form.get("quiet_to") or "")
                values[key] = f"{start}-{end}" if start and end else ""
                continue
            if key not in form:
                continue
            values[key] = coerce(now, str(form.get(key)), f"{section}.{key}")
        automation.do_update_settings(conn, actor=actor, group_id=group, section=section,
                                      values=values, reset=reset)
    return RedirectResponse(f"/automation?group={group}#{section}", status_code=303)


# --- FAQ ----------------------------------------------------------------------------------

@router.get("/automation/faq")
@access(Permission.VIEW)
def faq_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return render(request, "faqs.html", {"faqs": faqs.list_faqs(conn, actor=actor),
                                         "groups": list_groups(conn, actor=actor)})


@router.post("/automation/faq")
@access(Permission.OPERATE)
async def faq_create(request: Request, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    form = await request.form()
    group = str(form.get("group_id") or "")
    with runtime.uow.write() as conn:
        faqs.do_create_faq(conn, actor=actor,
                           questions=str(form.get("questions", "")).splitlines(),
                           answer=str(form.get("answer", "")),
                           match=str(form.get("match") or "fuzzy"),
                           pattern=str(form.get("pattern", "")),
                           group_id=int(group) if group else None,
                           cooldown_seconds=int(str(form.get("cooldown_seconds") or 300)))
    return RedirectResponse("/automation/faq", status_code=303)


@router.post("/automation/faq/import")
@access(Permission.OPERATE)
async def faq_import(request: Request, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    _form, data, name = await uploaded_file(request, "a CSV file (id,question,answer)")
    with runtime.uow.write() as conn:
        out = faqs.do_import_faqs(conn, actor=actor, data=data, name=name)
    return RedirectResponse(f"/automation/faq?created={out['created']}"
                            f"&replaced={out['replaced']}", status_code=303)


@router.post("/automation/faq/{faq_id}/toggle")
@access(Permission.OPERATE)
def faq_toggle(faq_id: int, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    with runtime.uow.write() as conn:
        row = faqs.get_faq(conn, actor=actor, faq_id=faq_id)
        faqs.do_update_faq(conn, actor=actor, faq_id=faq_id,
                           changes={"enabled": not row["enabled"]})
    return RedirectResponse("/automation/faq", status_code=303)


@router.post("/automation/faq/{faq_id}/delete")
@access(Permission.OPERATE)
def faq_delete(faq_id: int, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    with runtime.uow.write() as conn:
        faqs.do_delete_faq(conn, actor=actor, faq_id=faq_id)
    return RedirectResponse("/automation/faq", status_code=303)


# --- moderation ---------------------------------------------------------------------------

@router.get("/automation/moderation")
@access(Permission.VIEW)
def moderation_page(request: Request, actor: CurrentActor, conn: ReadConn,
                    runtime: RuntimeDep, listing: ListingQuery, text: str = "") -> Response:
    tried = runtime.automation.get(conn).classifier.classify(text) if text.strip() else None
    log = moderation.page_decisions(conn, actor=actor, listing=listing)
    return render(request, "moderation.html", {
        "pending": moderation.list_decisions(conn, actor=actor, status="pending"),
        "p": log, "recent": log.rows,
        "lists": moderation.list_word_lists(conn, actor=actor), "text": text, "tried": tried})


@router.post("/automation/moderation/{decision_id}/review")
@access(Permission.OPERATE)
async def moderation_review(decision_id: int, request: Request, actor: CurrentActor,
                            runtime: RuntimeDep) -> Response:
    form = await request.form()
    # let a wrongly removed member back unless the person unticked it
    restore = form.get("restore") == "on" if form.get("restore_offered") else True
    with runtime.uow.write() as conn:
        moderation.do_review(conn, actor=actor, decision_id=decision_id,
                             confirm=form.get("decision") == "confirm",
                             capabilities=runtime.capabilities, restore=restore)
    return RedirectResponse("/automation/moderation", status_code=303)


@router.post("/automation/words")
@access(Permission.OPERATE)
async def words_upload(request: Request, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    form, data, name = await uploaded_file(request, "a text file, one word per line")
    text, _enc = attributes.decode_text(data, name)
    stem = name.rsplit(".", 1)[0]
    with runtime.uow.write() as conn:
        moderation.do_save_word_list(conn, actor=actor, name=str(form.get("name") or stem),
                                     severity=str(form.get("severity") or "weak"),
                                     words=moderation.parse_words(text),
                                     source=name)
    return RedirectResponse("/automation/moderation#words", status_code=303)


@router.post("/automation/words/{list_id}/toggle")
@access(Permission.OPERATE)
async def words_toggle(list_id: int, request: Request, actor: CurrentActor,
                       runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        moderation.do_set_word_list_enabled(conn, actor=actor, list_id=list_id,
                                            enabled=form.get("enabled") == "1")
    return RedirectResponse("/automation/moderation#words", status_code=303)


# --- check-ins ----------------------------------------------------------------------------

@router.get("/automation/checkins")
@access(Permission.VIEW)
def checkins_page(request: Request, actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep,
                  group: int = 0, period: str = "week", metric: str = "checkins",
                  start: str = "", end: str = "", deposit: float = 0.0) -> Response:
    all_groups = list_groups(conn, actor=actor)
    group = group or (all_groups[0]["id"] if all_groups else 0)
    board = refund = None
    if group:
        board = checkins.leaderboard(conn, actor=actor, group_id=group, period=period,
                                     metric=metric, tz=runtime.settings.tz)
        if deposit and start and end:
            try:
                first, last = date.fromisoformat(start), date.fromisoformat(end)
            except ValueError:
                raise InvalidInput("dates: YYYY-MM-DD") from None
            refund = checkins.refunds(conn, actor=actor, group_id=group, start=first,
                                      end=last, deposit=deposit)
    today = runtime.now().astimezone(runtime.settings.tz).date()
    return render(request, "checkins.html", {
        "groups": all_groups, "group_id": group, "period": period, "metric": metric,
        "board": board, "refund": refund, "deposit": deposit,
        "start": start or (today - timedelta(days=20)).isoformat(),
        "end": end or today.isoformat()})


# --- draws --------------------------------------------------------------------------------

@router.get("/automation/draws")
@access(Permission.VIEW)
def draws_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return render(request, "draws.html", {
        "builder_spec": segment_words.builder_for(conn, actor=actor,
                                                  language=language(request)),
        "draws": draws.list_draws(conn, actor=actor),
                                          "groups": list_groups(conn, actor=actor)})


@router.post("/automation/draws")
@access(Permission.OPERATE)
async def draws_create(request: Request, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    form = await request.form()
    try:
        group = int(str(form.get("group_id") or ""))
        amount = float(str(form.get("amount") or 0))
        count = int(str(form.get("count") or 0))
    except ValueError:
        raise InvalidInput("group, amount and count must be numbers") from None
    with runtime.uow.write() as conn:
        draw = draws.do_draw(conn, actor=actor, group_id=group,
                             title=str(form.get("title", "")),
                             kind=str(form.get("kind") or "lottery"), clock=runtime.clock(),
                             expression=str(form.get("eligibility", "")),
                             prizes=str(form.get("prizes", "")), amount=amount, count=count)
    return RedirectResponse(f"/automation/draws/{draw['id']}", status_code=303)


@router.get("/automation/draws/{draw_id}")
@access(Permission.VIEW)
def draw_page(draw_id: int, request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return render(request, "draw.html", {
        "d": draws.get_draw(conn, actor=actor, draw_id=draw_id),
        "check": draws.verify_draw(conn, actor=actor, draw_id=draw_id)})
