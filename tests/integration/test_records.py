"""Service records and follow-ups. Both databases, through services in the test's transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection

from qunyun.services import (
    records,
)
from qunyun.services.errors import InvalidInput
from tests.crm_scenario import SALES, VIEWER


def test_service_records_and_follow_ups(conn: Connection, seeded: dict[str, int]) -> None:
    due = datetime.now(UTC) + timedelta(days=1)
    rid = records.do_add_record(conn, actor=SALES, member_id=seeded["u2"], kind="follow_up",
                                body="周五回访报名意向", due_at=due)
    records.do_add_record(conn, actor=SALES, member_id=seeded["u2"], kind="call",
                          body="已电话沟通")
    assert [r["id"] for r in records.list_follow_ups(conn, actor=VIEWER)] == [rid]
    with pytest.raises(InvalidInput, match="due_at"):
        records.do_add_record(conn, actor=SALES, member_id=seeded["u2"], kind="follow_up",
                              body="x")
    records.do_complete_follow_up(conn, actor=SALES, record_id=rid)
    assert records.list_follow_ups(conn, actor=VIEWER) == []
    with pytest.raises(Exception, match="may not"):
        records.do_add_record(conn, actor=VIEWER, member_id=seeded["u2"], kind="note",
                              body="x")
