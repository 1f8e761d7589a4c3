"""Activity pages (issue 7): series and issues, one issue's funnel, money, enrolments and
settlement, and the cohort charts of seed 000 (source, last seen after, series source).
Forms post here; the services do the work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.analytics.cohorts import issue_in, source_chart
from qunyun.domain.activities import FUNNEL_STEPS
from qunyun.domain.content import ContentError, parse_assignments
from qunyun.domain.staff import Permission
from qunyun.i18n import translate
from qunyun.services import (
    activities,
    channel_report,
    conversions,
    enrolments,
    reports,
    settlements,
)
from qunyun.services.errors import InvalidInput
from qunyun.services.groups import list_groups
from qunyun.services.members import member_id_by_number
from qunyun.services.reports import get_funnel
from qunyun.services.spreadsheets import csv_bytes
from qunyun.web.deps import (
    CurrentActor,
    ReadConn,
    RuntimeDep,
    access,
    attachment,
    language,
    render,
    uploaded_file,
)
from qunyun.web.forms import form_ids
from qunyun.web.listing import ListingQuery

router = APIRouter(include_in_schema=False)


def _text(form: Any, key: str) -> str:
    return str(form.get(key) or "").strip()


def _fen(form: Any, key: str) -> int | None:
    return activities.fen_of(_text(form, key), key)


def _pairs(form: Any, key: str) -> dict[str, str]:
    try:
        return parse_assignments(_text(form, key).split(), key)
    except ContentError as exc:
        raise InvalidInput.wrap(exc) from None


def _activity_fields(form: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key in ("name", "opens_on", "starts_on", "ends_on", "refund_tiers", "state"):
        if _text(form, key):
            fields[key] = _text(form, key)
    for key in ("capacity", "complete_checkins"):
        if _text(form, key):
            fields[key] = _text(form, key)
    for key, field in (("price", "price_fen"), ("deposit", "deposit_fen")):
        value = _fen(form, key)
        if value is not None:
            fields[field] = value
    for key in ("reach", "targets"):
        if key in form:
            fields[key] = _pairs(form, key)
    return fields


@router.get("/activities")
@access(Permission.VIEW)
def activities_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return render(request, "activities.html", {
        "series": activities.list_series(conn, actor=actor),
        "groups": list_groups(conn, actor=actor)})


@router.post("/activities/series")
@access(Permission.OPERATE)
async def series_create(request: Request, actor: CurrentActor,
                        runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        activities.do_create_series(conn, actor=actor, code=_text(form, "code"),
                                    name=_text(form, "name"),
                                    description=_text(form, "description"))
    return RedirectResponse("/activities", status_code=303)


@router.post("/activities")
@access(Permission.OPERATE)
async def activity_create(request: Request, actor: CurrentActor,
                          runtime: RuntimeDep) -> Response:
    form = await request.form()
    fields = _activity_fields(form)
    with runtime.uow.write() as conn:
        new_id = activities.do_create_activity(
            conn, actor=actor, series=_text(form, "series"),
            starts_on=fields.pop("starts_on", ""), ends_on=fields.pop("ends_on", ""),
            opens_on=fields.pop("opens_on", None), name=fields.pop("name", ""),
            group_ids=form_ids(form), **fields)
        code = activities.access_activity(conn, actor=actor, ref=new_id)["code"]
    return RedirectResponse(f"/activities/{code}", status_code=303)


def _label(key: str, lang: str) -> str:
    return translate(f"coh.{key}", lang) if key in ("new", "none") else key


def stacked_spec(chart: dict[str, Any], lang: str) -> dict[str, Any]:
    """Stacked bars (one per issue) for ECharts, as the seed's charts draw them."""
    return {"x": chart["x"], "saveTitle": translate("dash.export_png", lang),
            "xName": translate("report.axis_issue", lang),
            "yNames": [translate("report.axis_people", lang)],
            "series": [{"name": _label(s["name"], lang), "type": "bar", "stack": "people",
                        "data": s["data"]} for s in chart["series"]]}


def issue_spec(item: dict[str, Any] | None, key: str, lang: str) -> dict[str, Any] | None:
    """One issue's composition (the seed's middle and right charts) as bars."""
    if item is None:
        return None
    return {"x": [_label(k, lang) for k in item[key]],
            "saveTitle": translate("dash.export_png", lang),
            "yNames": [translate("report.axis_people", lang)],
            "series": [{"name": item["code"], "type": "bar", "data": list(item[key].values()),
                        "label": {"show": True, "position": "top"}}]}


def lifecycle_spec(rows: list[dict[str, Any]], lang: str) -> dict[str, Any]:
    series = [{"name": translate(f"coh.lc.{k}", lang), "type": "bar", "stack": "lc",
               "data": [-r[k] if k == "dormant" else r[k] for r in rows]}
              for k in ("new", "returning", "resurrecting", "dormant")]
    return {"x": [r["period"] for r in rows], "series": series,
            "xName": translate("report.axis_period", lang),
            "yNames": [translate("report.axis_people", lang)],
            "saveTitle": translate("dash.export_png", lang)}


def matrix_spec(x: list[str], rows: list[dict[str, Any]], label: str,
                lang: str) -> dict[str, Any]:
    return {"kind": "matrix", "x": x, "y": [str(r[label]) for r in rows],
            "cells": [r["cells"] for r in rows],
            "saveTitle": translate("dash.export_png", lang)}


@router.get("/activities/channels")
@access(Permission.VIEW)
def channels_page(request: Request, actor: CurrentActor, runtime: RuntimeDep, conn: ReadConn,
                  model: str = "first", by: str = "channel", since: str = "", until: str = "",
                  activity: str = "", format: str = "") -> Response:
    """Which channel or inviter brought the members who enrolled, paid and purchased, read
    first-touch or last-touch (stated on the page); ``format=csv`` downloads the table."""
    report = channel_report.get_channel_report(
        conn, actor=actor, tz=runtime.settings.tz, model=model, by=by,
        since=reports.parse_day(since, "since"), until=reports.parse_day(until, "until"),
        activity=activity or None)
    lang = language(request)
    header, rows = channel_report.table_of(report.to_json(), lang)
    if format == "csv":
        return attachment(csv_bytes(header, rows), "csv", f"qunyun-{by}-{model}-touch")
    top = report.lines[:12]
    chart = {"x": [ln["label"] or translate("report.no_source", lang) for ln in top],
             "xName": translate(f"report.col.{by}", lang),
             "yNames": [translate("report.axis_people", lang)],
             "saveTitle": translate("dash.export_png", lang), "series": [
                 {"name": translate(f"report.col.{k}", lang), "type": "bar",
                  "data": [ln[k] for ln in top]}
                 for k in ("members", "enrolled", "paid", "purchased")]}
    return render(request, "channels.html", {
        "report": report, "header": header, "rows": rows, "chart": chart,
        "issues": activities.list_activities(conn, actor=actor),
        "form": {"model": model, "by": by, "since": since, "until": until,
                 "activity": activity}})


@router.get("/activities/cohorts")
@access(Permission.VIEW)
def cohorts_page(request: Request, actor: CurrentActor, runtime: RuntimeDep, conn: ReadConn,
                 series: str | None = None, issue: str | None = None,
                 after_days: int = 21, period: str = "week") -> Response:
    all_series = activities.list_series(conn, actor=actor)
    if series is None and all_series:
        series = all_series[0]["code"]
    report = reports.read_cohorts(
        runtime.uow, runtime.mirror, actor=actor, tz=runtime.settings.tz, series=series,
        after_days=after_days, period=period,
    ) if series else None
    chosen = issue_in(report, issue) if report else None
    lang = language(request)
    charts: dict[str, Any] = {}
    if report and report["issues"]:
        charts = {
            "series_source": stacked_spec(source_chart(report, "series_source"), lang),
            "source": issue_spec(chosen, "source", lang),
            "last_after": issue_spec(chosen, "last_after", lang),
            "previous": stacked_spec(source_chart(report, "previous"), lang),
            "retention": matrix_spec(report["retention"]["columns"],
                                     report["retention"]["rows"], "code", lang),
            "lifecycle": lifecycle_spec(report.get("lifecycle", []), lang),
            "weekly": matrix_spec([f"+{k}" for k in report["weekly_retention"]["offsets"]],
                                  report["weekly_retention"]["rows"], "week", lang)
            if "weekly_retention" in report else None}
    return render(request, "cohorts.html", {
        "all_series": all_series, "series": series, "report": report, "chosen": chosen,
        "after_days": after_days, "period": period, "charts": charts,
        "as_of": datetime.fromisoformat(report["as_of"]) if report and report["as_of"]
        else None, "mirror": reports.mirror_status(runtime.mirror, actor=actor)
        if runtime.settings.analytics_mirror else None,
        "label": lambda k: _label(k, lang)})


@router.post("/activities/cohorts/refresh-mirror")
@access(Permission.OPERATE)
def cohorts_refresh_mirror(actor: CurrentActor, runtime: RuntimeDep) -> Response:
    reports.do_start_mirror_refresh(runtime.engine, runtime.mirror, actor=actor)
    return RedirectResponse("/activities/cohorts", status_code=303)


@router.get("/activities/{ref}")
@access(Permission.VIEW)
def activity_page(ref: str, request: Request, actor: CurrentActor, runtime: RuntimeDep,
                  conn: ReadConn, listing: ListingQuery) -> Response:
    row = activities.access_activity(conn, actor=actor, ref=ref)
    lang = language(request)
    data = get_funnel(conn, actor=actor, tz=runtime.settings.tz, activity=row["id"])
    funnel_chart = {"kind": "funnel", "saveTitle": translate("dash.export_png", lang),
                    "data": [{"name": translate(f"act.step.{s['step']}", lang),
                              "value": s["count"]} for s in data["steps"] if s["count"]]}
    daily_chart = {"x": [d["day"][5:] for d in data["daily"]],
                   "xName": translate("report.axis_day", lang),
                   "yNames": [translate("report.axis_people", lang)],
                   "saveTitle": translate("dash.export_png", lang), "series": [
                       {"name": translate(label, lang),
                        "type": "line" if k == "active" else "bar",
                        "data": [d[k] for d in data["daily"]]}
                       for k, label in (("new", "act.daily.new"), ("active", "act.daily.active"),
                                        ("enrolled", "act.enrolled"))]}
    plan = settlements.settlement(conn, actor=actor, activity_id=row["id"])
    signed_up = enrolments.page_enrolments(conn, actor=actor, activity_id=row["id"],
                                           listing=listing)
    return render(request, "activity.html", {
        "a": row, "money": settlements.money(conn, actor=actor, activity_id=row["id"]),
        "funnel": data, "funnel_chart": funnel_chart, "daily_chart": daily_chart,
        "plan": plan, "settled": {r["member_id"]: r for r in plan["rows"]},
        "ep": signed_up, "enrolments": signed_up.rows,
        "groups": list_groups(conn, actor=actor), "steps": FUNNEL_STEPS,
        "pairs": lambda d: " ".join(f"{k}={v}" for k, v in (d or {}).items())})


@router.post("/activities/{ref}/edit")
@access(Permission.OPERATE)
async def activity_edit(ref: str, request: Request, actor: CurrentActor,
                        runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        row = activities.access_activity(conn, actor=actor, ref=ref)
        activities.do_update_activity(conn, actor=actor, activity_id=row["id"],
                                      changes=_activity_fields(form),
                                      group_ids=form_ids(form) if "groups_sent" in form
                                      else None)
    return RedirectResponse(f"/activities/{row['code']}", status_code=303)


@router.post("/activities/{ref}/enrol")
@access(Permission.OPERATE)
async def activity_enrol(ref: str, request: Request, actor: CurrentActor,
                         runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        row = activities.access_activity(conn, actor=actor, ref=ref)
        enrolments.do_enrol(conn, actor=actor, activity_id=row["id"],
                            member_id=member_id_by_number(conn, _text(form, "number")),
                            channel=_text(form, "channel"), deposit_fen=_fen(form, "deposit"))
    return RedirectResponse(f"/activities/{row['code']}#enrolments", status_code=303)


@router.post("/activities/{ref}/cancel")
@access(Permission.OPERATE)
async def activity_cancel(ref: str, request: Request, actor: CurrentActor,
                          runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        row = activities.access_activity(conn, actor=actor, ref=ref)
        enrolments.do_cancel_enrolment(conn, actor=actor, activity_id=row["id"],
                                       member_id=int(_text(form, "member_id") or 0))
    return RedirectResponse(f"/activities/{row['code']}#enrolments", status_code=303)


@router.post("/activities/{ref}/import")
@access(Permission.OPERATE)
async def activity_import(ref: str, request: Request, actor: CurrentActor,
                          runtime: RuntimeDep) -> Response:
    """Upload sign-ups, check-ins or orders (``what``); the page shows the report."""
    form, data, name = await uploaded_file(request, "a CSV file")
    what = _text(form, "what")
    on_error = _text(form, "on_error") or "fail"
    tz = runtime.settings.tz
    with runtime.uow.write() as conn:
        row = activities.access_activity(conn, actor=actor, ref=ref)
        if what == "checkins":
            report = enrolments.do_import_checkins(conn, actor=actor, activity_id=row["id"],
                                                   path=name, data=data, tz=tz,
                                                   on_error=on_error)
        elif what == "conversions":
            report = conversions.do_import_conversions(conn, actor=actor, path=name,
                                                      data=data, tz=tz,
                                                      activity_id=row["id"],
                                                      kind=_text(form, "kind") or None,
                                                      on_error=on_error)
        else:
            report = enrolments.do_import_enrolments(conn, actor=actor, activity_id=row["id"],
                                                     path=name, data=data, tz=tz,
                                                     on_error=on_error)
    return render(request, "activity_import.html", {"a": row, "r": report, "what": what})


@router.post("/activities/{ref}/settle")
@access(Permission.OPERATE)
async def activity_settle(ref: str, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    with runtime.uow.write() as conn:
        plan = settlements.do_settle(conn, actor=actor, activity_id=ref)
    return RedirectResponse(f"/activities/{plan['code']}#settlement", status_code=303)


@router.post("/activities/{ref}/conversion")
@access(Permission.OPERATE)
async def activity_conversion(ref: str, request: Request, actor: CurrentActor,
                              runtime: RuntimeDep) -> Response:
    form = await request.form()
    number = _text(form, "number")
    with runtime.uow.write() as conn:
        row = activities.access_activity(conn, actor=actor, ref=ref)
        conversions.do_record_conversion(
            conn, actor=actor, kind=_text(form, "kind"), amount_fen=_fen(form, "amount") or 0,
            activity_id=row["id"], member_id=member_id_by_number(conn, number) if number
            else None, channel=_text(form, "channel"), note=_text(form, "note"),
            external_ref=_text(form, "ref") or None)
    return RedirectResponse(f"/activities/{row['code']}#money", status_code=303)
