"""The JSON API under /api/v1 for member profiles, tags on a member, records and follow-ups,
the blacklist, custom attributes and merges. Calls services only; roles are checked there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from qunyun.domain.staff import Permission
from qunyun.services import (
    attributes,
    blacklist,
    merges,
    profiles,
    records,
    tags,
)
from qunyun.services import members as members_service
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.listing import ListingQuery, answer
from qunyun.web.outputs import AttributeFieldOut, BlacklistEntryOut, FollowUpOut
from qunyun.web.schemas import MemberDetail, MemberPublic

router = APIRouter(prefix="/api/v1", tags=["members"])


@router.get("/members", response_model=list[MemberPublic])
@access(Permission.VIEW)
def api_members(response: Response, actor: CurrentActor, runtime: RuntimeDep, conn: ReadConn,
                listing: ListingQuery, segment: str = "", who: str = "") -> list[dict[str, Any]]:
    """Search by nickname or member number (``q``), sorted (``sort``: number, name,
    last_seen, first_seen; ``order``) and paged (``page``, ``per_page``; the total is in
    ``X-Total-Count``); ``who``: staff or customers; or the members of a segment."""
    return answer(response, members_service.page_members(
        conn, actor=actor, listing=listing, who=who, segment=segment, clock=runtime.clock()))


@router.get("/members/{member_id}", response_model=MemberDetail)
@access(Permission.VIEW)
def api_member(member_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return members_service.access_member_by_id(conn, actor=actor, member_id=member_id)


class TagAssign(BaseModel):
    tag: str = Field(description='"group/name" or a tag id; created when new')
    reason: str = ""


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


@router.get("/follow-ups", response_model=list[FollowUpOut])
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


@router.get("/blacklist", response_model=list[BlacklistEntryOut])
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


@router.get("/attributes", response_model=list[AttributeFieldOut])
@access(Permission.VIEW)
def api_attribute_fields(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    """Custom attributes: personal or not, their kind, how many members hold each."""
    return attributes.list_attribute_fields(conn, actor=actor)


@router.patch("/attributes/{name}", response_model=AttributeFieldOut)
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
