"""``create_app(runtime)``: the FastAPI application, built without touching globals."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from qunyun import __version__
from qunyun.adapters.platforms.base import PlatformError
from qunyun.bootstrap import Runtime
from qunyun.i18n import translate
from qunyun.services import posters
from qunyun.services.errors import ServiceError, TooManyAttempts, in_words
from qunyun.web.deps import CsrfFailed, LoginRequired, language, make_templates, render
from qunyun.web.edge import JsonGuard, SecurityHeaders, check_request
from qunyun.web.intake import CallbackFastPath
from qunyun.web.limits import BodyLimit
from qunyun.web.routes import (
    activities,
    api,
    audit,
    auth,
    automation,
    broadcasts,
    dashboard,
    entry,
    exports,
    fission,
    groups,
    health,
    imports,
    leads,
    members,
    ops,
    outbox,
    plans,
    playbooks,
    scripts,
    segments,
    tags,
    tasks,
    telegram,
    users,
    wecom,
)
from qunyun.web.routes.fission import PICTURE_PATHS
from qunyun.web.routes.imports import IMPORT_PATHS

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def _wants_json(request: Request) -> bool:
    """API callers and scrapers get JSON errors (401, not a redirect to the login page);
    the API's documentation page is for browsers."""
    path = request.url.path
    return (path.startswith("/api/v1/") or path == "/metrics"
            or "application/json" in request.headers.get("accept", ""))


def create_app(runtime: Runtime, *, start_worker: bool = False) -> FastAPI:
    """Build the app; ``start_worker`` runs the delivery worker in a thread while serving."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop: threading.Event | None = None
        thread: threading.Thread | None = None
        if start_worker:
            from qunyun.worker import start_in_thread

            thread, stop = start_in_thread(runtime)
        yield
        if stop is not None and thread is not None:
            stop.set()
            thread.join(timeout=10)

    app = FastAPI(title="qunyun API", version=__version__, lifespan=lifespan,
                  docs_url=None, openapi_url=None, redoc_url=None,  # signed-in only: see ops
                  dependencies=[Depends(check_request)])
    app.state.runtime = runtime
    app.state.templates = make_templates()
    app.add_middleware(SessionMiddleware, secret_key=runtime.secret_key,
                       session_cookie="qunyun_session", same_site="lax",
                       https_only=runtime.settings.https,
                       max_age=14 * 24 * 3600)
    app.add_middleware(SecurityHeaders, https=runtime.settings.https)
    app.add_middleware(JsonGuard)
    pictures = max(runtime.settings.max_body_bytes, posters.MAX_UPLOAD + 256 * 1024)
    app.add_middleware(BodyLimit, max_bytes=runtime.settings.max_body_bytes,
                       larger=dict.fromkeys(IMPORT_PATHS, runtime.settings.max_import_bytes),
                       larger_under=dict.fromkeys(PICTURE_PATHS, pictures))
    app.add_middleware(CallbackFastPath, runtime=runtime)  # outermost: first to look
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for module in (ops, auth, dashboard, groups, health, imports, members, tags, segments,
                   leads, tasks, outbox, audit, users, automation, scripts, playbooks, broadcasts,
                   activities, plans, wecom, telegram, entry, fission, exports):
        app.include_router(module.router)
    for api_router in api.ROUTERS:
        app.include_router(api_router)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        """No such page, a method the page does not take…: the error page in the team's
        language for people, the same JSON shape as every other error for programs."""
        key = {404: "error.not_found", 405: "error.method"}.get(exc.status_code, "error.http")
        message = translate(key, language(request)).format(status=exc.status_code)
        if _wants_json(request):
            return JSONResponse({"error": str(exc.detail), "message": message},
                                status_code=exc.status_code, headers=exc.headers)
        response = render(request, "error.html", {"message_key": key,
                                                  "status": exc.status_code},
                          status_code=exc.status_code)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": "login required"}, status_code=401)
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
        return render(request, "error.html", {"message_key": "error.csrf"}, status_code=403)

    @app.exception_handler(PlatformError)
    async def _platform(request: Request, exc: PlatformError) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": str(exc)}, status_code=502)
        return render(request, "error.html", {"message": str(exc)}, status_code=502)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        """422 naming the field, in the same shape as every other error; the offending input
        is not echoed (it may be what made the answer fail to encode)."""
        parts = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",))
            parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
        message = "; ".join(parts) or "invalid request"
        if _wants_json(request):
            return JSONResponse({"error": message, "detail": jsonable_encoder(
                [{k: v for k, v in e.items() if k in ("loc", "msg", "type")}
                 for e in exc.errors()])}, status_code=422)
        return render(request, "error.html", {"message": message}, status_code=422)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> Response:
        """The safety net behind the edge checks: a value the database refuses (too long for
        its column, out of range) is the caller's error; the transaction rolled back."""
        detail = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        log.info("refused by the database: %s", detail)
        message = f"a value does not fit its field (too long or out of range): {detail}"
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=422)
        return render(request, "error.html", {"message": message}, status_code=422)

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> Response:
        headers = ({"Retry-After": str(exc.retry_after)}
                   if isinstance(exc, TooManyAttempts) else {})
        # people read it in their language ("只读" may not "修改设置和发送"); programs keep
        # the English sentence in ``error``
        message = in_words(exc, language(request))
        if _wants_json(request):
            return JSONResponse({"error": str(exc), "message": message},
                                status_code=exc.status_code, headers=headers)
        context: dict[str, Any] = {"message": message}
        if exc.status_code == 403:
            context["message_key"] = "error.forbidden"
        elif exc.status_code == 404:
            context["message_key"] = "error.not_found"
        response = render(request, "error.html", context, status_code=exc.status_code)
        response.headers.update(headers)
        return response

    return app


def app_from_env() -> FastAPI:
    """The app for one of several web processes (``qunyun serve --workers N``): settings
    come from the environment; delivery runs in the parent process, not here."""
    from qunyun.bootstrap import build_runtime
    from qunyun.config import Settings

    return create_app(build_runtime(Settings()))
