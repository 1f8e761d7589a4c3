"""The share task (seeds 001/002: share the poster to Moments, show a screenshot, a person
checks it): the member's upload link on a phone-sized page without signing in, the review
queue on the campaign's page and over the API, the member told privately either way, the
stock held when screenshots are approved, and bad uploads refused with nothing written."""

from __future__ import annotations

import io
import os
import re

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import fission_participants, outbox
from qunyun.bootstrap import Runtime
from qunyun.domain.fission import parse_stage
from qunyun.services import fission
from qunyun.services.members import member_id_by_number
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.web.conftest import login
from tests.web.test_fission_web import join

SITE = "https://qy.example"


def png(size: tuple[int, int] = (60, 100), noise: bool = False) -> bytes:
    """A screenshot-like picture (random pixels compress badly, like a real one)."""
    image = (Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)) if noise
             else Image.new("RGB", size, "#88aa99"))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _campaign(conn: Connection, runtime: Runtime) -> tuple[int, dict[str, str]]:
    """A campaign with a share task (stock 1) and two participants: their upload tokens."""
    runtime.settings.public_url = SITE
    gid = join(conn, runtime, "j0", "a", name="小红")
    join(conn, runtime, "j1", "b", name="小蓝")
    campaign = fission.do_create_campaign(
        conn, actor=SYSTEM, name="分享领电子书", group_ids=[gid], account="demo",
        stages=[parse_stage("3:资料包:10"), parse_stage("share:电子书:1:2")], now=runtime.now())
    cid = int(campaign["id"])
    tokens = {}
    for number in ("10001", "10002"):
        member_id = member_id_by_number(conn, number)
        fission.do_join(runtime.uow, actor=SYSTEM, adapter_for=runtime.adapter, campaign_id=cid,
                        member_id=member_id, now=runtime.now())
        tokens[number] = conn.execute(select(fission_participants.c.token).where(
            fission_participants.c.member_id == member_id)).scalar_one()
    return cid, tokens


def _upload(client: TestClient, token: str, data: bytes) -> tuple[int, str]:
    page = client.get(f"/fission/s/{token}")
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)  # the session's, on every page
    assert csrf is not None, page.text
    sent = client.post(f"/fission/s/{token}", data={"csrf_token": csrf.group(1)},
                       files={"screenshot": ("shot.png", data, "image/png")})
    return sent.status_code, sent.text


def _private(conn: Connection) -> list[str]:
    return [p["text"] for p in conn.execute(select(outbox.c.payload).where(
        outbox.c.action_type == "send_private").order_by(outbox.c.id)).scalars()]


def test_a_screenshot_is_uploaded_reviewed_and_rewarded(client: TestClient, conn: Connection,
                                                        runtime: Runtime,
                                                        staff: dict[str, str]) -> None:
    cid, tokens = _campaign(conn, runtime)
    page = client.get(f"/fission/s/{tokens['10001']}")
    assert page.status_code == 200 and "电子书" in page.text and 'id="share-form"' in page.text
    before = snapshot(conn)
    assert _upload(client, tokens["10001"], b"<svg onload=alert(1)>")[0] == 400
    code, text = _upload(client, tokens["10001"], b"")
    assert code == 400 and "截图" in text
    assert snapshot(conn) == before
    # a phone's screenshot is bigger than a form: 2–5 MB pass, more is refused whole
    big = png((1000, 1000), noise=True)
    assert 2_500_000 < len(big) < 5_000_000
    code, text = _upload(client, tokens["10001"], big)
    assert code == 200 and 'id="share-sent"' in text
    assert client.post(f"/fission/s/{tokens['10001']}",
                       files={"screenshot": ("x.png", b"0" * 6_000_000, "image/png")}
                       ).status_code == 413
    again = _upload(client, tokens["10001"], png())
    assert again[0] == 409 and "待审核" in again[1]
    assert 'id="share-pending"' in client.get(f"/fission/s/{tokens['10001']}").text
    assert client.get("/fission/s/not-a-real-token-at-all").status_code == 404

    csrf = login(client, staff["operator"])
    board = client.get(f"/fission/{cid}")
    (shot_id,) = [int(i) for i in re.findall(r'id="shot-(\d+)"', board.text)]
    picture = client.get(f"/fission/shots/{shot_id}.png")
    assert picture.status_code == 200 and picture.content[:4] == b"\x89PNG"
    assert Image.open(io.BytesIO(picture.content)).size == (1000, 1000)
    before = snapshot(conn)
    assert client.post(f"/fission/shots/{shot_id}", data={
        "csrf_token": csrf, "decision": "decline"}).status_code == 422  # no reason given
    assert snapshot(conn) == before
    assert client.post(f"/fission/shots/{shot_id}", data={
        "csrf_token": csrf, "decision": "decline", "reason": "看不到海报"}).status_code == 303
    (told,) = _private(conn)
    assert told.startswith("小红，你的分享截图没有通过审核：看不到海报")
    assert f"{SITE}/fission/s/{tokens['10001']}" in told
    assert "看不到海报" in client.get(f"/fission/s/{tokens['10001']}").text
    # the member uploads again; approved, the reward is reserved and they are told
    client.post("/logout", data={"csrf_token": csrf})
    assert _upload(client, tokens["10001"], png())[0] == 200
    csrf = login(client, staff["operator"])
    (second,) = [int(i) for i in re.findall(r'id="shot-(\d+)"', client.get(
        f"/fission/{cid}").text)]
    assert client.post(f"/fission/shots/{second}", data={
        "csrf_token": csrf, "decision": "approve"}).status_code == 303
    assert _private(conn)[-1].startswith("小红，你的分享截图通过了审核，获得「电子书」")
    assert client.post(f"/fission/shots/{second}", data={
        "csrf_token": csrf, "decision": "approve"}).status_code == 409
    report = client.get(f"/api/v1/fission/campaigns/{cid}/report").json()
    assert report["completed"] == 1 and report["stages"][1]["left"] == 0
    assert report["cost"]["total_cents"] == 200
    # the second participant's screenshot, sent to staff privately and submitted for them
    # over the API: approved after the stock ran out, they hear so
    h = {"x-csrf-token": csrf}
    made = client.post(f"/api/v1/fission/campaigns/{cid}/shots", headers=h,
                       data={"member_id": str(member_id_by_number(conn, "10002"))},
                       files={"screenshot": ("s.jpg", png(), "image/png")})
    assert made.status_code == 201, made.text
    queue = client.get(f"/api/v1/fission/campaigns/{cid}/shots", headers=h).json()
    assert [s["id"] for s in queue] == [made.json()["id"]]
    decided = client.post(f"/api/v1/fission/shots/{made.json()['id']}", headers=h,
                          json={"approve": True})
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    assert "「电子书」已经发完了" in _private(conn)[-1]
    assert "邀请" not in _private(conn)[-1]  # a share task counts no invites
    rewards = {r["status"] for r in fission.list_rewards(conn, actor=SYSTEM, campaign_id=cid)}
    assert rewards == {"reserved", "sold_out"}
    assert len(client.get(f"/api/v1/fission/campaigns/{cid}/shots", headers=h,
                          params={"status": ""}).json()) == 3


def test_a_viewer_sees_the_queue_but_cannot_decide(client: TestClient, conn: Connection,
                                                  runtime: Runtime,
                                                  staff: dict[str, str]) -> None:
    cid, tokens = _campaign(conn, runtime)
    assert _upload(client, tokens["10002"], png())[0] == 200
    csrf = login(client, staff["viewer"])
    board = client.get(f"/fission/{cid}").text
    (shot_id,) = re.findall(r'id="shot-(\d+)"', board)
    assert 'value="approve"' not in board
    assert client.post(f"/fission/shots/{shot_id}", data={
        "csrf_token": csrf, "decision": "approve"}).status_code == 403
    assert client.get(f"/fission/shots/{shot_id}.png").status_code == 200


def test_without_a_share_task_the_page_shows_progress_only(client: TestClient,
                                                           conn: Connection,
                                                           runtime: Runtime) -> None:
    """The participant's own page: their valid invites and the next stage (on WeCom, where
    no bot may tell them, this is where they look); no upload form without a share task."""
    gid = join(conn, runtime, "j0", "a")
    cid = int(fission.do_create_campaign(
        conn, actor=SYSTEM, name="只邀请", group_ids=[gid], account="demo",
        stages=[parse_stage("3:资料包:10")], now=runtime.now())["id"])
    code = fission.do_join(runtime.uow, actor=SYSTEM, adapter_for=runtime.adapter,
                           campaign_id=cid, member_id=member_id_by_number(conn, "10001"),
                           now=runtime.now())["code"]
    join(conn, runtime, "j1", "b", channel=code)
    token = conn.execute(select(fission_participants.c.token)).scalar_one()
    page = client.get(f"/fission/s/{token}")
    assert page.status_code == 200 and 'id="share-form"' not in page.text
    assert "你已有效邀请 1 人。" in page.text and "再邀请 2 人可得「资料包」" in page.text
    code_, text = _upload(client, token, png())
    assert code_ == 409 and "没有分享截图任务" in text


def test_a_rehearsal_from_the_page_and_the_api(client: TestClient, conn: Connection,
                                              runtime: Runtime, staff: dict[str, str]) -> None:
    cid, _tokens = _campaign(conn, runtime)
    csrf = login(client, staff["operator"])
    page = client.get(f"/fission/{cid}").text
    assert 'id="rehearse-form"' in page
    made = client.post(f"/fission/{cid}/rehearse", data={
        "csrf_token": csrf, "seeds": "6", "share": "80", "friends": "2", "leave": "10",
        "days": "1"})
    assert made.status_code == 303
    rehearsal = client.get(made.headers["location"])
    assert rehearsal.status_code == 200 and "彩排·分享领电子书" in rehearsal.text
    before = snapshot(conn)
    bad = client.post(f"/fission/{cid}/rehearse", data={"csrf_token": csrf, "seeds": "x"})
    assert bad.status_code == 422 and "只能填数字" in bad.text
    api = client.post(f"/api/v1/fission/campaigns/{cid}/rehearse",
                      headers={"x-csrf-token": csrf}, json={"share": 3})
    assert api.status_code == 422
    assert snapshot(conn) == before
    out = client.post(f"/api/v1/fission/campaigns/{cid}/rehearse",
                      headers={"x-csrf-token": csrf},
                      json={"seeds": 4, "days": 1, "share": 1, "friends": 1}).json()
    assert out["report"]["participants"] >= 4 and out["source_id"] == cid
