"""``qunyun plan calc``: seed 000's numbers both ways from the command line, in words and
as JSON; a bad input exits non-zero and names the option."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import env, run  # noqa: F401  # the runner and its data dir


def test_plan_calc_both_ways(env: Path, fresh_db_url: str) -> None:  # noqa: F811
    db = fresh_db_url
    back = run(db, "plan", "calc", "--target-deposits", "20", "--deposit-rate", "0.04",
               "--join-rate", "0.1", "--capacity", "100", "--fill", "0.9", "--staff", "5",
               "--contacts-per-day", "120", "--json")
    assert back.exit_code == 0, back.output
    plan = json.loads(back.stdout)
    assert {k: plan[k] for k in ("reach", "members", "groups", "deposits", "days")} == {
        "reach": 5000, "members": 500, "groups": 6, "deposits": 20, "days": 9}
    forward = json.loads(run(db, "plan", "calc", "--audience", "5000", "--deposit-rate",
                             "0.04", "--join-rate", "0.1", "--json").stdout)
    assert (forward["members"], forward["deposits"], forward["groups"]) == (500, 20, 6)
    assert forward["rates"]["purchase_rate"]["source"] == "default"
    words = run(db, "plan", "calc", "--audience", "5000")
    assert words.exit_code == 0 and "需触达: 5,000" in words.output
    assert "默认值" in words.output and "default" not in words.output
    bad = run(db, "plan", "calc", "--audience", "10", "--join-rate", "2")
    assert bad.exit_code == 2 and "join_rate" in bad.output
    none = run(db, "plan", "calc")
    assert none.exit_code == 2 and "只填一项" in none.output
