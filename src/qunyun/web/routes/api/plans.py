"""Campaign planning over the API: the goal calculator (read-only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from qunyun.domain.staff import Permission
from qunyun.services import planning
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access

router = APIRouter(prefix="/api/v1", tags=["plans"])


class Calc(BaseModel):
    """One of ``audience`` (forward) or a target (backward); rates left out come from the
    team's history or the seed's defaults, and the answer says which."""

    model_config = ConfigDict(extra="forbid")
    audience: int | None = Field(None, ge=1, le=100_000_000)
    target_deposits: int | None = Field(None, ge=1, le=100_000_000)
    target_purchases: int | None = Field(None, ge=1, le=100_000_000)
    target_gmv: float | None = Field(None, gt=0, le=1e12)
    price: float | None = Field(None, gt=0, le=1e9)
    join_rate: float | None = Field(None, gt=0, le=1)
    deposit_rate: float | None = Field(None, gt=0, le=1)
    purchase_rate: float | None = Field(None, gt=0, le=1)
    capacity: int = Field(100, ge=2, le=2000)
    fill: float = Field(0.9, ge=0.1, le=1)
    staff: int | None = Field(None, ge=1, le=10_000)
    contacts_per_day: int | None = Field(None, ge=1, le=100_000)


@router.post("/plans/calc")
@access(Permission.VIEW)
def calc(body: Calc, actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep
         ) -> dict[str, Any]:
    """Reach, members, groups, deposits, purchases, GMV and working days, with each rate's
    value and source (``given``, ``history``, ``default``)."""
    return planning.do_calculate(conn, actor=actor, values=body.model_dump(),
                                 tz=runtime.settings.tz, now=runtime.now())
