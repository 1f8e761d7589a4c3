"""The WeCom callback intake under concurrent load: the fast path ahead of the dashboard's
routes and the group commit store every callback once, answer each only after its row is
committed, and refuse forged ones — on SQLite and PostgreSQL, with real commits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy import func, select

from qunyun.adapters.platforms.wecom.crypto import WecomCrypto
from qunyun.adapters.platforms.wecom.fake import signed_member_adds
from qunyun.adapters.storage.tables import raw_inbox
from qunyun.bootstrap import build_runtime
from qunyun.clock import utcnow
from qunyun.config import Settings
from qunyun.services import wecom
from qunyun.services.users import SYSTEM
from qunyun.web.app import create_app
from tests.adapters.wecom.conftest import AES_KEY, CORP, TOKEN


def signed(n: int) -> list[tuple[dict[str, str], str]]:
    return signed_member_adds(WecomCrypto(TOKEN, AES_KEY, CORP), CORP, n, chats=7)


def test_concurrent_callbacks_are_each_stored_once(fresh_db_url: str, tmp_path: Path) -> None:
    rt = build_runtime(Settings(database_url=fresh_db_url, data_dir=tmp_path,
                                secret_key="intake-test"))
    with rt.uow.write() as conn:
        wecom.do_add_corp(conn, actor=SYSTEM, box=rt.box, corp_id=CORP, agent_id=1,
                          secret="s", token=TOKEN, aes_key=AES_KEY, now=utcnow())
    items = signed(120)
    forged = (dict(items[0][0], msg_signature="0" * 40), items[0][1])
    # every callback once, 30 of them again (WeCom's retries) and one forged, all at once
    sends = items + items[:30] + [forged]

    async def post_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(rt))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return list(await asyncio.gather(*(
                client.post(f"/callbacks/wecom/{CORP}", params=p, content=b)
                for p, b in sends)))

    try:
        replies = asyncio.run(post_all())
        assert [r.status_code for r in replies[:-1]] == [200] * 150
        assert {r.text for r in replies[:-1]} == {"success"}
        assert replies[-1].status_code == 403 and "40001" in replies[-1].text
        with rt.engine.connect() as conn:
            stored = conn.execute(select(func.count(), func.count(
                func.distinct(raw_inbox.c.digest))).select_from(raw_inbox)).one()
        assert tuple(stored) == (120, 120)
    finally:
        rt.close()
