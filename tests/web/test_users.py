"""Staff accounts as an attacker and an admin meet them: sessions that really end, tokens
that expire and can be revoked, the login back-off, CSRF with stray Authorization headers."""

from __future__ import annotations

import base64
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import audit_log, staff_sessions
from qunyun.clock import utcnow
from qunyun.services import users
from qunyun.services.users import SYSTEM
from tests.web.conftest import PASSWORD, csrf_from, login

NEW = "a quieter password 7"


def signed_in(client: TestClient) -> bool:
    return client.get("/").status_code == 200


def test_logout_ends_the_session_a_copied_cookie_carried(client: TestClient,
                                                         staff: dict[str, str]) -> None:
    csrf = login(client, "operator1")
    copied = dict(client.cookies)
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    thief = TestClient(client.app, follow_redirects=False, cookies=copied)
    assert thief.get("/").status_code == 303  # back to the login page
    assert thief.get("/api/v1/me").status_code == 401


def test_password_change_ends_other_sessions_and_keeps_this_one(
        client: TestClient, staff: dict[str, str], conn: Connection) -> None:
    other = TestClient(client.app, follow_redirects=False)
    login(other, "sales1")
    csrf = login(client, "sales1")
    page = client.get("/account")
    sessions = page.text.split('id="sessions"')[1].split("</table>")[0]
    assert page.status_code == 200 and sessions.count("<tr>") == 3  # header + two sessions
    wrong = client.post("/account/password", data={
        "csrf_token": csrf, "current_password": "nope", "new_password": NEW, "again": NEW})
    assert wrong.status_code == 422 and "current_password" in wrong.text
    weak = client.post("/account/password", data={
        "csrf_token": csrf, "current_password": PASSWORD, "new_password": "abcdefgh",
        "again": "abcdefgh"})
    assert weak.status_code == 422 and signed_in(other)
    done = client.post("/account/password", data={
        "csrf_token": csrf, "current_password": PASSWORD, "new_password": NEW, "again": NEW})
    assert done.status_code == 200 and "密码已修改" in done.text
    assert signed_in(client) and not signed_in(other)
    reasons = conn.execute(select(staff_sessions.c.end_reason)
                           .where(staff_sessions.c.ended_at.is_not(None))).scalars().all()
    assert reasons == ["password"]
    fresh = TestClient(client.app, follow_redirects=False)
    login(fresh, "sales1", NEW)


def test_admin_role_change_and_disable_sign_the_account_out(
        client: TestClient, staff: dict[str, str], conn: Connection) -> None:
    victim = TestClient(client.app, follow_redirects=False)
    login(victim, "operator1")
    token = users.do_create_api_token(conn, actor=SYSTEM, username="operator1")
    bearer = {"Authorization": f"Bearer {token}"}
    csrf = login(client, "admin1")
    changed = client.post("/users/operator1", data={"csrf_token": csrf, "action": "role",
                                                     "role": "viewer"})
    assert changed.status_code == 200 and "角色已修改" in changed.text
    assert not signed_in(victim)
    assert client.get("/api/v1/me", headers=bearer).json()["role"] == "viewer"
    login(victim, "operator1")
    disabled = client.post("/users/operator1", data={"csrf_token": csrf, "action": "disable"})
    assert disabled.status_code == 200 and "已停用" in disabled.text
    assert not signed_in(victim)
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    page = victim.get("/login")
    refused = victim.post("/login", data={"username": "operator1", "password": PASSWORD,
                                          "csrf_token": csrf_from(page.text), "next": "/"})
    assert refused.status_code == 401
    # the last active admin cannot lock everyone out
    alone = client.post("/users/admin1", data={"csrf_token": csrf, "action": "disable"})
    assert alone.status_code == 422 and "唯一在用的管理员" in alone.text
    api = client.patch("/api/v1/users/admin1", json={"role": "viewer"},
                       headers={"X-CSRF-Token": csrf})
    assert api.status_code == 409 and signed_in(client)


def test_tokens_expire_and_can_be_revoked(client: TestClient, staff: dict[str, str],
                                          conn: Connection) -> None:
    old = users.do_create_api_token(conn, actor=SYSTEM, username="viewer1", days=1,
                                    now=utcnow() - timedelta(days=2))
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {old}"}
                      ).status_code == 401
    script = users.do_create_api_token(conn, actor=SYSTEM, username="viewer1", label="报表脚本")
    mine = {"Authorization": f"Bearer {script}"}
    made = client.post("/api/v1/tokens", headers=mine, json={"label": "手机", "days": 7})
    assert made.status_code == 201 and made.json()["token"].startswith("qy_")
    listed = client.get("/api/v1/tokens", headers=mine).json()
    assert [(t["label"], t["live"]) for t in listed] == [("手机", True), ("报表脚本", True),
                                                         ("", False)]
    # a viewer may not mint tokens for others nor revoke theirs
    assert client.post("/api/v1/tokens", headers=mine,
                       json={"username": "admin1"}).status_code == 403
    admin_token = users.do_create_api_token(conn, actor=SYSTEM, username="admin1")
    admins = [t["id"] for t in users.list_tokens(conn, actor=SYSTEM, username="admin1")]
    assert client.delete(f"/api/v1/tokens/{admins[0]}", headers=mine).status_code == 404
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {admin_token}"}
                      ).status_code == 200
    assert client.post("/api/v1/tokens", headers=mine, json={"days": 0}).status_code == 422
    assert client.delete(f"/api/v1/tokens/{listed[1]['id']}", headers=mine).status_code == 204
    assert client.get("/api/v1/me", headers=mine).status_code == 401


def test_account_page_makes_and_revokes_a_token(client: TestClient,
                                                staff: dict[str, str]) -> None:
    csrf = login(client, "viewer1")
    made = client.post("/account/tokens", data={"csrf_token": csrf, "label": "<b>x</b>",
                                                "days": "30"})
    assert made.status_code == 200 and 'id="new-token"' in made.text
    assert "&lt;b&gt;x&lt;/b&gt;" in made.text and "<b>x</b>" not in made.text
    token = made.text.split("<code>")[1].split("</code>")[0]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}
                      ).json()["username"] == "viewer1"
    bad = client.post("/account/tokens", data={"csrf_token": csrf, "days": "999"})
    assert bad.status_code == 422


def test_login_backs_off_per_account_and_client(client: TestClient, staff: dict[str, str],
                                                conn: Connection) -> None:
    page = client.get("/login")
    csrf = csrf_from(page.text)

    def attempt(username: str, password: str = "wrong password") -> int:
        return client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": csrf, "next": "/"}).status_code

    assert [attempt("viewer1") for _ in range(5)] == [401] * 5
    blocked = client.post("/login", data={"username": "viewer1", "password": PASSWORD,
                                          "csrf_token": csrf, "next": "/"})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 29
    assert "秒后再试" in blocked.text
    # another account from the same client still signs in (the client has 20 free failures)
    assert attempt("sales1", PASSWORD) == 303
    failed = conn.execute(select(audit_log.c.actor).where(
        audit_log.c.action == "user.login_failed")).scalars().all()
    assert failed == ["user:viewer1"] * 5  # the blocked try checked no password
    page = client.get("/login")
    csrf = csrf_from(page.text)
    codes = [attempt(f"guess{i}") for i in range(15)]  # 5 + 15: the client's 20 free ones
    assert codes == [401] * 15
    assert attempt("admin1", PASSWORD) == 429  # this client now waits, whoever it names


def test_csrf_is_not_skipped_for_basic_credentials(client: TestClient,
                                                   staff: dict[str, str]) -> None:
    login(client, "operator1")
    basic = {"Authorization": "Basic " + base64.b64encode(b"proxy:secret").decode()}
    refused = client.post("/api/v1/ingest/sandbox", headers=basic,
                          json={"type": "join", "id": "e", "chat": "g", "user": "u"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    wrong_bearer = {"Authorization": "Bearer qy_not_a_token"}
    assert client.post("/api/v1/ingest/sandbox", headers=wrong_bearer,
                       json={"type": "join", "id": "e", "chat": "g", "user": "u"}
                       ).status_code == 401
