"""Referral campaigns on the pages and over the API: create, make a member's code, joins
through it credited and reported, names escaped, bad input refused with nothing written,
roles held to their rights."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Connection

from qunyun.bootstrap import Runtime
from qunyun.services import fission
from qunyun.services.ingest import do_ingest_event
from qunyun.services.members import member_id_by_number
from tests.dbhelpers import snapshot
from tests.factories import event, raw_join
from tests.web.conftest import login

HOSTILE = '<img src=x onerror=alert(1)>"'


def join(conn: Connection, runtime: Runtime, eid: str, user: str, name: str = "",
         channel: str = "") -> int:
    ev = event(raw_join(eid, "g1", user, name=name or user, scene="qr" if channel else "invite",
                        channel=channel))
    result = do_ingest_event(conn, ev, config=runtime.ingest_config, received_at=ev.occurred_at)
    assert result.group_id is not None
    # the worker settles invites due (a campaign valid at once: within seconds)
    fission.validate_due(conn, now=ev.occurred_at, capabilities=runtime.capabilities)
    return result.group_id


def test_a_campaign_from_the_page_credits_joins_and_reports(client: TestClient,
                                                            conn: Connection,
                                                            runtime: Runtime,
                                                            staff: dict[str, str]) -> None:
    gid = join(conn, runtime, "j0", "a", name=HOSTILE)
    csrf = login(client, staff["operator"])
    assert "还没有裂变活动" in client.get("/fission").text
    before = snapshot(conn)
    bad = client.post("/fission", data={"csrf_token": csrf, "name": "x", "group_ids": [str(gid)],
                                        "stages": "3:保温杯", "account": "demo"})
    assert bad.status_code == 422 and "人数:奖品:库存" in bad.text
    assert snapshot(conn) == before
    made = client.post("/fission", data={
        "csrf_token": csrf, "name": "邀请 2 人领保温杯", "group_ids": [str(gid)],
        "stages": "2:保温杯:5\n4:训练营名额:1", "valid_hours": "0", "account": "demo"})
    assert made.status_code == 303
    page_url = made.headers["location"]
    cid = int(page_url.rsplit("/", 1)[1])
    code = client.post(f"{page_url}/participants", data={"csrf_token": csrf, "number": "10001"})
    assert code.status_code == 303 and f"fx{cid}m10001" in code.headers["location"]
    join(conn, runtime, "j1", "b", channel=f"fx{cid}m10001")
    join(conn, runtime, "j2", "c", channel=f"fx{cid}m10001")
    page = client.get(page_url)
    assert page.status_code == 200
    assert "<img src=x" not in page.text and "&lt;img src=x" in page.text
    assert "有效邀请 2 人" in page.text and "待发放" in page.text and "保温杯" in page.text
    report = client.get(f"/api/v1/fission/campaigns/{cid}/report").json()
    assert (report["valid_invites"], report["completed"]) == (2, 1)
    assert report["stages"][0]["left"] == 4
    listed = client.get("/fission").text
    assert "邀请 2 人得「保温杯」（剩 4）" in listed
    # the poster: the participant's picture, the editor's live preview, a layout saved
    poster = client.get(f"{page_url}/poster", params={"number": "10001"})
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/png"
    assert poster.content[:8] == b"\x89PNG\r\n\x1a\n"
    preview = client.get(f"{page_url}/poster-preview", params={"qr_x": "30", "qr_y": "30",
                                                               "qr_size": "200"})
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
    assert client.get(f"{page_url}/poster-preview", params={"qr_x": "abc"}).status_code == 422
    before = snapshot(conn)
    bad = client.post(f"{page_url}/poster", data={"csrf_token": csrf, "qr_x": "10"},
                      files={"background": ("x.svg", b"<svg onload=alert(1)>",
                                            "image/svg+xml")})
    assert bad.status_code == 422 and "PNG" in bad.text
    assert snapshot(conn) == before
    saved = client.post(f"{page_url}/poster", data={"csrf_token": csrf, "qr_x": "40",
                                                    "qr_y": "40", "color": "#aa0000"})
    assert saved.status_code == 303
    assert client.get(f"/api/v1/fission/campaigns/{cid}").json()["poster"]["qr"]["x"] == 40
    assert 'id="poster-preview"' in client.get(page_url).text


def test_the_api_creates_pauses_and_refuses(client: TestClient, conn: Connection,
                                           runtime: Runtime, staff: dict[str, str]) -> None:
    gid = join(conn, runtime, "j0", "a")
    h = {"x-csrf-token": login(client, staff["operator"])}
    made = client.post("/api/v1/fission/campaigns", headers=h, json={
        "name": "春季裂变", "group_ids": [gid], "account": "demo",
        "stages": [{"invites": 3, "reward": "资料包", "stock": 100}]})
    assert made.status_code == 201 and made.json()["status"] == "active"
    cid = made.json()["id"]
    joined = client.post(f"/api/v1/fission/campaigns/{cid}/participants", headers=h,
                         json={"member_id": member_id_by_number(conn, 10001)})
    assert joined.status_code == 201 and joined.json()["code"] == f"fx{cid}m10001"
    assert client.post(f"/api/v1/fission/campaigns/{cid}/pause",
                       headers=h).json()["status"] == "paused"
    assert client.post(f"/api/v1/fission/campaigns/{cid}/end",
                       headers=h).json()["status"] == "ended"
    before = snapshot(conn)
    again = client.post(f"/api/v1/fission/campaigns/{cid}/resume", headers=h)
    assert again.status_code == 409
    assert client.get("/api/v1/fission/campaigns/999").status_code == 404
    stages = client.post("/api/v1/fission/campaigns", headers=h, json={
        "name": "x", "group_ids": [gid], "account": "demo",
        "stages": [{"invites": 3, "reward": "a", "stock": 1},
                   {"invites": 2, "reward": "b", "stock": 1}]})
    assert stages.status_code == 422
    assert snapshot(conn) == before


def test_a_viewer_reads_the_report_but_changes_nothing(client: TestClient, conn: Connection,
                                                      runtime: Runtime,
                                                      staff: dict[str, str]) -> None:
    gid = join(conn, runtime, "j0", "a")
    h = {"x-csrf-token": login(client, staff["operator"])}
    cid = client.post("/api/v1/fission/campaigns", headers=h, json={
        "name": "春季裂变", "group_ids": [gid], "account": "demo",
        "stages": [{"invites": 3, "reward": "资料包", "stock": 100}]}).json()["id"]
    client.post("/logout", data={"csrf_token": h["x-csrf-token"]})
    csrf = login(client, staff["viewer"])
    page = client.get(f"/fission/{cid}")
    assert page.status_code == 200 and "生成专属码" not in page.text
    assert client.post(f"/fission/{cid}/status", data={"csrf_token": csrf,
                                                        "status": "ended"}).status_code == 403
