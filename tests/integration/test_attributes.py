"""Custom attributes from spreadsheets: a broken file changes nothing; GBK files and phone
keys. Both databases, through services in the test's transaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection

from qunyun.services import (
    attributes,
    segments,
)
from qunyun.services.errors import AccessDenied, InvalidInput
from qunyun.services.users import SYSTEM
from tests.crm_scenario import SALES, VIEWER, clock
from tests.dbhelpers import snapshot


def test_broken_attribute_file_changes_nothing(conn: Connection, seeded: dict[str, int],
                                              tmp_path: Path) -> None:
    before = snapshot(conn)
    bad = tmp_path / "bad.csv"
    bad.write_text("会员编号,spend\n10001,5\n10002,6,7\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"bad.csv: line 3: 3 cells, header has 2"):
        attributes.do_import_attributes(conn, actor=SYSTEM, path=bad)
    nokey = tmp_path / "nokey.csv"
    nokey.write_text("姓名,spend\n张三,5\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"nokey\.csv: line 1: no key column"):
        attributes.do_import_attributes(conn, actor=SYSTEM, path=nokey)
    assert snapshot(conn) == before


def test_gbk_spreadsheet_and_phone_key(conn: Connection, seeded: dict[str, int],
                                       tmp_path: Path) -> None:
    sheet = tmp_path / "gbk.csv"
    sheet.write_bytes("手机号,城市\n+86 138-1234-5678,上海\n13900000000,北京\n".encode("gbk"))
    report = attributes.do_import_attributes(conn, actor=SYSTEM, path=sheet)
    assert report.encoding == "gb18030" and report.matched == 1
    assert report.unmatched == [{"line": 3, "key": "13900000000", "members": 0}]
    with pytest.raises(AccessDenied, match=r"attr\.城市: a personal attribute"):
        segments.count_expression(conn, actor=VIEWER, expression='attr.城市 = "上海"',
                                  clock=clock())
    assert segments.count_expression(conn, actor=SALES, expression='attr.城市 = "上海"',
                                     clock=clock()) == 1
    attributes.do_mark_attribute(conn, actor=SYSTEM, name="城市", personal=False)
    assert segments.count_expression(conn, actor=VIEWER, expression='attr.城市 = "上海"',
                                     clock=clock()) == 1
