"""Login, logout and the language switch."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.services import users
from qunyun.web.deps import RuntimeDep, check_csrf, csrf_token, render
from qunyun.web.i18n import LANGUAGES

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    """Only same-site paths, so the login form cannot be used as an open redirect."""
    if target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    csrf_token(request)
    return render(request, "login.html", {"next": _safe_next(next), "failed": False})


@router.post("/login")
async def login(request: Request, runtime: RuntimeDep, username: str = Form(""),
                password: str = Form(""), next: str = Form("/")) -> Response:
    await check_csrf(request)
    with runtime.uow.write() as conn:
        actor = users.authenticate(conn, username=username.strip(), password=password)
    if actor is None:
        return render(request, "login.html", {"next": _safe_next(next), "failed": True,
                                              "username": username}, status_code=401)
    request.session.clear()
    request.session.update({"uid": actor.id, "sv": actor.session_version})
    csrf_token(request)  # a fresh token for the new session
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await check_csrf(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.post("/lang")
async def switch_language(request: Request, lang: str = Form("zh-CN"),
                          next: str = Form("/")) -> Response:
    await check_csrf(request)
    if lang in LANGUAGES:
        request.session["lang"] = lang
    return RedirectResponse(_safe_next(next), status_code=303)
