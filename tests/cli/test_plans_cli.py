"""``qunyun plan create|stage|target|show|actual``: a plan made and followed from the
command line, in words and JSON; refusals exit non-zero and change nothing."""

from __future__ import annotations

import json
from pathlib import Path

from qunyun.adapters.storage.tables import plan_stages, plans
from tests.cli.test_cli import count, env, run  # noqa: F401  # the runner and its data dir


def test_a_plan_from_the_command_line(env: Path, fresh_db_url: str,  # noqa: F811
                                      tmp_path: Path) -> None:
    db = fresh_db_url
    made = run(db, "plan", "create", "--name", "3期招募", "--from", "2026-12-01", "--to",
               "2026-12-10", "--target-deposits", "20", "--json")
    assert made.exit_code == 0, made.output
    plan = json.loads(made.stdout)
    assert plan["target_totals"]["joined"] == 500 and plan["goal"]["answer"]["groups"] == 6
    assert run(db, "plan", "stage", "3期招募", "--kind", "recruiting", "--name", "招募期",
               "--from", "2026-12-01", "--to", "2026-12-07").exit_code == 0
    assert run(db, "plan", "target", "3期招募", "--metric", "active", "--day", "2026-12-02",
               "--value", "30").exit_code == 0
    shown = run(db, "plan", "show", "3期招募")
    assert shown.exit_code == 0 and "招募 招募期" in shown.output and "入群: 500" in shown.output
    actual = run(db, "plan", "actual", "3期招募")
    assert actual.exit_code == 0 and "2026-12-02" in actual.output and "0/30" in actual.output
    report = json.loads(run(db, "plan", "actual", str(plan["id"]), "--json").stdout)
    assert len(report["days"]) == 10 and report["totals"]["active"]["target"] == 30
    assert run(db, "plan", "task", "3期招募", "--title", "招募海报", "--kind", "poster",
               "--due", "2026-11-30").exit_code == 0
    assert run(db, "plan", "budget", "3期招募", "--title", "保温杯", "--category", "gifts",
               "--planned", "300", "--actual", "280.5").exit_code == 0
    listed = run(db, "plan", "show", "3期招募")
    assert "[待办]" in listed.output and "计划 300.0 元，实际 280.5 元" in listed.output
    stage_id = json.loads(run(db, "plan", "show", "3期招募", "--json").stdout)["stages"][0]["id"]
    assert run(db, "plan", "retro", "3期招募", "--stage", str(stage_id), "--worked", "转发多",
               "--change", "加直播").exit_code == 0
    assert run(db, "plan", "problem", "3期招募", "--issue", "群满了").exit_code == 0
    out = tmp_path / "report.html"
    written = run(db, "plan", "report", "3期招募", "--out", str(out))
    assert written.exit_code == 0 and "加直播" in out.read_text(encoding="utf-8")
    for suffix, magic in ((".png", b"\x89PNG"), (".pdf", b"%PDF")):
        made = tmp_path / f"report{suffix}"
        assert run(db, "plan", "report", "3期招募", "--out", str(made)).exit_code == 0
        assert made.read_bytes().startswith(magic)
    odd = run(db, "plan", "report", "3期招募", "--out", str(tmp_path / "report.txt"))
    assert odd.exit_code == 2 and ".pdf" in odd.output and not (tmp_path / "report.txt").exists()
    checked = run(db, "plan", "check", "--json")
    assert checked.exit_code == 0 and "tasks" in json.loads(checked.stdout)
    before = (count(db, plans), count(db, plan_stages))
    late = run(db, "plan", "stage", "3期招募", "--kind", "launch", "--from", "2026-12-20",
               "--to", "2026-12-21")
    assert late.exit_code == 2 and "2026-12-01" in late.output
    odd = run(db, "plan", "stage", "3期招募", "--kind", "party", "--from", "2026-12-02",
              "--to", "2026-12-03")
    assert odd.exit_code == 2 and "开营" in odd.output and "launch" not in odd.output
    assert run(db, "plan", "create", "--name", "3期招募", "--from", "2026-12-01", "--to",
               "2026-12-02").exit_code != 0
    assert run(db, "plan", "show", "nope").exit_code != 0
    assert (count(db, plans), count(db, plan_stages)) == before


def test_a_plan_rehearsed_from_the_command_line(env: Path, fresh_db_url: str  # noqa: F811
                                                ) -> None:
    """Two WeCom groups planned ahead, a plan over them without an activity: the rehearsal
    stands in for WeCom, says money is not counted, and speaks the team's words."""
    db = fresh_db_url
    for name in ("彩排一群", "彩排二群"):
        assert run(db, "groups", "plan", "--platform", "wecom", "--name", name,
                   "--capacity", "100").exit_code == 0
    assert run(db, "plan", "create", "--name", "彩排计划", "--from", "2026-12-01", "--to",
               "2026-12-03", "--groups", "1,2", "--audience", "600", "--join-rate", "0.1",
               "--json").exit_code == 0
    before = (count(db, plans), count(db, plan_stages))
    out = json.loads(run(db, "plan", "rehearse", "彩排计划", "--seed", "5", "--json").stdout)
    assert [d["reached"] for d in out["days"]] == [200, 200, 200]
    assert out["totals"]["joined"]["forecast"] == 60.0 and not out["money_counted"]
    # no activity: money is unknown, never "short"
    assert out["totals"]["deposit"]["simulated"] is None
    assert {s["metric"] for s in out["short"]} <= {"joined", "active"}
    joined, left = out["totals"]["joined"]["simulated"], out["reactions"]["left"]
    assert joined - left == sum(g["members"] for g in out["groups"])
    shown = run(db, "plan", "rehearse", "彩排计划", "--seed", "5")
    assert shown.exit_code == 0, shown.output
    for words in ("发言集中度", "没有关联活动", "彩排一群", "员工任务"):
        assert words in shown.output
    for code in ("gini", "plan_variance", "burstiness"):
        assert code not in shown.output
    assert "没有安排推送" in run(db, "plan", "pushes", "彩排计划").output
    missing = run(db, "plan", "rehearse", "没有这个计划")
    assert missing.exit_code != 0 and "没有这个计划" in missing.output
    assert run(db, "plan", "rehearse", "彩排计划", "--seed", "-3").exit_code == 2
    assert (count(db, plans), count(db, plan_stages)) == before
