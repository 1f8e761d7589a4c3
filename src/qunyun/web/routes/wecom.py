"""WeCom: the callback URL's verification (its POSTs take the fast intake, ``web/intake.py``),
and the setup page (corps, callback URL with a
verify button, sync status, join codes with fill levels and QR codes, welcome templates)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from qunyun.adapters.platforms.wecom.adapter import WecomAdapter
from qunyun.bootstrap import Runtime, wecom_adapter
from qunyun.domain.staff import Permission
from qunyun.services import (
    join_codes,
    wecom,
    wecom_callbacks,
    wecom_sync,
    wecom_welcome,
)
from qunyun.services.errors import NotFound, ServiceError
from qunyun.web.deps import PUBLIC, CurrentActor, ReadConn, RuntimeDep, access, render
from qunyun.web.intake import callback_params

router = APIRouter(include_in_schema=False)


def _adapter(runtime: Runtime) -> WecomAdapter:
    adapter = wecom_adapter(runtime)
    if adapter is None:
        raise NotFound("the WeCom adapter is not configured")
    return adapter


@router.get("/callbacks/wecom/{corp_id}")
@access(PUBLIC)
def callback_verify(request: Request, corp_id: str, runtime: RuntimeDep) -> Response:
    """URL verification: the bare plaintext of echostr, nothing else."""
    sig, ts, nonce = callback_params(request)
    try:
        with runtime.uow.read() as conn:
            plain = wecom_callbacks.verify_url(conn, box=runtime.box, corp_id=corp_id,
                                     msg_signature=sig, timestamp=ts, nonce=nonce,
                                     echostr=request.query_params.get("echostr", ""),
                                     now=runtime.now(),
                                     max_age_seconds=runtime.settings
                                     .wecom_callback_max_age_seconds)
    except ServiceError as exc:
        return PlainTextResponse(str(exc), status_code=exc.status_code)
    return PlainTextResponse(plain)


def page_context(conn: Any, actor: Any, request: Request) -> dict[str, Any]:
    """The callback URL to paste into WeCom comes from QUNYUN_PUBLIC_URL: a request's Host
    header is the caller's to choose (a forged one would hand staff an attacker's URL)."""
    runtime: Runtime = request.app.state.runtime
    base = runtime.settings.public_url
    corps = wecom.list_corps(conn, actor=actor)
    for c in corps:
        c["callback_url"] = (base or "https://<QUNYUN_PUBLIC_URL>") + c["callback_path"]
    return {"corps": corps, "public_url_set": bool(base),
            "codes": join_codes.list_join_codes(conn, actor=actor, platform=WecomAdapter.name),
            "templates": wecom_welcome.list_welcome_templates(conn, actor=actor),
            "callbacks": wecom_callbacks.list_callbacks(conn, actor=actor, limit=20)}


@router.get("/wecom")
@access(Permission.VIEW)
def wecom_page(request: Request, actor: CurrentActor, conn: ReadConn,
               notice: str = "") -> Response:
    return render(request, "wecom.html", {**page_context(conn, actor, request),
                                          "notice": notice})


def _back(notice: str) -> Response:
    return RedirectResponse(f"/wecom?notice={quote(notice)}", status_code=303)


@router.post("/wecom/corps")
@access(Permission.MANAGE_USERS)
def wecom_add_corp(actor: CurrentActor, runtime: RuntimeDep, corp_id: str = Form(...),
                   agent_id: int = Form(...), secret: str = Form(...), token: str = Form(...),
                   aes_key: str = Form(...), name: str = Form("")) -> Response:
    with runtime.uow.write() as conn:
        wecom.do_add_corp(conn, actor=actor, box=runtime.box, corp_id=corp_id,
                          agent_id=agent_id, secret=secret, token=token, aes_key=aes_key,
                          name=name, now=runtime.now())
    return _back(f"已连接 {corp_id}")


@router.post("/wecom/corps/{corp_id}/verify")
@access(Permission.OPERATE)
def wecom_verify(request: Request, corp_id: str, actor: CurrentActor,
                 runtime: RuntimeDep) -> Response:
    """Check the setup end to end (see ``wecom_callbacks.check_setup``)."""
    checks = wecom_callbacks.check_setup(runtime.uow, actor=actor, box=runtime.box,
                               adapter=_adapter(runtime), corp_id=corp_id, now=runtime.now())
    return _back("；".join(checks))


@router.post("/wecom/corps/{corp_id}/sync")
@access(Permission.OPERATE)
def wecom_sync_page(corp_id: str, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    report = wecom_sync.sync_corp(runtime.uow, adapter=_adapter(runtime), corp_id=corp_id,
                                  actor=actor)
    join_codes.rotate_join_codes(runtime.uow, adapters=runtime.adapters, actor=actor)
    return _back(f"同步完成：{report.groups} 个群，{report.members} 人；"
                 f"补入群 {report.changes.joined}，补退群 {report.changes.left}；"
                 f"错误 {len(report.errors)}")


@router.post("/wecom/join-codes")
@access(Permission.OPERATE)
def wecom_join_code(actor: CurrentActor, runtime: RuntimeDep, corp_id: str = Form(...),
                    channel: str = Form(...), groups: str = Form(...),
                    capacity: int = Form(200), fill_ratio: float = Form(0.9),
                    remark: str = Form("")) -> Response:
    chats = [g.strip() for g in groups.replace("，", ",").split(",") if g.strip()]
    code = join_codes.do_create_join_code(
        runtime.uow, actor=actor, adapter=_adapter(runtime), account=corp_id, channel=channel,
        chats=chats, capacity=capacity, fill_ratio=fill_ratio, remark=remark)
    return _back(f"群活码已创建：{code['channel']}")


@router.post("/wecom/welcome-templates")
@access(Permission.OPERATE)
def wecom_welcome_page(actor: CurrentActor, runtime: RuntimeDep, corp_id: str = Form(...),
                       text: str = Form(...), image_url: str = Form("")) -> Response:
    tpl = wecom_welcome.do_add_welcome_template(runtime.uow, actor=actor, adapter=_adapter(runtime),
                                                corp_id=corp_id, text=text, image_url=image_url)
    return _back(f"欢迎语模板已登记：{tpl['template_id']}")
