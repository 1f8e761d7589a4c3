"""`qunyun fission …` on real databases and the sandbox: create with stages, a member's
code, joins through it, the report, the rewards shipped and exported."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tests.cli.test_cli import env, run  # noqa: F401  # the command runner and its data dir
from tests.factories import raw_join


def test_a_campaign_through_the_commands(env: Path, fresh_db_url: str,  # noqa: F811
                                         tmp_path: Path) -> None:
    db = fresh_db_url
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(raw_join(f"e{i}", "g1", f"u{i}", name=f"用户{i}"),
                                           ensure_ascii=False) for i in range(2)))
    assert run(db, "ingest", str(events)).exit_code == 0
    bad = run(db, "fission", "create", "--name", "x", "--group", "1", "--stage", "3:杯",
              "--account", "demo")
    assert bad.exit_code == 2 and "人数:奖品:库存" in bad.output
    made = run(db, "fission", "create", "--name", "邀 2 人领杯", "--group", "1", "--stage",
               "2:保温杯:1", "--account", "demo", "--json")
    assert made.exit_code == 0, made.output
    cid = json.loads(made.stdout)["id"]
    joined = run(db, "fission", "join", str(cid), "--member", "10001", "--json")
    assert joined.exit_code == 0, joined.output
    code = json.loads(joined.stdout)["code"]
    friends = tmp_path / "friends.jsonl"
    friends.write_text("\n".join(json.dumps(raw_join(
        f"f{i}", "g1", f"f{i}", name=f"朋友{i}", minutes=1 + i, scene="qr", channel=code),
        ensure_ascii=False) for i in range(2)))
    assert run(db, "ingest", str(friends)).exit_code == 0
    # the worker settles the invites and welcomes both friends with codes of their own
    assert run(db, "worker", "--once").exit_code == 0
    report = json.loads(run(db, "fission", "report", str(cid), "--json").stdout)
    assert (report["participants"], report["valid_invites"], report["completed"]) == (3, 2, 1)
    text = run(db, "fission", "report", str(cid))
    assert "有效邀请 2 人" in text.output
    (reward,) = json.loads(run(db, "fission", "rewards", str(cid), "--json").stdout)
    link = run(db, "fission", "claim-link", str(reward["id"]), "--json")
    assert link.exit_code == 0 and "/claim/" in json.loads(link.stdout)["link"]
    shipped = run(db, "fission", "ship", str(reward["id"]), "--tracking", "SF100", "--json")
    assert json.loads(shipped.stdout)["tracking"] == "SF100"
    sheet = tmp_path / "rewards.xlsx"
    written = run(db, "fission", "rewards", str(cid), "--export", str(sheet))
    assert written.exit_code == 0 and sheet.read_bytes()[:2] == b"PK"
    again = run(db, "fission", "ship", str(reward["id"]))
    assert again.exit_code == 2 and "不能改成" in again.output
    late = run(db, "fission", "claim-link", str(reward["id"]))
    assert late.exit_code == 2 and "不在待领取" in late.output
    # the team's own words for a step; a placeholder that step does not fill is refused
    typo = run(db, "fission", "edit", str(cid), "--text", "progress=还差 {lft} 人")
    assert typo.exit_code == 2 and "{lft}" in typo.output and "{left}" in typo.output
    edited = run(db, "fission", "edit", str(cid), "--text", "progress=@{name} 还差 {left} 人",
                 "--no-enrol-newcomers", "--completers-tag", "完成/春季", "--json")
    assert edited.exit_code == 0, edited.output
    out = json.loads(edited.stdout)
    assert out["texts_used"]["progress"] == "@{name} 还差 {left} 人"
    assert (out["enrol_newcomers"], out["completers_tag"]) == (False, "完成/春季")
    assert out["texts_used"]["done"].startswith("@{name} 恭喜完成")
    png = tmp_path / "poster.png"
    assert run(db, "fission", "poster", str(cid), "--member", "10001", "--out",
               str(png)).exit_code == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    layout = run(db, "fission", "poster-set", str(cid), "--qr", "40,40,200", "--json")
    assert json.loads(layout.stdout)["qr"] == {"x": 40, "y": 40, "size": 200}
    off = run(db, "fission", "poster-set", str(cid), "--qr", "700,0,300")
    assert off.exit_code == 2 and "二维码" in off.output
    assert json.loads(run(db, "fission", "end", str(cid), "--json").stdout)["status"] == "ended"
    assert run(db, "fission", "show", "999").exit_code == 2


def test_screenshots_through_the_commands(env: Path, fresh_db_url: str,  # noqa: F811
                                          tmp_path: Path) -> None:
    """A share task: a screenshot a member sent staff is put in the queue, a decline needs
    a reason, an approval reserves the reward."""
    db = fresh_db_url
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(raw_join("e0", "g1", "u0", name="用户0"), ensure_ascii=False))
    assert run(db, "ingest", str(events)).exit_code == 0
    cid = json.loads(run(db, "fission", "create", "--name", "分享领书", "--group", "1",
                         "--stage", "3:杯:5", "--stage", "截图:电子书:10", "--account", "demo",
                         "--json").stdout)["id"]
    assert run(db, "fission", "join", str(cid), "--member", "10001").exit_code == 0
    shot = tmp_path / "shot.png"
    Image.new("RGB", (40, 80), "#336699").save(shot)
    missing = run(db, "fission", "submit-shot", str(cid), "--member", "10001", "--file",
                  str(tmp_path / "nope.png"))
    assert missing.exit_code == 2 and "没有这个文件" in missing.output
    made = run(db, "fission", "submit-shot", str(cid), "--member", "10001", "--file",
               str(shot), "--json")
    assert made.exit_code == 0, made.output
    shot_id = json.loads(made.stdout)["id"]
    (queued,) = json.loads(run(db, "fission", "shots", str(cid), "--json").stdout)
    assert queued["id"] == shot_id and queued["status"] == "pending"
    vague = run(db, "fission", "review", str(shot_id), "--decline")
    assert vague.exit_code == 2 and "原因" in vague.output
    ok = run(db, "fission", "review", str(shot_id), "--approve", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["status"] == "approved"
    (reward,) = json.loads(run(db, "fission", "rewards", str(cid), "--json").stdout)
    assert (reward["reward"], reward["status"]) == ("电子书", "reserved")
    listed = run(db, "fission", "shots", str(cid), "--status", "all")
    assert listed.exit_code == 0 and "通过审核" in listed.output
    # the plan rehearsed on the sandbox: a new campaign, this one untouched
    wrong = run(db, "fission", "rehearse", str(cid), "--share", "2")
    assert wrong.exit_code == 2 and "转发比例" in wrong.output
    rehearsed = run(db, "fission", "rehearse", str(cid), "--seeds", "5", "--days", "1",
                    "--share", "1", "--json")
    assert rehearsed.exit_code == 0, rehearsed.output
    out = json.loads(rehearsed.stdout)
    assert out["campaign_id"] != cid and out["report"]["participants"] >= 5
    assert json.loads(run(db, "fission", "report", str(cid), "--json").stdout)[
        "participants"] == 1
