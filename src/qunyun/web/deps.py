"""Request dependencies: the runtime, the acting staff user, CSRF, language, templates."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, pass_context
from sqlalchemy import Connection

from qunyun import i18n
from qunyun.bootstrap import Runtime
from qunyun.domain.staff import Permission
from qunyun.i18n import LANGUAGES, translate
from qunyun.services import users
from qunyun.services.errors import InvalidInput
from qunyun.services.moderation import reasons_in
from qunyun.services.tasks import reason_words, title_words
from qunyun.services.users import Actor
from qunyun.web.listing import list_url

TEMPLATES = Path(__file__).parent / "templates"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


PUBLIC = "public"
Handler = TypeVar("Handler", bound=Callable[..., Any])


def access(level: Permission | str) -> Callable[[Handler], Handler]:
    """Declare who may use a route: ``PUBLIC`` (no login) or the permission its service
    checks. Not an enforcement — services check — but a promise the authorization matrix
    test holds every route to (roles without it never succeed, roles with it are never
    refused), and a route without a declaration fails that test."""
    def mark(handler: Handler) -> Handler:
        handler.__dict__["access"] = str(level)
        return handler
    return mark


def declared_access(handler: Callable[..., Any]) -> str | None:
    level = getattr(handler, "access", None)
    return str(level) if level is not None else None


class LoginRequired(Exception):
    """Raised for a page or API call without a valid session or token."""


class CsrfFailed(Exception):
    """An unsafe request from a browser session without the session's CSRF token."""


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def read_conn(runtime: RuntimeDep) -> Iterator[Connection]:
    with runtime.uow.read() as conn:
        yield conn


ReadConn = Annotated[Connection, Depends(read_conn)]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def check_csrf(request: Request) -> None:
    """Unsafe browser requests carry the session's token. Only a request that signed in with
    a valid bearer token is exempt (it sends no cookie a page could ride on); any other
    ``Authorization`` header — a browser's cached Basic credentials behind a proxy — is not."""
    if request.method in SAFE_METHODS or getattr(request.state, "bearer", False):
        return
    expected = request.session.get("csrf", "")
    given = request.headers.get("x-csrf-token", "")
    if not given and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        given = str(form.get("csrf_token", ""))
    if not expected or not hmac.compare_digest(str(expected), given):
        raise CsrfFailed()


def client_address(request: Request) -> str:
    """The caller's address, for the login back-off and the session list (behind a proxy,
    run uvicorn with ``--proxy-headers --forwarded-allow-ips`` so this is the real client)."""
    return request.client.host if request.client else ""


def _actor_from_request(request: Request, runtime: Runtime) -> Actor | None:
    auth = request.headers.get("authorization", "")
    with runtime.uow.read() as conn:
        if auth.lower().startswith("bearer "):
            actor = users.actor_for_token(conn, auth[7:].strip())
            request.state.bearer = actor is not None
            return actor
        sid = request.session.get("sid")
        if not isinstance(sid, str) or not sid:
            return None
        return users.actor_for_session(conn, sid)


def signed_in_actor(request: Request, runtime: Runtime) -> Actor:
    """The caller, before any CSRF check: for routes that refuse by role before reading a
    large body (the CSRF token of a form upload sits inside the body)."""
    actor = _actor_from_request(request, runtime)
    if actor is None:
        raise LoginRequired()
    request.state.actor = actor
    return actor


async def current_actor(request: Request, runtime: RuntimeDep) -> Actor:
    actor = signed_in_actor(request, runtime)
    await check_csrf(request)
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]


def language(request: Request) -> str:
    actor: Actor | None = getattr(request.state, "actor", None)
    chosen = request.session.get("lang") or (actor.language if actor else None)
    if chosen in LANGUAGES:
        return str(chosen)
    runtime: Runtime = request.app.state.runtime
    return runtime.settings.language


@pass_context
def _gettext(context: Any, message: str) -> str:
    return translate(message, context.get("lang", LANGUAGES[0]))


@pass_context
def _ngettext(context: Any, singular: str, plural: str, n: int) -> str:
    return translate(singular if n == 1 else plural, context.get("lang", LANGUAGES[0]))


def make_templates() -> Jinja2Templates:
    """Templates with ``jinja2.ext.i18n``: ``_()``, ``t()`` and ``{% trans %}`` read the
    message catalogs in the page's language."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                      extensions=["jinja2.ext.i18n"])
    env.globals["translate"] = translate
    env.globals["list_url"] = list_url
    env.globals["spoken"] = i18n.spoken
    env.globals["reasons_in"] = reasons_in
    env.globals["title_words"] = title_words
    env.globals["reason_words"] = reason_words
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the extension
        _gettext, _ngettext, newstyle=False)
    return Jinja2Templates(env=env)


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status_code: int = 200) -> Response:
    runtime: Runtime = request.app.state.runtime
    lang = language(request)
    tz = runtime.settings.tz

    def t(key: str) -> str:
        return translate(key, lang)

    def local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return value.astimezone(tz).strftime(fmt) if value else ""

    ctx: dict[str, Any] = {
        "request": request, "t": t, "lang": lang, "local": local,
        "yuan": lambda amount: i18n.money(amount, lang),
        "said": lambda value: i18n.said(value, lang),
        "number": lambda value, digits=0: i18n.number(value, lang, digits),
        "percent": lambda share, digits=0: i18n.percent(share, lang, digits),
        "csrf": csrf_token(request), "actor": getattr(request.state, "actor", None),
        "tz": runtime.settings.timezone,
    }
    ctx.update(context or {})
    templates: Jinja2Templates = request.app.state.templates
    response: Response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    return response


SPREADSHEET_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def attachment(data: bytes, fmt: str, stem: str = "leads") -> Response:
    """A CSV or XLSX file the browser downloads."""
    return Response(data, media_type=SPREADSHEET_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'})


async def uploaded_file(request: Request, what: str) -> tuple[Any, bytes, str]:
    """The submitted form, the bytes of its ``file`` field and the file's name.

    ``what`` says what to choose when the field is missing ("a CSV file")."""
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidInput("file: choose {what}", what=what)
    return form, await upload.read(), upload.filename or "upload"
