"""Member pages: search (by name, number or segment), profile with timeline, and the forms
that tag, note, blacklist, set attributes and merge; merge suggestions; blacklist."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.staff import Permission
from qunyun.services import (
    attributes,
    blacklist,
    merges,
    profiles,
    records,
    segment_words,
    segments,
    tags,
)
from qunyun.services import members as members_service
from qunyun.services.errors import InvalidInput, in_words
from qunyun.services.listing import Page
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


@router.get("/members")
@access(Permission.VIEW)
def members_page(request: Request, actor: CurrentActor, runtime: RuntimeDep, conn: ReadConn,
                 listing: ListingQuery, segment: str = "", who: str = "") -> Response:
    """Members by name or number (sortable, paged, staff or customers only), or the
    members a segment expression selects."""
    error = ""
    result = Page([], 0, listing, "number", "asc")
    try:
        result = members_service.page_members(conn, actor=actor, listing=listing, who=who,
                                              segment=segment, clock=runtime.clock())
    except InvalidInput as exc:
        if not segment.strip():
            raise  # a bad sort or page: the 422 page, like every list
        error = in_words(exc, language(request))
    return render(request, "members.html", {
        "p": result, "members": result.rows, "segment": segment, "who": who,
        "builder_spec": segment_words.builder_for(conn, actor=actor, language=language(request)),
        "builder_state": segment_words.to_builder(segment),
        "error": error, "follow_ups": records.list_follow_ups(conn, actor=actor, limit=20),
        "saved_segments": segments.list_segments(conn, actor=actor)})


@router.get("/members/suggestions")
@access(Permission.VIEW)
def suggestions_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return render(request, "member_suggestions.html",
                  {"suggestions": merges.merge_suggestions(conn, actor=actor),
                   "merges": merges.list_merges(conn, actor=actor, limit=50)})


@router.get("/members/blacklist")
@access(Permission.VIEW)
def blacklist_page(request: Request, actor: CurrentActor, conn: ReadConn,
                   show: str = "active") -> Response:
    return render(request, "blacklist.html", {
        "entries": blacklist.list_blacklist(conn, actor=actor, active_only=show != "all"),
        "show": show})


@router.get("/members/attributes")
@access(Permission.VIEW)
def attribute_fields_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    """Custom attributes and whether each is personal data (admins change it)."""
    return render(request, "attribute_fields.html",
                  {"fields": attributes.list_attribute_fields(conn, actor=actor)})


@router.post("/members/attributes/{name}/mark")
@access(Permission.MANAGE_USERS)
def attribute_mark(name: str, actor: CurrentActor, runtime: RuntimeDep,
                   personal: str = Form(...)) -> Response:
    with runtime.uow.write() as conn:
        attributes.do_mark_attribute(conn, actor=actor, name=name, personal=personal == "1")
    return RedirectResponse("/members/attributes", status_code=303)


@router.get("/members/{member_id:int}")
@access(Permission.VIEW)
def member_page(request: Request, member_id: int, actor: CurrentActor, runtime: RuntimeDep,
                conn: ReadConn) -> Response:
    profile = profiles.get_member_profile(conn, actor=actor, member_id=member_id,
                                          now=runtime.clock().now)
    return render(request, "member.html", {"m": profile,
                                           "all_tags": tags.list_tags(conn, actor=actor)})


def _back(member_id: int, anchor: str = "") -> Response:
    return RedirectResponse(f"/members/{member_id}{anchor}", status_code=303)


@router.post("/members/{member_id:int}/tags")
@access(Permission.OPERATE)
def member_tag(member_id: int, actor: CurrentActor, runtime: RuntimeDep,
               tag: str = Form(...), reason: str = Form("")) -> Response:
    with runtime.uow.write() as conn:
        tags.do_tag_member(conn, actor=actor, member_id=member_id, tag=tag, reason=reason)
    return _back(member_id, "#tags")


@router.post("/members/{member_id:int}/tags/{tag_id}/remove")
@access(Permission.OPERATE)
def member_untag(member_id: int, tag_id: int, actor: CurrentActor,
                 runtime: RuntimeDep) -> Response:
    with runtime.uow.write() as conn:
        tags.do_untag_member(conn, actor=actor, member_id=member_id, tag=tag_id)
    return _back(member_id, "#tags")


@router.post("/members/{member_id:int}/records")
@access(Permission.WORK_TASKS)
def member_record(member_id: int, actor: CurrentActor, runtime: RuntimeDep,
                  kind: str = Form("note"), body: str = Form(...),
                  due: str = Form("")) -> Response:
    with runtime.uow.write() as conn:
        records.do_add_record(conn, actor=actor, member_id=member_id, kind=kind, body=body,
                              due_at=records.parse_due(due, runtime.settings.tz))
    return _back(member_id, "#records")


@router.post("/records/{record_id}/complete")
@access(Permission.WORK_TASKS)
def record_complete(request: Request, record_id: int, actor: CurrentActor,
                    runtime: RuntimeDep, back: str = Form("/members")) -> Response:
    with runtime.uow.write() as conn:
        records.do_complete_follow_up(conn, actor=actor, record_id=record_id)
    target = back if back.startswith("/") and not back.startswith("//") else "/members"
    return RedirectResponse(target, status_code=303)


@router.post("/members/{member_id:int}/blacklist")
@access(Permission.OPERATE)
def member_blacklist(member_id: int, actor: CurrentActor, runtime: RuntimeDep,
                     reason: str = Form(...), days: str = Form("")) -> Response:
    if days and not days.isdigit():
        raise InvalidInput("days: a whole number of days, or empty for no expiry")
    expires = runtime.clock().now + timedelta(days=int(days)) if days else None
    with runtime.uow.write() as conn:
        blacklist.do_blacklist(conn, actor=actor, member_id=member_id, reason=reason,
                               expires_at=expires, capabilities=runtime.capabilities)
    return _back(member_id)


@router.post("/members/{member_id:int}/unblacklist")
@access(Permission.OPERATE)
def member_unblacklist(member_id: int, actor: CurrentActor, runtime: RuntimeDep,
                       reason: str = Form("")) -> Response:
    with runtime.uow.write() as conn:
        blacklist.do_lift(conn, actor=actor, member_id=member_id, reason=reason)
    return _back(member_id)


@router.post("/members/{member_id:int}/attributes")
@access(Permission.OPERATE)
def member_attribute(member_id: int, actor: CurrentActor, runtime: RuntimeDep,
                     name: str = Form(...), value: str = Form("")) -> Response:
    with runtime.uow.write() as conn:
        attributes.do_set_attribute(conn, actor=actor, member_id=member_id, name=name,
                                    value=value)
    return _back(member_id, "#attributes")


@router.post("/members/{member_id:int}/merge")
@access(Permission.OPERATE)
def member_merge(member_id: int, actor: CurrentActor, runtime: RuntimeDep,
                 into: str = Form(...), reason: str = Form("")) -> Response:
    """Merge this member into the member numbered ``into``."""
    with runtime.uow.write() as conn:
        target = members_service.member_id_by_number(conn, into.strip())
        merges.do_merge(conn, actor=actor, source_id=member_id, target_id=target,
                        reason=reason)
    return _back(target)


@router.post("/merges/{merge_id}/undo")
@access(Permission.OPERATE)
def merge_undo(merge_id: int, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    with runtime.uow.write() as conn:
        merges.do_undo_merge(conn, actor=actor, merge_id=merge_id)
    return RedirectResponse("/members/suggestions", status_code=303)


@router.post("/members/suggestions/merge")
@access(Permission.OPERATE)
def suggestion_merge(actor: CurrentActor, runtime: RuntimeDep, source: int = Form(...),
                     target: int = Form(...), reason: str = Form("")) -> Response:
    with runtime.uow.write() as conn:
        merges.do_merge(conn, actor=actor, source_id=source, target_id=target,
                        reason=reason or "merge suggestion")
    return RedirectResponse("/members/suggestions", status_code=303)


@router.post("/members/suggestions/dismiss")
@access(Permission.OPERATE)
def suggestion_dismiss(actor: CurrentActor, runtime: RuntimeDep, a: int = Form(...),
                       b: int = Form(...)) -> Response:
    with runtime.uow.write() as conn:
        merges.do_dismiss_suggestion(conn, actor=actor, member_a=a, member_b=b)
    return RedirectResponse("/members/suggestions", status_code=303)


@router.post("/members/attributes/import")
@access(Permission.OPERATE)
async def attributes_import(request: Request, actor: CurrentActor,
                            runtime: RuntimeDep) -> Response:
    """Upload a spreadsheet (CSV); the page shows the report with unmatched lines."""
    form, data, name = await uploaded_file(request, "a CSV file")
    key = str(form.get("key") or "").strip() or None
    with runtime.uow.write() as conn:
        report = attributes.do_import_attributes(conn, actor=actor, path=name, data=data,
                                                 key=key)
    return render(request, "attributes_report.html", {"r": report.as_dict()})
