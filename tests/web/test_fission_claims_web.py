"""The fission loop's follow-ups as people meet them: the claim form a member opens from
the private link (once, without signing in, their words escaped, bad input refused with
nothing written), a fresh link from the rewards list, the public poster address, and the
team's own messages edited on the page, over the API and refused when they name a
placeholder the step does not fill."""

from __future__ import annotations

import csv as csv_module
import re

from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import fission_participants, outbox
from qunyun.bootstrap import Runtime
from qunyun.domain.fission import TEXTS, Stage
from qunyun.services import fission
from qunyun.services.members import member_id_by_number
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.web.conftest import login
from tests.web.test_fission_web import HOSTILE, join

SITE = "https://qy.example"


def _reserved(conn: Connection, runtime: Runtime) -> tuple[int, str]:
    """A campaign whose first participant reached the stage; the claim link the worker sent
    them privately (campaign id, token)."""
    runtime.settings.public_url = SITE
    gid = join(conn, runtime, "j0", "a", name=HOSTILE)
    campaign = fission.do_create_campaign(
        conn, actor=SYSTEM, name=f"邀 1 人领{HOSTILE}", group_ids=[gid], account="demo",
        stages=[Stage(1, "保温杯", 5, 2550)], now=runtime.now())
    cid = int(campaign["id"])
    fission.do_join(runtime.uow, actor=SYSTEM, adapter_for=runtime.adapter, campaign_id=cid,
                    member_id=member_id_by_number(conn, "10001"), now=runtime.now())
    join(conn, runtime, "j1", "b", channel=f"fx{cid}m10001")
    assert fission.follow_up(runtime.uow, adapter_for=runtime.adapter,
                             capabilities=runtime.capabilities, now=runtime.now(),
                             public_url=SITE) == 2  # b welcomed; a's reward followed up
    (text,) = [r.payload["text"] for r in conn.execute(select(outbox.c.payload).where(
        outbox.c.action_type == "send_private"))]
    found = re.search(r"/claim/([A-Za-z0-9_-]+)", text)
    assert found is not None and text.startswith(f"{HOSTILE}，你在")
    return cid, found.group(1)


def test_the_claim_form_takes_the_address_once(client: TestClient, conn: Connection,
                                               runtime: Runtime,
                                               staff: dict[str, str]) -> None:
    cid, token = _reserved(conn, runtime)
    form = client.get(f"/claim/{token}")  # a member: nobody signed in
    assert form.status_code == 200 and "保温杯" in form.text
    assert "<img src=x" not in form.text and "&lt;img src=x" in form.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    before = snapshot(conn)
    bad = client.post(f"/claim/{token}", data={"csrf_token": csrf.group(1), "name": "王小明",
                                              "phone": "call me", "address": "上海市某路 1 号"})
    assert bad.status_code == 400 and "手机号" in bad.text and 'value="王小明"' in bad.text
    forged = client.post(f"/claim/{token}", data={"csrf_token": "x", "name": "王小明",
                                                 "phone": "13800138000", "address": "上海"})
    assert forged.status_code == 403
    broken = client.post(  # a lone surrogate, as a browser would never send but a script may
        f"/claim/{token}", headers={"content-type": "application/x-www-form-urlencoded"},
        content=f"csrf_token={csrf.group(1)}&name=a&phone=13800138000&address=%ED%A0%80xxxx")
    assert broken.status_code == 400 and "无法识别的字符" in broken.text
    assert snapshot(conn) == before
    sent = client.post(f"/claim/{token}", data={
        "csrf_token": csrf.group(1), "name": "=HYPERLINK(\"x\")", "phone": "138 0013 8000",
        "address": "上海市徐汇区某路 1 号"})
    assert sent.status_code == 200 and 'id="claim-done"' in sent.text
    again = client.get(f"/claim/{token}")
    assert again.status_code == 409 and "已经填写过" in again.text
    assert client.post(f"/claim/{token}", data={
        "csrf_token": csrf.group(1), "name": "x", "phone": "13800138000",
        "address": "somewhere else"}).status_code == 409
    assert client.get("/claim/not-a-token").status_code == 404
    assert client.get("/claim/" + "A" * 40).status_code == 404
    # staff see it in the rewards list; the warehouse file keeps the name inert
    login(client, staff["operator"])
    page = client.get(f"/fission/{cid}")
    assert "138 0013 8000" in page.text and "某路 1 号" in page.text
    csv = client.get(f"/api/v1/fission/campaigns/{cid}/rewards", params={"format": "csv"})
    assert "'=HYPERLINK" in csv.content.decode("utf-8-sig")
    header, row = csv.content.decode("utf-8-sig").splitlines()[:2]
    assert header.split(",")[5:8] == ["收件人", "收件手机", "收货地址"]
    assert len(next(csv_module.reader([row]))) == len(header.split(","))
    report = client.get(f"/api/v1/fission/campaigns/{cid}/report").json()
    assert report["rewards"]["claimed"] == 1
    assert report["cost"] == {"total_cents": 2550, "per_valid_newcomer_cents": 2550}


def test_a_viewer_sees_the_address_masked(client: TestClient, conn: Connection,
                                         runtime: Runtime, staff: dict[str, str]) -> None:
    cid, token = _reserved(conn, runtime)
    fission.do_claim(conn, token=token, name="王小明", phone="13800138000",
                     address="上海市徐汇区漕溪北路 1 号", now=runtime.now())
    login(client, staff["viewer"])
    page = client.get(f"/fission/{cid}").text
    assert "138****8000" in page and "漕溪北路" not in page and "王**" in page
    rows = client.get(f"/api/v1/fission/campaigns/{cid}/rewards").json()
    assert rows[0]["claim"] == {"name": "王**", "phone": "138****8000", "address": "上海市****"}
    assert "claim_hash" not in rows[0]


def test_a_fresh_claim_link_replaces_the_old(client: TestClient, conn: Connection,
                                             runtime: Runtime, staff: dict[str, str]) -> None:
    cid, token = _reserved(conn, runtime)
    csrf = login(client, staff["operator"])
    assert "领奖私信排队发送中" in client.get(f"/fission/{cid}").text  # queued, not yet out
    (reward_id,) = [r["id"] for r in fission.list_rewards(conn, actor=SYSTEM, campaign_id=cid)]
    page = client.post(f"/fission/rewards/{reward_id}/claim-link", data={"csrf_token": csrf})
    assert page.status_code == 200 and 'id="claim-link"' in page.text
    fresh = re.search(rf"{SITE}/claim/([A-Za-z0-9_-]+)", page.text)
    assert fresh is not None and fresh.group(1) != token
    assert client.get(f"/claim/{token}").status_code == 404
    assert client.get(f"/claim/{fresh.group(1)}").status_code == 200
    api = client.post(f"/api/v1/fission/rewards/{reward_id}/claim-link",
                      headers={"x-csrf-token": csrf})
    assert api.status_code == 200 and api.json()["link"].startswith(f"{SITE}/claim/")
    assert client.get(f"/claim/{fresh.group(1)}").status_code == 404
    fission.do_update_reward(conn, actor=SYSTEM, reward_id=reward_id, status="cancelled",
                             now=runtime.now())
    assert client.post(f"/api/v1/fission/rewards/{reward_id}/claim-link",
                       headers={"x-csrf-token": csrf}).status_code == 409


def test_the_public_poster_address(client: TestClient, conn: Connection,
                                   runtime: Runtime) -> None:
    cid, _ = _reserved(conn, runtime)
    (token,) = [p for (p,) in conn.execute(
        select(fission_participants.c.token).where(
            fission_participants.c.campaign_id == cid,
            fission_participants.c.member_id == member_id_by_number(conn, "10001")))]
    png = client.get(f"/fission/p/{token}.png")  # nobody signed in: a platform fetches it
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert client.get("/fission/p/nope.png").status_code == 404
    assert client.get("/fission/p/" + "B" * 22 + ".png").status_code == 404


def test_the_teams_own_messages(client: TestClient, conn: Connection, runtime: Runtime,
                                staff: dict[str, str]) -> None:
    cid, _ = _reserved(conn, runtime)
    csrf = login(client, staff["operator"])
    page = client.get(f"/fission/{cid}").text
    assert 'id="text-welcome"' in page and "{invites}" in page
    before = snapshot(conn)
    bad = client.post(f"/fission/{cid}/texts", data={
        "csrf_token": csrf, "text_progress": "@{name} 还差 {lft} 人"})
    assert bad.status_code == 422 and "{lft}" in bad.text and "{left}" in bad.text
    assert snapshot(conn) == before
    saved = client.post(f"/fission/{cid}/texts", data={
        "csrf_token": csrf, "text_progress": "@{name} 还差 {left} 人拿「{reward}」",
        "text_welcome": TEXTS["welcome"], "completers_tag": "完成/春季"})
    assert saved.status_code == 303
    campaign = client.get(f"/api/v1/fission/campaigns/{cid}").json()
    assert campaign["texts"] == {"progress": "@{name} 还差 {left} 人拿「{reward}」"}
    assert (campaign["completers_tag"], campaign["enrol_newcomers"]) == ("完成/春季", False)
    h = {"x-csrf-token": csrf}
    patched = client.patch(f"/api/v1/fission/campaigns/{cid}", headers=h, json={
        "texts": {"progress": ""}, "enrol_newcomers": True})
    assert patched.status_code == 200 and patched.json()["texts"] == {}
    assert patched.json()["enrol_newcomers"] is True
    assert client.patch(f"/api/v1/fission/campaigns/{cid}", headers=h, json={
        "texts": {"farewell": "bye"}}).status_code == 422
