"""Join codes over the JSON API, for any platform with an adapter that can make them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Connection

from qunyun.bootstrap import Runtime
from tests.integration.test_join_codes import join
from tests.web.conftest import login


def test_the_api_makes_and_lists_a_code_on_any_platform(client: TestClient, conn: Connection,
                                                        runtime: Runtime,
                                                        staff: dict[str, str]) -> None:
    join(conn, runtime, "seed", "g1", "owner")
    h = {"x-csrf-token": login(client, staff["operator"])}
    made = client.post("/api/v1/join-codes", headers=h, json={
        "platform": "sandbox", "account": "demo", "channel": "公众号", "groups": ["g1"]})
    assert made.status_code == 201 and made.json()["platform"] == "sandbox"
    listed = client.get("/api/v1/join-codes", params={"platform": "sandbox"}).json()
    assert [c["channel"] for c in listed] == ["公众号"]
    nowhere = client.post("/api/v1/join-codes", headers=h, json={
        "platform": "nowhere", "account": "x", "channel": "c", "groups": ["g1"]})
    assert nowhere.status_code == 404
    assert nowhere.json()["message"] == "没有平台 'nowhere' 的连接器"
    assert client.delete(f"/api/v1/join-codes/{made.json()['id']}",
                         headers=h).status_code == 204
    assert client.get("/api/v1/join-codes").json() == []
