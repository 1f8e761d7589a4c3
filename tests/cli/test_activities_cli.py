"""`qunyun activities …` and `qunyun report cohorts` against real databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from qunyun.adapters.storage.tables import enrolments
from tests.cli.test_cli import count
from tests.cli.test_crm_cli import db, ok, run  # noqa: F401  (the db fixture)


def test_series_enrol_import_settle_convert_report(english: None, db: str, tmp_path: Path,  # noqa: F811
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    groups = sorted(g["id"] for g in ok(db, "report", "groups"))
    listed = ok(db, "members", "search", "--per-page", "500")
    numbers = sorted(m["number"] for m in listed["rows"])
    assert ok(db, "activities", "series-add", "X", "--name", "英语打卡")["code"] == "X"
    x1 = ok(db, "activities", "add", "X", "--start", "2026-11-01", "--end", "2026-11-21",
            "--group", str(groups[0]), "--deposit", "99", "--tiers", "21:100,15:50",
            "--reach", "海报A=300", "--target", "enrolled=100")
    assert (x1["code"], x1["deposit_fen"], x1["reach"]) == ("X1", 9900, {"海报A": 300})
    assert ok(db, "activities", "enrol", "X1", "--member", str(numbers[0]))["status"] == \
        "enrolled"
    again = run(db, "activities", "enrol", "X1", "--member", str(numbers[0]))
    assert again.exit_code == 2 and "already enrolled" in again.output

    form = tmp_path / "form.csv"
    form.write_text(f"学号,提交时间\n{numbers[1]},2026-10-30 10:00\n99999,2026-10-30 11:00\n",
                    encoding="utf-8")
    before = count(db, enrolments)
    bad = run(db, "activities", "import-enrolments", "X1", str(form))
    assert bad.exit_code == 2 and "form.csv: line 3" in bad.output
    assert count(db, enrolments) == before  # nothing half-written
    skipped = ok(db, "activities", "import-enrolments", "X1", str(form), "--on-error", "skip")
    assert skipped["enrolled"] == 1 and skipped["errors"][0]["line"] == 3

    sheet = tmp_path / "checkins.csv"
    sheet.write_text("学号,日期\n" + "".join(f"{numbers[0]},2026-11-{d:02d}\n"
                                           for d in range(1, 16)), encoding="utf-8")
    assert ok(db, "activities", "import-checkins", "X1", str(sheet))["checkins"] == 15
    dry = ok(db, "activities", "settle", "X1", "--dry-run")
    assert (dry["refunds"], dry["state"]) == (49.5, "planned")
    out = tmp_path / "refunds.csv"
    settled = ok(db, "activities", "settle", "X1", "--csv", str(out))
    assert settled["state"] == "settled" and "49.50" in out.read_text(encoding="utf-8")

    assert ok(db, "activities", "conversion", "--kind", "order", "--amount", "1999",
              "--activity", "X1", "--member", str(numbers[0]), "--ref", "A-1")["id"]
    dup = run(db, "activities", "conversion", "--kind", "order", "--amount", "1999",
              "--activity", "X1", "--member", str(numbers[0]), "--ref", "A-1")
    assert dup.exit_code == 2 and "already recorded" in dup.output
    shown = ok(db, "activities", "show", "X1")
    assert (shown["money"]["gmv"], shown["money"]["refunds"]) == (1999.0, 49.5)
    steps = {s["step"]: s["count"] for s in ok(db, "activities", "funnel", "X1")["steps"]}
    assert (steps["reached"], steps["enrolled"], steps["purchase"]) == (300, 2, 1)
    cohorts = ok(db, "report", "cohorts", "--series", "X")
    assert cohorts["issues"][0]["source"] == {"new": 2} and cohorts["as_of"] is None
    # the analytics mirror: built on demand, read only when switched on, then said so
    status = ok(db, "analytics", "status")
    assert (status["enabled"], status["refreshed_at"]) == (False, None)
    copied = ok(db, "analytics", "refresh")
    assert copied["rows"]["enrolments"] == 2 and copied["path"].endswith("analytics.duckdb")
    assert ok(db, "report", "cohorts", "--series", "X")["as_of"] is None  # still off
    monkeypatch.setenv("QUNYUN_ANALYTICS_MIRROR", "1")
    mirrored = ok(db, "report", "cohorts", "--series", "X")
    assert mirrored.pop("as_of") == copied["refreshed_at"]
    cohorts.pop("as_of")
    assert mirrored == cohorts
    assert ok(db, "analytics", "status")["enabled"] is True
    listed = ok(db, "activities", "list")
    assert listed[0]["enrolled"] == 2 and listed[0]["gmv"] == 1999.0
    assert run(db, "activities", "add", "X", "--start", "2026-13-01", "--end",
               "2026-12-01").exit_code == 2
