"""Fission campaigns over the API: create, list, one, pause/resume/end, take part (a
member's code and link), the report and the rewards."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, Response, UploadFile
from pydantic import BaseModel, Field

from qunyun.domain.fission import Stage
from qunyun.domain.staff import Permission
from qunyun.services import fission, fission_rehearsal, fission_shots
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access

router = APIRouter(prefix="/api/v1", tags=["fission"])


class StageIn(BaseModel):
    invites: int = Field(ge=1, le=10_000)
    reward: str = Field(min_length=1, max_length=64)
    stock: int = Field(ge=0, le=10_000_000)
    cost_cents: int = Field(0, ge=0, le=1_000_000_000)


class CampaignCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    group_ids: list[int] = Field(min_length=1, max_length=100)
    stages: list[StageIn] = Field(min_length=1, max_length=10)
    account: str = Field(min_length=1, max_length=64)
    valid_hours: int = Field(0, ge=0, le=720)
    completers_group_id: int | None = None
    completers_tag: str = Field("", max_length=64)
    texts: dict[str, str] = Field(default_factory=dict, max_length=20)
    enrol_newcomers: bool = True


class CampaignUpdate(BaseModel):
    texts: dict[str, str] | None = Field(None, max_length=20)
    completers_tag: str | None = Field(None, max_length=64)
    enrol_newcomers: bool | None = None


class Join(BaseModel):
    member_id: int


@router.get("/fission/campaigns")
@access(Permission.VIEW)
def campaigns(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return fission.list_campaigns(conn, actor=actor)


@router.post("/fission/campaigns", status_code=201)
@access(Permission.OPERATE)
def create(body: CampaignCreate, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return fission.do_create_campaign(
            conn, actor=actor, name=body.name, group_ids=body.group_ids,
            stages=[Stage(s.invites, s.reward, s.stock, s.cost_cents) for s in body.stages],
            account=body.account, valid_hours=body.valid_hours,
            completers_group_id=body.completers_group_id, completers_tag=body.completers_tag,
            texts=body.texts, enrol_newcomers=body.enrol_newcomers, now=runtime.now())


@router.patch("/fission/campaigns/{campaign_id}")
@access(Permission.OPERATE)
def edit(campaign_id: int, body: CampaignUpdate, actor: CurrentActor,
         runtime: RuntimeDep) -> dict[str, Any]:
    """The loop's messages (``texts``: welcome, progress, done, taken_back, sold_out, claim,
    completers; an empty one is the default again), the completers' tag, and whether
    newcomers take part with their own poster."""
    with runtime.uow.write() as conn:
        return fission.do_update_campaign(
            conn, actor=actor, campaign_id=campaign_id, texts=body.texts,
            completers_tag=body.completers_tag, enrol_newcomers=body.enrol_newcomers)


@router.get("/fission/campaigns/{campaign_id}")
@access(Permission.VIEW)
def campaign(campaign_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return fission.access_campaign(conn, actor=actor, campaign_id=campaign_id)


def _set(campaign_id: int, status: str, actor: Any, runtime: Any) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return fission.do_set_status(conn, actor=actor, campaign_id=campaign_id,
                                     status=status, now=runtime.now())


@router.post("/fission/campaigns/{campaign_id}/pause")
@access(Permission.OPERATE)
def pause(campaign_id: int, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Joins through the codes are not credited until resumed."""
    return _set(campaign_id, fission.PAUSED, actor, runtime)


@router.post("/fission/campaigns/{campaign_id}/resume")
@access(Permission.OPERATE)
def resume(campaign_id: int, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    return _set(campaign_id, fission.ACTIVE, actor, runtime)


@router.post("/fission/campaigns/{campaign_id}/end")
@access(Permission.OPERATE)
def end(campaign_id: int, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """For good: the codes stop crediting; the report stays."""
    return _set(campaign_id, fission.ENDED, actor, runtime)


@router.post("/fission/campaigns/{campaign_id}/participants", status_code=201)
@access(Permission.OPERATE)
def join(campaign_id: int, body: Join, actor: CurrentActor,
         runtime: RuntimeDep) -> dict[str, Any]:
    """The member takes part: their own code and link (made once)."""
    return fission.do_join(runtime.uow, actor=actor, adapter_for=runtime.adapter,
                           campaign_id=campaign_id, member_id=body.member_id,
                           now=runtime.now())


@router.get("/fission/campaigns/{campaign_id}/report")
@access(Permission.VIEW)
def report(campaign_id: int, actor: CurrentActor, conn: ReadConn,
           runtime: RuntimeDep) -> dict[str, Any]:
    return fission.report(conn, actor=actor, campaign_id=campaign_id, tz=runtime.settings.tz)


@router.get("/fission/campaigns/{campaign_id}/rewards")
@access(Permission.VIEW)
def rewards(campaign_id: int, actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep,
            format: str = "") -> Any:
    """The rewards (phones masked for staff who may not see them); ``format=csv|xlsx``
    downloads them for the warehouse."""
    if not format:
        return fission.list_rewards(conn, actor=actor, campaign_id=campaign_id)
    data = fission.export_rewards(conn, actor=actor, campaign_id=campaign_id, fmt=format,
                                  tz=runtime.settings.tz, language=runtime.settings.language)
    media = ("text/csv; charset=utf-8" if format == "csv" else
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(data, media_type=media, headers={
        "content-disposition": f'attachment; filename="rewards-{campaign_id}.{format}"'})


class PosterLayout(BaseModel):
    qr: dict[str, int] = Field(default_factory=dict)
    name: dict[str, int | str] = Field(default_factory=dict)


@router.put("/fission/campaigns/{campaign_id}/poster")
@access(Permission.OPERATE)
def set_poster(campaign_id: int, body: PosterLayout, actor: CurrentActor,
               runtime: RuntimeDep) -> dict[str, Any]:
    """Where the QR code and the name go (``qr: {x, y, size}``, ``name: {x, y, size, color,
    template}``, in the 750×1334 poster); a background is uploaded on the page or with the
    command."""
    with runtime.uow.write() as conn:
        return fission.do_set_poster(conn, actor=actor, campaign_id=campaign_id,
                                     values=body.model_dump(exclude_defaults=True),
                                     folder=runtime.settings.pictures_dir)


@router.get("/fission/campaigns/{campaign_id}/poster")
@access(Permission.VIEW)
def poster(campaign_id: int, member_id: int, actor: CurrentActor, conn: ReadConn,
           runtime: RuntimeDep) -> Response:
    """A participant's poster, PNG."""
    png = fission.poster_for(conn, actor=actor, campaign_id=campaign_id, member_id=member_id,
                             folder=runtime.settings.pictures_dir)
    return Response(png, media_type="image/png")


@router.post("/fission/rewards/{reward_id}/claim-link")
@access(Permission.OPERATE)
def new_claim_link(reward_id: int, actor: CurrentActor, runtime: RuntimeDep
                   ) -> dict[str, Any]:
    """A fresh claim link for a reserved reward, to send by hand (the old one stops)."""
    with runtime.uow.write() as conn:
        return fission.do_new_claim_link(conn, actor=actor, reward_id=reward_id,
                                         public_url=runtime.settings.public_url,
                                         now=runtime.now())


@router.get("/fission/campaigns/{campaign_id}/shots")
@access(Permission.VIEW)
def shots(campaign_id: int, actor: CurrentActor, conn: ReadConn,
          status: str = "pending") -> list[dict[str, Any]]:
    """The share stage's screenshots: the review queue (``pending``), ``approved``,
    ``declined``, or all (``status=``); each picture at ``/fission/shots/{id}.png``."""
    return fission_shots.list_shots(conn, actor=actor, campaign_id=campaign_id, status=status)


@router.post("/fission/campaigns/{campaign_id}/shots", status_code=201)
@access(Permission.OPERATE)
async def submit_shot(campaign_id: int, actor: CurrentActor, runtime: RuntimeDep,
                      member_id: int = Form(...), screenshot: UploadFile = File(...)
                      ) -> dict[str, Any]:
    """A screenshot a member sent staff privately, into the queue for them (multipart)."""
    data = await screenshot.read()
    with runtime.uow.write() as conn:
        return fission_shots.do_submit(conn, actor=actor, campaign_id=campaign_id,
                                       member_id=member_id, data=data,
                                       folder=runtime.settings.pictures_dir,
                                       now=runtime.now())


class ShotReview(BaseModel):
    approve: bool
    reason: str = Field("", max_length=200)


@router.post("/fission/shots/{shot_id}")
@access(Permission.OPERATE)
def review_shot(shot_id: int, body: ShotReview, actor: CurrentActor,
                runtime: RuntimeDep) -> dict[str, Any]:
    """Approve (the reward is reserved while stock lasts) or decline with a reason; the
    member is told privately; a second decision is 409."""
    with runtime.uow.write() as conn:
        return fission_shots.do_review(
            conn, actor=actor, shot_id=shot_id, approve=body.approve, reason=body.reason,
            capabilities=runtime.capabilities, public_url=runtime.settings.public_url,
            now=runtime.now())


class RehearsalIn(BaseModel):
    seeds: int = Field(30, ge=1, le=5_000)
    share: float = Field(0.5, ge=0, le=1)
    friends: float = Field(2.0, ge=0, le=50)
    leave: float = Field(0.1, ge=0, le=1)
    days: int = Field(7, ge=1, le=60)
    seed: int = Field(7, ge=0, le=2**31)
    max_joins: int = Field(5_000, ge=1, le=20_000)  # a request waits for it


@router.post("/fission/campaigns/{campaign_id}/rehearse", status_code=201)
@access(Permission.OPERATE)
def rehearse(campaign_id: int, body: RehearsalIn, actor: CurrentActor,
             runtime: RuntimeDep) -> dict[str, Any]:
    """The campaign's plan rehearsed on the sandbox with simulated people: a new campaign
    over new sandbox groups (``campaign_id`` in the answer) and its report."""
    return fission_rehearsal.do_rehearse(
        runtime.uow, actor=actor, campaign_id=campaign_id,
        plan=fission_rehearsal.Rehearsal(**body.model_dump()), adapter_for=runtime.adapter,
        config=runtime.ingest_config, capabilities=runtime.capabilities, now=runtime.now())


class RewardUpdate(BaseModel):
    status: str = Field(pattern="^(shipped|cancelled|reserved)$")
    tracking: str = Field("", max_length=64)


@router.post("/fission/rewards/{reward_id}")
@access(Permission.OPERATE)
def update_reward(reward_id: int, body: RewardUpdate, actor: CurrentActor,
                  runtime: RuntimeDep) -> dict[str, Any]:
    """Ship (with the tracking number), cancel (the stock returns) or restore a reward."""
    with runtime.uow.write() as conn:
        return fission.do_update_reward(conn, actor=actor, reward_id=reward_id,
                                        status=body.status, tracking=body.tracking,
                                        now=runtime.now())
