"""Lead lists: rank a segment by a readable formula, see why, export CSV / XLSX."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.segments import SegmentError
from qunyun.domain.staff import Permission
from qunyun.services import leads, segment_words, segments
from qunyun.services.errors import InvalidInput, in_words
from qunyun.web.deps import (
    CurrentActor,
    ReadConn,
    RuntimeDep,
    access,
    attachment,
    language,
    render,
)

router = APIRouter(include_in_schema=False)


@router.get("/leads")
@access(Permission.VIEW)
def leads_page(request: Request, actor: CurrentActor, runtime: RuntimeDep, conn: ReadConn,
               segment: str = "", expression: str = "", formula: str = "",
               list_id: int | None = None) -> Response:
    saved_lists = leads.list_lead_lists(conn, actor=actor)
    chosen = next((x for x in saved_lists if x["id"] == list_id), None)
    if chosen:
        segment, formula = str(chosen["segment_id"]), chosen["formula"]
    formula = formula or leads.DEFAULT_FORMULA
    # the page opens ranked: every member not blacklisted, by the default formula
    expression = expression if segment or expression.strip() else leads.DEFAULT_SEGMENT
    result: dict[str, Any] = {}
    try:
        expr, _ = segments.resolve_expression(conn, actor=actor, segment=segment,
                                              expression=expression)
        rows, total = leads.score(conn, actor=actor, expression=expr, formula=formula,
                                  clock=runtime.clock(), limit=50, language=language(request))
        result = {"rows": rows, "total": total,
                  "formula_words": segment_words.formula_words(formula, language(request))}
    except (InvalidInput, SegmentError) as exc:
        result = {"error": in_words(exc, language(request))}
    return render(request, "leads.html", {
        "builder_spec": segment_words.builder_for(conn, actor=actor, language=language(request)),
        "expression_state": segment_words.to_builder(expression),
        "formula_state": segment_words.formula_to_builder(formula),
        "segments": segments.list_segments(conn, actor=actor), "lists": saved_lists,
        "default_segment": leads.DEFAULT_SEGMENT,
        "segment": segment, "expression": expression, "formula": formula, "result": result})


@router.post("/leads/export")
@access(Permission.VIEW)
def leads_export(request: Request, actor: CurrentActor, runtime: RuntimeDep,
                 segment: str = Form(""), expression: str = Form(""),
                 formula: str = Form(...), format: str = Form("csv")) -> Response:
    with runtime.uow.write() as conn:
        expr, _ = segments.resolve_expression(conn, actor=actor, segment=segment,
                                              expression=expression)
        data, _ = leads.do_export_leads(conn, actor=actor, expression=expr, formula=formula,
                                        clock=runtime.clock(), fmt=format,
                                        language=language(request), source="web")
    return attachment(data, format)


@router.post("/leads/save")
@access(Permission.OPERATE)
def leads_save(actor: CurrentActor, runtime: RuntimeDep, name: str = Form(...),
               segment: str = Form(...), formula: str = Form(...)) -> Response:
    with runtime.uow.write() as conn:
        list_id = leads.do_save_lead_list(conn, actor=actor, name=name, segment=segment,
                                          formula=formula)
    return RedirectResponse(f"/leads?list_id={list_id}", status_code=303)
