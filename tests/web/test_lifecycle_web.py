"""The group page's lifecycle parts, the lifecycle board and the groups API: settings and
state from the page, an illegal move a 409 in the team's words, planned groups."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import outbox
from qunyun.bootstrap import Runtime
from qunyun.i18n import translate
from qunyun.services.groups import get_group_detail, list_groups
from qunyun.services.members import member_id_by_number
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.factories import raw_join, raw_message
from tests.integration.test_lifecycle import DAY, feed
from tests.web.conftest import login

TZ = ZoneInfo("Asia/Shanghai")


def test_the_page_and_the_api(client: TestClient, conn: Connection, runtime: Runtime,
                              staff: dict[str, str]) -> None:
    gid = feed(conn, runtime, [raw_join("j0", "g1", "u0", name="<b>群主</b>")])
    csrf = login(client, staff["operator"])
    page = client.get(f"/groups/{gid}")
    assert page.status_code == 200 and 'id="group-state-form"' in page.text
    assert "降温中" in page.text and "cooling" not in page.text.split('id="group-state"')[1]\
        .split("</select>")[0].replace('value="cooling"', "")
    saved = client.post(f"/groups/{gid}", data={
        "csrf_token": csrf, "group_type": "learning", "tags": "一期，福利群",
        "starts_at": "2026-12-20T20:00", "cooling_days": "5", "cooling_speakers": "2"})
    assert saved.status_code == 303
    group = get_group_detail(conn, actor=SYSTEM, group_id=gid)
    assert group["group_type"] == "learning" and group["settings"]["tags"] == ["一期", "福利群"]
    assert group["starts_at"].astimezone(TZ).strftime("%m-%d %H:%M") == "12-20 20:00"
    assert group["settings"]["lifecycle"] == {"days": 5, "speakers": 2}
    moved = client.post(f"/groups/{gid}/state", data={"csrf_token": csrf, "state": "cooling",
                                                     "reason": "活动结束"})
    assert moved.status_code == 303
    board = client.get("/lifecycle")
    assert board.status_code == 200 and 'id="state-cooling"' in board.text
    assert "gstate." not in board.text and "lifecycle.todo" not in board.text
    # the API: an illegal move is a 409 that says why, in the team's words
    headers = {"X-CSRF-Token": csrf}
    bad = client.post(f"/api/v1/groups/{gid}/state", json={"state": "planned"},
                      headers=headers)
    assert bad.status_code == 409 and "只能改为" in bad.json()["message"]
    ok = client.patch(f"/api/v1/groups/{gid}", json={"state": "active", "capacity": 300},
                      headers=headers)
    assert ok.status_code == 200 and (ok.json()["state"], ok.json()["capacity"]) == (
        "active", 300)
    assert ok.json()["next_states"] == ["cooling", "dissolving"]
    before = snapshot(conn)
    naive = client.post("/api/v1/groups", json={"platform": "sandbox", "name": "x",
                                                "starts_at": "2026-12-20T20:00:00"},
                        headers=headers)
    assert naive.status_code == 422 and snapshot(conn) == before
    planned = client.post("/api/v1/groups", json={"platform": "sandbox", "name": "五期",
                                                  "capacity": 100}, headers=headers)
    assert planned.status_code == 201 and planned.json()["state"] == "planned"
    linked = client.post(f"/api/v1/groups/{planned.json()['id']}/link",
                         json={"chat": "g5"}, headers=headers)
    assert linked.status_code == 200 and linked.json()["external_id"] == "g5"
    columns = client.get("/api/v1/lifecycle/board").json()
    assert [c["state"] for c in columns] == ["planned", "recruiting", "active", "cooling",
                                             "dissolving", "closed"]


def test_a_viewer_reads_the_board_but_moves_nothing(client: TestClient, conn: Connection,
                                                    runtime: Runtime,
                                                    staff: dict[str, str]) -> None:
    gid = feed(conn, runtime, [raw_join("j0", "g1", "u0")])
    csrf = login(client, staff["viewer"])
    assert client.get("/lifecycle").status_code == 200
    page = client.get(f"/groups/{gid}")
    assert 'id="group-state-form"' not in page.text
    before = snapshot(conn)
    headers = {"X-CSRF-Token": csrf}
    assert client.post("/api/v1/lifecycle/advance", headers=headers).status_code == 403
    assert client.post(f"/api/v1/groups/{gid}/state", json={"state": "cooling"},
                       headers=headers).status_code == 403
    assert client.post(f"/api/v1/groups/{gid}/lurkers/remove", json={"dry_run": False},
                       headers=headers).status_code == 403
    assert snapshot(conn) == before


def test_the_lurkers_page_previews_then_removes(client: TestClient, conn: Connection,
                                                runtime: Runtime,
                                                staff: dict[str, str]) -> None:
    hostile = '<img src=x onerror=alert(1)>"、🌸'
    gid = feed(conn, runtime, [raw_join("j0", "g1", "u0", name=hostile),
                               raw_join("j1", "g1", "u1", name="话痨")])
    feed(conn, runtime, [raw_message("m0", "g1", "u1", "在的", minutes=DAY * 13)])
    csrf = login(client, staff["operator"])
    page = client.get(f"/groups/{gid}/lurkers?days=10")
    assert page.status_code == 200 and "从未发言" in page.text
    assert "<img src=x" not in page.text and "&lt;img src=x" in page.text
    assert "话痨" not in page.text  # spoke within the 10 days
    lurker = member_id_by_number(conn, 10001)
    before = snapshot(conn)
    preview = client.post(f"/groups/{gid}/lurkers", data={
        "csrf_token": csrf, "days": "10", "member_ids": [str(lurker)], "go": "preview",
        "notice": "{name}，再见"})
    assert preview.status_code == 200 and "将移出 1 人" in preview.text
    assert snapshot(conn) == before
    gone = client.post(f"/groups/{gid}/lurkers", data={
        "csrf_token": csrf, "days": "10", "member_ids": [str(lurker)], "go": "remove",
        "notice": "{name}，再见"})
    assert gone.status_code == 200 and "已安排移出 1 人" in gone.text
    kinds = [r.action_type for r in conn.execute(select(outbox.c.action_type).where(
        outbox.c.rule == "lurkers").order_by(outbox.c.id))]
    assert kinds == ["send_private", "remove_member"]
    bad = client.post(f"/groups/{gid}/lurkers", data={"csrf_token": csrf, "days": "0"})
    assert bad.status_code == 422


def test_the_dissolution_from_the_group_page(client: TestClient, conn: Connection,
                                             runtime: Runtime, staff: dict[str, str]) -> None:
    gid = feed(conn, runtime, [raw_join("j0", "g1", "u0")])
    csrf = login(client, staff["operator"])
    assert 'id="dissolve-form"' in client.get(f"/groups/{gid}").text
    before = snapshot(conn)
    preview = client.post(f"/groups/{gid}/dissolve", data={
        "csrf_token": csrf, "gap_hours": "12", "notice": "<b>新群见</b>", "go": "preview"})
    assert preview.status_code == 200 and "群头像换成灰色" in preview.text
    assert "<b>新群见</b>" not in preview.text and snapshot(conn) == before
    started = client.post(f"/groups/{gid}/dissolve", data={
        "csrf_token": csrf, "gap_hours": "12", "notice": "新群见", "go": "start"})
    assert started.status_code == 303
    assert get_group_detail(conn, actor=SYSTEM, group_id=gid)["state"] == "dissolving"
    again = client.post(f"/api/v1/groups/{gid}/dissolve", json={"dry_run": False},
                        headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409


def test_a_playbook_triggered_by_a_state_from_the_page_and_api(
        client: TestClient, conn: Connection, runtime: Runtime,
        staff: dict[str, str]) -> None:
    csrf = login(client, staff["operator"])
    h = {"x-csrf-token": csrf}
    form = client.get("/content/playbooks")
    assert 'id="playbook-on-state"' in form.text and "群进入「降温中」时" in form.text
    made = client.post("/content/playbooks", data={"csrf_token": csrf, "name": "降温激活",
                                                   "on_state": "cooling"})
    assert made.status_code == 303
    page = client.get(made.headers["location"])
    assert 'id="playbook-trigger"' in page.text and "群进入「降温中」时" in page.text
    listed = client.get("/api/v1/playbooks").json()
    assert [p["on_state"] for p in listed] == ["cooling"]
    before = snapshot(conn)
    bad = client.post("/api/v1/playbooks", headers=h, json={"name": "x", "on_state": "idle"})
    assert bad.status_code in (400, 422) and "降温中" in bad.json()["message"]
    assert snapshot(conn) == before
    edited = client.patch(f"/api/v1/playbooks/{listed[0]['id']}", headers=h,
                          json={"on_state": "dissolving"})
    assert edited.status_code == 200 and edited.json()["on_state"] == "dissolving"


def test_merging_small_groups_from_the_page_and_api(
        client: TestClient, conn: Connection, runtime: Runtime,
        staff: dict[str, str]) -> None:
    feed(conn, runtime, [raw_join("a0", "g1", "u0", name="<i>甲</i>"),
                         raw_join("a1", "g1", "u1"), raw_join("b0", "g2", "v0"),
                         raw_join("c0", "t", "w0")])
    ids = {g["external_id"]: g["id"] for g in client_groups(conn)}
    csrf = login(client, staff["operator"])
    page = client.get("/lifecycle/merges?max_members=5")
    assert page.status_code == 200 and 'id="merge-candidates"' in page.text
    assert "<i>甲</i>" not in page.text
    before = snapshot(conn)
    preview = client.post("/lifecycle/merges", data={
        "csrf_token": csrf, "source_ids": [str(ids["g1"]), str(ids["g2"])],
        "target_id": str(ids["t"]), "wait_days": "2", "gap_hours": "1"})
    assert preview.status_code == 200 and 'id="merge-confirm"' in preview.text
    assert "共 3 人要换群" in preview.text and snapshot(conn) == before
    forged = client.post("/lifecycle/merges", data={
        "csrf_token": csrf, "source_ids": [str(2**64)], "target_id": str(ids["t"])})
    assert forged.status_code == 422 and snapshot(conn) == before
    started = client.post("/lifecycle/merges", data={
        "csrf_token": csrf, "source_ids": [str(ids["g1"]), str(ids["g2"])],
        "target_id": str(ids["t"]), "wait_days": "2", "gap_hours": "1", "go": "start"})
    assert started.status_code == 303
    shown = client.get(started.headers["location"])
    assert shown.status_code == 200 and 'id="merge-people"' in shown.text
    assert "等群活码" in shown.text and "running" not in shown.text
    h = {"x-csrf-token": csrf}
    (listed,) = client.get("/api/v1/lifecycle/merges").json()
    assert listed["assigned"] == 3 and listed["status"] == "running"
    bad = client.post("/api/v1/lifecycle/merges", headers=h,
                      json={"source_ids": [ids["t"]], "target_id": ids["t"]})
    assert bad.status_code == 422 and "目标群" in bad.json()["message"]
    assert client.post("/api/v1/lifecycle/merges", headers=h,
                       json={"source_ids": [], "target_id": ids["t"]}).status_code == 422
    finished = client.post(f"/api/v1/lifecycle/merges/{listed['id']}/finish", headers=h)
    assert finished.status_code == 200 and finished.json()["status"] == "done"
    assert client.post(f"/api/v1/lifecycle/merges/{listed['id']}/finish",
                       headers=h).status_code == 409
    assert client.get("/api/v1/lifecycle/merges/999999").status_code == 404
    candidates = client.get("/api/v1/lifecycle/merge-candidates?max_members=0")
    assert candidates.status_code == 422


def client_groups(conn: Connection) -> list[dict[str, Any]]:
    return list_groups(conn, actor=SYSTEM)


def test_the_plan_calculator_page_and_api(client: TestClient, staff: dict[str, str]) -> None:
    csrf = login(client, staff["viewer"])  # reading only: a viewer may plan
    page = client.get("/plans/calc")
    assert page.status_code == 200 and 'id="plan-calc-form"' in page.text
    back = client.get("/plans/calc", params={
        "target_deposits": "20", "join_rate": "0.1", "deposit_rate": "0.04",
        "staff": "5", "contacts_per_day": "120"})
    assert back.status_code == 200 and 'id="plan-calc-result"' in back.text
    assert "5,000" in back.text and "按目标倒推" in back.text and "history" not in back.text
    # each figure in its own card with its name (the cards once printed "X5,000" unlabelled)
    card = '<div class="card" id="calc-{}"><div class="k">{}</div><div class="v">{}</div></div>'
    for key, value in (("reach", "5,000"), ("groups", "6"), ("days", "9")):
        assert card.format(key, translate(f"plan.{key}", "zh-CN"), value) in back.text
    assert "X5,000" not in back.text
    bad = client.get("/plans/calc", params={"audience": "<b>x</b>"})
    assert bad.status_code == 422 and "<b>x</b>" not in bad.text
    api = client.post("/api/v1/plans/calc", headers={"x-csrf-token": csrf},
                      json={"audience": 5000, "join_rate": 0.1, "deposit_rate": 0.04})
    assert api.status_code == 200 and (api.json()["members"], api.json()["groups"]) == (500, 6)
    assert client.post("/api/v1/plans/calc", headers={"x-csrf-token": csrf},
                       json={"audience": 10, "join_rate": 5}).status_code == 422
    assert client.post("/api/v1/plans/calc", headers={"x-csrf-token": csrf},
                       json={}).status_code == 422


def test_a_plan_from_the_pages_and_api(client: TestClient, conn: Connection,
                                       runtime: Runtime, staff: dict[str, str]) -> None:
    csrf = login(client, staff["operator"])
    h = {"x-csrf-token": csrf}
    assert 'id="plan-create"' in client.get("/plans").text
    made = client.post("/plans", data={"csrf_token": csrf, "name": "<b>双十二</b>",
                                       "starts_on": "2026-12-08", "ends_on": "2026-12-14",
                                       "target_deposits": "20", "margin": "20"})
    assert made.status_code == 303
    plan_url = made.headers["location"]
    plan_id = int(plan_url.rsplit("/", 1)[1])
    staged = client.post(f"{plan_url}/stages", data={
        "csrf_token": csrf, "kind": "recruiting", "name": "招募",
        "starts_on": "2026-12-08", "ends_on": "2026-12-11"})
    assert staged.status_code == 303
    page = client.get(plan_url)
    assert page.status_code == 200 and "<b>双十二</b>" not in page.text
    title = page.text.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "双十二" in title and "<" not in title  # the page's name only
    assert page.text.count('id="plan-review"') == 1 and "echarts.min.js" in page.text
    assert 'class="gantt-bar stage-recruiting"' in page.text and 'id="plan-days"' in page.text
    shown = page.text.replace("stage-recruiting", "").replace('value="recruiting"', "")
    assert "招募" in shown and "recruiting" not in shown
    before = snapshot(conn)
    outside = client.post(f"/api/v1/plans/{plan_id}/stages", headers=h, json={
        "kind": "launch", "starts_on": "2026-12-20", "ends_on": "2026-12-21"})
    assert outside.status_code == 422 and "2026-12-08" in outside.json()["message"]
    assert client.post("/api/v1/plans", headers=h, json={
        "name": "x", "starts_on": "2026-12-09", "ends_on": "2026-12-01"}).status_code == 422
    assert snapshot(conn) == before
    spread = client.post(f"/api/v1/plans/{plan_id}/targets", headers=h,
                         json={"metric": "active", "total": 70})
    assert spread.status_code == 200 and spread.json()["target_totals"]["active"] == 70
    actual = client.get(f"/api/v1/plans/{plan_id}/actual").json()
    assert len(actual["days"]) == 7 and actual["totals"]["joined"]["target"] == 500
    assert client.get("/api/v1/plans/999999").status_code == 404
    # people, the checklist and the budget from the page
    assert client.post(f"{plan_url}/roles", data={"csrf_token": csrf, "user": "operator1",
                                                  "role": "pm"}).status_code == 303
    assert client.post(f"{plan_url}/items", data={
        "csrf_token": csrf, "kind": "poster", "title": "<i>海报</i>",
        "owner": "operator1"}).status_code == 303
    assert client.post(f"{plan_url}/budget", data={
        "csrf_token": csrf, "category": "gifts", "title": "保温杯",
        "planned": "300"}).status_code == 303
    item = client.get(f"/api/v1/plans/{plan_id}").json()["checklist"][0]
    assert client.post(f"{plan_url}/items", data={"csrf_token": csrf, "item": item["id"],
                                                  "status": "doing"}).status_code == 303
    page = client.get(plan_url).text
    assert "总 PM" in page and "<i>海报</i>" not in page and "进行中" in page
    assert "300.00" in page and 'id="plan-checklist"' in page
    # the checklist is a board: the poster's card moved to the "in progress" column
    doing = page.split('id="items-doing"', 1)[1].split("</section>", 1)[0]
    todo = page.split('id="items-todo"', 1)[1].split("</section>", 1)[0]
    assert "&lt;i&gt;海报&lt;/i&gt;" in doing and "海报" not in todo
    before = snapshot(conn)
    bad = client.post(f"/api/v1/plans/{plan_id}/budget", headers=h,
                      json={"category": "party", "title": "x", "planned": 1})
    assert bad.status_code == 422 and "礼品" in bad.json()["message"]
    assert client.post(f"/api/v1/plans/{plan_id}/roles", headers=h, json={
        "user": "nobody", "role": "pm"}).status_code == 404
    assert snapshot(conn) == before
    # the review and the closing report
    stage_id = client.get(f"/api/v1/plans/{plan_id}").json()["stages"][0]["id"]
    assert client.post(f"{plan_url}/stages/{stage_id}/retro", data={
        "csrf_token": csrf, "worked": "转发多", "did_not": "", "change": "加直播"}
        ).status_code == 303
    assert client.post(f"{plan_url}/problems", data={
        "csrf_token": csrf, "issue": "群满了"}).status_code == 303
    problem = client.get(f"/api/v1/plans/{plan_id}").json()["problems"][0]
    closed = client.post(f"/api/v1/plans/{plan_id}/problems/{problem['id']}/close",
                         headers=h, json={"resolution": "开了备用群"})
    assert closed.status_code == 200 and closed.json()["problems"][0]["status"] == "closed"
    again = client.post(f"/api/v1/plans/{plan_id}/problems/{problem['id']}/close",
                        headers=h, json={"resolution": "x"})
    assert again.status_code == 409
    file = client.get(f"{plan_url}/report.html")
    assert file.status_code == 200 and "attachment" in file.headers["content-disposition"]
    assert "加直播" in file.text and "&lt;b&gt;双十二&lt;/b&gt;" in file.text
    picture = client.get(f"{plan_url}/report.png")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content.startswith(b"\x89PNG") and 'id="plan-report-pdf"' in page
    pdf = client.get(f"{plan_url}/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "plan-" in pdf.headers["content-disposition"]
    assert client.get(f"{plan_url}/report.doc").status_code == 404


def test_exports_page_and_downloads(client: TestClient, conn: Connection, runtime: Runtime,
                                    staff: dict[str, str]) -> None:
    feed(conn, runtime, [raw_join("j0", "g1", "u0", name="=SUM(A1)")])
    login(client, staff["viewer"])
    page = client.get("/exports")
    assert page.status_code == 200 and 'id="export-members-csv"' in page.text
    assert 'id="export-masked"' in page.text
    got = client.get("/api/v1/exports/members?format=csv")
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    assert got.content.startswith("\ufeff".encode()) and "'=SUM(A1)" in got.text
    assert client.get("/api/v1/exports/members?format=xlsx").content[:2] == b"PK"
    assert client.get("/api/v1/exports/nope").status_code == 422
    assert client.get("/api/v1/exports/messages?since=昨天").status_code == 422
