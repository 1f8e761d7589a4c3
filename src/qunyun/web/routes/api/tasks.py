"""Staff tasks over the API: what the platforms could not do, done by hand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from qunyun.domain.staff import Permission
from qunyun.services import tasks as tasks_service
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.listing import ListingQuery, answer
from qunyun.web.schemas import (
    TaskDone,
    TaskPublic,
)

router = APIRouter(prefix="/api/v1", tags=["tasks"])


@router.get("/tasks", response_model=list[TaskPublic])
@access(Permission.VIEW)
def api_tasks(response: Response, actor: CurrentActor, conn: ReadConn, listing: ListingQuery,
              status: str = "open") -> list[dict[str, Any]]:
    """Tasks of a status (``all`` for every one), searched, sorted and paged."""
    return answer(response, tasks_service.page_tasks(
        conn, actor=actor, status=None if status == "all" else status, listing=listing))


@router.post("/tasks/{task_id}/done", response_model=TaskPublic)
@access(Permission.WORK_TASKS)
def api_task_done(task_id: int, body: TaskDone, actor: CurrentActor,
                  runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return tasks_service.do_complete_task(conn, actor=actor, task_id=task_id,
                                              outcome=body.outcome, dismiss=body.dismiss,
                                              now=runtime.now())
