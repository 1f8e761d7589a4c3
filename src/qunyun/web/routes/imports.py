"""Chat-export import over HTTP (F32): the dashboard's upload page and ``POST /api/v1/imports``.

The file is streamed to a temporary folder under its own name (never held in memory whole)
and handed to the import service in a worker thread, so a large export does not stall the
server. Both paths take bodies up to ``max_import_bytes`` (see ``IMPORT_PATHS`` in the app).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from qunyun.bootstrap import Runtime
from qunyun.domain.staff import Permission
from qunyun.services.errors import InvalidInput
from qunyun.services.imports import (
    FORMATS,
    FileReport,
    check_upload,
    do_import_upload,
    upload_name,
)
from qunyun.services.reports import parse_day
from qunyun.services.users import Actor
from qunyun.web.deps import CurrentActor, RuntimeDep, access, check_csrf, render, signed_in_actor

PAGE = "/health/import"
API = "/api/v1/imports"
IMPORT_PATHS = (PAGE, API)
CHUNK = 1 << 20

router = APIRouter()


async def uploader(request: Request, runtime: RuntimeDep) -> Actor:
    """The caller, refused by role before the upload (and the form's CSRF token in it) is
    read: a viewer's 512 MB file is never streamed to disk."""
    actor = signed_in_actor(request, runtime)
    check_upload(actor=actor)
    await check_csrf(request)
    return actor


Uploader = Annotated[Actor, Depends(uploader)]


async def _save(chunks: AsyncIterator[bytes], folder: str, name: str) -> Path:
    path = Path(folder) / upload_name(name)
    with path.open("wb") as out:
        async for chunk in chunks:
            out.write(chunk)
    if path.stat().st_size == 0:
        raise InvalidInput("{name}: the file is empty", name=path.name)
    return path


async def _upload_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


async def _import(runtime: Runtime, actor: Actor, chunks: AsyncIterator[bytes], name: str,
                  fmt: str, group_name: str, on_error: str, day: str = "") -> FileReport:
    log_day = parse_day(day.strip(), "date")  # the day an IRC log covers, if given
    with tempfile.TemporaryDirectory(prefix="qunyun-upload-") as folder:
        path = await _save(chunks, folder, name)
        return await run_in_threadpool(
            do_import_upload, runtime.uow, actor=actor, path=path, fmt=fmt,
            group_name=group_name, on_error=on_error, now=runtime.now(),
            rule_clock=runtime.clock(), day=log_day)


@router.get(PAGE, include_in_schema=False)
@access(Permission.VIEW)
def import_page(request: Request, actor: CurrentActor) -> Response:
    return render(request, "import.html", {"formats": FORMATS, "report": None})


@router.post(PAGE, include_in_schema=False)
@access(Permission.OPERATE)
async def import_upload(request: Request, actor: Uploader, runtime: RuntimeDep) -> Response:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("file: choose a chat export")
    report = await _import(runtime, actor, _upload_chunks(upload), upload.filename or "",
                           str(form.get("format") or "auto"),
                           str(form.get("group_name") or ""),
                           str(form.get("on_error") or "fail"), str(form.get("date") or ""))
    return render(request, "import.html", {"formats": FORMATS, "report": report.as_dict()})


@router.post(API, tags=["api"])
@access(Permission.OPERATE)
async def api_import(request: Request, actor: Uploader, runtime: RuntimeDep, name: str,
                     format: str = "auto", group_name: str = "",
                     on_error: str = "fail", date: str = "") -> dict[str, Any]:
    """Body: the export file itself; ``name`` is its file name (a MemoTrace file's name,
    ``<群名>_utf8.csv``, names its group); ``date`` is the day an IRC log covers when its
    name carries none. Answers the file's import report; a bad file is a 422 naming the
    file and line, and nothing of it is stored."""
    check_upload(actor=actor, name=name, fmt=format, on_error=on_error)
    parse_day(date.strip(), "date")
    report = await _import(runtime, actor, request.stream(), name, format, group_name,
                           on_error, date)
    return report.as_dict()
