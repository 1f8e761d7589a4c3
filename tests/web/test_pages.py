from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import audit_log, groups, staff_tasks
from qunyun.bootstrap import Runtime
from qunyun.clock import utcnow
from qunyun.i18n import translate
from qunyun.services import tasks
from qunyun.services.ingest import do_ingest_event
from tests.factories import event, raw_join, raw_message
from tests.web.conftest import login


def seed(conn: Connection, runtime: Runtime) -> int:
    do_ingest_event(conn, event(raw_join("e1", "g1", "u1", name="张三")),
                    config=runtime.ingest_config)
    do_ingest_event(conn, event(raw_message("e2", "g1", "u1", "请问价格")),
                    config=runtime.ingest_config)
    return int(conn.execute(select(groups.c.id)).scalar_one())


def test_every_page_renders_for_admin(client: TestClient, staff: dict[str, str],
                                      conn: Connection, runtime: Runtime) -> None:
    gid = seed(conn, runtime)
    login(client, "admin1")
    for path, needle in [("/", "运营概览"), ("/groups", "群g1"), (f"/groups/{gid}", "请问价格"),
                         ("/members", "张三"), ("/tasks", "待办任务"), ("/outbox", "发送记录"),
                         ("/audit", "新建员工账号"), ("/users", "operator1")]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert needle in response.text, path
    assert f'href="/health?group={gid}"' in client.get(f"/groups/{gid}").text


def test_viewer_cannot_edit_group_but_operator_can(client: TestClient, staff: dict[str, str],
                                                   conn: Connection, runtime: Runtime) -> None:
    gid = seed(conn, runtime)
    csrf = login(client, "viewer1")
    refused = client.post(f"/groups/{gid}", data={"csrf_token": csrf, "name": "改名"})
    assert refused.status_code == 403 and "没有权限" in refused.text
    # in the reader's words, not the codes (role viewer may not operate)
    assert "你的角色是「只读」，不能修改设置、发送消息和处理运营工作" in refused.text
    assert "may not" not in refused.text and "operate" not in refused.text
    users = client.get("/users")
    assert users.status_code == 403 and "不能管理员工账号" in users.text
    client.cookies.clear()
    csrf = login(client, "operator1")
    saved = client.post(f"/groups/{gid}", data={"csrf_token": csrf, "name": "业主群A",
                                                 "welcome_template": "欢迎{name}"})
    assert saved.status_code == 303
    row = conn.execute(select(groups.c.name, groups.c.settings)).one()
    assert row.name == "业主群A" and row.settings["welcome_template"] == "欢迎{name}"
    assert conn.execute(select(audit_log.c.actor).where(audit_log.c.action == "group.update")
                        ).scalar_one() == "user:operator1"


def test_bad_group_edit_changes_nothing(client: TestClient, staff: dict[str, str],
                                        conn: Connection, runtime: Runtime) -> None:
    gid = seed(conn, runtime)
    csrf = login(client, "operator1")
    response = client.post(f"/groups/{gid}", data={"csrf_token": csrf, "name": "新名字",
                                                   "capacity": "lots"})
    assert response.status_code == 422 and "容量：须为整数" in response.text
    assert conn.execute(select(groups.c.name)).scalar_one() == "群g1"


def test_staff_task_marked_done_from_inbox(client: TestClient, staff: dict[str, str],
                                           conn: Connection, runtime: Runtime) -> None:
    gid = seed(conn, runtime)
    task_id = tasks.create_task(conn, kind="remove_member", title="移除 张三", reason="广告",
                                group_id=gid, now=utcnow())
    csrf = login(client, "sales1")
    assert "移除 张三" in client.get("/tasks").text
    done = client.post(f"/tasks/{task_id}/done", data={"csrf_token": csrf, "outcome": "已移除"})
    assert done.status_code == 303
    row = conn.execute(select(staff_tasks).where(staff_tasks.c.id == task_id)).mappings().one()
    assert row["status"] == "done" and row["outcome"] == "已移除"
    assert "已移除" not in client.get("/tasks").text  # open list no longer shows it
    again = client.post(f"/tasks/{task_id}/done", data={"csrf_token": csrf})
    assert again.status_code == 409


def test_admin_creates_user_and_sees_clear_error_for_duplicate(client: TestClient,
                                                               staff: dict[str, str]) -> None:
    csrf = login(client, "admin1")
    ok = client.post("/users", data={"csrf_token": csrf, "username": "xiaolin",
                                     "password": "long enough", "role": "sales"})
    assert ok.status_code == 200 and "账号已创建" in ok.text
    dup = client.post("/users", data={"csrf_token": csrf, "username": "xiaolin",
                                      "password": "long enough", "role": "sales"})
    assert dup.status_code == 422 and "已被使用" in dup.text


def test_htmx_task_done_returns_the_updated_row(client: TestClient, staff: dict[str, str],
                                                conn: Connection, runtime: Runtime) -> None:
    gid = seed(conn, runtime)
    task_id = tasks.create_task(conn, kind="remove_member", title="移除 张三", reason="广告",
                                group_id=gid, now=utcnow())
    csrf = login(client, "operator1")
    row = client.post(f"/tasks/{task_id}/done", data={"outcome": "已处理", "dismiss": "1"},
                      headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert row.status_code == 200
    assert row.text.startswith(f'<tr id="task-{task_id}">')
    assert "已忽略" in row.text and "已处理" in row.text and "<html" not in row.text


def test_no_such_page_answers_in_the_team_language(client: TestClient,
                                                   staff: dict[str, str]) -> None:
    """A 404 or 405 from routing (not from a service) is the error page in Chinese for
    people and the usual JSON shape for programs; the icon is served from the package."""
    login(client, staff["viewer"])
    page = client.get("/no-such-page")
    assert page.status_code == 404 and "找不到" in page.text and "Not Found" not in page.text
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json()["error"] == "Not Found"
    assert api.json()["message"] == translate("error.not_found", "zh-CN")
    wrong = client.delete("/members")
    assert wrong.status_code == 405 and "（405）" in wrong.text
    icon = client.get("/favicon.ico", follow_redirects=True)
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")


def test_the_send_log_names_each_rule_in_words(client: TestClient, staff: dict[str, str],
                                               conn: Connection, runtime: Runtime) -> None:
    from qunyun.domain.actions import HandToStaff, SendText
    from qunyun.services import outbox

    gid = seed(conn, runtime)
    outbox.enqueue(conn, platform="sandbox", key_prefix="t", now=utcnow(),
                   capabilities=runtime.capabilities("sandbox"), actions=[
                       ("join_flood", HandToStaff(group_id=gid, title="入群激增")),
                       ("delivery:7", SendText(group_id=gid, text="早安")),
                       ("my_plugin", SendText(group_id=gid, text="插件"))])
    login(client, "admin1")
    page = client.get("/outbox").text
    assert "入群激增提醒" in page and "定时推送" in page
    assert "join_flood" not in page and "delivery:7" not in page
    assert "my_plugin" in page  # a rule the catalog does not know is shown as it is named
