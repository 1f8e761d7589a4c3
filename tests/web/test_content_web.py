"""Content pages and JSON API: script library, playbook editor and timeline, broadcast
composer with its live preview, delivery log; roles and bad input."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from qunyun import sample_playbooks
from qunyun.adapters.storage.tables import broadcasts, members, outbox, playbooks, scripts
from qunyun.bootstrap import Runtime
from qunyun.clock import utcnow
from qunyun.services import schedules
from qunyun.services.ingest import do_ingest_event
from tests.dbhelpers import snapshot
from tests.factories import event, raw_join
from tests.web.conftest import login

TZ = ZoneInfo("Asia/Shanghai")


def _groups(conn: Connection, runtime: Runtime, n: int = 2) -> list[int]:
    out = []
    for i in range(n):
        gid = do_ingest_event(conn, event(raw_join(f"j{i}", f"g{i}", f"u{i}")),
                              config=runtime.ingest_config).group_id
        assert gid is not None
        out.append(gid)
    return out


def test_script_library_pages_save_versions_and_preview(client: TestClient, conn: Connection,
                                                       runtime: Runtime,
                                                       staff: dict[str, str]) -> None:
    gid = _groups(conn, runtime, 1)[0]
    token = login(client, staff["operator"])
    assert "话术库" in client.get("/content/scripts").text
    r = client.post("/content/scripts", data={
        "csrf_token": token, "name": "开营通知", "kind": "announcement",
        "body": "{group}开营啦，{course}今晚开始", "variables": "course",
        "attach_type": "link", "attach_url": "https://example.com/c", "attach_title": "课表"})
    assert r.status_code == 303
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    page = client.get(f"/content/scripts/{sid}", params={"group_id": gid})
    assert page.status_code == 200 and "缺少变量" in page.text and "课表" in page.text
    r = client.post(f"/content/scripts/{sid}", data={
        "csrf_token": token, "name": "开营通知", "kind": "announcement",
        "body": "{group}开营啦", "variables": "", "note": "去掉课程名"})
    assert r.status_code == 303
    page = client.get(f"/content/scripts/{sid}")
    assert "v2" in page.text and "去掉课程名" in page.text
    number = conn.execute(select(members.c.number)).scalar_one()
    page = client.get(f"/content/scripts/{sid}", params={"group_id": gid, "member": number})
    assert page.status_code == 200 and "开营啦" in page.text
    assert client.get(f"/content/scripts/{sid}", params={"member": 99999999}).status_code == 404
    before = snapshot(conn)
    bad = client.post("/content/scripts", data={"csrf_token": token, "name": "x",
                                                "kind": "announcement", "body": "{who"})
    assert bad.status_code == 422 and "body" in bad.text
    assert snapshot(conn) == before
    api = client.get(f"/api/v1/scripts/{sid}").json()
    assert [h["version"] for h in api["history"]] == [2, 1]


def test_playbook_editor_timeline_and_actions(client: TestClient, conn: Connection,
                                              runtime: Runtime, staff: dict[str, str]) -> None:
    gids = _groups(conn, runtime)
    token = login(client, staff["operator"])
    headers = {"x-csrf-token": token}
    start = (utcnow() + timedelta(days=3)).astimezone(TZ).replace(hour=20, minute=0, second=0,
                                                                  microsecond=0)
    made = client.post("/api/v1/scripts", json={"name": "预告", "body": "今晚{activity}"},
                       headers=headers)
    assert made.status_code == 201
    r = client.post("/content/playbooks", data={
        "csrf_token": token, "name": "X3 发布日",
        "campaign_start": start.strftime("%Y-%m-%d %H:%M"), "variables": "activity=英语打卡",
        "group_ids": [str(g) for g in gids]})
    assert r.status_code == 303
    pid = int(r.headers["location"].rsplit("/", 1)[1])
    r = client.post(f"/content/playbooks/{pid}/steps", data={
        "csrf_token": token, "at": "T-1h", "script_id": str(made.json()["id"]),
        "name": "暖场", "target_kind": "playbook", "max_messages_last_hour": "20"})
    assert r.status_code == 303
    page = client.get(f"/content/playbooks/{pid}")
    assert page.status_code == 200
    assert page.text.count("今晚英语打卡") == 2  # the timeline: one line per group
    assert "仅当最近一小时消息少于 20 条" in page.text
    # shift by 24 h through the form: the step moves a day
    r = client.post(f"/content/playbooks/{pid}/shift", data={"csrf_token": token, "hours": "24"})
    assert r.status_code == 303
    api = client.get(f"/api/v1/playbooks/{pid}").json()
    step = api["steps"][0]
    assert datetime.fromisoformat(step["next_run_at"]) == start + timedelta(hours=23)
    r = client.post(f"/content/playbooks/{pid}/status", data={"csrf_token": token,
                                                              "status": "paused"})
    assert client.get(f"/api/v1/playbooks/{pid}").json()["status"] == "paused"
    preview = client.get(f"/api/v1/playbooks/{pid}/preview", params={
        "start": (start + timedelta(days=1)).date().isoformat(), "days": 1}).json()
    assert preview["counts"] == {"paused": 1}
    before = snapshot(conn)
    bad = client.post(f"/api/v1/playbooks/{pid}/steps", json={"at": "每天早上",
                                                              "script_id": made.json()["id"]},
                      headers=headers)
    assert bad.status_code == 422 and "not a step time" in bad.json()["error"]
    bad = client.post("/api/v1/playbooks", json={"name": "n", "campaign_start":
                                                  "2026-12-01T20:00:00"}, headers=headers)
    assert bad.status_code == 422 and "time zone" in bad.json()["error"]
    assert snapshot(conn) == before


def test_broadcast_composer_preview_create_and_log(client: TestClient, conn: Connection,
                                                   runtime: Runtime,
                                                   staff: dict[str, str]) -> None:
    gids = _groups(conn, runtime, 3)
    token = login(client, staff["operator"])
    assert "新建群发" in client.get("/content/broadcasts").text
    fragment = client.post("/content/broadcasts/preview", data={
        "csrf_token": token, "target_kind": "groups", "group_ids": [str(g) for g in gids[:2]],
        "text": "周五直播"})
    assert fragment.status_code == 200 and 'id="recipient-count">2<' in fragment.text
    error = client.post("/content/broadcasts/preview", data={
        "csrf_token": token, "target_kind": "segment", "target_value": "messages >>> 1",
        "text": "x"})
    assert "人群分组" in error.text
    assert "还没选时间" in fragment.text and "群" in fragment.text  # the groups it reaches
    tomorrow = client.post("/content/broadcasts/preview", data={
        "csrf_token": token, "target_kind": "groups", "group_ids": [str(gids[0])],
        "text": "周五直播", "send_at": "明天 20:00"})
    assert "20:00" in tomorrow.text and "还没选时间" not in tomorrow.text
    before = snapshot(conn)  # an empty time never sends: it asks
    empty = client.post("/content/broadcasts", data={
        "csrf_token": token, "name": "直播预告", "target_kind": "all", "text": "周五直播"})
    assert empty.status_code == 422 and "立即发送" in empty.text
    assert snapshot(conn) == before
    r = client.post("/content/broadcasts", data={
        "csrf_token": token, "name": "直播预告", "target_kind": "all", "text": "周五直播",
        "send_now": "1", "pin": "1"})
    assert r.status_code == 303
    assert client.get("/api/v1/broadcasts").json()[0]["pin"] is True
    assert '<span class="badge">置顶</span>' in client.get("/content/broadcasts").text
    schedules.fire_due(runtime.uow, config=runtime.ingest_config)
    log = client.get(r.headers["location"])
    assert log.status_code == 200 and "已送达" not in log.text and "待发" in log.text
    api = client.get("/api/v1/deliveries").json()
    assert api[0]["planned"] == 3 and api[0]["outbox"] == {"pending": 3}
    pending = conn.execute(select(outbox.c.payload)).scalars().all()
    assert [p["pin"] for p in pending] == [True, True, True]
    listed = client.get("/api/v1/broadcasts").json()
    assert listed[0]["status"] == "sent"
    headers = {"x-csrf-token": token}
    later = client.post("/api/v1/broadcasts", json={
        "name": "下周", "target": {"groups": gids}, "text": "下周见",
        "send_at": (utcnow() + timedelta(days=7)).isoformat()}, headers=headers)
    assert later.status_code == 201
    nobody = client.post("/api/v1/broadcasts", json={
        "name": "空", "target": {"group_tag": "没有这个标签的群"}, "text": "x",
        "send_at": (utcnow() + timedelta(days=7)).isoformat()}, headers=headers)
    assert nobody.status_code == 422 and "reaches no group" in nobody.json()["error"]
    cancelled = client.post(f"/api/v1/broadcasts/{later.json()['id']}/cancel", headers=headers)
    assert cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/broadcasts/{later.json()['id']}/cancel", headers=headers)
    assert again.status_code == 409


def test_viewer_sees_content_but_cannot_change_it(client: TestClient, conn: Connection,
                                                  runtime: Runtime,
                                                  staff: dict[str, str]) -> None:
    _groups(conn, runtime, 1)
    token = login(client, staff["viewer"])
    for path in ("/content/scripts", "/content/playbooks", "/content/broadcasts",
                 "/content/deliveries"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert 'class="primary" type="submit"' not in page.text, path
    r = client.post("/content/scripts", data={"csrf_token": token, "name": "x", "body": "y"})
    assert r.status_code == 403
    r = client.post("/api/v1/broadcasts", json={"name": "x", "target": {"all": True},
                                                "text": "y"}, headers={"x-csrf-token": token})
    assert r.status_code == 403
    assert conn.execute(select(scripts.c.id)).first() is None
    assert conn.execute(select(broadcasts.c.id)).first() is None
    assert conn.execute(select(playbooks.c.id)).first() is None


def test_content_pages_in_english(client: TestClient, conn: Connection, runtime: Runtime,
                                  staff: dict[str, str]) -> None:
    token = login(client, staff["operator"])
    assert "新建剧本" in client.get("/content/playbooks").text
    client.post("/lang", data={"lang": "en", "csrf_token": token})
    page = client.get("/content/playbooks")
    assert "New playbook" in page.text and "新建剧本" not in page.text
    assert "Compose a broadcast" in client.get("/content/broadcasts").text


def test_group_timeline_page_and_api(client: TestClient, conn: Connection, runtime: Runtime,
                                     staff: dict[str, str]) -> None:
    from qunyun.services import playbooks as playbook_service
    from qunyun.services.users import SYSTEM

    gids = _groups(conn, runtime)
    start = (utcnow() + timedelta(days=3)).astimezone(TZ).replace(hour=20, minute=0, second=0,
                                                                   microsecond=0)
    sample_playbooks.install(conn, actor=SYSTEM, group_ids=gids,
                                        campaign_start=start, tz=TZ, daily_group_ids=gids)
    token = login(client, staff["viewer"])
    day = start.astimezone(TZ).date().isoformat()
    page = client.get("/content/timeline", params={"group": gids[0], "start": day, "days": 1})
    assert page.status_code == 200
    assert "推送日程" in page.text and "名额留给活动推送" in page.text and "按时发送" in page.text
    assert "dropped" not in page.text.replace("st-dropped", "")
    api = client.get("/api/v1/timeline", params={"group_id": gids[0], "start": day, "days": 1},
                     headers={"x-csrf-token": token}).json()
    assert api["counts"] == {"send": 6, "dropped": 4}
    assert client.get("/api/v1/timeline", headers={"x-csrf-token": token}).status_code == 422
    assert client.get("/api/v1/timeline", params={"group_id": 999999},
                      headers={"x-csrf-token": token}).status_code == 404
    for days in (0, 93):  # a window of days the previews can place: 1 to 92
        bad = client.get("/api/v1/timeline", params={"group_id": gids[0], "days": days},
                         headers={"x-csrf-token": token})
        assert bad.status_code == 422 and "days" in bad.text
        pid = playbook_service.list_playbooks(conn, actor=SYSTEM)[0]["id"]
        bad = client.get(f"/api/v1/playbooks/{pid}/preview", params={"days": days},
                         headers={"x-csrf-token": token})
        assert bad.status_code == 422 and "days" in bad.text

