"""Paging, sorting and search on the pages and the API: totals, sortable headings that keep
the search, refusals that name the parameter (never a 500)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from qunyun.bootstrap import Runtime
from qunyun.services import tasks
from tests.integration.test_listing import fill, g1
from tests.web.conftest import login


def numbers(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<a href="/members/\d+">(\d+)</a>', html)]


def test_members_page_pages_sorts_and_keeps_the_search(client: TestClient, conn: Connection,
                                                       runtime: Runtime,
                                                       staff: dict[str, str]) -> None:
    fill(conn, runtime)
    login(client, staff["viewer"])
    page = client.get("/members?per_page=10")
    assert page.status_code == 200 and numbers(page.text)[:3] == [10001, 10002, 10003]
    assert "第 1–10 条，共 24 条" in page.text and "第 1/3 页" in page.text
    assert 'rel="next"' in page.text and 'rel="prev"' not in page.text
    assert "员工" in page.text  # the owner is marked
    last = client.get("/members?per_page=10&page=3")
    assert numbers(last.text) == [10021, 10022, 10023, 10024] and 'rel="next"' not in last.text
    desc = client.get("/members?sort=number&order=desc&q=%E5%B0%8F")  # q=小
    assert numbers(desc.text) == sorted(numbers(desc.text), reverse=True)
    assert len(numbers(desc.text)) == 5  # 小"王"0, 8, 16 and 王小二7, 15
    # the heading that sorts by name keeps the search and goes back to page 1
    link = re.search(r'<a class="sort" href="([^"]+)"[^>]*>昵称', desc.text)
    assert link and "q=%E5%B0%8F" in link.group(1) and "sort=name" in link.group(1)
    customers = client.get("/members?who=customers")
    assert "员工</span>" not in customers.text and "共 23 条" in customers.text


def test_group_page_lists_its_members_in_pages(client: TestClient, conn: Connection,
                                               runtime: Runtime, staff: dict[str, str]) -> None:
    fill(conn, runtime, count=12)
    login(client, staff["viewer"])
    page = client.get(f"/groups/{g1(conn)}?per_page=5&q=%E6%B5%B7%E6%8A%A51")  # q=海报1
    assert page.status_code == 200 and "共 4 条" in page.text
    assert len(re.findall(r"<td>海报1</td>", page.text)) == 4


def test_api_lists_carry_the_total_and_refuse_bad_paging(client: TestClient, conn: Connection,
                                                          runtime: Runtime,
                                                          staff: dict[str, str]) -> None:
    fill(conn, runtime)
    for i in range(3):
        tasks.create_task(conn, kind="manual", title=f"移出广告号{i}", reason="平台不能自动移出",
                          now=runtime.now())
    login(client, staff["viewer"])
    r = client.get("/api/v1/members?per_page=5&page=2&sort=name")
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "24" and len(r.json()) == 5
    assert r.headers["X-Page"] == "2"
    assert [m["staff"] for m in client.get("/api/v1/members?who=staff").json()] == [True]
    r = client.get(f"/api/v1/groups/{g1(conn)}/members?q=10003")
    assert r.headers["X-Total-Count"] == "1" and r.json()[0]["number"] == 10003
    r = client.get("/api/v1/tasks?per_page=2")
    assert r.headers["X-Total-Count"] == "3" and len(r.json()) == 2
    assert client.get("/api/v1/outbox").headers["X-Total-Count"] == "0"
    assert client.get("/api/v1/moderation/decisions?q=x").headers["X-Total-Count"] == "0"
    assert client.get("/api/v1/deliveries").headers["X-Total-Count"] == "0"


@pytest.mark.parametrize("query,word", [
    ("page=0", "page"), ("page=100000000000000000000", "page"),
    ("page=99999999999999999999999999999999", "page"), ("per_page=100000", "per page"),
    ("sort=password", "sort"), ("order=up", "order"), ("who=boss", "who"),
])
def test_bad_paging_is_a_named_4xx_on_pages_and_api(client: TestClient,
                                                    staff: dict[str, str],
                                                    query: str, word: str) -> None:
    login(client, staff["viewer"])
    api = client.get(f"/api/v1/members?{query}")
    assert api.status_code == 422 and word in api.json()["error"]
    page = client.get(f"/members?{query}")
    assert page.status_code == 422 and "Traceback" not in page.text
    for path in ("/tasks", "/outbox", "/automation/moderation", "/content/deliveries",
                 "/api/v1/deliveries"):
        if "who" not in query:
            assert client.get(f"{path}?{query}").status_code == 422


def test_channel_report_page_api_and_csv(client: TestClient, conn: Connection,
                                         runtime: Runtime, staff: dict[str, str]) -> None:
    from tests.integration.test_channel_report import story

    story(conn, runtime)
    login(client, staff["viewer"])
    page = client.get("/activities/channels")
    assert page.status_code == 200
    assert "按首次触点归因" in page.text and "带来报名最多的是 海报A" in page.text
    assert "全部时间进群的成员" in page.text and 'id="chart-channels"' in page.text
    last = client.get("/activities/channels?model=last")
    assert "带来报名最多的是 海报B" in last.text and "按末次触点归因" in last.text
    sheet = client.get("/activities/channels?model=first&by=inviter&format=csv")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    text = sheet.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("邀请人,新成员,报名")
    assert '小""王""（10001）' in text  # quoted as CSV, never a formula
    api = client.get("/api/v1/reports/channels?model=last").json()
    assert api["model"] == "last" and api["lines"][0]["label"] == "海报B"
    bad = client.get("/api/v1/reports/channels?model=linear")
    assert bad.status_code == 422 and "model" in bad.json()["error"]
    assert client.get("/activities/channels?since=2026-13-01").status_code == 422
