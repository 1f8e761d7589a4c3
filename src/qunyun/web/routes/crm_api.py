"""CRM JSON API under /api/v1: member profiles, tags, records, blacklist, merges, attributes,
segments and lead lists. Calls services only; roles are checked there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from qunyun.domain.staff import Permission
from qunyun.services import (
    attributes,
    blacklist,
    leads,
    merges,
    profiles,
    records,
    segments,
    tags,
)
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, attachment

router = APIRouter(prefix="/api/v1", tags=["crm"])


class TagAssign(BaseModel):
    tag: str = Field(description='"group/name" or a tag id; created when new')
    reason: str = ""


class TagCreate(BaseModel):
    name: str
    group: str = ""
    color: str = ""
    kind: str = "manual"
    rule: str = ""
    description: str = ""


class TagUpdate(BaseModel):
    name: str | None = None
    group: str | None = None
    color: str | None = None
    rule: str | None = None
    description: str | None = None


class RecordCreate(BaseModel):
    kind: str = "note"
    body: str
    due_at: datetime | None = None


class BlacklistCreate(BaseModel):
    reason: str
    expires_at: datetime | None = None


class AttributeMark(BaseModel):
    model_config = ConfigDict(extra="forbid")
    personal: bool


class AttributeSet(BaseModel):
    name: str
    value: str


class MergeCreate(BaseModel):
    source_id: int
    target_id: int
    reason: str = ""


class Dismiss(BaseModel):
    member_a: int
    member_b: int


class SegmentCreate(BaseModel):
    name: str
    expression: str
    description: str = ""


class SegmentUpdate(BaseModel):
    name: str | None = None
    expression: str | None = None
    description: str | None = None


class Expression(BaseModel):
    expression: str


class LeadQuery(BaseModel):
    segment_id: int | None = None
    expression: str | None = None
    formula: str = leads.DEFAULT_FORMULA
    limit: int = Field(100, ge=1, le=5000)
    format: str = "csv"


class LeadListCreate(BaseModel):
    name: str
    segment: str
    formula: str


def _aware(value: datetime | None, runtime: Any) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=runtime.settings.tz)
    return value


# --- members ------------------------------------------------------------------------------

@router.get("/members/{member_id}/profile")
@access(Permission.VIEW)
def api_member_profile(member_id: int, actor: CurrentActor, runtime: RuntimeDep,
                       conn: ReadConn) -> dict[str, Any]:
    """Identities, groups, tags, attributes, records, blacklist standing and the timeline."""
    return profiles.get_member_profile(conn, actor=actor, member_id=member_id,
                                       now=runtime.clock().now)


@router.post("/members/{member_id}/tags", status_code=201)
@access(Permission.OPERATE)
def api_member_tag(member_id: int, body: TagAssign, actor: CurrentActor,
                   runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        added = tags.do_tag_member(conn, actor=actor, member_id=member_id, tag=body.tag,
                                   reason=body.reason)
    return {"added": added}


@router.delete("/members/{member_id}/tags/{tag}")
@access(Permission.OPERATE)
def api_member_untag(member_id: int, tag: str, actor: CurrentActor,
                     runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return {"removed": tags.do_untag_member(conn, actor=actor, member_id=member_id,
                                                tag=tag)}


@router.post("/members/{member_id}/records", status_code=201)
@access(Permission.WORK_TASKS)
def api_member_record(member_id: int, body: RecordCreate, actor: CurrentActor,
                      runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        record_id = records.do_add_record(conn, actor=actor, member_id=member_id,
                                          kind=body.kind, body=body.body,
                                          due_at=_aware(body.due_at, runtime))
    return {"id": record_id}


@router.post("/records/{record_id}/complete", status_code=204)
@access(Permission.WORK_TASKS)
def api_record_complete(record_id: int, actor: CurrentActor, runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        records.do_complete_follow_up(conn, actor=actor, record_id=record_id)


@router.get("/follow-ups")
@access(Permission.VIEW)
def api_follow_ups(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    """Open follow-ups, soonest first."""
    return records.list_follow_ups(conn, actor=actor)


@router.post("/members/{member_id}/blacklist", status_code=201)
@access(Permission.OPERATE)
def api_blacklist(member_id: int, body: BlacklistCreate, actor: CurrentActor,
                  runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        entry = blacklist.do_blacklist(conn, actor=actor, member_id=member_id,
                                       reason=body.reason,
                                       expires_at=_aware(body.expires_at, runtime),
                                       capabilities=runtime.capabilities)
    return {"id": entry.id, "removals": entry.removals}


@router.delete("/members/{member_id}/blacklist", status_code=204)
@access(Permission.OPERATE)
def api_unblacklist(member_id: int, actor: CurrentActor, runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        blacklist.do_lift(conn, actor=actor, member_id=member_id)


@router.get("/blacklist")
@access(Permission.VIEW)
def api_blacklist_list(actor: CurrentActor, conn: ReadConn,
                       active: bool = True) -> list[dict[str, Any]]:
    return blacklist.list_blacklist(conn, actor=actor, active_only=active)


@router.put("/members/{member_id}/attributes", status_code=204)
@access(Permission.OPERATE)
def api_attribute(member_id: int, body: AttributeSet, actor: CurrentActor,
                  runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        attributes.do_set_attribute(conn, actor=actor, member_id=member_id, name=body.name,
                                    value=body.value)


@router.get("/attributes")
@access(Permission.VIEW)
def api_attribute_fields(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    """Custom attributes: personal or not, their kind, how many members hold each."""
    return attributes.list_attribute_fields(conn, actor=actor)


@router.patch("/attributes/{name}")
@access(Permission.MANAGE_USERS)
def api_mark_attribute(name: str, body: AttributeMark, actor: CurrentActor,
                       runtime: RuntimeDep) -> dict[str, Any]:
    """Admins: mark an attribute as personal data (masked for viewers, not filterable by
    them) or not."""
    with runtime.uow.write() as conn:
        return attributes.do_mark_attribute(conn, actor=actor, name=name,
                                            personal=body.personal)


@router.post("/members/attributes/import")
@access(Permission.OPERATE)
async def api_import_attributes(request: Request, actor: CurrentActor, runtime: RuntimeDep,
                                key: str | None = None,
                                filename: str = "upload.csv") -> dict[str, Any]:
    """Body: the CSV file itself (text/csv). Unmatched rows are listed with their line."""
    data = await request.body()
    with runtime.uow.write() as conn:
        report = attributes.do_import_attributes(conn, actor=actor, path=filename[:128],
                                                 data=data, key=key)
    return report.as_dict()


@router.post("/members/merge", status_code=201)
@access(Permission.OPERATE)
def api_merge(body: MergeCreate, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return {"merge": merges.do_merge(conn, actor=actor, source_id=body.source_id,
                                         target_id=body.target_id, reason=body.reason)}


@router.post("/merges/{merge_id}/undo", status_code=204)
@access(Permission.OPERATE)
def api_unmerge(merge_id: int, actor: CurrentActor, runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        merges.do_undo_merge(conn, actor=actor, merge_id=merge_id)


@router.get("/merge-suggestions")
@access(Permission.VIEW)
def api_merge_suggestions(actor: CurrentActor, conn: ReadConn,
                          limit: int = 100) -> list[dict[str, Any]]:
    return merges.merge_suggestions(conn, actor=actor, limit=min(max(limit, 1), 1000))


@router.post("/merge-suggestions/dismiss", status_code=204)
@access(Permission.OPERATE)
def api_dismiss(body: Dismiss, actor: CurrentActor, runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        merges.do_dismiss_suggestion(conn, actor=actor, member_a=body.member_a,
                                     member_b=body.member_b)


# --- tags ---------------------------------------------------------------------------------

@router.get("/tags")
@access(Permission.VIEW)
def api_tags(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return tags.list_tags(conn, actor=actor)


@router.post("/tags", status_code=201)
@access(Permission.OPERATE)
def api_tag_create(body: TagCreate, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        tag_id = tags.do_create_tag(conn, actor=actor, name=body.name, group=body.group,
                                    color=body.color, kind=body.kind, rule=body.rule,
                                    description=body.description, clock=runtime.clock())
    return {"id": tag_id}


@router.patch("/tags/{tag_id}", status_code=204)
@access(Permission.OPERATE)
def api_tag_update(tag_id: int, body: TagUpdate, actor: CurrentActor,
                   runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        tags.do_update_tag(conn, actor=actor, tag_id=tag_id, **body.model_dump(),
                           clock=runtime.clock())


@router.post("/tags/recompute")
@access(Permission.OPERATE)
def api_tags_recompute(actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return tags.do_recompute_rule_tags(conn, actor=actor, clock=runtime.clock())


# --- segments -------------------------------------------------------------------------------

@router.get("/segments")
@access(Permission.VIEW)
def api_segments(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return segments.list_segments(conn, actor=actor)


@router.post("/segments", status_code=201)
@access(Permission.OPERATE)
def api_segment_create(body: SegmentCreate, actor: CurrentActor,
                       runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        segment_id = segments.do_create_segment(conn, actor=actor, name=body.name,
                                                expression=body.expression,
                                                description=body.description)
        return segments.get_segment(conn, actor=actor, segment_id=segment_id)


@router.get("/segments/{segment_id}")
@access(Permission.VIEW)
def api_segment(segment_id: int, actor: CurrentActor, runtime: RuntimeDep,
                conn: ReadConn) -> dict[str, Any]:
    seg = segments.get_segment(conn, actor=actor, segment_id=segment_id)
    seg["members"] = segments.count_expression(conn, actor=actor, expression=seg["expression"],
                                               clock=runtime.clock())
    return seg


@router.patch("/segments/{segment_id}", status_code=204)
@access(Permission.OPERATE)
def api_segment_update(segment_id: int, body: SegmentUpdate, actor: CurrentActor,
                       runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        segments.do_update_segment(conn, actor=actor, segment_id=segment_id,
                                   **body.model_dump())


@router.delete("/segments/{segment_id}", status_code=204)
@access(Permission.OPERATE)
def api_segment_delete(segment_id: int, actor: CurrentActor, runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        segments.do_delete_segment(conn, actor=actor, segment_id=segment_id)


@router.post("/segments/count")
@access(Permission.VIEW)
def api_segment_count(body: Expression, actor: CurrentActor, runtime: RuntimeDep,
                      conn: ReadConn) -> dict[str, Any]:
    """Count an unsaved expression (the builder's live count)."""
    return {"expression": body.expression,
            "members": segments.count_expression(conn, actor=actor,
                                                 expression=body.expression,
                                                 clock=runtime.clock())}


@router.get("/segments/{segment_id}/members")
@access(Permission.VIEW)
def api_segment_members(segment_id: int, actor: CurrentActor, runtime: RuntimeDep,
                        conn: ReadConn, limit: int = 100,
                        offset: int = 0) -> list[dict[str, Any]]:
    seg = segments.get_segment(conn, actor=actor, segment_id=segment_id)
    return segments.list_expression_members(conn, actor=actor, expression=seg["expression"],
                                            clock=runtime.clock(),
                                            limit=min(max(limit, 1), 1000),
                                            offset=max(offset, 0))


# --- leads ----------------------------------------------------------------------------------

@router.post("/leads/score")
@access(Permission.VIEW)
def api_leads_score(body: LeadQuery, actor: CurrentActor, runtime: RuntimeDep,
                    conn: ReadConn) -> dict[str, Any]:
    """Rank a segment by a formula; each row says why it scored."""
    expression, _ = segments.resolve_expression(conn, actor=actor, segment=body.segment_id,
                                                expression=body.expression)
    rows, total = leads.score(conn, actor=actor, expression=expression, formula=body.formula,
                              clock=runtime.clock(), limit=body.limit)
    return {"members": total, "rows": [r.as_dict() for r in rows]}


@router.post("/leads/export")
@access(Permission.VIEW)
def api_leads_export(body: LeadQuery, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    """The whole ranked list as CSV or XLSX (audited)."""
    with runtime.uow.write() as conn:
        expression, _ = segments.resolve_expression(conn, actor=actor, segment=body.segment_id,
                                                expression=body.expression)
        data, _ = leads.do_export_leads(conn, actor=actor, expression=expression,
                                        formula=body.formula, clock=runtime.clock(),
                                        fmt=body.format, source="api")
    return attachment(data, body.format)


@router.get("/lead-lists")
@access(Permission.VIEW)
def api_lead_lists(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return leads.list_lead_lists(conn, actor=actor)


@router.post("/lead-lists", status_code=201)
@access(Permission.OPERATE)
def api_lead_list_save(body: LeadListCreate, actor: CurrentActor,
                       runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return {"id": leads.do_save_lead_list(conn, actor=actor, name=body.name,
                                              segment=body.segment, formula=body.formula)}
