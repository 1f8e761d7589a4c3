"""WeCom: the callback endpoint WeCom calls, and the setup page (corps, callback URL with a
verify button, sync status, join codes with fill levels and QR codes, welcome templates)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.routing import Router as StarletteRouter
from starlette.types import ASGIApp, Receive, Scope, Send

from qunyun.adapters.platforms.wecom.adapter import WecomAdapter
from qunyun.adapters.platforms.wecom.crypto import WecomCrypto
from qunyun.bootstrap import Runtime, wecom_adapter
from qunyun.clock import utcnow
from qunyun.domain.staff import Permission
from qunyun.services import wecom, wecom_join_codes, wecom_sync, wecom_welcome
from qunyun.services.errors import NotFound, ServiceError
from qunyun.web.deps import PUBLIC, CurrentActor, ReadConn, RuntimeDep, access, render
from qunyun.web.limits import BodyLimit

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
@access(PUBLIC)
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


class GroupCommit:
    """Stores verified callbacks in batches: while one batch commits (in a thread), the
    callbacks that arrive meanwhile queue for the next, so one commit — an fsync on
    PostgreSQL, a turn at the write lock on SQLite — serves all of them. Each request is
    answered only once its own row is committed."""

    def __init__(self, runtime: Runtime, max_batch: int = 500) -> None:
        self.runtime = runtime
        self.max_batch = max_batch
        self.pending: list[tuple[wecom.OpenedCallback, asyncio.Future[None]]] = []
        self.drain: asyncio.Task[None] | None = None

    async def store(self, opened: wecom.OpenedCallback) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self.pending.append((opened, future))
        if self.drain is None or self.drain.done():
            self.drain = loop.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            batch = self.pending[:self.max_batch]
            del self.pending[:self.max_batch]
            try:
                await loop.run_in_executor(None, self._write, [o for o, _ in batch])
            except Exception as exc:  # every request of the batch answers 500; WeCom retries
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    def _write(self, opened: list[wecom.OpenedCallback]) -> None:
        with self.runtime.uow.write() as conn:
            wecom.store_callbacks(conn, opened, utcnow())


async def callback_receive(request: Request) -> Response:
    """Verify and decrypt, store (group commit), then answer ``success``; the worker
    processes the stored callback after."""
    runtime: Runtime = request.scope["qunyun.runtime"]
    body = await request.body()
    sig, ts, nonce = _params(request)
    keys: wecom.CallbackKeys = request.scope["qunyun.keys"]
    try:
        opened = keys.open(corp_id=request.path_params["corp_id"], body=body,
                           msg_signature=sig, timestamp=ts, nonce=nonce, now=utcnow(),
                           max_age_seconds=runtime.settings.wecom_callback_max_age_seconds)
    except ServiceError as exc:
        return PlainTextResponse(str(exc), status_code=exc.status_code)
    await request.scope["qunyun.commits"].store(opened)
    return PlainTextResponse("success")


class CallbackFastPath:
    """WeCom's callback POSTs go straight to their endpoint, ahead of the dashboard's
    session middleware and its ~200 routes: at a thousand callbacks a second, matching those
    cost more than verifying, decrypting and storing the callback itself."""

    PREFIX = "/callbacks/wecom/"

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self.commits = GroupCommit(runtime)
        self.keys = wecom.CallbackKeys(self._load_keys)
        self.endpoint = BodyLimit(StarletteRouter(routes=[Route(
            self.PREFIX + "{corp_id}", callback_receive, methods=["POST"])]),
            MAX_CALLBACK_BYTES)

    def _load_keys(self, corp_id: str) -> WecomCrypto:
        with self.runtime.uow.read() as conn:
            return wecom.callback_crypto(conn, self.runtime.box, corp_id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"].startswith(self.PREFIX)):
            corp = scope["path"][len(self.PREFIX):]
            if not corp or "/" in corp:  # the router's own 404 needs the app around it
                await PlainTextResponse("no such callback", status_code=404)(
                    scope, receive, send)
                return
            scope["qunyun.runtime"] = self.runtime
            scope["qunyun.commits"] = self.commits
            scope["qunyun.keys"] = self.keys
            await self.endpoint(scope, receive, send)
            return
        await self.app(scope, receive, send)


def page_context(conn: Any, actor: Any, request: Request) -> dict[str, Any]:
    """The callback URL to paste into WeCom comes from QUNYUN_PUBLIC_URL: a request's Host
    header is the caller's to choose (a forged one would hand staff an attacker's URL)."""
    runtime: Runtime = request.app.state.runtime
    base = runtime.settings.public_url
    corps = wecom.list_corps(conn, actor=actor)
    for c in corps:
        c["callback_url"] = (base or "https://<QUNYUN_PUBLIC_URL>") + c["callback_path"]
    return {"corps": corps, "public_url_set": bool(base),
            "codes": wecom_join_codes.list_join_codes(conn, actor=actor),
            "templates": wecom_welcome.list_welcome_templates(conn, actor=actor),
            "callbacks": wecom.list_callbacks(conn, actor=actor, limit=20)}


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
                          name=name, now=utcnow())
    return _back(f"已连接 {corp_id}")


@router.post("/wecom/corps/{corp_id}/verify")
@access(Permission.OPERATE)
def wecom_verify(request: Request, corp_id: str, actor: CurrentActor,
                 runtime: RuntimeDep) -> Response:
    """Check the setup end to end (see ``wecom.check_setup``)."""
    checks = wecom.check_setup(runtime.uow, actor=actor, box=runtime.box,
                               adapter=_adapter(runtime), corp_id=corp_id, now=utcnow())
    return _back("；".join(checks))


@router.post("/wecom/corps/{corp_id}/sync")
@access(Permission.OPERATE)
def wecom_sync_page(corp_id: str, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    report = wecom_sync.sync_corp(runtime.uow, adapter=_adapter(runtime), corp_id=corp_id,
                                  actor=actor)
    wecom_join_codes.rotate_join_codes(runtime.uow, adapter=_adapter(runtime), actor=actor)
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
    code = wecom_join_codes.do_create_join_code(
        runtime.uow, actor=actor, adapter=_adapter(runtime), corp_id=corp_id, channel=channel,
        chats=chats, capacity=capacity, fill_ratio=fill_ratio, remark=remark)
    return _back(f"群活码已创建：{code['channel']}")


@router.post("/wecom/welcome-templates")
@access(Permission.OPERATE)
def wecom_welcome_page(actor: CurrentActor, runtime: RuntimeDep, corp_id: str = Form(...),
                       text: str = Form(...), image_url: str = Form("")) -> Response:
    tpl = wecom_welcome.do_add_welcome_template(runtime.uow, actor=actor, adapter=_adapter(runtime),
                                                corp_id=corp_id, text=text, image_url=image_url)
    return _back(f"欢迎语模板已登记：{tpl['template_id']}")
