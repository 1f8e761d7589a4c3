"""Join codes (群活码) over the API on any platform that can make them: list, create for an
account (a WeCom corp, a bot), show with each group's fill, add spare groups, rotate full
groups out, delete. ``/wecom/join-codes`` creates WeCom's with a corp id."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from qunyun.domain.staff import Permission
from qunyun.services import join_codes
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.outputs import JoinCodeOut, RotationOut

router = APIRouter(prefix="/api/v1", tags=["join codes"])


class JoinCodeNew(BaseModel):
    platform: str = Field(max_length=32)
    account: str = Field(max_length=64, description="a WeCom corp id, a bot's name")
    channel: str = Field(max_length=30, description="names the code; members it brings "
                                                    "are traced to it")
    groups: list[str | int] = Field(min_length=1, max_length=50)
    capacity: int = 200
    fill_ratio: float = 0.9
    remark: str = Field("", max_length=64)


class Spares(BaseModel):
    groups: list[str | int] = Field(min_length=1, max_length=50)


@router.get("/join-codes", response_model=list[JoinCodeOut])
@access(Permission.VIEW)
def list_join_codes(actor: CurrentActor, conn: ReadConn,
                    platform: str | None = None) -> list[dict[str, Any]]:
    return join_codes.list_join_codes(conn, actor=actor, platform=platform)


@router.post("/join-codes", response_model=JoinCodeOut, status_code=201)
@access(Permission.OPERATE)
def create_join_code(body: JoinCodeNew, actor: CurrentActor,
                     runtime: RuntimeDep) -> dict[str, Any]:
    return join_codes.do_create_join_code(
        runtime.uow, actor=actor, adapter=runtime.adapter(body.platform), account=body.account,
        channel=body.channel, chats=body.groups, capacity=body.capacity,
        fill_ratio=body.fill_ratio, remark=body.remark)


@router.post("/join-codes/rotate", response_model=list[RotationOut])
@access(Permission.OPERATE)
def rotate_join_codes(actor: CurrentActor, runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [asdict(r) for r in join_codes.rotate_join_codes(
        runtime.uow, adapters=runtime.adapters, actor=actor)]


@router.get("/join-codes/{code_id}", response_model=JoinCodeOut)
@access(Permission.VIEW)
def join_code(code_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return join_codes.access_join_code(conn, actor=actor, code_id=code_id)


@router.post("/join-codes/{code_id}/spares", response_model=JoinCodeOut)
@access(Permission.OPERATE)
def add_spares(code_id: int, body: Spares, actor: CurrentActor,
               runtime: RuntimeDep) -> dict[str, Any]:
    return join_codes.do_add_spares(runtime.uow, actor=actor, code_id=code_id,
                                    chats=body.groups)


@router.delete("/join-codes/{code_id}", status_code=204)
@access(Permission.OPERATE)
def delete_join_code(code_id: int, actor: CurrentActor, runtime: RuntimeDep) -> None:
    join_codes.do_delete_join_code(runtime.uow, actor=actor, adapters=runtime.adapters,
                                   code_id=code_id)
