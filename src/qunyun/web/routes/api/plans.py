"""Campaign planning over the API: the goal calculator (read-only), plans with their stages
and daily targets, plan versus actual, rehearsal on the simulator."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from qunyun.domain.staff import Permission
from qunyun.services import plan_rehearsal, planning, plans
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


class PlanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    starts_on: str = Field(max_length=10)
    ends_on: str = Field(max_length=10)
    activity: int | str | None = None
    group_ids: list[int] = Field(default_factory=list, max_length=500)
    goal: Calc | None = None  # the calculator's inputs: targets spread over the days
    margin: float = Field(0.2, ge=0, lt=1)


class PlanEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=128)
    starts_on: str | None = Field(None, max_length=10)
    ends_on: str | None = Field(None, max_length=10)
    activity: int | str | None = None
    group_ids: list[int] | None = Field(None, max_length=500)
    margin: float | None = Field(None, ge=0, lt=1)


class StageAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(max_length=16)
    name: str = Field("", max_length=128)
    starts_on: str = Field(max_length=10)
    ends_on: str = Field(max_length=10)


class Targets(BaseModel):
    """A ``total`` spread over ``starts_on``..``ends_on`` (the plan's days by default), or
    one ``day``'s ``value``."""

    model_config = ConfigDict(extra="forbid")
    metric: str = Field(max_length=16)
    total: int | None = Field(None, ge=0, le=100_000_000)
    value: int | None = Field(None, ge=0, le=100_000_000)
    day: str | None = Field(None, max_length=10)
    starts_on: str | None = Field(None, max_length=10)
    ends_on: str | None = Field(None, max_length=10)


@router.get("/plans")
@access(Permission.VIEW)
def plans_list(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return plans.list_plans(conn, actor=actor)


@router.post("/plans", status_code=201)
@access(Permission.OPERATE)
def plans_create(body: PlanCreate, actor: CurrentActor, runtime: RuntimeDep
                 ) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return plans.do_create_plan(
            conn, actor=actor, name=body.name, starts_on=body.starts_on,
            ends_on=body.ends_on, activity=body.activity, group_ids=body.group_ids,
            goal=body.goal.model_dump(exclude_none=True) if body.goal else None,
            margin=body.margin, tz=runtime.settings.tz, now=runtime.now())


@router.get("/plans/{plan_id}")
@access(Permission.VIEW)
def plans_get(plan_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return plans.access_plan(conn, actor=actor, plan_id=plan_id)


@router.patch("/plans/{plan_id}")
@access(Permission.OPERATE)
def plans_edit(plan_id: int, body: PlanEdit, actor: CurrentActor, runtime: RuntimeDep
               ) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return plans.do_edit_plan(conn, actor=actor, plan_id=plan_id,
                                  changes=body.model_dump(exclude_unset=True),
                                  now=runtime.now())


@router.post("/plans/{plan_id}/stages", status_code=201)
@access(Permission.OPERATE)
def plans_stage(plan_id: int, body: StageAdd, actor: CurrentActor, runtime: RuntimeDep
                ) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return plans.do_add_stage(conn, actor=actor, plan_id=plan_id, kind=body.kind,
                                  name=body.name, starts_on=body.starts_on,
                                  ends_on=body.ends_on, now=runtime.now())


@router.delete("/plans/{plan_id}/stages/{stage_id}")
@access(Permission.OPERATE)
def plans_stage_remove(plan_id: int, stage_id: int, actor: CurrentActor,
                       runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return plans.do_remove_stage(conn, actor=actor, plan_id=plan_id, stage_id=stage_id,
                                     now=runtime.now())


@router.post("/plans/{plan_id}/targets")
@access(Permission.OPERATE)
def plans_targets(plan_id: int, body: Targets, actor: CurrentActor, runtime: RuntimeDep
                  ) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return plans.do_set_targets(conn, actor=actor, plan_id=plan_id, metric=body.metric,
                                    total=body.total, value=body.value, day=body.day,
                                    starts_on=body.starts_on, ends_on=body.ends_on,
                                    now=runtime.now())


@router.get("/plans/{plan_id}/actual")
@access(Permission.VIEW)
def plans_actual(plan_id: int, actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep
                 ) -> dict[str, Any]:
    """Plan versus actual per day and metric, totals per metric and stage, short days."""
    return plans.plan_actual(conn, actor=actor, plan_id=plan_id, tz=runtime.settings.tz,
                             now=runtime.now())


@router.get("/plans/{plan_id}/pushes")
@access(Permission.VIEW)
def plans_pushes(plan_id: int, actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep
                 ) -> list[dict[str, Any]]:
    """The playbook steps and broadcasts that reach the plan's groups from now to its last
    day (``source`` playbook or broadcast, ``source_id``, ``at``, ``groups`` reached)."""
    return plans.scheduled_pushes(conn, actor=actor, plan_id=plan_id, tz=runtime.settings.tz,
                                  now=runtime.now())


class RehearseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = Field(7, ge=0, le=2**31 - 1)


@router.post("/plans/{plan_id}/rehearse")
@access(Permission.OPERATE)
def plans_rehearse(plan_id: int, body: RehearseIn, actor: CurrentActor, runtime: RuntimeDep
                   ) -> dict[str, Any]:
    """The plan rehearsed on the simulator (same seed, same answer): per day the targets,
    the forecast and the simulated outcome with the short days; the staff load; when each
    group fills; reactions to pushes; the calibration of the simulated talk. Nothing is
    kept but an audit row; it takes seconds (a plan's days pass an hour at a time)."""
    return plan_rehearsal.do_rehearse_plan(runtime.uow, actor=actor, plan_id=plan_id,
                                           seed=body.seed, settings=runtime.settings,
                                           capabilities=runtime.capabilities,
                                           max_joins=plan_rehearsal.REQUEST_LIMITS["joins"],
                                           max_days=plan_rehearsal.REQUEST_LIMITS["days"])


class RoleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=64)
    role: str = Field(max_length=16)
    group_id: int | None = Field(None, ge=1, le=2**62)
    remove: bool = False


class ItemAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field("other", max_length=16)
    title: str = Field(min_length=1, max_length=200)
    owner: str | None = Field(None, max_length=64)
    due_on: str | None = Field(None, max_length=10)


class ItemStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(max_length=16)


class BudgetAdd(BaseModel):
    """Amounts in yuan."""

    model_config = ConfigDict(extra="forbid")
    category: str = Field("other", max_length=16)
    title: str = Field(min_length=1, max_length=200)
    planned: float = Field(ge=0, le=1e11)
    actual: float = Field(0, ge=0, le=1e11)


class BudgetActual(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actual: float = Field(ge=0, le=1e11)


@router.post("/plans/{plan_id}/roles")
@access(Permission.OPERATE)
def plans_role(plan_id: int, body: RoleSet, actor: CurrentActor, runtime: RuntimeDep
               ) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return plans.do_set_role(conn, actor=actor, plan_id=plan_id, username=body.user,
                                 role=body.role, group_id=body.group_id, remove=body.remove,
                                 now=runtime.now())


@router.post("/plans/{plan_id}/items", status_code=201)
@access(Permission.OPERATE)
def plans_item(plan_id: int, body: ItemAdd, actor: CurrentActor, runtime: RuntimeDep
               ) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return plans.do_add_item(conn, actor=actor, plan_id=plan_id, kind=body.kind,
                                 title=body.title, owner=body.owner, due_on=body.due_on,
                                 now=runtime.now())


@router.patch("/plans/{plan_id}/items/{item_id}")
@access(Permission.OPERATE)
def plans_item_status(plan_id: int, item_id: int, body: ItemStatus, actor: CurrentActor,
                      runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return plans.do_set_item_status(conn, actor=actor, plan_id=plan_id, item_id=item_id,
                                        status=body.status, now=runtime.now())


@router.post("/plans/{plan_id}/budget", status_code=201)
@access(Permission.OPERATE)
def plans_budget(plan_id: int, body: BudgetAdd, actor: CurrentActor, runtime: RuntimeDep
                 ) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return plans.do_add_budget(conn, actor=actor, plan_id=plan_id, category=body.category,
                                   title=body.title, planned=body.planned, actual=body.actual,
                                   now=runtime.now())


@router.patch("/plans/{plan_id}/budget/{line_id}")
@access(Permission.OPERATE)
def plans_budget_actual(plan_id: int, line_id: int, body: BudgetActual, actor: CurrentActor,
                        runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return plans.do_set_budget_actual(conn, actor=actor, plan_id=plan_id, line_id=line_id,
                                          actual=body.actual, now=runtime.now())


class Retro(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worked: str = Field("", max_length=2000)
    did_not: str = Field("", max_length=2000)
    change: str = Field("", max_length=2000)


class ProblemAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    issue: str = Field(min_length=1, max_length=2000)
    owner: str | None = Field(None, max_length=64)


class ProblemClose(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: str = Field(min_length=1, max_length=2000)


@router.post("/plans/{plan_id}/stages/{stage_id}/retro")
@access(Permission.OPERATE)
def plans_retro(plan_id: int, stage_id: int, body: Retro, actor: CurrentActor,
                runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return plans.do_stage_retro(conn, actor=actor, plan_id=plan_id, stage_id=stage_id,
                                    worked=body.worked, did_not=body.did_not,
                                    change=body.change, now=runtime.now())


@router.post("/plans/{plan_id}/problems", status_code=201)
@access(Permission.OPERATE)
def plans_problem(plan_id: int, body: ProblemAdd, actor: CurrentActor, runtime: RuntimeDep
                  ) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return plans.do_add_problem(conn, actor=actor, plan_id=plan_id, issue=body.issue,
                                    owner=body.owner, now=runtime.now())


@router.post("/plans/{plan_id}/problems/{problem_id}/close")
@access(Permission.OPERATE)
def plans_problem_close(plan_id: int, problem_id: int, body: ProblemClose,
                        actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return plans.do_close_problem(conn, actor=actor, plan_id=plan_id,
                                      problem_id=problem_id, resolution=body.resolution,
                                      now=runtime.now())


@router.get("/plans/{plan_id}/report")
@access(Permission.VIEW)
def plans_report(plan_id: int, actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep
                 ) -> dict[str, Any]:
    """The closing report's data: the goal against the outcome, totals, stages with their
    retros, problems, budget (the page offers it as one HTML file)."""
    return plans.closing_report(conn, actor=actor, plan_id=plan_id, tz=runtime.settings.tz,
                                now=runtime.now())
