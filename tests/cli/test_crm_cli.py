"""`qunyun members | tags | segments | leads` against real databases, through the CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qunyun.adapters.storage.tables import audit_log, member_attributes
from qunyun.cli.main import app
from tests.cli.test_cli import count
from tests.factories import raw_join, raw_message

runner = CliRunner()


def run(db: str, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--db", db, *args])


def ok(db: str, *args: str) -> dict:  # type: ignore[type-arg]
    result = run(db, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def db(tmp_path: Path, fresh_db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("QUNYUN_DATA_DIR", str(tmp_path / "var"))
    events = [raw_join("j1", "g1", "u1", name="小明妈妈", channel="海报A"),
              raw_join("j2", "g1", "u2", name="小红爸爸", channel="海报B", minutes=1),
              raw_join("j3", "g2", "u3", name="广告哥", minutes=2),
              raw_message("m1", "g1", "u1", "请问报名多少钱", minutes=3),
              raw_message("m2", "g1", "u1", "已打卡", minutes=4)]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in events) + "\n",
                    encoding="utf-8")
    assert run(fresh_db_url, "ingest", str(path)).exit_code == 0
    return fresh_db_url


def test_members_tags_segments_and_leads(english: None, db: str, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("会员编号,spend,手机号\n10001,1200,13812345678\n10002,300,\n"
                     "10999,5,\n", encoding="utf-8")
    report = ok(db, "members", "import-attributes", str(sheet))
    assert (report["matched"], report["unmatched"]) == (2, [{"line": 4, "key": "10999",
                                                             "members": 0}])
    tag = ok(db, "tags", "create", "问过价格", "--group", "意向", "--rule", 'said ~ "多少钱"')
    assert tag["members"] == 1
    assert ok(db, "members", "tag", "10002", "意向/高", "--reason", "电话")["added"] is True
    seg = ok(db, "segments", "create", "海报A高消费", 'channel = "海报A" and attr.spend >= 1000')
    assert seg["members"] == 1
    assert ok(db, "segments", "count", 'tag = "高" or tag = "问过价格"')["members"] == 2

    shown = ok(db, "leads", "show", "--segment", 'number >= 10001',
               "--formula", '1 * messages + 100 * (tag = "问过价格") + 0.01 * attr.spend')
    assert [(r["number"], r["score"]) for r in shown["rows"]] == [
        (10001, 114.0), (10002, 3.0), (10003, 0.0)]
    assert shown["rows"][0]["why"] == (  # said in the team's language (English here)
        "Messages: 1 points each: 2 → +2.0; 100 points if Tag is “问过价格”: 1 → +100.0; "
        "Custom field “spend” × 0.01 points: 1200 → +12.0")

    assert run(db, "users", "create", "viewer1", "--role", "viewer", "--password",
               "secret-pass").exit_code == 0
    out = tmp_path / "leads.csv"
    refused = run(db, "leads", "export", "--segment", "海报A高消费", "--formula",
                  "1 * attr.spend", "--out", str(out), "--as", "viewer1")
    assert refused.exit_code == 2 and "attr.spend: a personal attribute" in refused.output
    fields = {f["name"]: f for f in ok(db, "members", "attributes")}
    assert fields["spend"]["personal"] is True and fields["spend"]["members"] == 2
    assert run(db, "members", "mark-attribute", "spend", "--not-personal", "--as",
               "viewer1").exit_code == 2  # admins only
    assert ok(db, "members", "mark-attribute", "spend", "--not-personal")["personal"] is False
    exported = ok(db, "leads", "export", "--segment", "海报A高消费", "--formula",
                  "1 * attr.spend", "--out", str(out), "--as", "viewer1")
    assert exported["rows"] == 1
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert rows[1][1:4] == ["10001", "小明妈妈", "1200.0"] and rows[1][5] == "138****5678"
    xlsx = tmp_path / "leads.xlsx"
    assert ok(db, "leads", "export", "--segment", "海报A高消费", "--out", str(xlsx))["rows"] == 1
    assert xlsx.read_bytes()[:2] == b"PK"
    assert count(db, audit_log.select().where(audit_log.c.action == "leads.export")
                 .subquery()) == 2


def test_blacklist_notes_and_merge_undo(english: None, db: str) -> None:
    barred = ok(db, "members", "blacklist", "10003", "--reason", "发广告", "--days", "30")
    assert barred["expires_at"] and barred["removals"] == 1  # out of g2, where they are now
    again = run(db, "members", "blacklist", "10003", "--reason", "again")
    assert again.exit_code == 2 and "already blacklisted" in again.output
    note = ok(db, "members", "note", "10001", "周五回访", "--kind", "follow_up", "--due",
              "2026-12-01T10:00")
    assert note["kind"] == "follow_up"
    profile = ok(db, "members", "show", "10001")
    assert profile["records"][0]["body"] == "周五回访"
    assert {i["kind"] for i in profile["timeline"]} >= {"message", "event.joined",
                                                          "record.follow_up"}
    merged = ok(db, "members", "merge", "10002", "10001", "--reason", "同一家长")
    gone = run(db, "members", "show", "10002")
    assert gone.exit_code == 2 and "merged into member 10001" in gone.output
    ok(db, "members", "unmerge", str(merged["merge"]))
    assert ok(db, "members", "show", "10002")["display_name"] == "小红爸爸"


def test_bad_input_exits_2_and_changes_nothing(english: None, db: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("会员编号,spend\n10001,5\n10002,6,7\n", encoding="utf-8")
    result = run(db, "members", "import-attributes", str(bad))
    assert result.exit_code == 2 and "bad.csv: line 3" in result.output
    assert count(db, member_attributes) == 0
    result = run(db, "segments", "count", "tag = ")
    assert result.exit_code == 2 and "segment:" in result.output
    result = run(db, "members", "tag", "10001", "x", "--as", "nobody")
    assert result.exit_code == 2 and "no active staff user" in result.output


def test_import_brings_rule_tags_up_to_date(fresh_db_url: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from qunyun.adapters.platforms.exports import formats

    monkeypatch.setenv("QUNYUN_DATA_DIR", str(tmp_path / "var"))
    db = fresh_db_url
    assert ok(db, "tags", "create", "发过言", "--rule", "messages >= 1")["members"] == 0
    fixture = Path(formats.__file__).parent / "fixtures" / "memotrace__group.csv"
    totals = ok(db, "import", str(fixture))
    # notices went through ingest (incremental); the bulk messages are caught at the end
    assert totals["files"][0]["rule_tags_changed"] >= 1
    listed = {t["name"]: t["members"] for t in ok(db, "tags", "list")}  # type: ignore[union-attr]
    speakers = ok(db, "segments", "count", "messages >= 1")["members"]
    assert speakers == 4 and listed["发过言"] == speakers
    assert ok(db, "tags", "recompute") == {"发过言": {"added": 0, "removed": 0}}


def test_moderate_classify_and_faq_match_print_one_json_line_per_input(tmp_path: Path) -> None:
    runner = CliRunner()
    texts = tmp_path / "texts.txt"
    texts.write_text("兼职刷单日结300，加V：abc12345\n请问团购价格多少？\n\n", encoding="utf-8")
    out = runner.invoke(app, ["moderate", "classify", "--input", str(texts), "--json"])
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [row["verdict"] for row in lines] == ["block", "ok", "ok"]
    assert all({"verdict", "score", "reasons"} <= set(row) for row in lines)
    faq = tmp_path / "faq.csv"
    faq.write_text("id,question,answer\nprice,团购价格多少,99元\nprice,多少钱一套,\n"
                   "ship,什么时候发货,三天\n", encoding="utf-8")
    out = runner.invoke(app, ["faq", "match", "--faq", str(faq), "--json"],
                        input="团购价格是多少？\n今天天气不错\n")
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["match"] for r in rows] == ["price", None]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,question\n1,x\n", encoding="utf-8")
    out = runner.invoke(app, ["faq", "match", "--faq", str(bad), "--json"], input="x\n")
    assert out.exit_code == 2 and "bad.csv:1: missing column" in out.output


def test_moderate_review_overturns_an_automatic_removal(db: str, tmp_path: Path) -> None:
    ok(db, "automation", "set", "moderation", "enabled=true", 'escalation=["remove"]')
    live = {**raw_message("ad1", "g1", "u2", "低息贷款当天放款，联系电话 13812345678"),
            "at": datetime.now(UTC).isoformat()}
    path = tmp_path / "live.jsonl"
    path.write_text(json.dumps(live, ensure_ascii=False) + "\n", encoding="utf-8")
    assert run(db, "ingest", str(path)).exit_code == 0
    listed = ok(db, "moderate", "queue", "--status", "")
    assert listed["total"] == 1
    (decision,) = listed["rows"]
    assert (decision["action"], decision["status"]) == ("remove", "logged")
    shown = run(db, "moderate", "review", str(decision["id"]), "--overturn")
    assert shown.exit_code == 0 and "已撤销" in shown.output
    assert "取消移出或禁言 1 个" in shown.output
    again = run(db, "moderate", "review", str(decision["id"]), "--overturn")
    # the team reads the refusal in Chinese, the status as a word, not its code
    assert again.exit_code == 2 and "已是“已撤销”状态" in again.output, again.output
    assert "overturned" not in again.output



def test_members_pages_and_the_channel_report(db: str, tmp_path: Path) -> None:
    first = ok(db, "members", "search", "--per-page", "2", "--sort", "name")
    assert first["total"] == 3 and len(first["rows"]) == 2 and first["pages"] == 2
    shown = run(db, "members", "search", "--per-page", "2")
    assert shown.exit_code == 0 and "共 3 条" in shown.output and "第 1/2 页" in shown.output
    assert run(db, "members", "search", "--sort", "password").exit_code == 2
    ok(db, "activities", "series-add", "X", "--name", "英语打卡")
    ok(db, "activities", "add", "X", "--start", "2026-11-25", "--end", "2026-12-15")
    ok(db, "activities", "enrol", "X1", "--member", "10002")
    report = ok(db, "report", "channels")
    assert report["model"] == "first" and report["lines"][0]["label"] == "海报B"
    sheet = tmp_path / "channels.csv"
    table = run(db, "report", "channels", "--csv", str(sheet))
    assert table.exit_code == 0 and "带来报名最多的是 海报B" in table.output
    assert sheet.read_text(encoding="utf-8-sig").splitlines()[1].startswith("海报B,1,1")
    assert run(db, "report", "channels", "--model", "linear").exit_code == 2
    assert run(db, "report", "channels", "--since", "yesterday").exit_code == 2
