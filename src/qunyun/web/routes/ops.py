"""/healthz (open, for load balancers), /metrics (Prometheus text format: staff or the
metrics token) and the API documentation (signed-in staff; Swagger UI served from our own
static files, not a CDN)."""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from qunyun import __version__, native
from qunyun.bootstrap import Runtime
from qunyun.domain.staff import Permission
from qunyun.services import ingest_stats
from qunyun.web.deps import PUBLIC, CurrentActor, RuntimeDep, access, signed_in_actor

router = APIRouter(tags=["ops"])


class StoreCollector(Collector):
    """Reads figures from the database at scrape time, so every process reports the truth."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        yield InfoMetricFamily("qunyun_build", "qunyun version", value={"version": __version__})
        with self.runtime.uow.read() as conn:
            figures = ingest_stats.store_figures(conn)
        outbox = GaugeMetricFamily("qunyun_outbox_rows", "Outbox rows by status",
                                   labels=["status"])
        for status, n in figures.outbox.items():
            outbox.add_metric([status], n)
        yield outbox
        events = GaugeMetricFamily("qunyun_inbound_events", "Inbound events stored",
                                   labels=["platform"])
        for platform, n in figures.inbound_by_platform.items():
            events.add_metric([platform], n)
        yield events
        yield GaugeMetricFamily("qunyun_staff_tasks_open", "Open staff tasks",
                                value=figures.open_tasks)
        yield GaugeMetricFamily("qunyun_members", "Members (not merged)", value=figures.members)
        yield GaugeMetricFamily("qunyun_scheduled_jobs_due", "Active jobs past their due time",
                                value=figures.jobs_due)


@router.get("/favicon.ico", include_in_schema=False)
@access(PUBLIC)
def favicon() -> RedirectResponse:
    """Browsers ask the root for the icon before they read the page's link."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/healthz")
@access(PUBLIC)
def healthz(runtime: RuntimeDep) -> JSONResponse:
    try:
        with runtime.uow.read() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
    return JSONResponse({"status": "ok", "version": __version__, "engine": native.state.build})


@router.get("/metrics")
@access(Permission.VIEW)
def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """For staff, or for Prometheus with ``Authorization: Bearer $QUNYUN_METRICS_TOKEN``."""
    token = runtime.settings.metrics_token
    given = request.headers.get("authorization", "")
    if not (token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())):
        signed_in_actor(request, runtime)  # LoginRequired: 401 for the API, login page
    registry = CollectorRegistry()
    registry.register(StoreCollector(runtime))
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")


@router.get("/api/v1/openapi.json", include_in_schema=False)
@access(Permission.VIEW)
def openapi(request: Request, actor: CurrentActor) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/api/docs", include_in_schema=False)
@access(Permission.VIEW)
def api_docs(actor: CurrentActor) -> Response:
    return get_swagger_ui_html(openapi_url="/api/v1/openapi.json", title="qunyun API",
                               swagger_js_url="/static/vendor/swagger/swagger-ui-bundle.js",
                               swagger_css_url="/static/vendor/swagger/swagger-ui.css",
                               swagger_favicon_url="/static/favicon.svg")
