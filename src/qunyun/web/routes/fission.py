"""Fission pages: the campaigns (and a new one), and each campaign's live report — stages
with stock left, K-factor, top inviters, the daily curve, the invitation tree, rewards —
with a member's code made on the spot."""

from __future__ import annotations

from collections import deque
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.fission import TEXT_FIELDS, TEXTS, FissionError, parse_stage, share_stage
from qunyun.domain.staff import Permission
from qunyun.i18n import translate
from qunyun.services import fission, fission_rehearsal, fission_shots, posters
from qunyun.services.errors import InvalidInput, ServiceError
from qunyun.services.groups import list_groups
from qunyun.services.members import member_id_by_number
from qunyun.web.deps import (
    PUBLIC,
    CurrentActor,
    ReadConn,
    RuntimeDep,
    access,
    check_csrf,
    csrf_token,
    language,
    render,
)
from qunyun.web.forms import form_picture
from qunyun.web.uploads import upload_page, upload_post

router = APIRouter(include_in_schema=False)
# where pictures are uploaded (posters' backgrounds, screenshots): bodies up to posters'
# MAX_UPLOAD, not the forms' limit
PICTURE_PATHS = ("/fission/", "/api/v1/fission/")


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
    completers = str(form.get("completers_group_id", "")).strip()
    with runtime.uow.write() as conn:
        made = fission.do_create_campaign(
            conn, actor=actor, name=str(form.get("name", "")), group_ids=groups,
            stages=stages, account=str(form.get("account", "")), valid_hours=int(hours),
            completers_group_id=int(completers) if completers.isdigit() else None,
            completers_tag=str(form.get("completers_tag", "")),
            enrol_newcomers=form.get("enrol_newcomers") is not None, now=runtime.now())
    return RedirectResponse(f"/fission/{made['id']}", status_code=303)


@router.get("/fission/{campaign_id}")
@access(Permission.VIEW)
def fission_report(request: Request, campaign_id: int, actor: CurrentActor, conn: ReadConn,
                   runtime: RuntimeDep, code: str = "") -> Response:
    return _report_page(request, conn, actor, runtime, campaign_id, code=code)


def _report_page(request: Request, conn: Any, actor: Any, runtime: Any, campaign_id: int, *,
                 code: str = "", claim_link: tuple[int, str] | None = None) -> Response:
    out = fission.report(conn, actor=actor, campaign_id=campaign_id, tz=runtime.settings.tz)
    return render(request, "fission_report.html", {
        "r": out, "c": out["campaign"], "code": code, "sample": out["first_number"],
        "layout": posters.settings_of(out["campaign"]["poster"]),
        "texts": fission.texts_of(out["campaign"]), "text_kinds": list(TEXTS),
        "text_fields": {k: " ".join("{" + f + "}" for f in sorted(v))
                        for k, v in TEXT_FIELDS.items()},
        "claim_link": claim_link, "public_url": runtime.settings.public_url,
        "daily_chart": _daily_chart(out, language(request)),
        "tree_chart": _tree_chart(out, language(request)),
        "shots": fission_shots.list_shots(conn, actor=actor, campaign_id=campaign_id),
        "share": share_stage(out["campaign"]["plan"]),
        "rewards": fission.list_rewards(conn, actor=actor, campaign_id=campaign_id)})


TREE_NODES = 300  # an invitation tree drawn past this is a hairball; the CSV has it all


def _daily_chart(report: dict[str, Any], lang: str) -> dict[str, Any]:
    """Seeds 001/002's daily curve: participants, joins, valid invites, completions."""
    days = report["daily"]
    return {"x": [d["day"][5:] for d in days], "xName": translate("report.axis_day", lang),
            "yNames": [translate("report.axis_people", lang)],
            "saveTitle": translate("dash.export_png", lang),
            "series": [{"name": translate(f"fission.daily.{k}", lang),
                        "type": "line" if k == "completions" else "bar",
                        "data": [d[k] for d in days]}
                       for k in ("participants", "joins", "valid", "completions")]}


def _tree_chart(report: dict[str, Any], lang: str) -> dict[str, Any]:
    """The invitation tree for ECharts, cut at ``TREE_NODES`` nodes: the report's tree
    comes biggest branches first, so breadth first keeps every branch's top."""
    root: dict[str, Any] = {"name": report["campaign"]["name"], "children": []}
    queue = deque([(root, report["tree"])])
    shown = 0
    while queue and shown < TREE_NODES:
        parent, kids = queue.popleft()
        for kid in kids[:TREE_NODES - shown]:
            node = {"name": kid["name"], "value": kid["brought"], "children": []}
            parent["children"].append(node)
            shown += 1
            queue.append((node, kid["children"]))
    return {"kind": "tree", "data": root, "saveTitle": translate("dash.export_png", lang),
            "cut": shown >= TREE_NODES}


@router.post("/fission/{campaign_id}/texts")
@access(Permission.OPERATE)
async def fission_texts(request: Request, campaign_id: int, actor: CurrentActor,
                        runtime: RuntimeDep) -> Response:
    """The loop's messages as the team writes them, the completers' tag, and whether
    newcomers take part with their own poster."""
    form = await request.form()
    texts = {kind: str(form.get(f"text_{kind}", "")) for kind in TEXTS
             if f"text_{kind}" in form}
    with runtime.uow.write() as conn:
        fission.do_update_campaign(
            conn, actor=actor, campaign_id=campaign_id,
            texts=texts,
            completers_tag=str(form.get("completers_tag", "")),
            enrol_newcomers=form.get("enrol_newcomers") is not None)
    return RedirectResponse(f"/fission/{campaign_id}#fission-texts", status_code=303)


@router.post("/fission/rewards/{reward_id}/claim-link")
@access(Permission.OPERATE)
def fission_claim_link(request: Request, reward_id: int, actor: CurrentActor,
                       runtime: RuntimeDep) -> Response:
    """A fresh claim link to send by hand (the old one stops working); shown once."""
    with runtime.uow.write() as conn:
        made = fission.do_new_claim_link(conn, actor=actor, reward_id=reward_id,
                                         public_url=runtime.settings.public_url,
                                         now=runtime.now())
    with runtime.uow.read() as conn:
        return _report_page(request, conn, actor, runtime, made["campaign_id"],
                            claim_link=(reward_id, made["link"]))


@router.get("/fission/p/{token}.png")
@access(PUBLIC)
def fission_public_poster(token: str, runtime: RuntimeDep) -> Response:
    """A participant's poster at its unguessable address (a platform fetches it to send
    as a picture; the member may open it)."""
    with runtime.uow.read() as conn:
        png = fission.public_poster(conn, token=token, folder=runtime.settings.pictures_dir)
    return Response(png, media_type="image/png",
                    headers={"cache-control": "public, max-age=300"})


@router.get("/claim/{token}")
@access(PUBLIC)
def claim_page(request: Request, token: str, runtime: RuntimeDep) -> Response:
    """The member's private form for their reward: name, phone and address, once."""
    csrf_token(request)
    try:
        with runtime.uow.read() as conn:
            form = fission.claim_form(conn, token=token)
    except ServiceError as exc:
        return render(request, "claim.html", {"problem": exc, "token": ""},
                      status_code=exc.status_code)
    return render(request, "claim.html", {"form": form, "token": token, "values": {}})


@router.post("/claim/{token}")
@access(PUBLIC)
async def claim_submit(request: Request, token: str, runtime: RuntimeDep,
                       name: str = Form("", max_length=200),
                       phone: str = Form("", max_length=200),
                       address: str = Form("", max_length=1000)) -> Response:
    await check_csrf(request)
    values = {"name": name, "phone": phone, "address": address}
    try:
        with runtime.uow.write() as conn:
            done = fission.do_claim(conn, token=token, name=name, phone=phone,
                                    address=address, now=runtime.now())
    except InvalidInput as exc:
        with runtime.uow.read() as conn:
            form = fission.claim_form(conn, token=token)
        return render(request, "claim.html", {"form": form, "token": token,
                                              "values": values, "error": exc},
                      status_code=400)
    except ServiceError as exc:
        return render(request, "claim.html", {"problem": exc, "token": ""},
                      status_code=exc.status_code)
    return render(request, "claim.html", {"done": done, "token": ""})


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




@router.get("/fission/{campaign_id}/poster")
@access(Permission.VIEW)
def fission_poster(campaign_id: int, actor: CurrentActor, conn: ReadConn,
                   runtime: RuntimeDep, number: str = "") -> Response:
    """A participant's poster (by member number) as a picture."""
    png = fission.poster_for(conn, actor=actor, campaign_id=campaign_id,
                             member_id=member_id_by_number(conn, number.strip()),
                             folder=runtime.settings.pictures_dir)
    return Response(png, media_type="image/png",
                    headers={"cache-control": "private, max-age=60"})


@router.get("/fission/{campaign_id}/poster-preview")
@access(Permission.VIEW)
def fission_poster_preview(request: Request, campaign_id: int, actor: CurrentActor,
                           conn: ReadConn, runtime: RuntimeDep) -> Response:
    """The editor's live preview of a layout, not kept."""
    values = fission.layout_from(dict(request.query_params))
    png = fission.poster_preview(conn, actor=actor, campaign_id=campaign_id, values=values,
                                 folder=runtime.settings.pictures_dir)
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
                              background=data or None, folder=runtime.settings.pictures_dir)
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


# --- screenshots of shared posters: the member's upload link, the review queue -------------


@router.get("/fission/s/{token}")
@access(PUBLIC)
def share_page(request: Request, token: str, runtime: RuntimeDep) -> Response:
    """The participant's upload link for the screenshot of their shared poster."""
    return upload_page(request, runtime, template="share.html", token=token,
                       read=lambda conn, t: fission_shots.share_form(conn, token=t))


@router.post("/fission/s/{token}")
@access(PUBLIC)
async def share_upload(request: Request, token: str, runtime: RuntimeDep) -> Response:
    return await upload_post(
        request, runtime, template="share.html", token=token,
        read=lambda conn, t: fission_shots.share_form(conn, token=t),
        store=lambda conn, t, data, where: fission_shots.do_upload(
            conn, token=t, data=data, folder=where, now=runtime.now()))


@router.get("/fission/shots/{shot_id}.png")
@access(Permission.VIEW)
def shot_picture(shot_id: int, actor: CurrentActor, conn: ReadConn,
                 runtime: RuntimeDep) -> Response:
    png = fission_shots.shot_image(conn, actor=actor, shot_id=shot_id,
                                   folder=runtime.settings.pictures_dir)
    return Response(png, media_type="image/png", headers={"cache-control": "private"})


@router.post("/fission/shots/{shot_id}")
@access(Permission.OPERATE)
def shot_review(shot_id: int, actor: CurrentActor, runtime: RuntimeDep,
                decision: str = Form(...), reason: str = Form("", max_length=200)
                ) -> Response:
    if decision not in ("approve", "decline"):
        raise InvalidInput("decision: approve or decline")
    with runtime.uow.write() as conn:
        shot = fission_shots.do_review(
            conn, actor=actor, shot_id=shot_id, approve=decision == "approve", reason=reason,
            capabilities=runtime.capabilities, public_url=runtime.settings.public_url,
            now=runtime.now())
    return RedirectResponse(f"/fission/{shot['campaign_id']}#fission-shots", status_code=303)


@router.post("/fission/{campaign_id}/shots")
@access(Permission.OPERATE)
async def shot_submit(request: Request, campaign_id: int, actor: CurrentActor,
                      runtime: RuntimeDep) -> Response:
    """A screenshot a member sent staff privately, put in the queue for them."""
    form = await request.form()
    data = await form_picture(request)
    with runtime.uow.write() as conn:
        member_id = member_id_by_number(conn, str(form.get("number", "")).strip())
        fission_shots.do_submit(conn, actor=actor, campaign_id=campaign_id,
                                member_id=member_id, data=data,
                                folder=runtime.settings.pictures_dir, now=runtime.now())
    return RedirectResponse(f"/fission/{campaign_id}#fission-shots", status_code=303)


@router.post("/fission/{campaign_id}/rehearse")
@access(Permission.OPERATE)
async def fission_rehearse(request: Request, campaign_id: int, actor: CurrentActor,
                           runtime: RuntimeDep) -> Response:
    """Rehearse on the sandbox; opens the rehearsal campaign's page."""
    form = await request.form()

    def number(name: str, default: float) -> float:
        raw = str(form.get(name, "")).strip()
        try:
            return float(raw) if raw else default
        except ValueError:
            raise InvalidInput("rehearsal: numbers only, not {value!r}",
                               value=raw[:20]) from None

    plan = fission_rehearsal.Rehearsal(
        seeds=int(number("seeds", 30)), share=number("share", 50) / 100,
        friends=number("friends", 2.0), leave=number("leave", 10) / 100,
        days=int(number("days", 7)), seed=int(number("seed", 7)), max_joins=5_000)
    out = fission_rehearsal.do_rehearse(
        runtime.uow, actor=actor, campaign_id=campaign_id, plan=plan,
        adapter_for=runtime.adapter, config=runtime.ingest_config,
        capabilities=runtime.capabilities, now=runtime.now())
    return RedirectResponse(f"/fission/{out['campaign_id']}", status_code=303)
