"""Tag management: tag groups, manual and rule tags, recompute."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.segments import FIELDS
from qunyun.domain.staff import Permission
from qunyun.services import segment_words, tags
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, language, render

router = APIRouter(include_in_schema=False)


@router.get("/tags")
@access(Permission.VIEW)
def tags_page(request: Request, actor: CurrentActor, conn: ReadConn,
              recomputed: str = "") -> Response:
    return render(request, "tags.html", {
        "tags": tags.list_tags(conn, actor=actor), "fields": FIELDS, "recomputed": recomputed,
        "builder_spec": segment_words.builder_for(conn, actor=actor,
                                                  language=language(request))})


@router.post("/tags")
@access(Permission.OPERATE)
def tag_create(actor: CurrentActor, runtime: RuntimeDep, name: str = Form(...),
               group: str = Form(""), color: str = Form(""), rule: str = Form(""),
               description: str = Form("")) -> Response:
    with runtime.uow.write() as conn:
        tags.do_create_tag(conn, actor=actor, name=name, group=group, color=color,
                           kind="rule" if rule.strip() else "manual", rule=rule.strip(),
                           description=description, clock=runtime.clock())
    return RedirectResponse("/tags", status_code=303)


@router.post("/tags/{tag_id}")
@access(Permission.OPERATE)
def tag_update(tag_id: int, actor: CurrentActor, runtime: RuntimeDep,
               rule: str = Form(...)) -> Response:
    with runtime.uow.write() as conn:
        tags.do_update_tag(conn, actor=actor, tag_id=tag_id, rule=rule, clock=runtime.clock())
    return RedirectResponse("/tags", status_code=303)


@router.post("/tags-recompute")
@access(Permission.OPERATE)
def tags_recompute(actor: CurrentActor, runtime: RuntimeDep) -> Response:
    with runtime.uow.write() as conn:
        result = tags.do_recompute_rule_tags(conn, actor=actor, clock=runtime.clock())
    changed = sum(v["added"] + v["removed"] for v in result.values())
    return RedirectResponse(f"/tags?recomputed={changed}", status_code=303)
