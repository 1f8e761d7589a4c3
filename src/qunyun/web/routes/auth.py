"""Login, logout and the language switch."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.staff import Permission
from qunyun.i18n import LANGUAGES
from qunyun.services import users
from qunyun.services.errors import TooManyAttempts
from qunyun.web.deps import (
    PUBLIC,
    CurrentActor,
    RuntimeDep,
    access,
    check_csrf,
    client_address,
    csrf_token,
    render,
)

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    """Only same-site paths, so the login form cannot be used as an open redirect."""
    if target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.get("/login")
@access(PUBLIC)
def login_page(request: Request, next: str = "/") -> Response:
    csrf_token(request)
    return render(request, "login.html", {"next": _safe_next(next), "failed": False})


@router.post("/login")
@access(PUBLIC)
async def login(request: Request, runtime: RuntimeDep, username: str = Form(""),
                password: str = Form(""), next: str = Form("/")) -> Response:
    await check_csrf(request)
    context = {"next": _safe_next(next), "username": username}
    client = client_address(request)
    try:
        with runtime.uow.write() as conn:
            actor = users.authenticate(conn, username=username.strip(), password=password,
                                       client=client, now=runtime.now())
            sid = (users.do_start_session(conn, actor=actor, client=client)
                   if actor is not None else "")
    except TooManyAttempts as exc:
        response = render(request, "login.html", {**context, "failed": False,
                                                  "wait": exc.retry_after}, status_code=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if actor is None:
        return render(request, "login.html", {**context, "failed": True}, status_code=401)
    request.session.clear()
    request.session.update({"sid": sid})
    csrf_token(request)  # a fresh token for the new session
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
@access(Permission.VIEW)
async def logout(request: Request, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    """End this session on the server too: a copied cookie stops working."""
    with runtime.uow.write() as conn:
        users.do_end_session(conn, actor=actor)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.post("/lang")
@access(PUBLIC)
async def switch_language(request: Request, lang: str = Form("zh-CN"),
                          next: str = Form("/")) -> Response:
    await check_csrf(request)
    if lang in LANGUAGES:
        request.session["lang"] = lang
    return RedirectResponse(_safe_next(next), status_code=303)
