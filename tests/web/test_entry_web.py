"""The entry gate's queue on the page and over the API: applicants' words escaped, people
decide with the platform's answer queued, a decided request refused a second decision,
roles held to their rights."""

from __future__ import annotations

import random
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import outbox
from qunyun.bootstrap import Runtime
from qunyun.clock import utcnow
from qunyun.domain.events import ChatRef, JoinRequested, PersonRef
from qunyun.services import outbox as outbox_service
from qunyun.services.ingest import do_ingest_event
from tests.dbhelpers import snapshot
from tests.web.conftest import login

HOSTILE = '<script>alert(1)</script>"='


def ask_to_join(conn: Connection, runtime: Runtime, uid: str, name: str,
                bio: str = "") -> None:
    at = utcnow() - timedelta(seconds=5)
    do_ingest_event(conn, JoinRequested(
        platform="sandbox", external_event_id=f"req:{uid}", occurred_at=at,
        chat=ChatRef(external_id="g1", name="家长群"), member=PersonRef(external_id=uid,
                                                                     name=name),
        channel="海报A", bio=bio), config=runtime.ingest_config)


def test_the_page_lists_requests_and_people_decide(client: TestClient, conn: Connection,
                                                   runtime: Runtime,
                                                   staff: dict[str, str]) -> None:
    ask_to_join(conn, runtime, "u1", HOSTILE, bio=HOSTILE)
    ask_to_join(conn, runtime, "u2", "小 王")
    csrf = login(client, staff["operator"])
    page = client.get("/entry")
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text
    assert "待审核" in page.text and "海报A" in page.text and "pending" not in page.text
    ids = [r["id"] for r in client.get("/api/v1/entry/requests").json()]
    assert len(ids) == 2
    approved = client.post(f"/entry/{ids[1]}/approve", data={"csrf_token": csrf})
    assert approved.status_code == 303
    declined = client.post(f"/entry/{ids[0]}/decline",
                           data={"csrf_token": csrf, "reason": "只对学员开放", "tell": "on"})
    assert declined.status_code == 303
    outbox_service.deliver_due(runtime.uow, adapters=runtime.adapters,
                               limiter=runtime.limiter, worker_id="w", policy=runtime.policy,
                               rng=random.Random(1))
    rows = conn.execute(select(outbox.c.action_type, outbox.c.status, outbox.c.payload)
                        .order_by(outbox.c.id)).all()
    # the sandbox answers requests as Telegram does
    assert [(r.action_type, r.status) for r in rows] == [
        ("answer_join_request", "delivered"), ("send_private", "delivered"),
        ("answer_join_request", "delivered")]
    assert rows[1].payload["text"] == "抱歉，你的入群申请未通过：只对学员开放"
    assert client.get("/entry").text.count('class="panel request"') == 0
    closed = client.get("/entry?status=closed")
    assert "已通过" in closed.text and "已拒绝" in closed.text and "operator1" in closed.text


def test_the_api_decides_once_and_refuses_bad_input(client: TestClient, conn: Connection,
                                                    runtime: Runtime,
                                                    staff: dict[str, str]) -> None:
    ask_to_join(conn, runtime, "u1", "小 王")
    h = {"x-csrf-token": login(client, staff["operator"])}
    (row,) = client.get("/api/v1/entry/requests").json()
    assert row["status"] == "pending" and row["groups_in"] == 0 and not row["blacklisted"]
    asked = client.post(f"/api/v1/entry/requests/{row['id']}/ask", headers=h,
                        json={"text": "你是哪个班的家长？"})
    assert asked.status_code == 200 and asked.json()["status"] == "asked"
    assert client.post(f"/api/v1/entry/requests/{row['id']}/ask", headers=h,
                       json={"text": ""}).status_code == 422
    ok = client.post(f"/api/v1/entry/requests/{row['id']}/decline", headers=h,
                     json={"reason": "不是本校", "tell": False})
    assert ok.status_code == 200 and ok.json()["status"] == "declined"
    before = snapshot(conn)
    again = client.post(f"/api/v1/entry/requests/{row['id']}/approve", headers=h)
    assert again.status_code == 409 and "已经处理过了" in again.json()["message"]
    assert client.get("/api/v1/entry/requests", params={"status": "nope"}).status_code == 422
    assert client.get("/api/v1/entry/requests/999999").status_code == 404
    assert snapshot(conn) == before


def test_a_viewer_sees_the_queue_but_cannot_decide(client: TestClient, conn: Connection,
                                                   runtime: Runtime,
                                                   staff: dict[str, str]) -> None:
    ask_to_join(conn, runtime, "u1", "小 王")
    csrf = login(client, staff["viewer"])
    page = client.get("/entry")
    assert page.status_code == 200 and "小 王" in page.text
    assert "/approve" not in page.text
    (row,) = client.get("/api/v1/entry/requests").json()
    assert client.post(f"/entry/{row['id']}/approve",
                       data={"csrf_token": csrf}).status_code == 403
