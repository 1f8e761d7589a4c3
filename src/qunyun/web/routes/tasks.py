"""The staff task inbox."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.staff import Permission
from qunyun.services import tasks as tasks_service
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, render
from qunyun.web.listing import ListingQuery

router = APIRouter(include_in_schema=False)


@router.get("/tasks")
@access(Permission.VIEW)
def tasks_page(request: Request, actor: CurrentActor, conn: ReadConn, listing: ListingQuery,
               show: str = "open") -> Response:
    status = None if show == "all" else "open"
    result = tasks_service.page_tasks(conn, actor=actor, status=status, listing=listing)
    return render(request, "tasks.html", {"tasks": result.rows, "p": result, "show": show})


@router.post("/tasks/{task_id}/done")
@access(Permission.WORK_TASKS)
def task_done(request: Request, task_id: int, actor: CurrentActor, runtime: RuntimeDep,
              outcome: str = Form(""), dismiss: str = Form("")) -> Response:
    """Mark done; an HTMX request gets the updated row back, a plain form a redirect."""
    with runtime.uow.write() as conn:
        task = tasks_service.do_complete_task(conn, actor=actor, task_id=task_id,
                                              outcome=outcome, dismiss=bool(dismiss),
                                              now=runtime.now())
    if request.headers.get("hx-request"):
        return render(request, "_task_row.html", {"k": task})
    return RedirectResponse("/tasks", status_code=303)
