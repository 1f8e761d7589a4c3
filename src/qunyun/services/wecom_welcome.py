"""WeCom group welcome templates: the text and link a new member of a corp's groups sees."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, select, update

from qunyun.adapters.platforms.wecom.adapter import WecomAdapter
from qunyun.adapters.storage.tables import (
    welcome_templates,
)
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.clock import utcnow
from qunyun.domain.staff import Permission
from qunyun.services import audit
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.users import Actor
from qunyun.services.wecom import PLATFORM, corp_secrets_exist

log = logging.getLogger(__name__)
PENDING_PREFIX = "pending:"  # the template id of a row whose registration has not finished


# --- group welcome templates ----------------------------------------------------------------


def do_add_welcome_template(uow: UnitOfWork, *, actor: Actor, adapter: WecomAdapter,
                            corp_id: str, text: str, image_url: str = "",
                            link: Mapping[str, str] | None = None,
                            notify: bool = True) -> dict[str, Any]:
    """Register a group welcome template (owners pick it in the client: the API cannot bind
    one to a group). ``{nickname}`` style variables are not WeCom's: WeCom fills only
    %NICKNAME%, so the text is sent as written."""
    actor.require(Permission.OPERATE)
    text = text.strip()
    if not text:
        raise InvalidInput("text: required")
    if len(text.encode()) > 4000:
        raise InvalidInput("text: at most 4000 bytes")
    if image_url and link:
        raise InvalidInput("attachment: an image or a link, not both (WeCom allows one)")
    body: dict[str, Any] = {"text": {"content": text}, "notify": 1 if notify else 0}
    attachment: dict[str, Any] = {}
    if image_url:
        if not image_url.startswith(("http://", "https://")):
            raise InvalidInput("image_url: must start with http:// or https://")
        attachment = {"image": {"pic_url": image_url}}
    elif link:
        if not link.get("title") or not str(link.get("url", "")).startswith("http"):
            raise InvalidInput("link: needs a title and an http(s) url")
        attachment = {"link": {"title": link["title"], "url": link["url"],
                               "desc": link.get("desc", ""), "picurl": link.get("picurl", "")}}
    with uow.read() as conn:
        if not corp_secrets_exist(conn, corp_id):
            raise NotFound("WeCom corp {corp_id!r} is not connected", corp_id=corp_id)
    # the row first, under a placeholder id: a crash between WeCom's answer and our write
    # leaves a row that says the registration did not finish, not a template nobody knows
    pending = f"{PENDING_PREFIX}{secrets.token_hex(8)}"
    with uow.write() as conn:
        new_id = conn.execute(welcome_templates.insert().values(
            platform=PLATFORM, account=corp_id, template_id=pending, text=text,
            attachment=attachment, notify=notify, created_by=actor.label,
            created_at=utcnow()).returning(welcome_templates.c.id)).scalar_one()
    try:
        template_id = adapter.client(corp_id).add_welcome_template({**body, **attachment})
    except BaseException:
        with uow.write() as conn:  # WeCom registered nothing
            conn.execute(delete(welcome_templates).where(welcome_templates.c.id == new_id))
        raise
    with uow.write() as conn:
        conn.execute(update(welcome_templates).where(welcome_templates.c.id == new_id)
                     .values(template_id=template_id))
        audit.record(conn, actor=actor.label, action="welcome_template.add",
                     object_type="welcome_template", object_id=new_id,
                     detail={"template_id": template_id, "corp_id": corp_id})
    return {"id": int(new_id), "template_id": template_id, "text": text,
            "attachment": attachment, "notify": notify}


def list_welcome_templates(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    return [{**dict(r), "finished": not str(r["template_id"]).startswith(PENDING_PREFIX)}
            for r in conn.execute(select(welcome_templates).order_by(
                welcome_templates.c.id.desc())).mappings()]
