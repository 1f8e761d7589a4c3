"""The WeCom connector's connected corps: their secrets, status and where a chat lives.
Callbacks (``wecom_callbacks``), group sync and the corp-tag mirror (``wecom_sync``), join
codes (群活码, the platform-neutral ``join_codes`` through the adapter) and group welcome templates
(``wecom_welcome``) build on it.

Callbacks are stored first and processed after (WeCom waits 5 s and retries 3 times): the
endpoint only verifies, decrypts and inserts a row keyed by the digest of the decrypted XML,
so a retry is one row. Processing parses through the adapter and ingests the domain events
like any platform's; what a callback leaves unknown is read back with ``groupchat/get`` and
applied as a roster (services/rosters.py). API calls are made outside database transactions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from qunyun.adapters.platforms.wecom import parse as wecom_parse
from qunyun.adapters.platforms.wecom.crypto import CallbackCryptoError, WecomCrypto
from qunyun.adapters.secretbox import SecretBox
from qunyun.adapters.storage.tables import (
    wecom_chats,
    wecom_corps,
)
from qunyun.domain.staff import Permission
from qunyun.services import audit, raw_inbox
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.users import Actor

log = logging.getLogger(__name__)
PLATFORM = wecom_parse.PLATFORM
_CORP_ID = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
_TOKEN = re.compile(r"^[A-Za-z0-9]{1,32}$")
GONE = {40050, 49008}  # the group does not exist / was dismissed

@dataclass(frozen=True, slots=True)
class CorpSecrets:
    corp_id: str
    agent_id: int
    secret: str
    token: str
    aes_key: str

    @property
    def crypto(self) -> WecomCrypto:
        return WecomCrypto(self.token, self.aes_key, self.corp_id)


def callback_path(corp_id: str) -> str:
    return f"/callbacks/wecom/{corp_id}"


# --- corps ----------------------------------------------------------------------------------


def do_add_corp(conn: Connection, *, actor: Actor, box: SecretBox, corp_id: str, agent_id: int,
                secret: str, token: str, aes_key: str, name: str = "",
                now: datetime) -> dict[str, Any]:
    """Connect a corp, or replace its credentials; the secrets are stored sealed."""
    actor.require(Permission.MANAGE_USERS)
    corp_id = corp_id.strip()
    if not _CORP_ID.match(corp_id):
        raise InvalidInput("corp_id: letters and digits, 4–64 characters (企业ID, e.g. ww…)")
    if agent_id <= 0:
        raise InvalidInput("agent_id: the self-built app's AgentId, a positive number")
    if not secret.strip():
        raise InvalidInput("secret: the app's Secret is required")
    if not _TOKEN.match(token):
        raise InvalidInput("token: 1–32 letters or digits (回调配置的 Token)")
    try:
        WecomCrypto(token, aes_key, corp_id)
    except CallbackCryptoError as exc:
        raise InvalidInput("aes_key: {exc}", exc=exc) from None
    values = {"name": name.strip()[:128], "agent_id": agent_id, "secret": box.seal(secret),
              "token": box.seal(token), "aes_key": box.seal(aes_key), "updated_at": now}
    existing = conn.execute(select(wecom_corps.c.id).where(
        wecom_corps.c.corp_id == corp_id)).scalar()
    if existing is None:
        conn.execute(wecom_corps.insert().values(corp_id=corp_id, status={}, created_at=now,
                                                 **values))
    else:
        conn.execute(update(wecom_corps).where(wecom_corps.c.id == existing).values(**values))
    audit.record(conn, actor=actor.label, action="wecom.add_corp" if existing is None
                 else "wecom.update_corp", object_type="wecom_corp", object_id=corp_id,
                 detail={"agent_id": agent_id, "name": values["name"]})
    return get_corp(conn, actor=actor, corp_id=corp_id)


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"corp_id": row["corp_id"], "name": row["name"], "agent_id": row["agent_id"],
            "status": dict(row["status"] or {}), "callback_path": callback_path(row["corp_id"]),
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def list_corps(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    rows = conn.execute(select(wecom_corps).order_by(wecom_corps.c.id)).mappings()
    out = [_public(dict(r)) for r in rows]
    pending = raw_inbox.pending_by_account(conn, PLATFORM)
    for corp in out:
        corp["pending_callbacks"] = int(pending.get(corp["corp_id"], 0))
    return out


def get_corp(conn: Connection, *, actor: Actor, corp_id: str) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    row = conn.execute(select(wecom_corps).where(wecom_corps.c.corp_id == corp_id)).mappings()\
        .first()
    if row is None:
        raise NotFound("WeCom corp {corp_id!r} is not connected", corp_id=corp_id)
    return _public(dict(row))


def corp_secrets(conn: Connection, box: SecretBox, corp_id: str) -> CorpSecrets | None:
    row = conn.execute(select(wecom_corps).where(wecom_corps.c.corp_id == corp_id)).mappings()\
        .first()
    if row is None:
        return None
    return CorpSecrets(corp_id, int(row["agent_id"]), box.open(row["secret"]),
                       box.open(row["token"]), box.open(row["aes_key"]))


def chat_home(conn: Connection, chat_id: str) -> tuple[str, str] | None:
    row = conn.execute(select(wecom_chats.c.corp_id, wecom_chats.c.owner).where(
        wecom_chats.c.chat_id == chat_id)).first()
    return (str(row.corp_id), str(row.owner)) if row is not None else None


def set_status(conn: Connection, corp_id: str, **values: Any) -> None:
    current = conn.execute(select(wecom_corps.c.status).where(
        wecom_corps.c.corp_id == corp_id)).scalar()
    if current is None and not conn.execute(select(wecom_corps.c.id).where(
            wecom_corps.c.corp_id == corp_id)).first():
        return
    merged = {**dict(current or {}), **{k: _jsonable(v) for k, v in values.items()}}
    conn.execute(update(wecom_corps).where(wecom_corps.c.corp_id == corp_id)
                 .values(status=merged))


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def corp_secrets_exist(conn: Connection, corp_id: str) -> bool:
    return conn.execute(select(wecom_corps.c.id).where(
        wecom_corps.c.corp_id == corp_id)).first() is not None
