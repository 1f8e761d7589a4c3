from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import groups
from qunyun.bootstrap import Runtime
from qunyun.services import users
from qunyun.services.users import SYSTEM
from tests.integration.test_health import load
from tests.web.conftest import login


def test_health_page_api_and_offline_report(client: TestClient, staff: dict[str, str],
                                            conn: Connection, runtime: Runtime) -> None:
    load(conn, runtime)
    gid = conn.execute(select(groups.c.id)).scalar_one()
    login(client, "viewer1")
    page = client.get("/health?since=2026-11-20&until=2026-11-21")
    assert page.status_code == 200 and "群健康度" in page.text and "群g1" in page.text
    # the page says which period it shows, and in which time zone
    assert "统计区间：2026-11-20 至 2026-11-21（Asia/Shanghai）" in page.text
    detail = client.get(f"/health?group={gid}&since=2026-11-20&until=2026-11-21")
    assert f'id="health-{gid}"' in detail.text and "chart-heat" in detail.text
    assert "健康分构成" in detail.text and "每百人每天" in detail.text
    report = client.get(f"/health/report.html?group={gid}&since=2026-11-20&until=2026-11-21")
    assert report.status_code == 200
    assert "attachment" in report.headers["content-disposition"]
    assert "<script src=" not in report.text and "echarts" in report.text  # self-contained
    assert client.get("/health?since=yesterday").status_code == 422
    assert client.get("/health?group=999999").status_code == 404
    token = users.do_create_api_token(conn, actor=SYSTEM, username="viewer1")
    data = client.get(f"/api/v1/reports/groups?group_id={gid}&since=2026-11-20"
                      "&until=2026-11-21", headers={"Authorization": f"Bearer {token}"}).json()
    [r] = data
    assert (r["id"], r["messages"], r["speakers"], r["joins"], r["leaves"]) == (gid, 4, 2, 3, 1)
    assert r["score_parts"][0]["key"] == "activity" and len(r["heatmap"]) == 7


def test_alerts_are_listed_and_checked_by_operators_only(
        client: TestClient, staff: dict[str, str], conn: Connection, runtime: Runtime) -> None:
    load(conn, runtime)  # a group silent since 2026-11-20
    viewer = users.do_create_api_token(conn, actor=SYSTEM, username="viewer1")
    operator = users.do_create_api_token(conn, actor=SYSTEM, username="operator1")
    denied = client.post("/api/v1/reports/alerts/check",
                         headers={"Authorization": f"Bearer {viewer}"})
    assert denied.status_code == 403
    raised = client.post("/api/v1/reports/alerts/check",
                         headers={"Authorization": f"Bearer {operator}"}).json()
    assert [a["kind"] for a in raised] == ["silent"]
    again = client.post("/api/v1/reports/alerts/check",
                        headers={"Authorization": f"Bearer {operator}"}).json()
    assert again == []
    listed = client.get("/api/v1/reports/alerts",
                        headers={"Authorization": f"Bearer {viewer}"}).json()
    assert [a["text"] for a in listed] == ["最近 3 天无人发言"]
    login(client, "viewer1")
    page = client.get("/health")
    assert "健康预警" in page.text and "最近 3 天无人发言" in page.text and "待处理" in page.text

