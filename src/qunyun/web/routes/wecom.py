"""WeCom: the callback endpoint WeCom calls, and the setup page (corps, callback URL with a
verify button, sync status, join codes with fill levels and QR codes, welcome templates)."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from qunyun.adapters.platforms.base import PlatformError
from qunyun.adapters.platforms.wecom.adapter import WecomAdapter
from qunyun.adapters.platforms.wecom.crypto import signature
from qunyun.adapters.storage.tables import utcnow
from qunyun.bootstrap import Runtime, wecom_adapter
from qunyun.services import wecom
from qunyun.services.errors import NotFound, ServiceError
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, render

router = APIRouter(include_in_schema=False)
MAX_CALLBACK_BYTES = 64 * 1024  # WeCom's envelopes are a few KB


def _adapter(runtime: Runtime) -> WecomAdapter:
    adapter = wecom_adapter(runtime)
    if adapter is None:
        raise NotFound("the WeCom adapter is not configured")
    return adapter


def _params(request: Request) -> tuple[str, str, str]:
    q = request.query_params
    return q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")


@router.get("/callbacks/wecom/{corp_id}")
def callback_verify(request: Request, corp_id: str, runtime: RuntimeDep) -> Response:
    """URL verification: the bare plaintext of echostr, nothing else."""
    sig, ts, nonce = _params(request)
    try:
        with runtime.uow.read() as conn:
            plain = wecom.verify_url(conn, box=runtime.box, corp_id=corp_id,
                                     msg_signature=sig, timestamp=ts, nonce=nonce,
                                     echostr=request.query_params.get("echostr", ""),
                                     now=utcnow(),
                                     max_age_seconds=runtime.settings
                                     .wecom_callback_max_age_seconds)
    except ServiceError as exc:
        return PlainTextResponse(str(exc), status_code=exc.status_code)
    return PlainTextResponse(plain)


@router.post("/callbacks/wecom/{corp_id}")
async def callback_receive(request: Request, corp_id: str, runtime: RuntimeDep) -> Response:
    """Store the callback and answer at once; the worker processes it after."""
    body = await request.body()
    if len(body) > MAX_CALLBACK_BYTES:
        return PlainTextResponse(f"body larger than {MAX_CALLBACK_BYTES} bytes", 413)
    sig, ts, nonce = _params(request)
    try:
        with runtime.uow.write() as conn:
            wecom.receive_callback(conn, box=runtime.box, corp_id=corp_id, body=body,
                                   msg_signature=sig, timestamp=ts, nonce=nonce, now=utcnow(),
                                   max_age_seconds=runtime.settings
                                   .wecom_callback_max_age_seconds)
    except ServiceError as exc:
        return PlainTextResponse(str(exc), status_code=exc.status_code)
    return PlainTextResponse("success")


def page_context(conn: Any, actor: Any, request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    corps = wecom.list_corps(conn, actor=actor)
    for c in corps:
        c["callback_url"] = base + c["callback_path"]
    return {"corps": corps, "codes": wecom.list_join_codes(conn, actor=actor),
            "templates": wecom.list_welcome_templates(conn, actor=actor),
            "callbacks": wecom.list_callbacks(conn, actor=actor, limit=20)}


@router.get("/wecom")
def wecom_page(request: Request, actor: CurrentActor, conn: ReadConn,
               notice: str = "") -> Response:
    return render(request, "wecom.html", {**page_context(conn, actor, request),
                                          "notice": notice})


def _back(notice: str) -> Response:
    return RedirectResponse(f"/wecom?notice={quote(notice)}", status_code=303)


@router.post("/wecom/corps")
def wecom_add_corp(actor: CurrentActor, runtime: RuntimeDep, corp_id: str = Form(...),
                   agent_id: int = Form(...), secret: str = Form(...), token: str = Form(...),
                   aes_key: str = Form(...), name: str = Form("")) -> Response:
    with runtime.uow.write() as conn:
        wecom.do_add_corp(conn, actor=actor, box=runtime.box, corp_id=corp_id,
                          agent_id=agent_id, secret=secret, token=token, aes_key=aes_key,
                          name=name, now=utcnow())
    return _back(f"已连接 {corp_id}")


@router.post("/wecom/corps/{corp_id}/verify")
def wecom_verify(request: Request, corp_id: str, actor: CurrentActor,
                 runtime: RuntimeDep) -> Response:
    """Check the setup end to end: our callback URL answers a signed echostr with its
    plaintext (as WeCom's own check does), and the secret gets an access token."""
    with runtime.uow.read() as conn:
        wecom.get_corp(conn, actor=actor, corp_id=corp_id)  # 404 for an unknown corp
        found = wecom.corp_secrets(conn, runtime.box, corp_id)
    if found is None:
        raise NotFound(f"WeCom corp {corp_id!r} is not connected")
    expected = str(secrets.randbelow(10 ** 18))
    ts, nonce = str(int(time.time())), secrets.token_hex(5)
    echostr = found.crypto.encrypt(expected)
    sig = signature(found.token, ts, nonce, echostr)
    checks: list[str] = []
    with runtime.uow.read() as conn:
        try:
            plain = wecom.verify_url(conn, box=runtime.box, corp_id=corp_id, msg_signature=sig,
                                     timestamp=ts, nonce=nonce, echostr=echostr, now=utcnow(),
                                     max_age_seconds=60)
            checks.append("回调验证通过 (callback check passed)" if plain == expected
                          else "回调验证失败 (callback check failed)")
        except ServiceError as exc:
            checks.append(f"回调验证失败: {exc}")
    try:
        _adapter(runtime).client(corp_id).token(refresh=True)
        checks.append("API 令牌获取成功 (access token OK)")
    except (PlatformError, httpx.HTTPError) as exc:
        checks.append(f"API 令牌获取失败: {exc}")
    return _back("；".join(checks))


@router.post("/wecom/corps/{corp_id}/sync")
def wecom_sync(corp_id: str, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    report = wecom.sync_corp(runtime.uow, adapter=_adapter(runtime), corp_id=corp_id,
                             actor=actor)
    wecom.rotate_join_codes(runtime.uow, adapter=_adapter(runtime), actor=actor)
    return _back(f"同步完成：{report.groups} 个群，{report.members} 人；"
                 f"补入群 {report.changes.joined}，补退群 {report.changes.left}；"
                 f"错误 {len(report.errors)}")


@router.post("/wecom/join-codes")
def wecom_join_code(actor: CurrentActor, runtime: RuntimeDep, corp_id: str = Form(...),
                    channel: str = Form(...), groups: str = Form(...),
                    capacity: int = Form(200), fill_ratio: float = Form(0.9),
                    remark: str = Form("")) -> Response:
    chats = [g.strip() for g in groups.replace("，", ",").split(",") if g.strip()]
    code = wecom.do_create_join_code(runtime.uow, actor=actor, adapter=_adapter(runtime),
                                     corp_id=corp_id, channel=channel, chats=chats,
                                     capacity=capacity, fill_ratio=fill_ratio, remark=remark)
    return _back(f"群活码已创建：{code['channel']}")


@router.post("/wecom/welcome-templates")
def wecom_welcome(actor: CurrentActor, runtime: RuntimeDep, corp_id: str = Form(...),
                  text: str = Form(...), image_url: str = Form("")) -> Response:
    tpl = wecom.do_add_welcome_template(runtime.uow, actor=actor, adapter=_adapter(runtime),
                                        corp_id=corp_id, text=text, image_url=image_url)
    return _back(f"欢迎语模板已登记：{tpl['template_id']}")
