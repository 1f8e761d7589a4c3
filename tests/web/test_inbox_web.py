"""The inbox on the dashboard and over the API."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Connection

from qunyun.bootstrap import Runtime
from qunyun.services import tasks
from tests.web.conftest import login


def test_the_dashboard_and_the_api_show_the_inbox(client: TestClient, conn: Connection,
                                                   runtime: Runtime,
                                                   staff: dict[str, str]) -> None:
    tasks.create_task(conn, kind="manual", title="手动移出广告号", reason="平台不能自动移出",
                      now=runtime.now())
    login(client, staff["viewer"])
    page = client.get("/")
    assert page.status_code == 200 and 'id="inbox-tasks"' in page.text
    assert "手动移出广告号" in page.text and 'href="/tasks"' in page.text
    assert 'id="inbox-follow_ups"' not in page.text  # nothing due: not listed
    api = client.get("/api/v1/inbox").json()
    assert api["total"] == 1 and api["entries"][0]["items"][0]["text"] == "手动移出广告号"

