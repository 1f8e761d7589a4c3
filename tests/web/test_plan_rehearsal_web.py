"""A plan's rehearsal and its pushes from the pages and the API: the rehearsal form for
those who operate (not for viewers), the outcome page in the team's words with its chart,
the same answer from the API for the same seed, bad seeds refused with nothing changed;
the broadcasts a plan's groups get shown on its timeline."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from qunyun.bootstrap import Runtime
from qunyun.clock import FixedTime
from qunyun.services import broadcasts
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.factories import T0
from tests.integration.test_plan_rehearsal import FIRST, TZ, make_plan
from tests.web.conftest import login


@pytest.mark.slow
def test_rehearsal_from_the_page_and_the_api(client: TestClient, conn: Connection,
                                             runtime: Runtime, staff: dict[str, str]) -> None:
    runtime.now = FixedTime(T0)  # ten days before the plan: its pushes are still to come
    pid, gids = make_plan(conn, runtime, audience=600, days=3, name="<b>彩排</b>")
    broadcasts.do_create_broadcast(
        conn, actor=SYSTEM, name="<i>开营通知</i>", target={"groups": gids}, text="今晚开营",
        send_at=datetime.combine(FIRST + timedelta(days=1), time(20), tzinfo=TZ), now=T0)
    login(client, staff["viewer"])
    page = client.get(f"/plans/{pid}").text
    assert 'id="plan-rehearse-form"' not in page
    # the broadcast on the timeline, linked, its name escaped
    assert 'id="plan-push-row"' in page and 'href="/content/broadcasts"' in page
    assert "<i>开营通知</i>" not in page and "&lt;i&gt;开营通知&lt;/i&gt;" in page
    assert client.post(f"/plans/{pid}/rehearse", data={"seed": "3"}).status_code == 403
    csrf = login(client, staff["operator"])
    assert 'id="plan-rehearse-form"' in client.get(f"/plans/{pid}").text
    pushes = client.get(f"/api/v1/plans/{pid}/pushes").json()
    assert [(p["source"], p["time"], p["groups"]) for p in pushes] == [
        ("broadcast", "20:00", 3)]
    before = snapshot(conn)
    shown = client.post(f"/plans/{pid}/rehearse", data={"csrf_token": csrf, "seed": "3"})
    assert shown.status_code == 200
    text = shown.text
    for part in ('id="rehearsal-chart"', 'id="rehearsal-days"', 'id="rehearsal-calibration"',
                 'id="rehearsal-groups"', "发言集中度", "模拟结果 ~预测 /目标"):
        assert part in text
    for code in ("gini", "daily_active_share", "plan_variance", "<b>彩排</b>"):
        assert code not in text
    api = client.post(f"/api/v1/plans/{pid}/rehearse", headers={"x-csrf-token": csrf},
                      json={"seed": 3})
    assert api.status_code == 200
    out = api.json()
    assert f'<div class="v">{out["totals"]["joined"]["simulated"]}</div>' in text
    assert out["staff"]["pushes"] == 3  # the broadcast reached the three groups
    assert snapshot(conn) == before  # nothing simulated was kept
    for bad in ({"seed": -1}, {"seed": "x"}, {"seed": 3, "days": 9}):
        assert client.post(f"/api/v1/plans/{pid}/rehearse", headers={"x-csrf-token": csrf},
                           json=bad).status_code == 422
    refused = client.post(f"/plans/{pid}/rehearse", data={"csrf_token": csrf, "seed": "七"})
    assert refused.status_code == 422 and "随机种子" in refused.text
    assert client.post("/api/v1/plans/999999/rehearse", headers={"x-csrf-token": csrf},
                       json={}).status_code == 404


def test_a_request_rehearses_only_what_it_can_wait_for(client: TestClient, conn: Connection,
                                                      runtime: Runtime,
                                                      staff: dict[str, str]) -> None:
    """A plan longer than a request waits for is sent to the command line, nothing run."""
    pid, _ = make_plan(conn, runtime, audience=600, days=50, name="长计划")
    csrf = login(client, staff["operator"])
    before = snapshot(conn)
    api = client.post(f"/api/v1/plans/{pid}/rehearse", headers={"x-csrf-token": csrf},
                      json={"seed": 1})
    assert api.status_code == 422 and "qunyun plan rehearse" in api.json()["message"]
    page = client.post(f"/plans/{pid}/rehearse", data={"csrf_token": csrf, "seed": "1"})
    assert page.status_code == 422 and "命令行" in page.text and "45" in page.text
    assert snapshot(conn) == before
