"""Automation pages and JSON API: settings forms, FAQ, moderation review, word lists,
check-in leaderboard and refunds, draws; roles and bad input."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import audit_log, faqs, moderation_decisions
from qunyun.bootstrap import Runtime
from qunyun.services import automation
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.factories import event, raw_join, raw_message
from tests.web.conftest import login


def _group_with_talk(conn: Connection, runtime: Runtime) -> int:
    gid = do_ingest_event(conn, event(raw_join("j1", "g1", "u1", name="张三")),
                          config=runtime.ingest_config).group_id
    for i in range(3):
        do_ingest_event(conn, event(raw_join(f"j{i + 2}", "g1", f"v{i}", name=f"李{i}")),
                        config=runtime.ingest_config)
    assert gid is not None
    return gid


def test_settings_page_saves_team_and_group_overrides(client: TestClient, conn: Connection,
                                                      runtime: Runtime,
                                                      staff: dict[str, str]) -> None:
    gid = _group_with_talk(conn, runtime)
    token = login(client, staff["operator"])
    page = client.get("/automation")
    assert page.status_code == 200 and "群管：广告、敏感词、刷屏" in page.text
    r = client.post("/automation/settings/moderation", data={
        "csrf_token": token, "group_id": "0", "enabled": "on", "block_threshold": "0.9",
        "review_threshold": "0.5", "escalation": "warn,remove"})
    assert r.status_code == 303
    team = automation.get_settings(conn, actor=SYSTEM)["effective"]["moderation"]
    assert team["enabled"] and team["block_threshold"] == 0.9
    assert team["escalation"] == ["warn", "remove"]
    r = client.post("/automation/settings/faq", data={"csrf_token": token, "group_id": str(gid),
                                             "enabled": "on", "min_score": "0.8"})
    group = automation.get_settings(conn, actor=SYSTEM, group_id=gid)
    assert group["own"]["faq"]["min_score"] == 0.8 and group["effective"]["faq"]["enabled"]
    assert automation.get_settings(conn, actor=SYSTEM)["effective"]["faq"]["enabled"] is False
    # a bad value: 400 with the field named, nothing stored
    before = automation.current_version(conn)
    bad = client.post("/automation/settings/moderation", data={
        "csrf_token": token, "group_id": "0", "flood_messages": "lots"})
    assert bad.status_code == 422 and "flood_messages" in bad.text
    assert automation.current_version(conn) == before


def test_viewer_sees_but_cannot_change(client: TestClient, conn: Connection,
                                       staff: dict[str, str]) -> None:
    token = login(client, staff["viewer"])
    assert client.get("/automation/faq").status_code == 200
    r = client.post("/automation/faq", data={"csrf_token": token, "questions": "q",
                                             "answer": "a"})
    assert r.status_code == 403
    assert conn.execute(select(faqs.c.id)).first() is None


def test_faq_page_create_import_and_api(client: TestClient, conn: Connection,
                                        staff: dict[str, str]) -> None:
    token = login(client, staff["operator"])
    r = client.post("/automation/faq", data={"csrf_token": token, "questions": "多少钱\n价格多少",
                                             "answer": "99元", "match": "fuzzy",
                                             "cooldown_seconds": "60"})
    assert r.status_code == 303
    assert "价格多少" in client.get("/automation/faq").text
    csv_body = "id,question,answer\nship,几天发货,三天\n".encode()
    r = client.post("/automation/faq/import", data={"csrf_token": token},
                    files={"file": ("faq.csv", csv_body, "text/csv")})
    assert r.status_code == 303 and "created=1" in r.headers["location"]
    headers = {"x-csrf-token": token}
    listed = client.get("/api/v1/faqs").json()
    assert {f["answer"] for f in listed} == {"99元", "三天"}
    made = client.post("/api/v1/faqs", json={"questions": [], "answer": "请看群公告",
                                             "match": "contains", "pattern": "群规|公告"},
                       headers=headers)
    assert made.status_code == 201 and made.json()["pattern"] == "群规|公告"
    bad = client.post("/api/v1/faqs/import", content=b"id,question\n1,x\n", headers=headers)
    assert bad.status_code == 422 and "request body:1: missing column" in bad.json()["error"]


def test_moderation_review_from_the_page(client: TestClient, conn: Connection,
                                         runtime: Runtime, staff: dict[str, str]) -> None:
    automation.do_update_settings(conn, actor=SYSTEM, section="moderation", values={
        "enabled": True, "review_threshold": 0.3, "block_threshold": 0.99})
    do_ingest_event(conn, event(raw_message("m1", "g1", "u1", "本店新品特价，欢迎光临")),
                    config=runtime.ingest_config)
    token = login(client, staff["operator"])
    page = client.get("/automation/moderation")
    assert "本店新品特价" in page.text and "确认违规" in page.text
    decision = conn.execute(select(moderation_decisions.c.id)).scalar_one()
    r = client.post(f"/automation/moderation/{decision}/review",
                    data={"csrf_token": token, "decision": "overturn"})
    assert r.status_code == 303
    assert conn.execute(select(moderation_decisions.c.status)).scalar_one() == "overturned"
    tried = client.get("/automation/moderation", params={"text": "加我微信 abc_1234 日赚500"})
    assert "违规" in tried.text and "含微信/QQ号" in tried.text
    r = client.post("/automation/words", data={"csrf_token": token, "severity": "block",
                                               "name": "禁词"},
                    files={"file": ("w.txt", "违禁品\n# comment\n".encode(), "text/plain")})
    assert r.status_code == 303
    verdicts = client.post("/api/v1/moderation/classify", json={"texts": ["出售违禁品", "你好"]},
                           headers={"x-csrf-token": token}).json()
    assert [v["verdict"] for v in verdicts] == ["block", "ok"]
    assert any(a == "words.save" for (a,) in conn.execute(select(audit_log.c.action)))


def test_an_automatic_removal_is_overturned_from_the_decision_log(
        client: TestClient, conn: Connection, runtime: Runtime, staff: dict[str, str]) -> None:
    automation.do_update_settings(conn, actor=SYSTEM, section="moderation", values={
        "enabled": True, "escalation": ["remove"]})
    ev = event(raw_message("m1", "g1", "u1", "低息贷款当天放款，联系电话 13812345678"))
    do_ingest_event(conn, ev, config=runtime.ingest_config, received_at=ev.occurred_at)
    token = login(client, staff["operator"])
    page = client.get("/automation/moderation")
    assert "撤销判定" in page.text and "同时请回群" in page.text
    assert "模型" not in page.text  # no scores of the learned model in the reasons
    decision = conn.execute(select(moderation_decisions.c.id)).scalar_one()
    member_id = conn.execute(select(moderation_decisions.c.member_id)).scalar_one()
    history = client.get(f"/members/{member_id}").text  # the member's timeline says it plainly
    assert "判为广告" in history and "计入违规" in history and "移出" in history
    r = client.post(f"/automation/moderation/{decision}/review",
                    data={"csrf_token": token, "decision": "overturn", "restore_offered": "1"})
    assert r.status_code == 303
    row = conn.execute(select(moderation_decisions)).mappings().one()
    assert row["status"] == "overturned" and row["action"] == "remove"
    assert "已撤销" in client.get("/automation/moderation").text
    history = client.get(f"/members/{member_id}").text
    assert "广告判定已撤销" in history and "违规已撤销" in history
    for code in ("ad_flagged", "violation", "decision=", "action=remove", "event."):
        assert code not in history
    # the JSON API says what it undid; a second overturn is a conflict, not a 500
    again = client.post(f"/api/v1/moderation/decisions/{decision}/review",
                        json={"confirm": False}, headers={"x-csrf-token": token})
    assert again.status_code == 409


def test_checkins_leaderboard_refunds_and_draws(client: TestClient, conn: Connection,
                                                runtime: Runtime,
                                                staff: dict[str, str]) -> None:
    gid = _group_with_talk(conn, runtime)
    automation.do_update_settings(conn, actor=SYSTEM, section="checkin", values={
        "enabled": True, "refund_tiers": [{"min_checkins": 1, "percent": 100}]})
    do_ingest_event(conn, event(raw_message("c1", "g1", "u1", "打卡")),
                    config=runtime.ingest_config)
    token = login(client, staff["operator"])
    page = client.get("/automation/checkins", params={"group": gid, "period": "all",
                                                      "start": "2026-11-01",
                                                      "end": "2026-11-30", "deposit": "50"})
    assert page.status_code == 200 and "张三" in page.text and "50.00" in page.text
    api = client.get("/api/v1/checkins/leaderboard", params={"group_id": gid,
                                                            "period": "all"}).json()
    assert api["rows"][0]["value"] == 1
    r = client.post("/automation/draws", data={"csrf_token": token, "group_id": str(gid),
                                               "title": "周末抽奖", "kind": "lottery",
                                               "prizes": "一等奖:2"})
    assert r.status_code == 303
    detail = client.get(r.headers["location"])
    assert "结果一致" in detail.text
    before = snapshot(conn)
    bad = client.post("/api/v1/draws", json={"group_id": gid, "title": "x", "kind": "lottery",
                                             "prizes": "一等奖:0"},
                      headers={"x-csrf-token": token})
    assert bad.status_code == 422 and "at least 1" in bad.json()["error"]
    assert snapshot(conn) == before


def test_settings_use_controls_not_codes(client: TestClient, conn: Connection,
                                         staff: dict[str, str]) -> None:
    """Switches, sliders with their value, ordered steps, a caps table and time pickers;
    each setting says what it does; what they post is stored like the typed forms were."""
    token = login(client, staff["operator"])
    page = client.get("/automation").text
    assert 'class="switch"' in page and 'type="range"' in page and 'name="quiet_from"' in page
    assert 'name="escalation_step"' in page and 'name="caps_scope"' in page
    assert "同一个人第 1、2、3 次违规分别怎么处理" in page
    assert "group:day:6" not in page and "warn,remove,blacklist" not in page
    r = client.post("/automation/settings/broadcast", data={
        "csrf_token": token, "group_id": "0", "quiet_from": "23:00", "quiet_to": "07:30",
        "over_cap": "drop",
        "caps_platform": ["*", "sandbox", "*"], "caps_scope": ["group", "member", "group"],
        "caps_period": ["day", "week", "month"], "caps_limit": ["4", "2", ""]})
    assert r.status_code == 303, r.text
    saved = automation.get_settings(conn, actor=SYSTEM)["effective"]["broadcast"]
    assert saved["quiet_hours"] == "23:00-07:30" and saved["over_cap"] == "drop"
    assert [(c["platform"], c["scope"], c["period"], c["limit"]) for c in saved["caps"]] == [
        ("*", "group", "day", 4), ("sandbox", "member", "week", 2)]
    r = client.post("/automation/settings/moderation", data={
        "csrf_token": token, "group_id": "0", "escalation_step": ["warn", "blacklist", ""],
        "block_threshold": "0.92"})
    assert r.status_code == 303
    mod = automation.get_settings(conn, actor=SYSTEM)["effective"]["moderation"]
    assert mod["escalation"] == ["warn", "blacklist"] and mod["block_threshold"] == 0.92
    before = automation.current_version(conn)
    bad = client.post("/automation/settings/broadcast", data={
        "csrf_token": token, "group_id": "0", "caps_platform": ["*"], "caps_scope": ["group"],
        "caps_period": ["day"], "caps_limit": ["many"]})
    assert bad.status_code == 422 and automation.current_version(conn) == before
    bad = client.post("/automation/settings/broadcast", data={
        "csrf_token": token, "group_id": "0", "quiet_from": "25:00", "quiet_to": "07:00"})
    assert bad.status_code == 422 and automation.current_version(conn) == before
