from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import audit_log
from tests.web.conftest import csrf_from, login


def test_pages_need_login_and_api_answers_401(client: TestClient) -> None:
    response = client.get("/groups")
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/groups"
    assert client.get("/api/v1/groups").status_code == 401


def test_wrong_password_is_refused_and_audited(client: TestClient, staff: dict[str, str],
                                               conn: Connection) -> None:
    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"username": "admin1", "password": "nope-nope",
                                           "csrf_token": token})
    assert response.status_code == 401 and "用户名或密码错误" in response.text
    actions = conn.execute(select(audit_log.c.action)).scalars().all()
    assert "user.login_failed" in actions


def test_login_shows_chinese_dashboard_and_switches_to_english(client: TestClient,
                                                               staff: dict[str, str]) -> None:
    csrf = login(client, "operator1")
    page = client.get("/")
    assert page.status_code == 200 and "运营概览" in page.text and 'lang="zh-CN"' in page.text
    switched = client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": csrf})
    assert switched.status_code == 303
    assert "Operations overview" in client.get("/").text


def test_post_without_csrf_token_is_refused(client: TestClient, staff: dict[str, str]) -> None:
    login(client, "admin1")
    response = client.post("/logout", data={})
    assert response.status_code == 403
    assert client.get("/").status_code == 200  # still logged in


def test_login_cannot_redirect_off_site(client: TestClient, staff: dict[str, str]) -> None:
    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"username": "admin1", "password": "correct horse 9",
                                           "csrf_token": token, "next": "//evil.example/x"})
    assert response.headers["location"] == "/"
