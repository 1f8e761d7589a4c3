"""Segment builder: write an expression, see the live count and sample, save it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.segments import FIELDS
from qunyun.domain.staff import Permission
from qunyun.services import attributes, segment_words, segments, tags
from qunyun.services.errors import InvalidInput, in_words
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, language, render

router = APIRouter(include_in_schema=False)


@router.get("/segments")
@access(Permission.VIEW)
def segments_page(request: Request, actor: CurrentActor, runtime: RuntimeDep,
                  conn: ReadConn, expression: str = "", edit: int | None = None) -> Response:
    saved = segments.list_segments(conn, actor=actor)
    editing = next((s for s in saved if s["id"] == edit), None)
    return render(request, "segments.html", {
        "saved": saved, "expression": editing["expression"] if editing else expression,
        "editing": editing, "fields": FIELDS,
        "builder_spec": segment_words.builder_for(conn, actor=actor, language=language(request)),
        "builder_state": segment_words.to_builder(editing["expression"] if editing
                                                  else expression),
        "tags": tags.list_tags(conn, actor=actor),
        "attributes": attributes.attribute_names(conn),
        "preview": _preview(conn, actor, runtime, editing["expression"] if editing
                            else expression, language(request))})


def _preview(conn: Any, actor: Any, runtime: Any, expression: str,
             lang: str) -> dict[str, Any]:
    if not expression.strip():
        return {"empty": True}
    try:
        clock = runtime.clock()
        return {"count": segments.count_expression(conn, actor=actor, expression=expression,
                                                   clock=clock),
                "sample": segments.list_expression_members(conn, actor=actor,
                                                           expression=expression,
                                                           clock=clock, limit=10)}
    except InvalidInput as exc:
        return {"error": in_words(exc, lang)}


@router.get("/segments/{segment_id}/count")
@access(Permission.VIEW)
def segment_count(request: Request, segment_id: int, actor: CurrentActor, runtime: RuntimeDep,
                  conn: ReadConn) -> Response:
    """One saved segment's live count; the list loads these one by one (HTMX), so a page of
    segments over a large database shows at once and fills in."""
    seg = segments.get_segment(conn, actor=actor, segment_id=segment_id)
    count = segments.count_expression(conn, actor=actor, expression=seg["expression"],
                                      clock=runtime.clock())
    return render(request, "_segment_count.html", {"s": seg, "count": count})


@router.post("/segments/preview")
@access(Permission.VIEW)
def segment_preview(request: Request, actor: CurrentActor, runtime: RuntimeDep,
                    conn: ReadConn, expression: str = Form("")) -> Response:
    """The live count under the builder (HTMX swaps this fragment in)."""
    return render(request, "_segment_preview.html",
                  {"preview": _preview(conn, actor, runtime, expression, language(request)),
                   "expression": expression})


@router.post("/segments")
@access(Permission.OPERATE)
def segment_save(actor: CurrentActor, runtime: RuntimeDep, name: str = Form(...),
                 expression: str = Form(...), description: str = Form(""),
                 segment_id: str = Form("")) -> Response:
    with runtime.uow.write() as conn:
        if segment_id.isdigit():
            segments.do_update_segment(conn, actor=actor, segment_id=int(segment_id),
                                       name=name, expression=expression,
                                       description=description)
        else:
            segments.do_create_segment(conn, actor=actor, name=name, expression=expression,
                                       description=description)
    return RedirectResponse("/segments", status_code=303)


@router.post("/segments/{segment_id}/delete")
@access(Permission.OPERATE)
def segment_delete(segment_id: int, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    with runtime.uow.write() as conn:
        segments.do_delete_segment(conn, actor=actor, segment_id=segment_id)
    return RedirectResponse("/segments", status_code=303)
