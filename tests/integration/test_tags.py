"""Tags: rule tags follow events and agree with a recompute; manual tags keep history and
audit. Both databases, through services in the test's transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import (
    member_tags,
    tag_events,
)
from qunyun.bootstrap import Runtime
from qunyun.domain.staff import Role
from qunyun.services import (
    tags,
)
from qunyun.services.errors import InvalidInput
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM, Actor
from tests.crm_scenario import VIEWER, clock
from tests.factories import event, raw_message


def test_rule_tags_follow_events_and_recompute_agrees(conn: Connection, runtime: Runtime,
                                                     seeded: dict[str, int]) -> None:
    tag_id = tags.do_create_tag(conn, actor=SYSTEM, name="问过价格", group="意向", kind="rule",
                                rule='said ~ "多少钱" or said ~ "价格"', clock=clock())
    holders = lambda: set(conn.execute(select(member_tags.c.member_id).where(  # noqa: E731
        member_tags.c.tag_id == tag_id)).scalars())
    assert holders() == {seeded["u2"]}  # applied at once to history
    do_ingest_event(conn, event(raw_message("m-price", "math1", "u4", "这个课什么价格?",
                                            minutes=500)), config=runtime.ingest_config)
    assert holders() == {seeded["u2"], seeded["u4"]}  # incremental, from ingest
    history = tags.tag_history(conn, seeded["u4"])
    assert history[0]["by"] == "rule:问过价格" and history[0]["action"] == "add"
    assert tags.do_recompute_rule_tags(conn, actor=SYSTEM, clock=clock()) == {
        "问过价格": {"added": 0, "removed": 0}}
    tags.do_update_tag(conn, actor=SYSTEM, tag_id=tag_id, rule='said ~ "价格"', clock=clock())
    assert holders() == {seeded["u4"]}
    removed = conn.execute(select(tag_events.c.member_id, tag_events.c.reason).where(
        tag_events.c.action == "remove")).all()
    assert removed == [(seeded["u2"], 'no longer: said ~ "价格"')]
    with pytest.raises(InvalidInput, match="rule tag"):
        tags.do_tag_member(conn, actor=SYSTEM, member_id=seeded["u1"], tag="意向/问过价格")


def test_manual_tags_have_history_and_audit(conn: Connection, seeded: dict[str, int]) -> None:
    operator = Actor(id=0, username="op", role=Role.OPERATOR)
    assert tags.do_tag_member(conn, actor=operator, member_id=seeded["u1"], tag="意向/高",
                              reason="电话沟通")
    assert not tags.do_tag_member(conn, actor=SYSTEM, member_id=seeded["u1"], tag="意向/高")
    assert tags.do_untag_member(conn, actor=SYSTEM, member_id=seeded["u1"], tag="高")
    history = tags.tag_history(conn, seeded["u1"])
    assert [(h["action"], h["by"], h["reason"]) for h in history] == [
        ("remove", "user:system", ""), ("add", "user:op", "电话沟通")]
    listed = {t["name"]: t["members"] for t in tags.list_tags(conn, actor=VIEWER)}
    assert listed == {"高": 0}
    with pytest.raises(Exception, match="may not operate"):
        tags.do_tag_member(conn, actor=VIEWER, member_id=seeded["u1"], tag="意向/高")
