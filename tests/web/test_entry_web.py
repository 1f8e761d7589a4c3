"""The entry gate's queue on the page and over the API: applicants' words escaped, people
decide with the platform's answer queued, a decided request refused a second decision,
roles held to their rights."""

from __future__ import annotations

import io
import random
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import groups, join_requests, members, outbox
from qunyun.bootstrap import Runtime
from qunyun.clock import utcnow
from qunyun.domain.events import ChatRef, JoinRequested, MemberJoined, PersonRef
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


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (30, 60), (10, 120, 10)).save(buf, "PNG")
    return buf.getvalue()


def test_share_to_join_upload_link_and_review(client: TestClient, conn: Connection,
                                              runtime: Runtime,
                                              staff: dict[str, str]) -> None:
    """The applicant uploads through their own link (no login, CSRF checked); a broken
    file is named and changes nothing; the reviewer sees the picture, staff can attach one
    sent privately, a forged link is a page that says so."""
    ask_to_join(conn, runtime, "u1", HOSTILE)
    token = conn.execute(select(join_requests.c.token)).scalar_one()
    page = client.get(f"/entry/s/{token}")
    assert page.status_code == 200 and "家长群" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    before = snapshot(conn)
    broken = client.post(f"/entry/s/{token}", data={"csrf_token": csrf.group(1)},
                         files={"screenshot": ("a.png", b"not a picture", "image/png")})
    assert broken.status_code == 400 and "截图" in broken.text and "PNG" in broken.text
    forged = client.post(f"/entry/s/{token}", data={"csrf_token": "x"},
                         files={"screenshot": ("a.png", _png(), "image/png")})
    assert forged.status_code == 403
    assert snapshot(conn) == before
    sent = client.post(f"/entry/s/{token}", data={"csrf_token": csrf.group(1)},
                       files={"screenshot": ("a.png", _png(), "image/png")})
    assert sent.status_code == 200 and "等待工作人员审核" in sent.text
    assert client.get("/entry/s/" + "y" * 24).status_code == 404
    staff_csrf = login(client, staff["operator"])
    queue = client.get("/entry")
    (row,) = client.get("/api/v1/entry/requests").json()
    assert row["status"] == "answered" and row["screenshot"]
    assert f"/api/v1/entry/requests/{row['id']}/screenshot.png" in queue.text
    picture = client.get(f"/api/v1/entry/requests/{row['id']}/screenshot.png")
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    again = client.post(f"/api/v1/entry/requests/{row['id']}/screenshot",
                        headers={"x-csrf-token": staff_csrf},
                        files={"screenshot": ("b.jpg", _png(), "image/png")})
    assert again.status_code == 200 and again.json()["status"] == "answered"
    client.post(f"/entry/{row['id']}/approve", data={"csrf_token": staff_csrf})
    closed = client.post(f"/api/v1/entry/requests/{row['id']}/screenshot",
                         headers={"x-csrf-token": staff_csrf},
                         files={"screenshot": ("b.png", _png(), "image/png")})
    assert closed.status_code == 409 and "已通过" in closed.json()["message"]


def test_applications_and_invitation_codes_from_the_page_and_api(
        client: TestClient, conn: Connection, runtime: Runtime,
        staff: dict[str, str]) -> None:
    ask_to_join(conn, runtime, "u1", "小 王")  # makes the group and a known person
    gid = conn.execute(select(groups.c.id).where(groups.c.external_id == "g1")).scalar_one()
    u1, number = conn.execute(select(members.c.id, members.c.number)).one()
    h = {"x-csrf-token": login(client, staff["operator"])}
    # u1's open request is the one asked again: still one request
    made = client.post("/api/v1/entry/requests", headers=h,
                       json={"group_id": gid, "user": "u9", "name": "新朋友",
                             "note": "同事推荐"})
    assert made.status_code == 201 and made.json()["status"] == "pending"
    assert made.json()["bio"] == "同事推荐"
    before = snapshot(conn)
    for bad in ({"group_id": gid}, {"group_id": 999999, "user": "u8"},
                {"group_id": gid, "member_id": 2**63}):
        r = client.post("/api/v1/entry/requests", headers=h, json=bad)
        assert r.status_code in (400, 404, 422), (bad, r.text)
    not_in = client.post("/api/v1/entry/invitations", headers=h,
                         json={"group_id": gid, "member_id": made.json()["member_id"],
                               "account": "demo"})
    assert not_in.status_code == 409 and "不在群" in not_in.json()["message"]
    assert snapshot(conn) == before
    # the page: record an application for a known member, by number
    form = client.post("/entry/apply", data={"csrf_token": h["x-csrf-token"],
                                             "group_id": gid, "member": str(number)})
    assert form.status_code == 303 and "done=applied" in form.headers["location"]
    assert "申请已记录" in client.get(form.headers["location"]).text
    with runtime.uow.write() as c:  # u1 joins; then they can invite
        do_ingest_event(c, MemberJoined(
            platform="sandbox", external_event_id="join:u1", occurred_at=utcnow(),
            chat=ChatRef(external_id="g1"), member=PersonRef(external_id="u1")),
            config=runtime.ingest_config)
    invited = client.post("/entry/invite", data={"csrf_token": h["x-csrf-token"],
                                                 "group_id": gid, "member": str(number),
                                                 "account": "demo"})
    assert invited.status_code == 303
    shown = client.get(invited.headers["location"]).text
    assert "邀请码已生成" in shown and 'id="entry-invite-link"' in shown
    code = client.post("/api/v1/entry/invitations", headers=h,
                       json={"group_id": gid, "member_id": u1,
                             "account": "demo"})
    assert code.status_code == 201 and code.json()["code"] == f"yq{gid}m{number}"
