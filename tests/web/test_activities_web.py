"""Activity pages and JSON API: series list, an issue's funnel, money, enrolment, imports
and settlement, the cohort charts; roles and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from qunyun.adapters.storage import mirror
from qunyun.bootstrap import Runtime
from qunyun.services.members import access_member_by_id
from qunyun.services.users import SYSTEM
from tests.activity_scenario import build
from tests.dbhelpers import snapshot
from tests.web.conftest import login


def test_pages_show_series_issue_and_cohort_charts(client: TestClient, conn: Connection,
                                                   runtime: Runtime,
                                                   staff: dict[str, str]) -> None:
    s = build(conn, runtime)
    token = login(client, staff["operator"])
    page = client.get("/activities")
    assert page.status_code == 200 and "活动系列" in page.text
    assert 'href="/activities/X3"' in page.text
    issue = client.get("/activities/X1")
    assert issue.status_code == 200 and 'id="chart-funnel"' in issue.text
    assert "转化漏斗" in issue.text and "poster" in issue.text
    cohorts = client.get("/activities/cohorts?series=X&issue=X3")
    assert cohorts.status_code == 200
    for chart in ("chart-series-source", "chart-source", "chart-last-after", "chart-retention",
                  "chart-lifecycle", "chart-weekly"):
        assert f'id="{chart}"' in cohorts.text
    assert 'id="chosen-new">2<' in cohorts.text and 'id="chosen-returning">4<' in cohorts.text
    # enrol from the page; a second time is a conflict
    number = access_member_by_id(conn, actor=SYSTEM, member_id=s.members["g"])["number"]
    r = client.post("/activities/X1/enrol", data={"csrf_token": token, "number": number})
    assert r.status_code == 303
    assert str(number) in client.get("/activities/X1").text
    r = client.post("/activities/X1/enrol", data={"csrf_token": token, "number": number})
    assert r.status_code == 409
    upload = client.post("/activities/X1/import", data={"csrf_token": token,
                                                       "what": "checkins"},
                         files={"file": ("打卡.csv", f"学号,日期\n{number},2026-09-02\n".encode(),
                                         "text/csv")})
    assert upload.status_code == 200 and "checkins <b>1</b>" in upload.text
    r = client.post("/activities/X1/settle", data={"csrf_token": token})
    assert r.status_code == 303
    assert "已结算" in client.get("/activities/X1").text
    client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": token})
    english = client.get("/activities/cohorts?series=X").text
    assert "people first appeared" in english and "not seen again" in english


def test_api_create_enrol_settle_money_funnel_cohorts(client: TestClient, conn: Connection,
                                                      runtime: Runtime,
                                                      staff: dict[str, str]) -> None:
    s = build(conn, runtime)
    token = login(client, staff["operator"])
    h = {"x-csrf-token": token}
    assert client.post("/api/v1/activities/series", json={"code": "W", "name": "周末营"},
                       headers=h).status_code == 201
    made = client.post("/api/v1/activities", headers=h, json={
        "series": "W", "starts_on": "2026-12-05", "ends_on": "2026-12-06", "deposit": "50",
        "refund_tiers": "2:100", "group_ids": [s.groups["X3"]],
        "targets": {"enrolled": 10}})
    assert made.status_code == 201 and made.json()["code"] == "W1"
    number = access_member_by_id(conn, actor=SYSTEM, member_id=s.members["a"])["number"]
    r = client.post("/api/v1/activities/W1/enrolments", headers=h,
                    json={"member_number": number, "channel": "社群"})
    assert r.status_code == 201
    r = client.post("/api/v1/conversions", headers=h, json={
        "kind": "order", "amount": "1299.00", "activity": "W1", "member_number": number,
        "ref": "W-1"})
    assert r.status_code == 201
    money = client.get("/api/v1/activities/W1/money").json()
    assert (money["deposits"], money["gmv"], money["enrolled"]) == (50.0, 1299.0, 1)
    steps = {x["step"]: x for x in client.get("/api/v1/activities/W1/funnel").json()["steps"]}
    assert steps["enrolled"]["count"] == 1 and steps["enrolled"]["vs_target"] == 0.1
    csv_text = client.get("/api/v1/activities/W1/settlement?format=csv").text
    assert csv_text.startswith("\ufeff活动") and ",50.00,0,0,0.00,否" in csv_text
    assert client.post("/api/v1/activities/W1/settle", headers=h).json()["state"] == "settled"
    report = client.get("/api/v1/reports/cohorts?series=X").json()
    assert [i["code"] for i in report["issues"]] == ["X1", "X2", "X3"]
    listed = client.get("/api/v1/activities/series").json()
    assert [x["code"] for x in listed] == ["W", "X", "Y", "Z"]


def test_bad_input_and_roles(client: TestClient, conn: Connection, runtime: Runtime,
                             staff: dict[str, str]) -> None:
    build(conn, runtime)
    token = login(client, staff["operator"])
    h = {"x-csrf-token": token}
    before = snapshot(conn)
    r = client.post("/api/v1/activities/X1/enrolments/import?filename=form.csv", headers={
        **h, "content-type": "text/csv"}, content="学号\n99999\n".encode())
    assert r.status_code == 422 and "form.csv: line 2" in r.json()["error"]
    r = client.post("/api/v1/conversions", headers=h,
                    json={"kind": "order", "amount": "-5", "activity": "X1"})
    assert r.status_code == 422
    r = client.patch("/api/v1/activities/X1", headers=h, json={"ends_on": "2026-01-01"})
    assert r.status_code == 422 and "ends_on" in r.json()["error"]
    nope = client.get("/api/v1/activities/NOPE")
    # programs read the English sentence, people the team's language; the page says it too
    assert nope.status_code == 404 and nope.json() == {
        "error": "activity NOPE not found", "message": "找不到活动 NOPE"}
    page = client.get("/activities/NOPE")
    assert page.status_code == 404 and "找不到活动 NOPE" in page.text
    assert "not found" not in page.text
    assert snapshot(conn) == before
    client.post("/logout", data={"csrf_token": token})
    viewer = login(client, staff["viewer"])
    assert client.get("/activities/X1").status_code == 200
    r = client.post("/api/v1/activities/X1/settle", headers={"x-csrf-token": viewer})
    assert r.status_code == 403


def test_cohorts_come_from_the_analytics_mirror_when_it_is_on(
        client: TestClient, conn: Connection, runtime: Runtime, staff: dict[str, str],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(conn, runtime)
    login(client, staff["viewer"])
    live = client.get("/api/v1/reports/cohorts?series=X").json()
    assert live["as_of"] is None
    assert 'id="cohorts-as-of"' not in client.get("/activities/cohorts?series=X").text  # off
    path = tmp_path / "analytics.duckdb"
    monkeypatch.setattr(runtime.settings, "analytics_mirror_path", str(path))
    monkeypatch.setattr(runtime.settings, "analytics_mirror", True)
    # on, but not built yet: the store answers, and the page says so
    assert client.get("/api/v1/reports/cohorts?series=X").json()["as_of"] is None
    page = client.get("/activities/cohorts?series=X").text
    assert "分析副本尚未生成" in page and 'id="refresh-mirror"' not in page  # a viewer
    assert client.get("/api/v1/analytics/mirror").json()["refreshed_at"] is None
    made = mirror.refresh(conn, path)  # the test's transaction is the store's snapshot
    copied = client.get("/api/v1/reports/cohorts?series=X").json()
    assert copied.pop("as_of") == made.refreshed_at.isoformat()
    live.pop("as_of")
    assert copied == live
    page = client.get("/activities/cohorts?series=X&issue=X3")
    assert page.status_code == 200 and 'id="cohorts-as-of"' in page.text
    assert "来自分析副本" in page.text and 'id="chosen-new">2<' in page.text
    # a broken copy is reported in the log and the store answers again
    path.write_text("not a database")
    assert client.get("/api/v1/reports/cohorts?series=X").json()["as_of"] is None


def test_operators_refresh_the_mirror_in_the_background(
        client: TestClient, runtime: Runtime, staff: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from qunyun.analytics import mirror as analytics_mirror

    path = tmp_path / "analytics.duckdb"
    monkeypatch.setattr(runtime.settings, "analytics_mirror_path", str(path))
    monkeypatch.setattr(runtime.settings, "analytics_mirror", True)
    token = login(client, staff["viewer"])
    r = client.post("/api/v1/analytics/mirror/refresh", headers={"x-csrf-token": token})
    assert r.status_code == 403 and not path.exists()
    token = login(client, staff["operator"])
    assert 'id="refresh-mirror"' in client.get("/activities/cohorts").text
    r = client.post("/api/v1/analytics/mirror/refresh", headers={"x-csrf-token": token})
    assert r.status_code == 202 and r.json()["started"] is True
    assert analytics_mirror.wait_for_refresh(120)  # the background copy is done
    status = client.get("/api/v1/analytics/mirror").json()
    assert status["enabled"] and status["refreshed_at"] and not status["refreshing"]
    r = client.post("/activities/cohorts/refresh-mirror", data={"csrf_token": token})
    assert r.status_code == 303
    assert analytics_mirror.wait_for_refresh(120)
