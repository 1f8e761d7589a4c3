"""Seed 003, an agent group on a WeCom-like platform: the brand's staff post promotions.

Staff (the platform marks them as the corp's own users) post new products with prices,
links and a phone number, and invite agents to message them privately — exactly what an
advertiser's text looks like, and none of it is moderated. Agents chat and ask. An outsider
who got in posts a loan ad twice. The platform cannot remove members or post as a bot, so
what the rules decide becomes work for a person, in plain words.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Connection, select

from qunyun.adapters.platforms.sandbox import SandboxAdapter
from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.storage.tables import points_ledger, staff_tasks
from qunyun.analytics.health import group_health
from qunyun.bootstrap import Runtime
from tests.scenarios.live import TZ, Live, days_ago

PROMOS = (
    "新品到货！夏季款特价198，需要的联系 13812345678",
    "今晚直播有优惠，有需要的可以私聊我",
    "代理拿货价表已更新：https://brand.example.cn/price 欢迎咨询",
    "【品牌通知】本周下单满3件包邮，名额有限，先到先得",
    "加我微信 brand_xiaolin 拉你进新品体验群",
)
LOAN = "低息贷款当天放款，不看征信，联系电话 13987654321"


def test_staff_promotions_are_left_alone(conn: Connection, runtime: Runtime,
                                         tmp_path: Path) -> None:
    runtime.adapters["sandbox"] = SandboxAdapter(SandboxStore(str(tmp_path / "wecom.db")),
                                                 profile="wecom")
    live = Live(conn, runtime)
    live.switch_everything_on()
    start = days_ago(6)
    gid = live.group("agents", "华东区代理群", start, owner="wx-owner", owner_name="品牌小林",
                     welcome="", group_type="agent")
    for i in range(25):
        live.join("agents", f"agent{i}", f"代理{i}", start + timedelta(hours=1, minutes=i))
    for d, promo in enumerate(PROMOS):
        at = start + timedelta(days=d, hours=10)
        for k, who in enumerate(("wx-owner", "wx-xiaozhou")):  # the owner and a colleague
            live.say("agents", who, promo, at + timedelta(minutes=k * 30), user_staff=True,
                     name="品牌小林" if k == 0 else "品牌小周")
        for i in range(6):
            live.say("agents", f"agent{(d * 6 + i) % 25}",
                     ("收到", "已转发", "这款还有货吗？", "好的", "+1", "拿货价多少？")[i],
                     at + timedelta(minutes=40 + i))
    outsider_at = start + timedelta(days=4, hours=15)
    live.join("agents", "loan", "金融顾问", outsider_at, inviter="agent3", inviter_name="代理3")
    live.say("agents", "loan", LOAN, outsider_at + timedelta(minutes=3))
    live.say("agents", "loan", LOAN + "。", outsider_at + timedelta(minutes=6))
    live.catch_up(start + timedelta(days=6))

    decisions = live.decisions()
    assert {d["member_id"] for d in decisions} == {live.member("loan")}
    assert [d["action"] for d in decisions] == ["warn", "remove"]
    # the platform cannot post or remove: a person is asked, in words they read
    tasks = [dict(r) for r in conn.execute(select(staff_tasks).where(
        staff_tasks.c.group_id == gid).order_by(staff_tasks.c.id)).mappings()]
    assert [t["kind"] for t in tasks] == ["send_text", "remove_member"]
    assert tasks[0]["title"].startswith("@金融顾问 请不要在群里发广告")
    assert tasks[1]["title"].startswith("移出群聊：")
    assert "remove_member" not in tasks[1]["title"]
    # the check-in rule did not take a staff notice for a check-in, and the FAQ did not
    # answer the owner
    assert live.sent("send_text", status="staff_task", rule="checkin") == []
    assert conn.execute(select(points_ledger.c.id).where(points_ledger.c.member_id.in_(
        [live.member("wx-owner"), live.member("wx-xiaozhou")]))).first() is None
    [health] = group_health(conn, tz=TZ, group_id=gid, since=start.date(),
                            until=(start + timedelta(days=5)).date(),
                            now=start + timedelta(days=6))
    assert health.ads == 2 and health.messages == 5 * 2 + 5 * 6 + 2
