"""``create_app(runtime)``: the FastAPI application, built without touching globals."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qunyun import __version__
from qunyun.adapters.platforms.base import PlatformError
from qunyun.bootstrap import Runtime
from qunyun.services.errors import ServiceError
from qunyun.web.deps import CsrfFailed, LoginRequired, make_templates, render
from qunyun.web.routes import (
    activities,
    activities_api,
    api,
    audit,
    auth,
    automation,
    automation_api,
    content,
    content_api,
    crm_api,
    dashboard,
    groups,
    health,
    leads,
    members,
    ops,
    outbox,
    segments,
    tags,
    tasks,
    wecom,
    wecom_api,
)

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, whether or not they declare a length."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = b'{"error": "request body too large"}'
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get(
        "accept", "")


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
                  docs_url="/api/docs", openapi_url="/api/v1/openapi.json", redoc_url=None)
    app.state.runtime = runtime
    app.state.templates = make_templates()
    app.add_middleware(SessionMiddleware, secret_key=runtime.secret_key,
                       session_cookie="qunyun_session", same_site="lax", https_only=False,
                       max_age=14 * 24 * 3600)
    app.add_middleware(BodyLimit, max_bytes=runtime.settings.max_body_bytes)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for module in (ops, auth, dashboard, groups, health, members, tags, segments, leads, tasks,
                   outbox, audit, api, crm_api, automation, automation_api, content,
                   content_api, activities, activities_api, wecom, wecom_api):
        app.include_router(module.router)

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

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": str(exc)}, status_code=exc.status_code)
        context: dict[str, Any] = {"message": str(exc)}
        if exc.status_code == 403:
            context["message_key"] = "error.forbidden"
        elif exc.status_code == 404:
            context["message_key"] = "error.not_found"
        return render(request, "error.html", context, status_code=exc.status_code)

    return app
