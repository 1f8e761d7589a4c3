"""The seed 000 CRM example as a small, hand-checkable data set (used by several suites).

Olympiad-maths groups (series 奥数), a paid reading camp (series 付费阅读) and an English
group; error rate and spend come from a spreadsheet. The seed's segment — "from the maths
groups, error rate above 30 %, also in the paid reading activity, ranked by spend" — holds
exactly u2 (spend 3000), u1 (1200) and u7 (0).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import groups, members
from qunyun.bootstrap import Runtime
from qunyun.clock import Clock
from qunyun.domain.staff import Role
from qunyun.services import groups as groups_service
from qunyun.services.ingest import do_ingest_event
from qunyun.services.members import find_identity
from qunyun.services.users import SYSTEM, Actor
from tests.factories import event, raw_join, raw_message

SEED_SEGMENT = 'series = "奥数" and attr.错题率 > 30% and series = "付费阅读"'
SEED_FORMULA = "1 * attr.spend"
GROUPS = {"math1": ("奥数1群", "奥数"), "math2": ("奥数2群", "奥数"),
          "read": ("阅读营", "付费阅读"), "eng": ("英语群", "英语")}
MEMBERSHIP = {"u1": ("math1", "read"), "u2": ("math2", "read"), "u3": ("math1", "read"),
              "u4": ("math1",), "u5": ("eng", "read"), "u6": ("math2", "read"),
              "u7": ("math1", "read")}
# error rate and spend per member; u6 has no row; "wx_nobody" matches nobody
SHEET = {"u1": ("45%", "1,200", "13812345678"), "u2": ("0.35", "3000", ""),
         "u3": ("20%", "800", ""), "u4": ("50%", "100", ""), "u5": ("60%", "50", ""),
         "u7": ("31%", "0", "")}


def build(conn: Connection, runtime: Runtime) -> dict[str, int]:
    """Ingest the joins and a few messages; returns user → member id."""
    minute = 0
    for user, chats in MEMBERSHIP.items():
        for chat in chats:
            minute += 1
            do_ingest_event(conn, event(raw_join(f"j-{user}-{chat}", chat, user, minutes=minute,
                                                 name=f"昵称{user}", channel="海报A")),
                            config=runtime.ingest_config)
    for i, user in enumerate(("u1", "u1", "u2", "u3")):
        do_ingest_event(conn, event(raw_message(f"m{i}", "math1" if user != "u2" else "math2",
                                                user, "请问多少钱" if i == 2 else "打卡",
                                                minutes=100 + i)),
                        config=runtime.ingest_config)
    ids = {}
    for user in MEMBERSHIP:
        member_id = find_identity(conn, platform="sandbox", kind="user", external_id=user)
        assert member_id is not None
        ids[user] = member_id
    for chat, (name, series) in GROUPS.items():
        group_id = conn.execute(select(groups.c.id).where(
            groups.c.platform == "sandbox", groups.c.external_id == chat)).scalar_one()
        groups_service.do_update_group(conn, actor=SYSTEM, group_id=group_id,
                                       changes={"name": name, "series": series},
                                       now=datetime.now(UTC))
    return ids


def mark_not_personal(conn: Connection, names: tuple[str, ...] = ("错题率", "spend")) -> None:
    """What the seed's admin does after the import: error rate and spend are not personal
    data, so viewers may filter and rank on them (every attribute starts as personal)."""
    from qunyun.services import attributes

    for name in names:
        attributes.do_mark_attribute(conn, actor=SYSTEM, name=name, personal=False)


def sheet_csv(conn: Connection, ids: dict[str, int], path: Path) -> Path:
    """The spreadsheet keyed by member number (plus one row nobody matches)."""
    numbers = dict(conn.execute(select(members.c.id, members.c.number)).all())
    lines = ["会员编号,错题率,spend,手机号"]
    for user, (rate, spend, phone) in SHEET.items():
        lines.append(f'{numbers[ids[user]]},{rate},"{spend}",{phone}')
    lines.append("99999,70%,10,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


SH = ZoneInfo("Asia/Shanghai")
VIEWER = Actor(id=0, username="v", role=Role.VIEWER)
SALES = Actor(id=0, username="s", role=Role.SALES)


def clock(now: datetime | None = None) -> Clock:
    return Clock(now or datetime.now(UTC), SH)
