"""The authorization matrix, generated from the route table: every API route and page ×
anonymous, viewer, sales, operator and admin, held to the access each route declares with
``@access`` (SQLite and PostgreSQL).

- a route without a declaration fails here (a new route must say who may use it);
- anonymous callers get 401 (API, metrics) or the login page, except on public routes;
- a role without the declared permission never succeeds — 403, or 404/422 when the route
  refuses the made-up input first — and nothing it sends is stored;
- a role with the permission is never refused with 403.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection

from qunyun.domain.staff import ROLE_PERMISSIONS, Permission, Role
from qunyun.web.deps import PUBLIC, declared_access
from tests.dbhelpers import snapshot
from tests.web.conftest import login
from tests.web.test_hostile_input import _example

ROLES = ("viewer", "sales", "operator", "admin")
REFUSED = {403, 404, 422}


def routes(app: Any) -> Iterator[tuple[str, str, Any]]:
    """(method, path, handler) of every route, through FastAPI's included routers."""
    for entry in app.routes:
        router = getattr(entry, "original_router", None)
        for route in (router.routes if router is not None else [entry]):
            for method in sorted(getattr(route, "methods", None) or ()):
                if method != "HEAD" and hasattr(route, "endpoint"):
                    yield method, route.path, route.endpoint


def allowed(role: str, level: str) -> bool:
    return level == PUBLIC or Permission(level) in ROLE_PERMISSIONS[Role(role)]


def test_every_route_declares_who_may_use_it(client: TestClient) -> None:
    missing = [f"{m} {p}" for m, p, handler in routes(client.app)
               if declared_access(handler) is None]
    assert missing == [], "routes without @access(...): " + ", ".join(missing)
    levels = {declared_access(h) for _, _, h in routes(client.app)}
    assert levels <= {PUBLIC, *(p.value for p in Permission)}, levels


def test_every_route_answers_each_role_as_declared(client: TestClient, conn: Connection,
                                                   staff: dict[str, str]) -> None:
    spec = client.get("/api/v1/openapi.json", headers={
        "x-csrf-token": login(client, staff["admin"])}).json()
    clients: dict[str, TestClient] = {}
    csrf: dict[str, str] = {}

    def signed_in(role: str) -> TestClient:
        if role not in clients:
            clients[role] = TestClient(client.app, follow_redirects=False)
            csrf[role] = login(clients[role], staff[role])
        return clients[role]

    anonymous = TestClient(client.app, follow_redirects=False)
    checked = 0
    for method, path, handler in routes(client.app):
        level = declared_access(handler)
        assert level is not None
        target = re.sub(r"\{[^}]+\}", "1", path)
        op = spec["paths"].get(path, {}).get(method.lower(), {})
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        kwargs: dict[str, Any] = ({"json": _example(spec, body["schema"])} if body else
                                  {"data": {}} if method != "GET" else {})
        answer = anonymous.request(method, target, **kwargs)
        if level == PUBLIC:
            assert answer.status_code != 401 and "/login?" not in answer.headers.get(
                "location", ""), (method, path, answer.status_code)
        else:
            to_login = answer.status_code == 303 and answer.headers["location"].startswith(
                "/login")
            assert answer.status_code == 401 or to_login, (method, path, answer.status_code)
        refused = [role for role in ROLES if not allowed(role, level)]
        before = snapshot(conn) if refused else None
        for role in refused:  # the refused ones first: nothing they send may be stored
            c = signed_in(role)
            answer = c.request(method, target, headers={"x-csrf-token": csrf[role]}, **kwargs)
            assert answer.status_code in REFUSED, (method, path, role, answer.status_code,
                                                   answer.text[:200])
            checked += 1
        if refused:
            assert snapshot(conn) == before, (method, path)
        for role in ROLES:
            if not allowed(role, level):
                continue
            c = signed_in(role)
            answer = c.request(method, target, headers={"x-csrf-token": csrf[role]}, **kwargs)
            assert answer.status_code != 403, (method, path, role, answer.text[:200])
            assert answer.status_code < 500, (method, path, role, answer.text[:200])
            if path == "/logout" or answer.headers.get("location", "").startswith("/login"):
                clients.pop(role)  # signed out by the route itself: sign in again
            checked += 1
    assert checked > 900
