"""WeCom JSON API under /api/v1/wecom (issue 8), and the platform-neutral follow-up of
owner-confirmed sends under /api/v1/confirmations."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from qunyun.adapters.platforms.wecom.adapter import WecomAdapter
from qunyun.domain.staff import Permission
from qunyun.services import (
    confirmations,
    join_codes,
    wecom,
    wecom_callbacks,
    wecom_sync,
    wecom_welcome,
)
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.outputs import CorpOut, JoinCodeOut
from qunyun.web.routes.wecom import _adapter

router = APIRouter(prefix="/api/v1", tags=["wecom"])


class CorpCreate(BaseModel):
    corp_id: str
    agent_id: int
    secret: str
    token: str
    aes_key: str
    name: str = ""


class JoinCodeCreate(BaseModel):
    corp_id: str
    channel: str
    groups: list[str | int] = Field(min_length=1, max_length=50)
    capacity: int = 200
    fill_ratio: float = 0.9
    remark: str = ""


class WelcomeCreate(BaseModel):
    corp_id: str
    text: str
    image_url: str = ""
    link: dict[str, str] | None = None
    notify: bool = True


@router.get("/wecom/corps", response_model=list[CorpOut])
@access(Permission.VIEW)
def corps(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return wecom.list_corps(conn, actor=actor)


@router.post("/wecom/corps", response_model=CorpOut, status_code=201)
@access(Permission.MANAGE_USERS)
def add_corp(body: CorpCreate, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return wecom.do_add_corp(conn, actor=actor, box=runtime.box, now=runtime.now(),
                                 **body.model_dump())


@router.post("/wecom/corps/{corp_id}/verify")
@access(Permission.OPERATE)
def verify(corp_id: str, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """The setup check: the callback answers a signed echostr, the secret gets a token."""
    return {"checks": wecom_callbacks.check_setup(runtime.uow, actor=actor, box=runtime.box,
                                        adapter=_adapter(runtime), corp_id=corp_id,
                                        now=runtime.now())}


@router.post("/wecom/corps/{corp_id}/sync")
@access(Permission.OPERATE)
def sync(corp_id: str, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    report = wecom_sync.sync_corp(runtime.uow, adapter=_adapter(runtime), corp_id=corp_id,
                                  actor=actor)
    rotated = join_codes.rotate_join_codes(runtime.uow, adapters=runtime.adapters, actor=actor)
    return {**asdict(report), "rotations": [asdict(r) for r in rotated]}


@router.get("/wecom/callbacks")
@access(Permission.VIEW)
def callbacks(actor: CurrentActor, conn: ReadConn, status: str | None = None,
              limit: int = 50) -> list[dict[str, Any]]:
    return wecom_callbacks.list_callbacks(conn, actor=actor, status=status, limit=min(limit, 500))


@router.get("/wecom/join-codes", response_model=list[JoinCodeOut])
@access(Permission.VIEW)
def list_wecom_join_codes(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return join_codes.list_join_codes(conn, actor=actor, platform=WecomAdapter.name)


@router.post("/wecom/join-codes", response_model=JoinCodeOut, status_code=201)
@access(Permission.OPERATE)
def add_join_code(body: JoinCodeCreate, actor: CurrentActor,
                  runtime: RuntimeDep) -> dict[str, Any]:
    return join_codes.do_create_join_code(
        runtime.uow, actor=actor, adapter=_adapter(runtime), account=body.corp_id,
        channel=body.channel, chats=body.groups, capacity=body.capacity,
        fill_ratio=body.fill_ratio, remark=body.remark)


@router.get("/wecom/welcome-templates")
@access(Permission.VIEW)
def welcome_templates(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return wecom_welcome.list_welcome_templates(conn, actor=actor)


@router.post("/wecom/welcome-templates", status_code=201)
@access(Permission.OPERATE)
def add_welcome_template(body: WelcomeCreate, actor: CurrentActor,
                         runtime: RuntimeDep) -> dict[str, Any]:
    return wecom_welcome.do_add_welcome_template(
        runtime.uow, actor=actor, adapter=_adapter(runtime), **body.model_dump())


@router.post("/confirmations/{task_id}/remind")
@access(Permission.WORK_TASKS)
def remind(task_id: int, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    n = confirmations.do_remind(runtime.uow, actor=actor, adapters=runtime.adapters,
                                task_id=task_id)
    return {"task_id": task_id, "reminded": n}


@router.post("/confirmations/{task_id}/cancel")
@access(Permission.OPERATE)
def cancel(task_id: int, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    confirmations.do_cancel(runtime.uow, actor=actor, adapters=runtime.adapters,
                            task_id=task_id, now=runtime.now())
    return {"task_id": task_id, "cancelled": True}
