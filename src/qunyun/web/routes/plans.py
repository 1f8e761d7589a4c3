"""Campaign planning's pages: the goal calculator (a GET form — nothing is stored), the
plans, and a plan's timeline with plan versus actual."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.planning import (
    BUDGET_CATEGORIES,
    ITEM_KINDS,
    ITEM_STATUSES,
    METRICS,
    ROLES,
    STAGE_KINDS,
)
from qunyun.domain.staff import Permission
from qunyun.i18n import translate
from qunyun.services import plan_rehearsal, planning, plans
from qunyun.services.activities import list_activities
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, language, render
from qunyun.web.report import render_plan_html
from qunyun.web.report_image import plan_pdf, plan_png

router = APIRouter(include_in_schema=False)

REPORT_TYPES = {"html": "text/html; charset=utf-8", "png": "image/png",
                "pdf": "application/pdf"}
FIELDS = ("audience", "target_deposits", "target_purchases", "target_gmv", "price",
          "join_rate", "deposit_rate", "purchase_rate", "capacity", "fill", "staff",
          "contacts_per_day")


@router.get("/plans/calc")
@access(Permission.VIEW)
def calc_page(request: Request, actor: CurrentActor, conn: ReadConn,
              runtime: RuntimeDep) -> Response:
    """Both directions on one form: fill the audience, or one target."""
    asked: dict[str, Any] = {k: request.query_params.get(k, "")[:20] for k in FIELDS}
    plan, problem = None, None
    if any(asked[k] for k in ("audience", "target_deposits", "target_purchases",
                              "target_gmv")):
        try:
            plan = planning.do_calculate(conn, actor=actor, values=asked,
                                         tz=runtime.settings.tz, now=runtime.now())
        except InvalidInput as exc:
            problem = exc
    return render(request, "plan_calc.html", {"asked": asked, "plan": plan,
                                              "problem": problem},
                  status_code=422 if problem else 200)


@router.get("/plans")
@access(Permission.VIEW)
def plans_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return render(request, "plans.html", {
        "plans": plans.list_plans(conn, actor=actor),
        "activities": list_activities(conn, actor=actor)})


@router.post("/plans")
@access(Permission.OPERATE)
async def plans_create(request: Request, actor: CurrentActor, runtime: RuntimeDep
                       ) -> Response:
    form = await request.form()
    goal = {k: str(form.get(k) or "").strip()[:20] for k in (
        "target_deposits", "audience", "join_rate", "deposit_rate", "purchase_rate")}
    goal = {k: v for k, v in goal.items() if v}
    with runtime.uow.write() as conn:
        plan = plans.do_create_plan(
            conn, actor=actor, name=str(form.get("name") or ""),
            starts_on=str(form.get("starts_on") or ""), ends_on=str(form.get("ends_on") or ""),
            activity=str(form.get("activity") or "") or None,
            goal=goal if ("target_deposits" in goal or "audience" in goal) else None,
            margin=_margin(str(form.get("margin") or "20")), tz=runtime.settings.tz,
            now=runtime.now())
    return RedirectResponse(f"/plans/{plan['id']}", status_code=303)


def _margin(text: str) -> float:
    try:
        return float(text) / 100
    except ValueError:
        raise InvalidInput("margin: a percentage") from None


@router.get("/plans/{plan_id}")
@access(Permission.VIEW)
def plan_page(request: Request, plan_id: int, actor: CurrentActor, conn: ReadConn,
              runtime: RuntimeDep) -> Response:
    """The plan: its stages as a timeline, plan versus actual per day, the short days."""
    report = plans.plan_actual(conn, actor=actor, plan_id=plan_id, tz=runtime.settings.tz,
                               now=runtime.now())
    plan = report["plan"]
    first = date.fromisoformat(plan["starts_on"])

    def offset(day: str) -> int:
        return (date.fromisoformat(day) - first).days

    bars = [{**s, "left": round(offset(s["starts_on"]) / plan["days"] * 100, 2),
             "width": round((offset(s["ends_on"]) - offset(s["starts_on"]) + 1)
                            / plan["days"] * 100, 2)} for s in plan["stages"]]
    pushes = plans.scheduled_pushes(conn, actor=actor, plan_id=plan_id,
                                    tz=runtime.settings.tz, now=runtime.now())
    for push in pushes:  # a mark on the timeline at its day and hour
        hour, minute = (int(x) for x in push["time"].split(":"))
        push["left"] = round((offset(push["day"]) + (hour * 60 + minute) / 1440)
                             / plan["days"] * 100, 2)
        push["href"] = (f"/content/playbooks/{push['source_id']}"
                        if push["source"] == "playbook" else "/content/broadcasts")
    lang = language(request)
    chart = {"x": [d["day"][5:] for d in report["days"]],
             "xName": translate("report.axis_day", lang),
             "yNames": [translate("report.axis_people", lang)],
             "saveTitle": translate("dash.export_png", lang), "series": [
                 {"name": translate(f"plan.chart.{key}", lang), "type": kind,
                  "data": [d["joined"][key] for d in report["days"]]}
                 for key, kind in (("target", "line"), ("actual", "bar"))]}
    return render(request, "plan.html", {
        "r": report, "p": plan, "bars": bars, "chart": chart, "kinds": STAGE_KINDS,
        "pushes": pushes,
        "today": runtime.now().astimezone(runtime.settings.tz).date().isoformat(),
        "metrics": METRICS, "roles": ROLES, "item_kinds": ITEM_KINDS,
        "statuses": ITEM_STATUSES, "categories": BUDGET_CATEGORIES})


@router.post("/plans/{plan_id}/stages")
@access(Permission.OPERATE)
async def plan_stage(request: Request, plan_id: int, actor: CurrentActor,
                     runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        plans.do_add_stage(conn, actor=actor, plan_id=plan_id,
                           kind=str(form.get("kind") or ""), name=str(form.get("name") or ""),
                           starts_on=str(form.get("starts_on") or ""),
                           ends_on=str(form.get("ends_on") or ""), now=runtime.now())
    return RedirectResponse(f"/plans/{plan_id}#plan-gantt", status_code=303)


@router.post("/plans/{plan_id}/targets")
@access(Permission.OPERATE)
async def plan_targets(request: Request, plan_id: int, actor: CurrentActor,
                       runtime: RuntimeDep) -> Response:
    form = await request.form()
    total = str(form.get("total") or "").strip()
    if not total.isdigit() or len(total) > 9:
        raise InvalidInput("total: a whole number")
    with runtime.uow.write() as conn:
        plans.do_set_targets(conn, actor=actor, plan_id=plan_id,
                             metric=str(form.get("metric") or ""), total=int(total),
                             starts_on=str(form.get("starts_on") or "") or None,
                             ends_on=str(form.get("ends_on") or "") or None, now=runtime.now())
    return RedirectResponse(f"/plans/{plan_id}#plan-actual", status_code=303)


def _form_text(form: Any, name: str, limit: int = 200) -> str:
    return str(form.get(name) or "").strip()[:limit]


@router.post("/plans/{plan_id}/roles")
@access(Permission.OPERATE)
async def plan_role(request: Request, plan_id: int, actor: CurrentActor,
                    runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        plans.do_set_role(conn, actor=actor, plan_id=plan_id,
                          username=_form_text(form, "user", 64),
                          role=_form_text(form, "role", 16), remove=form.get("remove") == "1",
                          now=runtime.now())
    return RedirectResponse(f"/plans/{plan_id}#plan-people", status_code=303)


@router.post("/plans/{plan_id}/items")
@access(Permission.OPERATE)
async def plan_item(request: Request, plan_id: int, actor: CurrentActor,
                    runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        if form.get("item"):
            item = _form_text(form, "item", 12)
            if not item.isdigit():
                raise InvalidInput("item: not a checklist line")
            plans.do_set_item_status(conn, actor=actor, plan_id=plan_id, item_id=int(item),
                                     status=_form_text(form, "status", 16), now=runtime.now())
        else:
            plans.do_add_item(conn, actor=actor, plan_id=plan_id,
                              kind=_form_text(form, "kind", 16), title=_form_text(form, "title"),
                              owner=_form_text(form, "owner", 64) or None,
                              due_on=_form_text(form, "due_on", 10) or None, now=runtime.now())
    return RedirectResponse(f"/plans/{plan_id}#plan-checklist", status_code=303)


@router.post("/plans/{plan_id}/budget")
@access(Permission.OPERATE)
async def plan_budget(request: Request, plan_id: int, actor: CurrentActor,
                      runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        if form.get("line"):
            line = _form_text(form, "line", 12)
            if not line.isdigit():
                raise InvalidInput("line: not a budget line")
            plans.do_set_budget_actual(conn, actor=actor, plan_id=plan_id, line_id=int(line),
                                       actual=_form_text(form, "actual", 20) or "0",
                                       now=runtime.now())
        else:
            plans.do_add_budget(conn, actor=actor, plan_id=plan_id,
                                category=_form_text(form, "category", 16),
                                title=_form_text(form, "title"),
                                planned=_form_text(form, "planned", 20) or "0",
                                actual=_form_text(form, "actual", 20) or "0", now=runtime.now())
    return RedirectResponse(f"/plans/{plan_id}#plan-budget", status_code=303)


@router.post("/plans/{plan_id}/stages/{stage_id}/retro")
@access(Permission.OPERATE)
async def plan_retro(request: Request, plan_id: int, stage_id: int, actor: CurrentActor,
                     runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        plans.do_stage_retro(conn, actor=actor, plan_id=plan_id, stage_id=stage_id,
                             worked=_form_text(form, "worked", 2001),
                             did_not=_form_text(form, "did_not", 2001),
                             change=_form_text(form, "change", 2001), now=runtime.now())
    return RedirectResponse(f"/plans/{plan_id}#plan-review", status_code=303)


@router.post("/plans/{plan_id}/problems")
@access(Permission.OPERATE)
async def plan_problem(request: Request, plan_id: int, actor: CurrentActor,
                       runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        if form.get("problem"):
            problem = _form_text(form, "problem", 12)
            if not problem.isdigit():
                raise InvalidInput("problem: not a logged problem")
            plans.do_close_problem(conn, actor=actor, plan_id=plan_id,
                                   problem_id=int(problem),
                                   resolution=_form_text(form, "resolution", 2001),
                                   now=runtime.now())
        else:
            plans.do_add_problem(conn, actor=actor, plan_id=plan_id,
                                 issue=_form_text(form, "issue", 2001),
                                 owner=_form_text(form, "owner", 64) or None, now=runtime.now())
    return RedirectResponse(f"/plans/{plan_id}#plan-review", status_code=303)


@router.post("/plans/{plan_id}/rehearse")
@access(Permission.OPERATE)
async def plan_rehearse(request: Request, plan_id: int, actor: CurrentActor,
                        runtime: RuntimeDep) -> Response:
    """Rehearse on the simulator and show the outcome (nothing is kept but the audit row,
    so the answer is the page itself; the same seed gives it again)."""
    form = await request.form()
    text = _form_text(form, "seed", 12) or "7"
    if not text.isdigit():
        raise InvalidInput("seed: a whole number from 0 to 2147483647")
    out = plan_rehearsal.do_rehearse_plan(runtime.uow, actor=actor, plan_id=plan_id,
                                          seed=int(text), settings=runtime.settings,
                                          capabilities=runtime.capabilities,
                                          max_joins=plan_rehearsal.REQUEST_LIMITS["joins"],
                                          max_days=plan_rehearsal.REQUEST_LIMITS["days"])
    lang = language(request)
    days = out["days"]
    chart = {"x": [d["day"][5:] for d in days],
             "xName": translate("report.axis_day", lang),
             "yNames": [translate("report.axis_people", lang)],
             "saveTitle": translate("dash.export_png", lang), "series": [
                 {"name": translate("rehearsal.series.target", lang), "type": "line",
                  "data": [d["target"]["joined"] for d in days]},
                 {"name": translate("rehearsal.series.forecast", lang), "type": "line",
                  "data": [d["forecast"]["joined"] for d in days]},
                 {"name": translate("rehearsal.series.simulated", lang), "type": "bar",
                  "data": [d["simulated"]["joined"] for d in days]},
                 {"name": translate("rehearsal.series.deposits", lang), "type": "bar",
                  "data": [d["simulated"]["deposit"] for d in days]}]}
    return render(request, "plan_rehearsal.html", {"o": out, "chart": chart,
                                                   "metrics": METRICS})


@router.get("/plans/{plan_id}/report.{kind}")
@access(Permission.VIEW)
def plan_report_file(request: Request, plan_id: int, kind: str, actor: CurrentActor,
                     conn: ReadConn, runtime: RuntimeDep) -> Response:
    """The closing report as one HTML file, a picture (PNG) or a PDF to keep, print or send."""
    if kind not in REPORT_TYPES:
        raise NotFound("no report as {kind!r}: html, png or pdf", kind=kind)
    report = plans.closing_report(conn, actor=actor, plan_id=plan_id, tz=runtime.settings.tz,
                                  now=runtime.now())
    if kind == "html":
        body: str | bytes = render_plan_html(report, language=language(request),
                                             timezone=runtime.settings.timezone)
    else:
        body = (plan_png if kind == "png" else plan_pdf)(report, language=language(request))
    return Response(body, media_type=REPORT_TYPES[kind], headers={
        "content-disposition": f'attachment; filename="plan-{plan_id}.{kind}"'})
