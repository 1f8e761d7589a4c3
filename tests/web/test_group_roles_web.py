"""Roles in a group from the group page and over the API: names escaped, a bad member id a
422, a role taken away."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Connection

from qunyun.bootstrap import Runtime
from tests.factories import raw_join
from tests.integration.test_lifecycle import feed
from tests.web.conftest import login


def test_roles_on_the_page_and_the_api(client: TestClient, conn: Connection,
                                       runtime: Runtime, staff: dict[str, str]) -> None:
    gid = feed(conn, runtime, [raw_join("j0", "g1", "u0", name="<i>顾问</i>")])
    csrf = login(client, staff["operator"])
    added = client.post(f"/groups/{gid}/roles", data={"csrf_token": csrf, "number": "10001",
                                                      "role": "advisor"})
    assert added.status_code == 303
    page = client.get(f"/groups/{gid}").text
    assert "顾问" in page and "<i>顾问</i>" not in page and "&lt;i&gt;" in page
    api = client.get(f"/api/v1/groups/{gid}/roles").json()
    assert [(r["role"], r["number"]) for r in api] == [("advisor", 10001)]
    bad = client.post(f"/api/v1/groups/{gid}/roles", json={"member_id": 2**63, "role": "x"},
                      headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 422
    gone = client.post(f"/api/v1/groups/{gid}/roles", headers={"X-CSRF-Token": csrf},
                       json={"member_id": api[0]["member_id"], "role": "advisor",
                             "remove": True})
    assert gone.status_code == 200 and gone.json() == []
