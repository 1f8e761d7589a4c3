"""The WeCom setup page and API: connect a corp (admin only), the callback URL and verify
button, sync, join codes with fill levels, welcome templates; zh-CN and English; bad input."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from qunyun.adapters.platforms.wecom.fake import FakeWecom
from qunyun.adapters.storage.tables import welcome_templates
from qunyun.bootstrap import Runtime, make_wecom_adapter
from qunyun.clock import utcnow
from qunyun.web.app import create_app
from tests.adapters.wecom.conftest import AES_KEY, CORP, SECRET, TOKEN
from tests.dbhelpers import snapshot
from tests.web.conftest import login


@pytest.fixture
def wclient(runtime: Runtime, fake: FakeWecom) -> Iterator[TestClient]:
    runtime.settings = runtime.settings.model_copy(update={
        "wecom_api_base": fake.base_url, "public_url": "https://qunyun.example.com"})
    runtime.adapters["wecom"] = make_wecom_adapter(runtime)
    with TestClient(create_app(runtime), base_url="https://testserver",
                    follow_redirects=False) as c:
        yield c


def test_setup_page_connect_verify_sync_and_join_code(wclient: TestClient, conn: Connection,
                                                       fake: FakeWecom,
                                                       staff: dict[str, str]) -> None:
    fake.add_chat("wrA", "A群", "owner1", members=150)
    fake.add_chat("wrB", "B群", "owner1")
    token = login(wclient, staff["operator"])
    before = snapshot(conn)
    form = {"csrf_token": token, "corp_id": CORP, "agent_id": "1000002", "secret": SECRET,
            "token": TOKEN, "aes_key": AES_KEY}
    assert wclient.post("/wecom/corps", data=form).status_code == 403  # operators may not
    assert snapshot(conn) == before
    token = login(wclient, staff["admin"])
    form["csrf_token"] = token
    assert wclient.post("/wecom/corps", data={**form, "aes_key": "x"}).status_code == 422
    assert wclient.post("/wecom/corps", data=form).status_code == 303
    page = wclient.get("/wecom")
    assert page.status_code == 200 and "企业微信" in page.text
    assert f"https://qunyun.example.com/callbacks/wecom/{CORP}" in page.text
    forged = wclient.get("/wecom", headers={"host": "evil.example"})
    assert "evil.example" not in forged.text  # the Host header never names the callback
    assert SECRET not in page.text
    verified = wclient.post(f"/wecom/corps/{CORP}/verify", data={"csrf_token": token})
    assert verified.status_code == 303
    notice = wclient.get(verified.headers["location"]).text
    assert "回调验证通过" in notice and "API 令牌获取成功" in notice
    synced = wclient.post(f"/wecom/corps/{CORP}/sync", data={"csrf_token": token})
    assert "2 个群" in wclient.get(synced.headers["location"]).text
    r = wclient.post("/wecom/join-codes", data={"csrf_token": token, "corp_id": CORP,
                                                "channel": "poster-a", "groups": "wrA, wrB",
                                                "capacity": "200"})
    assert r.status_code == 303
    page = wclient.get("/wecom").text
    assert "poster-a" in page and "wework.qpic.cn" in page and 'value="0.755"' in page
    r = wclient.post("/wecom/welcome-templates", data={"csrf_token": token, "corp_id": CORP,
                                                       "text": "欢迎加入！"})
    assert r.status_code == 303 and "欢迎加入！" in wclient.get("/wecom").text
    # WeCom refuses a template: nothing is left behind
    fake.inject["externalcontact/group_welcome_template/add"] = [41033]
    refused = wclient.post("/wecom/welcome-templates", data={
        "csrf_token": token, "corp_id": CORP, "text": "第二条欢迎语"})
    assert refused.status_code == 502 and "第二条欢迎语" not in wclient.get("/wecom").text
    # a registration that stopped between WeCom's answer and our write says so
    conn.execute(welcome_templates.insert().values(
        platform="wecom", account=CORP, template_id="pending:abc", text="半途的欢迎语",
        attachment={}, notify=True, created_by="t", created_at=utcnow()))
    page = wclient.get("/wecom").text
    assert "半途的欢迎语" in page and "登记未完成" in page and "pending:abc" not in page
    wclient.post("/lang", data={"lang": "en", "next": "/", "csrf_token": token})
    english = wclient.get("/wecom").text
    assert "Join codes" in english and "Connected corps" in english


def test_api(wclient: TestClient, fake: FakeWecom, staff: dict[str, str],
             conn: Connection) -> None:
    fake.add_chat("wrA", "A群", "owner1")
    login(wclient, staff["admin"])
    token = wclient.get("/wecom").text.split('name="csrf_token" value="')[1].split('"')[0]
    h = {"x-csrf-token": token}
    r = wclient.post("/api/v1/wecom/corps", headers=h, json={
        "corp_id": CORP, "agent_id": 1, "secret": SECRET, "token": TOKEN, "aes_key": AES_KEY})
    assert r.status_code == 201 and r.json()["callback_path"] == f"/callbacks/wecom/{CORP}"
    assert wclient.post(f"/api/v1/wecom/corps/{CORP}/sync", headers=h).json()["groups"] == 1
    checks = wclient.post(f"/api/v1/wecom/corps/{CORP}/verify", headers=h).json()["checks"]
    assert checks == ["回调验证通过 (callback check passed)", "API 令牌获取成功 (access token OK)"]
    tokens_before = len(fake.tokens)
    for role in ("viewer", "sales"):  # the check spends the corp's quota: operators only
        other = TestClient(wclient.app, base_url="https://testserver", follow_redirects=False)
        csrf = login(other, staff[role])
        assert other.post(f"/api/v1/wecom/corps/{CORP}/verify",
                          headers={"x-csrf-token": csrf}).status_code == 403
        assert other.post(f"/wecom/corps/{CORP}/verify",
                          data={"csrf_token": csrf}).status_code == 403
    assert len(fake.tokens) == tokens_before
    code = wclient.post("/api/v1/wecom/join-codes", headers=h, json={
        "corp_id": CORP, "channel": "c1", "groups": ["wrA"]})
    assert code.status_code == 201 and code.json()["chat_ids"] == ["wrA"]
    again = wclient.post("/api/v1/wecom/join-codes", headers=h, json={
        "corp_id": CORP, "channel": "c1", "groups": ["wrA"]})
    assert again.status_code == 409
    assert wclient.post("/api/v1/wecom/join-codes", headers=h, json={
        "corp_id": CORP, "channel": "x" * 31, "groups": ["wrA"]}).status_code == 422
    fake.inject["externalcontact/groupchat/add_join_way"] = [48002]
    refused = wclient.post("/api/v1/wecom/join-codes", headers=h, json={
        "corp_id": CORP, "channel": "c2", "groups": ["wrA"]})
    assert refused.status_code == 502 and "48002" in refused.json()["error"]
    assert len(wclient.get("/api/v1/wecom/join-codes").json()) == 1
    assert wclient.get("/api/v1/wecom/callbacks").json() == []
