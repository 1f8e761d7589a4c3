from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import groups, inbound_events, outbox
from qunyun.bootstrap import Runtime
from qunyun.clock import utcnow
from qunyun.services import users
from qunyun.services.users import SYSTEM
from qunyun.web.app import create_app
from tests.factories import raw_join


def bearer(conn: Connection, username: str) -> dict[str, str]:
    token = users.do_create_api_token(conn, actor=SYSTEM, username=username)
    return {"Authorization": f"Bearer {token}"}


def test_token_auth_and_me(client: TestClient, staff: dict[str, str], conn: Connection) -> None:
    headers = bearer(conn, "sales1")
    me = client.get("/api/v1/me", headers=headers).json()
    assert me["username"] == "sales1" and me["role"] == "sales"
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer qy_wrong"}
                      ).status_code == 401


def test_ingest_endpoint_runs_the_event_path(client: TestClient, staff: dict[str, str],
                                             conn: Connection) -> None:
    headers = bearer(conn, "operator1")
    first = client.post("/api/v1/ingest/sandbox", headers=headers, json=raw_join("e0", "g1", "o"))
    assert first.status_code == 200 and first.json()["events"] == 1
    gid = conn.execute(select(groups.c.id)).scalar_one()
    patched = client.patch(f"/api/v1/groups/{gid}", headers=headers,
                           json={"welcome_template": "欢迎{name}", "capacity": 100})
    assert patched.status_code == 200 and patched.json()["capacity"] == 100
    live = {**raw_join("e1", "g1", "u1", name="小红"), "at": utcnow().isoformat()}
    second = client.post("/api/v1/ingest/sandbox", headers=headers, json=live).json()
    assert second["rules_fired"] == ["welcome"] and len(second["outbox_ids"]) == 1
    # a join of days ago is recorded, but nobody greets someone who came last week
    old = client.post("/api/v1/ingest/sandbox", headers=headers,
                      json=raw_join("e2", "g1", "u2", name="小刚")).json()
    assert old["rules_fired"] == ["welcome"] and old["outbox_ids"] == []
    assert old["stale"] == ["send_text"]
    replay = client.post("/api/v1/ingest/sandbox", headers=headers, json=live).json()
    assert replay["duplicate"] is True and replay["outbox_ids"] == []
    rows = client.get("/api/v1/outbox", headers=headers).json()
    assert [r["payload"]["text"] for r in rows] == ["欢迎小红"]
    assert client.get("/api/v1/groups", headers=headers).json()[0]["members"] == 3


def test_bad_input_gets_4xx_and_stores_nothing(client: TestClient, staff: dict[str, str],
                                               conn: Connection) -> None:
    headers = bearer(conn, "operator1")
    before = conn.execute(select(func.count()).select_from(inbound_events)).scalar_one()
    broken = client.post("/api/v1/ingest/sandbox", headers={**headers,
                         "content-type": "application/json"}, content=b"{not json")
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["error"]
    missing = client.post("/api/v1/ingest/sandbox", headers=headers,
                          json={"type": "join", "id": "x", "at": "2026-11-20T12:00:00Z",
                                "chat": "g"})
    assert missing.status_code == 422 and "'user'" in missing.json()["error"]
    assert client.post("/api/v1/ingest/nowhere", headers=headers, json={}).status_code == 404
    huge = {"type": "message", "id": "big", "at": "2026-11-20T12:00:00Z", "chat": "g",
            "user": "u", "message_id": "m", "text": "啊" * 1_000_000}
    too_big = client.post("/api/v1/ingest/sandbox", headers=headers,
                          content=json.dumps(huge).encode(),)
    assert too_big.status_code == 413
    after = conn.execute(select(func.count()).select_from(inbound_events)).scalar_one()
    assert after == before


def test_roles_enforced_in_api(client: TestClient, staff: dict[str, str],
                               conn: Connection) -> None:
    viewer = bearer(conn, "viewer1")
    assert client.post("/api/v1/ingest/sandbox", headers=viewer,
                       json=raw_join("e", "g", "u")).status_code == 403
    assert client.get("/api/v1/users", headers=viewer).status_code == 403
    admin = bearer(conn, "admin1")
    created = client.post("/api/v1/users", headers=admin,
                          json={"username": "newbie", "password": "12345678", "role": "viewer"})
    assert created.status_code == 422 and "too easy to guess" in created.json()["error"]
    created = client.post("/api/v1/users", headers=admin,
                          json={"username": "newbie", "password": "tea at 5 by the lake",
                                "role": "viewer"})
    assert created.status_code == 201 and created.json()["role"] == "viewer"
    bad = client.post("/api/v1/users", headers=admin,
                      json={"username": "x y", "password": "12345678"})
    assert bad.status_code == 422 and "username" in bad.json()["error"]
    unknown = client.patch("/api/v1/groups/1", headers=admin, json={"colour": "red"})
    assert unknown.status_code == 422


def test_cookie_session_api_needs_csrf_header(client: TestClient, staff: dict[str, str]) -> None:
    from tests.web.conftest import login

    csrf = login(client, "operator1")
    assert client.post("/api/v1/ingest/sandbox", json=raw_join("e", "g", "u")).status_code == 403
    ok = client.post("/api/v1/ingest/sandbox", json=raw_join("e", "g", "u"),
                     headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200


def test_health_metrics_and_openapi(client: TestClient, conn: Connection,
                                    staff: dict[str, str], runtime: Runtime) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["engine"] in ("mypyc", "pure")
    # metrics and the API's documentation are for staff (and Prometheus with its token)
    for path in ("/metrics", "/api/v1/openapi.json"):
        assert client.get(path).status_code == 401, path
    assert client.get("/api/docs").status_code == 303  # to the login page
    viewer = bearer(conn, "viewer1")
    metrics = client.get("/metrics", headers=viewer).text
    assert 'qunyun_outbox_rows{status="pending"}' in metrics
    assert "qunyun_members" in metrics
    runtime.settings = runtime.settings.model_copy(update={"metrics_token": "scrape-me"})
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}
                      ).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-you"}
                      ).status_code == 401
    spec = client.get("/api/v1/openapi.json", headers=viewer).json()
    assert "/api/v1/groups" in spec["paths"] and "/api/v1/ingest/{platform}" in spec["paths"]
    docs = client.get("/api/docs", headers=viewer)
    assert docs.status_code == 200 and "/static/vendor/swagger/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert client.get("/static/vendor/swagger/swagger-ui-bundle.js").status_code == 200
    headers = client.get("/login").headers
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "strict-transport-security" not in headers
    assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 0


def test_https_deployments_get_secure_cookies_and_hsts(runtime: Runtime,
                                                       staff: dict[str, str]) -> None:
    runtime.settings = runtime.settings.model_copy(
        update={"public_url": "https://qunyun.example.com"})
    with TestClient(create_app(runtime), base_url="https://testserver",
                    follow_redirects=False) as secure:
        page = secure.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()
        assert page.headers["strict-transport-security"].startswith("max-age=")


def test_overview_api_counts_today_in_team_timezone(client: TestClient, staff: dict[str, str],
                                                    conn: Connection) -> None:
    headers = bearer(conn, "viewer1")
    data = client.get("/api/v1/overview", headers=headers).json()
    assert data["groups"] == 0 and len(data["days"]) == 14
    assert len(data["messages_per_day"]) == 14 and data["outbox"]["dead"] == 0
