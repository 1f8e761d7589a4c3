"""Member merges: history moves and undo restores it exactly; suggestions and dismissal; the
same wxid on two platforms. Both databases, through services in the test's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import (
    identities,
    member_events,
    member_tags,
    members,
    memberships,
    messages,
    tag_events,
)
from qunyun.bootstrap import Runtime
from qunyun.services import (
    attributes,
    merges,
    records,
    segments,
    tags,
)
from qunyun.services.users import SYSTEM
from tests.crm_scenario import VIEWER, clock
from tests.dbhelpers import snapshot


def test_merge_moves_history_and_undo_restores_it_exactly(
        conn: Connection, seeded: dict[str, int]) -> None:
    u1, u3 = seeded["u1"], seeded["u3"]
    tags.do_tag_member(conn, actor=SYSTEM, member_id=u1, tag="意向/高")
    tags.do_tag_member(conn, actor=SYSTEM, member_id=u3, tag="意向/高")
    tags.do_tag_member(conn, actor=SYSTEM, member_id=u3, tag="来源/转介绍")
    records.do_add_record(conn, actor=SYSTEM, member_id=u3, kind="note", body="家长是老师")

    def owners() -> dict[str, list[tuple[int, int]]]:
        out = {}
        for table in (identities, memberships, messages, member_events, tag_events):
            out[table.name] = sorted(tuple(r) for r in conn.execute(
                select(table.c.id, table.c.member_id)))
        out["member_tags"] = sorted(tuple(r) for r in conn.execute(
            select(member_tags.c.tag_id, member_tags.c.member_id)))
        out["members"] = sorted(tuple(r) for r in conn.execute(
            select(members.c.id, members.c.merged_into_id, members.c.phone,
                   members.c.first_seen_at, members.c.last_seen_at)))
        return out

    before, counts = owners(), snapshot(conn)
    merge_id = merges.do_merge(conn, actor=SYSTEM, source_id=u3, target_id=u1,
                               reason="同一家长两个号")
    # u3's history is u1's now; u1's open memberships in the same groups keep u3's apart
    assert conn.execute(select(members.c.merged_into_id).where(
        members.c.id == u3)).scalar_one() == u1
    assert {r[0] for r in conn.execute(select(identities.c.external_id).where(
        identities.c.member_id == u1))} == {"u1", "u3"}
    assert conn.execute(select(messages.c.id).where(messages.c.member_id == u3)).first() is None
    assert [t["name"] for t in tags.member_tag_list(conn, u1)] == ["高", "转介绍"]
    assert records.member_records(conn, u1)[0]["body"] == "家长是老师"
    assert segments.count_expression(conn, actor=VIEWER, expression="number >= 0",
                                     clock=clock()) == 6

    merges.do_undo_merge(conn, actor=SYSTEM, merge_id=merge_id)
    after = owners()
    assert after == before
    assert {k: v for k, v in snapshot(conn).items() if k != "member_merges"} == {
        k: v for k, v in counts.items() if k != "member_merges"}
    with pytest.raises(Exception, match="already undone"):
        merges.do_undo_merge(conn, actor=SYSTEM, merge_id=merge_id)


def test_merge_suggestions_and_dismissal(conn: Connection, runtime: Runtime,
                                         seeded: dict[str, int], tmp_path: Path) -> None:
    from sqlalchemy import update

    conn.execute(update(members).where(members.c.id == seeded["u5"])
                 .values(phone="13812345678"))  # same phone as u1 (from the sheet)
    # a nickname-only identity (from an export) named like u4, in u4's group
    from qunyun.adapters.storage.tables import groups
    from qunyun.domain.events import PersonRef
    from qunyun.services.members import resolve_member
    from qunyun.services.memberships import add_implied
    weak = resolve_member(conn, platform="export", at=datetime.now(UTC), ref=PersonRef(
        external_id="math1:昵称u4", kind="nickname", name="昵称u4", weak=True))
    math1 = conn.execute(select(groups.c.id).where(groups.c.external_id == "math1")).scalar()
    assert math1 is not None
    add_implied(conn, member_id=weak.id, group_id=math1, at=datetime.now(UTC))

    found = merges.merge_suggestions(conn, actor=VIEWER)
    pairs = {(s["a"]["id"], s["b"]["id"]): s["reasons"] for s in found}
    assert pairs == {(seeded["u1"], seeded["u5"]): ["phone"],
                     (seeded["u4"], weak.id): ["nickname_in_group"]}
    merges.do_dismiss_suggestion(conn, actor=SYSTEM, member_a=seeded["u5"],
                                 member_b=seeded["u1"])
    assert len(merges.merge_suggestions(conn, actor=VIEWER)) == 1


def test_same_wxid_on_two_platforms_is_suggested_and_keys_a_spreadsheet(
        conn: Connection, tmp_path: Path) -> None:
    from qunyun.domain.events import PersonRef
    from qunyun.services.members import resolve_member

    now = datetime.now(UTC)
    a = resolve_member(conn, platform="wechat_export", at=now,
                       ref=PersonRef(external_id="wxid_abc", kind="wxid", name="甲"))
    b = resolve_member(conn, platform="wecom", at=now,
                       ref=PersonRef(external_id="wxid_abc", kind="wxid", name="甲"))
    found = merges.merge_suggestions(conn, actor=VIEWER)
    assert [(s["a"]["id"], s["b"]["id"], s["reasons"]) for s in found] == [
        (a.id, b.id, ["same_id"])]
    sheet = tmp_path / "wx.csv"
    sheet.write_text("wxid,城市\nwxid_abc,上海\n", encoding="utf-8")
    report = attributes.do_import_attributes(conn, actor=SYSTEM, path=sheet)
    assert report.ambiguous == [{"line": 2, "key": "wxid_abc", "members": 2}]
    merges.do_merge(conn, actor=SYSTEM, source_id=b.id, target_id=a.id)
    report = attributes.do_import_attributes(conn, actor=SYSTEM, path=sheet)
    assert report.matched == 1 and report.key == "wxid"
