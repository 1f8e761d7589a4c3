"""Exports over the API: one kind of data as a CSV or XLSX download (audited; phones masked
for roles without personal-data access)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from qunyun.domain.staff import Permission
from qunyun.services import exports
from qunyun.web.deps import CurrentActor, RuntimeDep, access, language

router = APIRouter(prefix="/api/v1", tags=["exports"])
MEDIA = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        handle.seek(0)
        while chunk := handle.read(64 * 1024):
            yield chunk
    finally:
        handle.close()


@router.get("/exports/{kind}")
@access(Permission.VIEW)
def export(kind: str, request: Request, actor: CurrentActor, runtime: RuntimeDep,
           format: str = "csv", since: str | None = None, until: str | None = None,
           plan: str | None = None) -> StreamingResponse:
    """``kind``: members, groups, messages, events, activities, conversions, plan (with
    ``plan``); ``since``/``until``: days (messages, events, conversions)."""
    tz = runtime.settings.tz
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    try:
        exports.do_export(runtime.uow, actor=actor, kind=kind, fmt=format, out=spool, tz=tz,
                          now=runtime.now(), language=language(request), since=since,
                          until=until, plan=plan)
    except BaseException:
        spool.close()
        raise
    name = f"qunyun-{kind}-{runtime.now().astimezone(tz):%Y%m%d}.{format}"
    return StreamingResponse(_chunks(spool), media_type=MEDIA[format],
                             headers={"content-disposition": f'attachment; filename="{name}"'})
