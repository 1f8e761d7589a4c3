from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from qunyun.bootstrap import Runtime
from qunyun.services import users
from qunyun.services.users import SYSTEM
from qunyun.web.app import create_app

PASSWORD = "correct horse 9"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), follow_redirects=False) as c:
        yield c


@pytest.fixture
def staff(conn: Connection) -> dict[str, str]:
    """One account per role; returns role -> username."""
    made = {}
    for role in ("admin", "operator", "sales", "viewer"):
        users.do_create_user(conn, actor=SYSTEM, username=f"{role}1", password=PASSWORD,
                             role=role)
        made[role] = f"{role}1"
    return made


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    page = client.get("/login")
    token = csrf_from(page.text)
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token, "next": "/"})
    assert response.status_code == 303, response.text
    return csrf_from(client.get("/").text)
