"""A bounded Hypothesis fuzz of every JSON route (see ``tests/web/fuzz.py``; the bench script
runs it longer), as an admin so requests reach the services — SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Connection

from qunyun.services import users
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.web.fuzz import fuzz_route, json_targets

EXAMPLES_PER_ROUTE = 6


def test_generated_bodies_never_answer_500_nor_half_write(
        client: TestClient, conn: Connection, staff: dict[str, str]) -> None:
    admin = {"Authorization": "Bearer " + users.do_create_api_token(
        conn, actor=SYSTEM, username="admin1")}
    spec = client.get("/api/v1/openapi.json", headers=admin).json()

    def send(method: str, path: str, body: bytes) -> int:
        return client.request(method, path, content=body, headers={
            **admin, "content-type": "application/json"}).status_code

    targets = json_targets(spec)
    ran = sum(fuzz_route(send, lambda: snapshot(conn), method, path, base, fields,
                         EXAMPLES_PER_ROUTE)
              for method, path, base, fields in targets)
    assert len(targets) >= 45 and ran >= 5 * len(targets)
