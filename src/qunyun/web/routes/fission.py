"""Fission pages: the campaigns (and a new one), and each campaign's live report — stages
with stock left, K-factor, top inviters, the daily curve, the invitation tree, rewards —
with a member's code made on the spot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.fission import FissionError, parse_stage
from qunyun.domain.staff import Permission
from qunyun.services import fission, posters
from qunyun.services.errors import InvalidInput
from qunyun.services.groups import list_groups
from qunyun.services.members import member_id_by_number
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, render

router = APIRouter(include_in_schema=False)


@router.get("/fission")
@access(Permission.VIEW)
def fission_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return render(request, "fission.html", {
        "campaigns": fission.list_campaigns(conn, actor=actor),
        "groups": list_groups(conn, actor=actor)})


@router.post("/fission")
@access(Permission.OPERATE)
async def fission_create(request: Request, actor: CurrentActor, runtime: RuntimeDep
                         ) -> Response:
    form = await request.form()
    try:
        stages = [parse_stage(line.strip()) for line in
                  str(form.get("stages", "")).replace("，", ",").replace(",", "\n").splitlines()
                  if line.strip()]
    except FissionError as exc:
        raise InvalidInput.wrap(exc) from None
    groups = [int(str(g)) for g in form.getlist("group_ids") if str(g).isdigit()]
    hours = str(form.get("valid_hours", "0")).strip() or "0"
    if not hours.isdigit():
        raise InvalidInput("valid_hours: a whole number of hours")
    with runtime.uow.write() as conn:
        made = fission.do_create_campaign(
            conn, actor=actor, name=str(form.get("name", "")), group_ids=groups,
            stages=stages, account=str(form.get("account", "")), valid_hours=int(hours),
            now=runtime.now())
    return RedirectResponse(f"/fission/{made['id']}", status_code=303)


@router.get("/fission/{campaign_id}")
@access(Permission.VIEW)
def fission_report(request: Request, campaign_id: int, actor: CurrentActor, conn: ReadConn,
                   runtime: RuntimeDep, code: str = "") -> Response:
    out = fission.report(conn, actor=actor, campaign_id=campaign_id, tz=runtime.settings.tz)
    return render(request, "fission_report.html", {
        "r": out, "c": out["campaign"], "code": code, "sample": out["first_number"],
        "layout": posters.settings_of(out["campaign"]["poster"]),
        "rewards": fission.list_rewards(conn, actor=actor, campaign_id=campaign_id)})


@router.post("/fission/{campaign_id}/status")
@access(Permission.OPERATE)
def fission_status(campaign_id: int, actor: CurrentActor, runtime: RuntimeDep,
                   status: str = Form(...)) -> Response:
    with runtime.uow.write() as conn:
        fission.do_set_status(conn, actor=actor, campaign_id=campaign_id, status=status,
                              now=runtime.now())
    return RedirectResponse(f"/fission/{campaign_id}", status_code=303)


@router.post("/fission/rewards/{reward_id}")
@access(Permission.OPERATE)
def fission_reward(reward_id: int, actor: CurrentActor, runtime: RuntimeDep,
                   status: str = Form(...), tracking: str = Form("", max_length=64)
                   ) -> Response:
    with runtime.uow.write() as conn:
        out = fission.do_update_reward(conn, actor=actor, reward_id=reward_id, status=status,
                                       tracking=tracking, now=runtime.now())
    return RedirectResponse(f"/fission/{out['campaign_id']}#fission-rewards", status_code=303)


def _folder(runtime: Any) -> Path:
    return Path(runtime.settings.data_dir) / "posters"


@router.get("/fission/{campaign_id}/poster")
@access(Permission.VIEW)
def fission_poster(campaign_id: int, actor: CurrentActor, conn: ReadConn,
                   runtime: RuntimeDep, number: str = "") -> Response:
    """A participant's poster (by member number) as a picture."""
    png = fission.poster_for(conn, actor=actor, campaign_id=campaign_id,
                             member_id=member_id_by_number(conn, number.strip()),
                             folder=_folder(runtime))
    return Response(png, media_type="image/png",
                    headers={"cache-control": "private, max-age=60"})


@router.get("/fission/{campaign_id}/poster-preview")
@access(Permission.VIEW)
def fission_poster_preview(request: Request, campaign_id: int, actor: CurrentActor,
                           conn: ReadConn, runtime: RuntimeDep) -> Response:
    """The editor's live preview of a layout, not kept."""
    values = fission.layout_from(dict(request.query_params))
    png = fission.poster_preview(conn, actor=actor, campaign_id=campaign_id, values=values,
                                 folder=_folder(runtime))
    return Response(png, media_type="image/png", headers={"cache-control": "no-store"})


@router.post("/fission/{campaign_id}/poster")
@access(Permission.OPERATE)
async def fission_poster_save(request: Request, campaign_id: int, actor: CurrentActor,
                              runtime: RuntimeDep) -> Response:
    form = await request.form()
    upload = form.get("background")
    data = (await upload.read()) if upload is not None and not isinstance(upload, str) \
        else b""
    values = fission.layout_from({k: str(v) for k, v in form.items() if isinstance(v, str)})
    with runtime.uow.write() as conn:
        fission.do_set_poster(conn, actor=actor, campaign_id=campaign_id, values=values,
                              background=data or None, folder=_folder(runtime))
    return RedirectResponse(f"/fission/{campaign_id}#fission-poster", status_code=303)


@router.post("/fission/{campaign_id}/participants")
@access(Permission.OPERATE)
def fission_join(campaign_id: int, actor: CurrentActor, runtime: RuntimeDep,
                 number: str = Form(..., max_length=20)) -> Response:
    with runtime.uow.read() as conn:
        member_id = member_id_by_number(conn, number.strip())
    made = fission.do_join(runtime.uow, actor=actor, adapter_for=runtime.adapter,
                           campaign_id=campaign_id, member_id=member_id, now=runtime.now())
    return RedirectResponse(f"/fission/{campaign_id}?code={made['code']}#participant",
                            status_code=303)
