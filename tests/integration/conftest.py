"""Fixtures the integration suites share."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection

from qunyun.bootstrap import Runtime
from qunyun.services import attributes
from qunyun.services.users import SYSTEM
from tests import crm_scenario


@pytest.fixture
def seeded(conn: Connection, runtime: Runtime, tmp_path: Path) -> dict[str, int]:
    """The CRM example (tests/crm_scenario.py) with its spreadsheet of attributes."""
    ids = crm_scenario.build(conn, runtime)
    report = attributes.do_import_attributes(
        conn, actor=SYSTEM, path=crm_scenario.sheet_csv(conn, ids, tmp_path / "sheet.csv"))
    assert report.matched == 6 and [u["line"] for u in report.unmatched] == [8]
    crm_scenario.mark_not_personal(conn)
    return ids
