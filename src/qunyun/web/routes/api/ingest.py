"""Raw platform payloads fed through the event path (the sandbox and the simulator)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from qunyun.domain.staff import Permission
from qunyun.services.errors import InvalidInput
from qunyun.services.ingest import do_ingest_raw
from qunyun.web.deps import CurrentActor, RuntimeDep, access
from qunyun.web.schemas import (
    IngestOut,
)

router = APIRouter(prefix="/api/v1", tags=["ingest"])


@router.post("/ingest/{platform}", response_model=IngestOut)
@access(Permission.OPERATE)
async def api_ingest(platform: str, request: Request, actor: CurrentActor,
                     runtime: RuntimeDep) -> IngestOut:
    """Feed one raw platform payload (JSON) through the event path (sandbox and simulator)."""
    adapter = runtime.adapter(platform)
    try:
        raw = await request.json()
    except ValueError:
        raise InvalidInput("body is not valid JSON") from None
    if not isinstance(raw, dict):
        raise InvalidInput("body must be a JSON object")
    with runtime.uow.write() as conn:
        result = do_ingest_raw(conn, actor=actor, adapter=adapter, raw=raw,
                               config=runtime.ingest_config)
    return IngestOut(**result.__dict__)
