"""Roles in a group as the team assigns them: given, listed, given twice without change,
taken away, refused when the role or the member is unknown; whoever holds one counts as
the team's own (lurker removal leaves them, the rules see them as staff)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import audit_log
from qunyun.bootstrap import Runtime
from qunyun.services import group_roles, lurkers
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.members import member_id_by_number, staff_among
from qunyun.services.users import SYSTEM
from tests.factories import T0, raw_join
from tests.integration.test_lifecycle import feed


def test_roles_are_given_once_taken_away_and_count_as_the_team(conn: Connection,
                                                               runtime: Runtime) -> None:
    gid = feed(conn, runtime, [raw_join(f"j{u}", "g1", u, name=n) for u, n in (
        ("a", "主讲老师"), ("b", "托儿小美"), ("c", "普通成员"))])
    a, b, c = (member_id_by_number(conn, n) for n in (10001, 10002, 10003))
    for member_id, role in ((a, "presenter"), (b, "atmosphere"), (b, "atmosphere")):
        rows = group_roles.do_set_role(conn, actor=SYSTEM, group_id=gid, member_id=member_id,
                                       role=role, now=T0)
    assert [(r["role"], r["name"], r["in_group"]) for r in rows] == [
        ("presenter", "主讲老师", True), ("atmosphere", "托儿小美", True)]
    assert conn.execute(select(func.count()).select_from(audit_log).where(
        audit_log.c.action == "group.role_added")).scalar_one() == 2  # the second: no change
    with pytest.raises(InvalidInput) as bad:
        group_roles.do_set_role(conn, actor=SYSTEM, group_id=gid, member_id=c, role="kol",
                                now=T0)
    assert "主讲" in bad.value.in_language("zh-CN") and "presenter" not in bad.value.in_language(
        "zh-CN")
    with pytest.raises(NotFound):
        group_roles.do_set_role(conn, actor=SYSTEM, group_id=gid, member_id=999_999,
                                role="advisor", now=T0)
    # the team's own: never a lurker, staff to the rules
    assert staff_among(conn, [a, b, c]) == {a, b}
    quiet = lurkers.list_lurkers(conn, actor=SYSTEM, group_id=gid, days=1,
                                 now=T0 + timedelta(days=30))
    assert [r["member_id"] for r in quiet] == [c]
    assert group_roles.holders(conn, gid) == {a, b}
    rows = group_roles.do_set_role(conn, actor=SYSTEM, group_id=gid, member_id=b,
                                   role="atmosphere", remove=True, now=T0)
    assert [r["member_id"] for r in rows] == [a]
    assert staff_among(conn, [b]) == set()
