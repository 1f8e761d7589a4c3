"""`qunyun scripts | playbook | broadcast` against real databases, through the CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.tables import broadcasts, playbooks, scheduled_jobs, scripts
from qunyun.clock import utcnow
from tests.cli.test_cli import count
from tests.cli.test_crm_cli import db, ok, run  # noqa: F401  (the db fixture)

TZ = ZoneInfo("Asia/Shanghai")


def group_ids(url: str) -> list[int]:
    return sorted(g["id"] for g in ok(url, "report", "groups"))


def test_scripts_playbook_preview_shift_and_broadcast(db: str, tmp_path: Path) -> None:  # noqa: F811
    g1, g2 = group_ids(db)
    script = ok(db, "scripts", "add", "--name", "早报", "--body", "{date} {group}早报",
                "--kind", "announcement")
    assert script["version"] == 1
    assert ok(db, "scripts", "edit", "早报", "--body", "{group}早报来啦", "--note", "简短")[
        "version"] == 2
    shown = ok(db, "scripts", "show", "早报")
    assert [h["version"] for h in shown["history"]] == [2, 1]
    assert ok(db, "scripts", "preview", "早报", "--group", str(g1))["text"].endswith("早报来啦")

    start = (utcnow() + timedelta(days=3)).astimezone(TZ).replace(hour=20, minute=0)
    ids = ok(db, "playbook", "samples", "--groups", f"{g1},{g2}", "--start",
             start.strftime("%Y-%m-%d %H:%M"), "--daily-groups", str(g1))
    assert set(ids) == {"发布日样例", "每日 SOP"}
    pb = ok(db, "playbook", "show", "发布日样例")
    assert len(pb["steps"]) == 8 and len(pb["groups"]) == 2
    preview = ok(db, "playbook", "preview", "发布日样例", "--from",
                 (start - timedelta(days=2)).strftime("%Y-%m-%d"), "--days", "3")
    assert preview["counts"] == {"send": 16}
    # the launch group's whole launch day: six launch sends, the daily SOP gives way
    day = ok(db, "timeline", "--group", str(g1), "--from", start.strftime("%Y-%m-%d"),
             "--days", "1")
    assert day["counts"] == {"send": 6, "dropped": 4}
    shown = run(db, "timeline", "--group", str(g1), "--from", start.strftime("%Y-%m-%d"),
                "--days", "1")
    assert shown.exit_code == 0 and "超频丢弃" in shown.output and "日常" in shown.output
    assert "dropped" not in shown.output and "routine" not in shown.output
    both = run(db, "timeline")
    assert both.exit_code == 2 and "--group" in both.output
    shifted = ok(db, "playbook", "shift", "发布日样例", "--by", "1d")
    assert shifted["missed"] == []
    moved = ok(db, "playbook", "preview", "发布日样例", "--from",
               (start - timedelta(days=2)).strftime("%Y-%m-%d"), "--days", "3")
    # a day later: only the warm-up topic and the notice of the day before stay in the window
    assert moved["counts"] == {"send": 4}
    assert {r["step"] for r in moved["rows"]} == {"提前两天预热", "提前一天预告"}
    assert ok(db, "playbook", "pause", "每日 SOP")["status"] == "paused"

    dry = ok(db, "broadcast", "send", "--name", "通知", "--text", "今晚8点直播",
             "--all-groups", "--dry-run")
    assert dry["recipients"] == 2
    before = count(db, broadcasts)
    sent = ok(db, "broadcast", "send", "--name", "通知", "--text", "今晚8点直播",
              "--groups", str(g1))
    assert sent["status"] == "scheduled" and count(db, broadcasts) == before + 1
    assert ok(db, "broadcast", "cancel", str(sent["id"]))["status"] == "cancelled"
    listed = ok(db, "broadcast", "list")
    assert listed[0]["status"] == "cancelled"


def test_bad_content_input_exits_2_and_changes_nothing(english: None, db: str) -> None:  # noqa: F811
    before = (count(db, scripts), count(db, playbooks), count(db, broadcasts))
    for args, message in [
        (("scripts", "add", "--name", "x", "--body", "{oops"), "body"),
        (("scripts", "add", "--name", "x", "--body", "{who}好"), "unknown variable"),
        (("playbook", "create", "--name", "p", "--start", "next week"), "--start"),
        (("broadcast", "send", "--name", "b", "--text", "x", "--groups", "999999"),
         "no group 999999"),
        (("broadcast", "send", "--name", "b", "--text", "x"), "target"),
        (("playbook", "shift", "nope", "--by", "1d"), "not found"),
    ]:
        result = run(db, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
    assert (count(db, scripts), count(db, playbooks), count(db, broadcasts)) == before


def test_a_playbook_started_by_a_state_change(db: str) -> None:  # noqa: F811
    g1, _g2 = group_ids(db)
    ok(db, "scripts", "add", "--name", "激活", "--body", "好久不见，今晚抽奖", "--kind",
       "interactive")
    made = ok(db, "playbook", "create", "--name", "降温激活", "--on-state", "cooling")
    assert made["on_state"] == "cooling"
    ok(db, "playbook", "add-step", "降温激活", "--at", "T+0", "--script", "激活")
    shown = run(db, "playbook", "show", "降温激活")
    assert shown.exit_code == 0 and "群进入「降温中」时" in shown.output
    assert "active" not in shown.output and "执行中" in shown.output
    bad = run(db, "playbook", "create", "--name", "x", "--on-state", "sleepy")
    assert bad.exit_code == 2 and "降温中" in bad.output
    moved = ok(db, "groups", "edit", str(g1), "--state", "cooling")
    assert moved["state"] == "cooling"
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            jobs = conn.execute(select(scheduled_jobs.c.group_id).where(
                scheduled_jobs.c.kind == "playbook_step",
                scheduled_jobs.c.status == "active")).scalars().all()
    finally:
        engine.dispose()
    assert jobs == [g1]  # the run in the group that cooled
