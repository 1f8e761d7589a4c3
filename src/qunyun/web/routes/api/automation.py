"""Automation JSON API under /api/v1: settings, FAQs, moderation (classify, decisions,
review, word lists), check-ins (form submissions, leaderboards, refunds) and draws."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from qunyun.domain.staff import Permission
from qunyun.services import automation, checkins, draws, faqs, moderation
from qunyun.services.errors import InvalidInput
from qunyun.services.members import member_id_by_number
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.listing import ListingQuery, answer
from qunyun.web.outputs import FaqOut

router = APIRouter(prefix="/api/v1", tags=["automation"])


class SettingsUpdate(BaseModel):
    section: str
    values: dict[str, Any] = Field(default_factory=dict)
    reset: list[str] = Field(default_factory=list)


class FaqCreate(BaseModel):
    questions: list[str] = Field(default_factory=list)
    answer: str
    match: Literal["fuzzy", "exact", "contains", "regex"] = "fuzzy"
    pattern: str = ""
    group_id: int | None = None
    cooldown_seconds: int = 300


class ClassifyRequest(BaseModel):
    texts: list[str] = Field(max_length=1000)
    message_type: str = "text"


class Review(BaseModel):
    confirm: bool
    # overturning a removal: let them back in (a staff task where the platform cannot)
    restore: bool = True


class WordListSave(BaseModel):
    name: str
    severity: Literal["block", "review", "weak"] = "weak"
    words: list[str] = Field(max_length=200_000)


class FormCheckin(BaseModel):
    group_id: int
    member_number: int


class DrawCreate(BaseModel):
    group_id: int
    title: str
    kind: Literal["lottery", "red_packet"] = "lottery"
    eligibility: str = ""
    prizes: str = ""
    amount: float = 0.0
    count: int = 0
    seed: str | None = None


@router.get("/automation/settings")
@access(Permission.VIEW)
def settings_get(actor: CurrentActor, conn: ReadConn, group_id: int = 0) -> dict[str, Any]:
    return automation.get_settings(conn, actor=actor, group_id=group_id)


@router.put("/automation/settings")
@access(Permission.OPERATE)
def settings_put(body: SettingsUpdate, actor: CurrentActor, runtime: RuntimeDep,
                 group_id: int = 0) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return automation.do_update_settings(conn, actor=actor, group_id=group_id,
                                             section=body.section, values=body.values,
                                             reset=body.reset)


@router.get("/faqs", response_model=list[FaqOut])
@access(Permission.VIEW)
def faqs_list(actor: CurrentActor, conn: ReadConn,
              group_id: int | None = None) -> list[dict[str, Any]]:
    return faqs.list_faqs(conn, actor=actor, group_id=group_id)


@router.post("/faqs", response_model=FaqOut, status_code=201)
@access(Permission.OPERATE)
def faqs_create(body: FaqCreate, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        faq_id = faqs.do_create_faq(conn, actor=actor, questions=body.questions,
                                    answer=body.answer, match=body.match, pattern=body.pattern,
                                    group_id=body.group_id,
                                    cooldown_seconds=body.cooldown_seconds)
        return faqs.get_faq(conn, actor=actor, faq_id=faq_id)


@router.patch("/faqs/{faq_id}", response_model=FaqOut)
@access(Permission.OPERATE)
def faqs_update(faq_id: int, body: dict[str, Any], actor: CurrentActor,
                runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return faqs.do_update_faq(conn, actor=actor, faq_id=faq_id, changes=body)


@router.delete("/faqs/{faq_id}", status_code=204)
@access(Permission.OPERATE)
def faqs_delete(faq_id: int, actor: CurrentActor, runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        faqs.do_delete_faq(conn, actor=actor, faq_id=faq_id)


@router.post("/faqs/import")
@access(Permission.OPERATE)
async def faqs_import(request: Request, actor: CurrentActor, runtime: RuntimeDep,
                      group_id: int | None = None) -> dict[str, int]:
    """Body: the CSV file itself (``id,question,answer``)."""
    data = await request.body()
    with runtime.uow.write() as conn:
        return faqs.do_import_faqs(conn, actor=actor, data=data, name="request body",
                                   group_id=group_id)


@router.post("/moderation/classify")
@access(Permission.VIEW)
def moderation_classify(body: ClassifyRequest, actor: CurrentActor, conn: ReadConn,
                        runtime: RuntimeDep) -> list[dict[str, object]]:
    """Classify texts with the team's word lists and learned score (nothing is stored)."""
    clf = runtime.automation.get(conn).classifier
    return [clf.classify(t, message_type=body.message_type).to_json() for t in body.texts]


@router.get("/moderation/decisions")
@access(Permission.VIEW)
def moderation_decisions(response: Response, actor: CurrentActor, conn: ReadConn,
                         listing: ListingQuery, status: str | None = None,
                         group_id: int | None = None) -> list[dict[str, Any]]:
    """The moderation log, newest first, searched by words, group or member and paged."""
    return answer(response, moderation.page_decisions(conn, actor=actor, status=status,
                                                      group_id=group_id, listing=listing))


@router.post("/moderation/decisions/{decision_id}/review")
@access(Permission.OPERATE)
def moderation_review(decision_id: int, body: Review, actor: CurrentActor,
                      runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return moderation.do_review(conn, actor=actor, decision_id=decision_id,
                                    confirm=body.confirm, capabilities=runtime.capabilities,
                                    restore=body.restore)


@router.get("/word-lists")
@access(Permission.VIEW)
def word_lists(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return moderation.list_word_lists(conn, actor=actor)


@router.put("/word-lists")
@access(Permission.OPERATE)
def word_lists_save(body: WordListSave, actor: CurrentActor,
                    runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return moderation.do_save_word_list(conn, actor=actor, name=body.name,
                                            severity=body.severity, words=body.words)


@router.post("/checkins", status_code=201)
@access(Permission.OPERATE)
def checkins_form(body: FormCheckin, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return checkins.do_form_checkin(conn, actor=actor, group_id=body.group_id,
                                        member_id=member_id_by_number(conn, body.member_number),
                                        tz=runtime.settings.tz)


@router.get("/checkins/leaderboard")
@access(Permission.VIEW)
def checkins_board(actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep, group_id: int,
                   period: str = "week", metric: str = "checkins") -> dict[str, Any]:
    return checkins.leaderboard(conn, actor=actor, group_id=group_id, period=period,
                                metric=metric, tz=runtime.settings.tz)


@router.get("/checkins/refunds")
@access(Permission.VIEW)
def checkins_refunds(actor: CurrentActor, conn: ReadConn, group_id: int, start: str,
                     end: str, deposit: float, tiers: str = "") -> dict[str, Any]:
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise InvalidInput("start/end: YYYY-MM-DD") from None
    return checkins.refunds(conn, actor=actor, group_id=group_id, start=first, end=last,
                            deposit=deposit,
                            tiers=checkins.parse_tiers(tiers) if tiers else None)


@router.post("/draws", status_code=201)
@access(Permission.OPERATE)
def draws_create(body: DrawCreate, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return draws.do_draw(conn, actor=actor, group_id=body.group_id, title=body.title,
                             kind=body.kind, clock=runtime.clock(),
                             expression=body.eligibility, prizes=body.prizes,
                             amount=body.amount, count=body.count, seed=body.seed)


@router.get("/draws/{draw_id}")
@access(Permission.VIEW)
def draws_get(draw_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return draws.get_draw(conn, actor=actor, draw_id=draw_id)


@router.get("/draws/{draw_id}/verify")
@access(Permission.VIEW)
def draws_verify(draw_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return draws.verify_draw(conn, actor=actor, draw_id=draw_id)
