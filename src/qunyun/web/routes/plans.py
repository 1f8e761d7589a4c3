"""Campaign planning's pages: the goal calculator (a GET form — nothing is stored)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qunyun.domain.staff import Permission
from qunyun.services import planning
from qunyun.services.errors import InvalidInput
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, render

router = APIRouter(include_in_schema=False)

FIELDS = ("audience", "target_deposits", "target_purchases", "target_gmv", "price",
          "join_rate", "deposit_rate", "purchase_rate", "capacity", "fill", "staff",
          "contacts_per_day")


@router.get("/plans/calc")
@access(Permission.VIEW)
def calc_page(request: Request, actor: CurrentActor, conn: ReadConn,
              runtime: RuntimeDep) -> Response:
    """Both directions on one form: fill the audience, or one target."""
    asked: dict[str, Any] = {k: request.query_params.get(k, "")[:20] for k in FIELDS}
    plan, problem = None, None
    if any(asked[k] for k in ("audience", "target_deposits", "target_purchases",
                              "target_gmv")):
        try:
            plan = planning.do_calculate(conn, actor=actor, values=asked,
                                         tz=runtime.settings.tz, now=runtime.now())
        except InvalidInput as exc:
            problem = exc
    return render(request, "plan_calc.html", {"asked": asked, "plan": plan,
                                              "problem": problem},
                  status_code=422 if problem else 200)
