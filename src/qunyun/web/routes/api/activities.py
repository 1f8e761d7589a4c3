"""Activities JSON API under /api/v1 (issue 7): series, issues, enrolments (one or a CSV),
check-in sheets, settlement (and its CSV), conversions, money, funnel and cohorts. Amounts
travel in yuan; the stored fen never leave the services' rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from qunyun.domain.staff import Permission
from qunyun.services import activities, conversions, enrolments, reports, settlements
from qunyun.services.members import member_id_by_number
from qunyun.services.reports import get_funnel
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.listing import ListingQuery, answer
from qunyun.web.outputs import ActivityOut, MirrorStatusOut, SeriesOut

router = APIRouter(prefix="/api/v1", tags=["activities"])
Money = float | str


class SeriesCreate(BaseModel):
    code: str
    name: str = ""
    description: str = ""


class ActivityFields(BaseModel):
    name: str | None = None
    opens_on: str | None = None
    starts_on: str | None = None
    ends_on: str | None = None
    capacity: int | None = None
    price: Money | None = None
    deposit: Money | None = None
    refund_tiers: str | list[dict[str, float]] | None = None
    complete_checkins: int | None = None
    reach: dict[str, int] | None = None
    targets: dict[str, int] | None = None
    group_ids: list[int] | None = Field(None, max_length=500)

    def changes(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True, exclude={"price", "deposit", "group_ids"})
        if self.price is not None:
            data["price_fen"] = activities.fen_of(self.price, "price")
        if self.deposit is not None:
            data["deposit_fen"] = activities.fen_of(self.deposit, "deposit")
        return data


class ActivityCreate(ActivityFields):
    series: str
    starts_on: str
    ends_on: str
    code: str | None = None
    seq: int | None = None


class ActivityEdit(ActivityFields):
    state: Literal["planned", "open", "running", "ended", "settled"] | None = None


class EnrolmentCreate(BaseModel):
    member_number: int
    channel: str = ""
    deposit: Money | None = None


class ConversionCreate(BaseModel):
    kind: Literal["deposit", "order", "cost"]
    amount: Money
    activity: str | None = None
    member_number: int | None = None
    group_id: int | None = None
    at: datetime | None = None
    channel: str = ""
    note: str = ""
    ref: str | None = None


@router.get("/activities/series", response_model=list[SeriesOut])
@access(Permission.VIEW)
def api_series(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return activities.list_series(conn, actor=actor)


@router.post("/activities/series", status_code=201)
@access(Permission.OPERATE)
def api_series_create(body: SeriesCreate, actor: CurrentActor,
                      runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        new_id = activities.do_create_series(conn, actor=actor, code=body.code, name=body.name,
                                             description=body.description)
    return {"id": new_id, "code": body.code}


@router.get("/activities", response_model=list[ActivityOut])
@access(Permission.VIEW)
def api_activities(actor: CurrentActor, conn: ReadConn,
                   series: str | None = None) -> list[dict[str, Any]]:
    return activities.list_activities(conn, actor=actor, series=series)


@router.post("/activities", response_model=ActivityOut, status_code=201)
@access(Permission.OPERATE)
def api_activity_create(body: ActivityCreate, actor: CurrentActor,
                        runtime: RuntimeDep) -> dict[str, Any]:
    fields = body.changes()
    for key in ("series", "starts_on", "ends_on", "code", "seq", "opens_on", "name"):
        fields.pop(key, None)
    with runtime.uow.write() as conn:
        new_id = activities.do_create_activity(
            conn, actor=actor, series=body.series, starts_on=body.starts_on,
            ends_on=body.ends_on, opens_on=body.opens_on, name=body.name or "",
            code=body.code, seq=body.seq, group_ids=body.group_ids or [], **fields)
        return activities.access_activity(conn, actor=actor, ref=new_id)


@router.get("/activities/{ref}")
@access(Permission.VIEW)
def api_activity(ref: str, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    row = activities.access_activity(conn, actor=actor, ref=ref)
    return {**row, "money": settlements.money(conn, actor=actor, activity_id=row["id"])}


@router.patch("/activities/{ref}")
@access(Permission.OPERATE)
def api_activity_edit(ref: str, body: ActivityEdit, actor: CurrentActor,
                      runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        row = activities.access_activity(conn, actor=actor, ref=ref)
        return activities.do_update_activity(conn, actor=actor, activity_id=row["id"],
                                             changes=body.changes(), group_ids=body.group_ids)


@router.get("/activities/{ref}/enrolments")
@access(Permission.VIEW)
def api_enrolments(ref: str, response: Response, actor: CurrentActor, conn: ReadConn,
                   listing: ListingQuery) -> list[dict[str, Any]]:
    """An issue's sign-ups, searched by name, number, channel or form reference, sorted
    (status, number, name, enrolled_at, channel, deposit) and paged."""
    return answer(response, enrolments.page_enrolments(conn, actor=actor, activity_id=ref,
                                                       listing=listing))


@router.post("/activities/{ref}/enrolments", status_code=201)
@access(Permission.OPERATE)
def api_enrol(ref: str, body: EnrolmentCreate, actor: CurrentActor,
              runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return enrolments.do_enrol(conn, actor=actor, activity_id=ref,
                                   member_id=member_id_by_number(conn, body.member_number),
                                   source="api", channel=body.channel,
                                   deposit_fen=activities.fen_of(body.deposit, "deposit"))


@router.delete("/activities/{ref}/enrolments/{number}", status_code=204)
@access(Permission.OPERATE)
def api_cancel(ref: str, number: int, actor: CurrentActor, runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        enrolments.do_cancel_enrolment(conn, actor=actor, activity_id=ref,
                                       member_id=member_id_by_number(conn, number))


@router.post("/activities/{ref}/enrolments/import")
@access(Permission.OPERATE)
async def api_import_enrolments(ref: str, request: Request, actor: CurrentActor,
                                runtime: RuntimeDep, filename: str = "enrolments.csv",
                                on_error: str = "fail", channel: str = "") -> dict[str, Any]:
    """Body: the form tool's CSV export itself (text/csv)."""
    data = await request.body()
    with runtime.uow.write() as conn:
        return enrolments.do_import_enrolments(conn, actor=actor, activity_id=ref,
                                               path=filename[:128], data=data,
                                               tz=runtime.settings.tz, on_error=on_error,
                                               channel=channel)


@router.post("/activities/{ref}/checkins/import")
@access(Permission.OPERATE)
async def api_import_checkins(ref: str, request: Request, actor: CurrentActor,
                              runtime: RuntimeDep, filename: str = "checkins.csv",
                              on_error: str = "fail") -> dict[str, Any]:
    data = await request.body()
    with runtime.uow.write() as conn:
        return enrolments.do_import_checkins(conn, actor=actor, activity_id=ref,
                                             path=filename[:128], data=data,
                                             tz=runtime.settings.tz, on_error=on_error)


@router.get("/activities/{ref}/settlement")
@access(Permission.VIEW)
def api_settlement(ref: str, actor: CurrentActor, conn: ReadConn,
                   format: Literal["json", "csv"] = "json") -> Any:
    plan = settlements.settlement(conn, actor=actor, activity_id=ref)
    if format == "csv":
        return Response(settlements.settlement_csv(plan), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition":
                                 f'attachment; filename="refunds-{plan["code"]}.csv"'})
    return plan


@router.post("/activities/{ref}/settle")
@access(Permission.OPERATE)
def api_settle(ref: str, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return settlements.do_settle(conn, actor=actor, activity_id=ref)


@router.get("/activities/{ref}/money")
@access(Permission.VIEW)
def api_money(ref: str, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return settlements.money(conn, actor=actor, activity_id=ref)


@router.get("/activities/{ref}/funnel")
@access(Permission.VIEW)
def api_funnel(ref: str, actor: CurrentActor, runtime: RuntimeDep,
               conn: ReadConn) -> dict[str, Any]:
    return get_funnel(conn, actor=actor, tz=runtime.settings.tz, activity=ref)


@router.post("/conversions", status_code=201)
@access(Permission.OPERATE)
def api_conversion(body: ConversionCreate, actor: CurrentActor,
                   runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        new_id = conversions.do_record_conversion(
            conn, actor=actor, kind=body.kind,
            amount_fen=activities.fen_of(body.amount, "amount") or 0,
            activity_id=body.activity, group_id=body.group_id, at=body.at,
            channel=body.channel, note=body.note, external_ref=body.ref, source="api",
            member_id=member_id_by_number(conn, body.member_number)
            if body.member_number is not None else None)
    return {"id": new_id}


@router.post("/conversions/import")
@access(Permission.OPERATE)
async def api_import_conversions(request: Request, actor: CurrentActor, runtime: RuntimeDep,
                                 filename: str = "conversions.csv",
                                 activity: str | None = None, kind: str | None = None,
                                 on_error: str = "fail") -> dict[str, Any]:
    data = await request.body()
    with runtime.uow.write() as conn:
        return conversions.do_import_conversions(conn, actor=actor, path=filename[:128],
                                                data=data, tz=runtime.settings.tz,
                                                activity_id=activity, kind=kind,
                                                on_error=on_error)


@router.get("/reports/cohorts")
@access(Permission.VIEW)
def api_cohorts(actor: CurrentActor, runtime: RuntimeDep, series: str | None = None,
                after_days: int = 21, period: Literal["week", "month"] = "week"
                ) -> dict[str, Any]:
    """The cohort report; from the analytics mirror when it is in use (``as_of``)."""
    return reports.read_cohorts(runtime.uow, runtime.mirror, actor=actor,
                                tz=runtime.settings.tz, series=series, after_days=after_days,
                                period=period)


@router.get("/analytics/mirror", response_model=MirrorStatusOut)
@access(Permission.VIEW)
def api_mirror(actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Whether the analytics mirror is in use, as of when, and whether a refresh runs."""
    return reports.mirror_status(runtime.mirror, actor=actor)


@router.post("/analytics/mirror/refresh", response_model=MirrorStatusOut, status_code=202)
@access(Permission.OPERATE)
def api_mirror_refresh(actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Start a refresh in the background; ``started`` is false when one already runs."""
    started = reports.do_start_mirror_refresh(runtime.engine, runtime.mirror, actor=actor)
    return {"started": started, **reports.mirror_status(runtime.mirror, actor=actor)}
