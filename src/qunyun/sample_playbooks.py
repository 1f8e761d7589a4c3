"""Sample playbooks a new team starts from (the demo, the tests, `qunyun playbook samples`):
a launch day — a warm-up topic two days before, a notice the day before, three notices on
the day, a warm-up an hour before the 20:00 start where the group is quiet, the start and an
interaction after it — and a daily SOP. Content, not machinery: written through the playbook
and script services like any playbook an operator builds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import playbooks
from qunyun.services.playbooks import do_add_step, do_create_playbook
from qunyun.services.scripts import ensure_scripts
from qunyun.services.users import Actor

LAUNCH = "发布日样例"
DAILY = "每日 SOP"
SAMPLE_SCRIPTS: tuple[dict[str, Any], ...] = (
    {"name": "预热话题", "kind": "interactive",
     "body": "聊个话题：你最想在{activity}里解决什么问题？留言说说，后天晚上8点一起聊～"},
    {"name": "活动预告", "kind": "announcement",
     "body": "【预告】明晚20:00「{activity}」正式开始，报名截止{deadline}，记得定好闹钟⏰"},
    {"name": "当天通知1", "kind": "announcement",
     "body": "【今晚20:00】「{activity}」今晚开始！{group}的小伙伴们准备好了吗？"},
    {"name": "当天通知2", "kind": "announcement",
     "body": "【还有6小时】「{activity}」今晚20:00见，资料已发在群公告，先看一眼～"},
    {"name": "当天通知3", "kind": "announcement",
     "body": "【还有1.5小时】「{activity}」马上开始，报名截止{deadline}，还没报名的抓紧！"},
    {"name": "开场暖场", "kind": "interactive",
     "body": "距离开始还有1小时，大家今天都在忙什么？扣1让我看看有多少人在～"},
    {"name": "正式开始", "kind": "announcement", "body": "「{activity}」现在开始！🎉"},
    {"name": "开场互动", "kind": "interactive",
     "body": "刚才的内容有收获吗？把你的一个收获发在群里，抽3位送小礼物🎁"},
    {"name": "早报", "kind": "announcement", "body": "早上好☀️ {date}群早报：今天的安排见群公告"},
    {"name": "今日话题", "kind": "interactive", "body": "今日话题：你最近在读什么书/学什么？"},
    {"name": "晚间活动", "kind": "announcement", "body": "今晚的群活动马上开始，大家准备好～"},
    {"name": "反馈收集", "kind": "interactive",
     "body": "今天的活动大家觉得怎么样？有建议直接在群里说，我们会认真看"},
    {"name": "节日问候", "kind": "greeting",
     "body": "{holiday}快乐！祝{group}的每一位小伙伴节日愉快🎊"},
)
# the launch day: T-2d warm-up topic, T-1d notice, three notices on the day, a warm-up 1 h before
# the 20:00 start (only where the group is quiet), the start, and an interaction after it
LAUNCH_STEPS: tuple[tuple[str, str, str, int | None], ...] = (
    ("T-2d 20:00", "预热话题", "提前两天预热", None),
    ("T-1d 12:00", "活动预告", "提前一天预告", None),
    ("T 09:00", "当天通知1", "当天通知 1", None),
    ("T 14:00", "当天通知2", "当天通知 2", None),
    ("T 18:30", "当天通知3", "当天通知 3", None),
    ("T-1h", "开场暖场", "开始前 1 小时暖场", 30),
    ("T+0", "正式开始", "开始", None),
    ("T+30m", "开场互动", "开始后互动", None),
)
DAILY_STEPS: tuple[tuple[str, str, str, int | None], ...] = (
    ("daily 08:00", "早报", "早报", None),
    ("daily 12:00", "今日话题", "今日话题", None),
    ("daily 20:00", "晚间活动", "晚间活动", None),
    ("daily 21:30", "反馈收集", "反馈", None),
    ("holiday 09:00", "节日问候", "节日问候", None),
)


def install(conn: Connection, *, actor: Actor, group_ids: Sequence[int],
                       campaign_start: datetime, tz: ZoneInfo, activity: str = "21天英语打卡",
                       deadline: str = "今晚19:30", daily_group_ids: Sequence[int] = ()
                       ) -> dict[str, int]:
    """The sample launch-day playbook on ``group_ids`` and a daily SOP on
    ``daily_group_ids`` (each only when given groups; existing ones are left as they are).
    Returns the playbook ids."""
    ids = ensure_scripts(conn, actor=actor, wanted=SAMPLE_SCRIPTS)
    out: dict[str, int] = {}
    for name, steps, start, attach, description in (
        (LAUNCH, LAUNCH_STEPS, campaign_start, group_ids,
         "新品发布日：提前两天预热、提前一天预告、当天 3 次通知、开始前 1 小时暖场、"
         "20:00 开始"),
        (DAILY, DAILY_STEPS, None, daily_group_ids,
         "每日 SOP：早报、今日话题、晚间活动、反馈；节日问候"),
    ):
        if not attach:
            continue
        existing = conn.execute(select(playbooks.c.id)
                                .where(playbooks.c.name == name)).scalar()
        if existing is not None:
            out[name] = int(existing)
            continue
        pb = do_create_playbook(conn, actor=actor, name=name, description=description,
                                campaign_start=start, group_ids=attach,
                                variables={"activity": activity, "deadline": deadline})
        for at, script, step_name, quiet in steps:
            do_add_step(conn, actor=actor, playbook_id=pb["id"], tz=tz, values={
                "at": at, "script_id": ids[script], "name": step_name,
                "max_messages_last_hour": quiet})
        out[name] = int(pb["id"])
    return out
