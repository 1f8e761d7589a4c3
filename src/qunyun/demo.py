"""Demo data: the home-furnishing launch of seed 000, fed through the real event path.

Six owner groups (split at ~100 members) filled over ten days by five staff inviting
contacts and a QR poster; talk is heavy-tailed (a few people write most messages) and peaks
20:00–22:00; some people leave, an advertiser is removed. Deterministic for a given seed.
The last 15 newcomers are welcomed by the welcome rule, so the outbox has real work.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import groups, members, messages, staff_users, utcnow
from qunyun.bootstrap import Runtime
from qunyun.services import attributes, blacklist, leads, records, segments, tags, users
from qunyun.services import groups as groups_service
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM

PLATFORM = "sandbox"
GROUPS = 6
DAYS = 14
STAFF = ["顾问小林", "顾问阿杰", "顾问美美", "顾问大刘", "顾问小周"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = ["先生", "女士", "姐", "哥", "总", "老师", "妈妈", "爸爸", "小姐"]
TALK = [
    "请问团购价格多少？", "已报名", "什么时候发货？", "沙发有现货吗", "收到👍", "好的",
    "今晚几点开始？", "定金可以退吗", "我家是三居室，推荐哪款？", "已转发朋友圈",
    "谢谢群主", "地板有样品可以看吗", "哈哈哈", "支持！", "小区几号楼的邻居？",
    "窗帘可以上门量尺寸吗", "活动规则再发一下", "抽奖什么时候开奖", "我也想要",
]
WELCOME = "欢迎 @{name} 加入{group}！请先看群规：{rules}。今晚20:00团购直播，记得准时来～"
RULES = "禁止发广告和二维码；有问题@顾问；每晚20:00活动"


def _local_time(day: datetime, rng: random.Random) -> datetime:
    """A time on ``day`` (Shanghai), mostly in the 20:00–22:00 peak."""
    if rng.random() < 0.55:
        hour = rng.choice([20, 20, 21, 21, 19, 22])
    else:
        hour = rng.choice([8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 23])
    return day + timedelta(hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))


def _events(rng: random.Random, start: datetime, end: datetime,
            group_count: int) -> Iterator[dict[str, Any]]:
    tz_offset = timedelta(hours=8)
    seq = 0

    def eid() -> str:
        nonlocal seq
        seq += 1
        return f"demo-{seq:06d}"

    def stamp(local: datetime) -> str:
        return (local - tz_offset).replace(tzinfo=UTC).isoformat()

    person = 0
    for g in range(1, group_count + 1):
        chat = f"demo-g{g}"
        name = f"业主福利群{g}"
        created = start + timedelta(seconds=g)
        yield {"type": "group", "id": eid(), "at": stamp(created), "chat": chat,
               "chat_name": name, "owner": "staff-0", "owner_name": STAFF[0]}
        size = rng.randint(82, 98)
        people: list[tuple[str, str, datetime]] = []
        for _ in range(size):
            person += 1
            uid = f"demo-u{person:05d}"
            nick = rng.choice(SURNAMES) + rng.choice(GIVEN)
            day = start + timedelta(days=min(9, int(rng.expovariate(0.35))))
            joined = _local_time(day, rng)
            if joined >= end:
                joined = end - timedelta(minutes=rng.randrange(30, 600))
            staff = rng.randrange(len(STAFF))
            by_qr = rng.random() < 0.3
            yield {"type": "join", "id": eid(), "at": stamp(joined), "chat": chat,
                   "chat_name": name, "user": uid, "user_name": nick,
                   "scene": "qr" if by_qr else "invite",
                   "inviter": None if by_qr else f"staff-{staff}",
                   "inviter_name": STAFF[staff],
                   "channel": "poster-a" if by_qr else f"staff-{staff}"}
            people.append((uid, nick, joined))
        # Heavy-tailed talk: Pareto weights, most people say little or nothing.
        weights = [rng.paretovariate(1.1) if rng.random() < 0.6 else 0.0 for _ in people]
        if not any(weights):
            weights[0] = 1.0
        messages = rng.randint(550, 800)
        for _ in range(messages):
            uid, nick, joined = rng.choices(people, weights=weights)[0]
            days_left = max(0, (end - joined).days)
            day = (joined + timedelta(days=rng.randint(0, days_left))).replace(
                hour=0, minute=0, second=0)
            when = max(joined + timedelta(minutes=1), _local_time(day, rng))
            if when >= end:
                continue
            mid = eid()
            yield {"type": "message", "id": mid, "at": stamp(when), "chat": chat, "user": uid,
                   "user_name": nick, "message_id": mid, "text": rng.choice(TALK)}
        # An advertiser joins, posts, and is removed by the owner.
        person += 1
        spam_uid = f"demo-u{person:05d}"
        t_spam = _local_time(start + timedelta(days=rng.randint(3, 9)), rng)
        yield {"type": "join", "id": eid(), "at": stamp(t_spam), "chat": chat,
               "user": spam_uid, "user_name": "兼职日结", "scene": "qr"}
        mid = eid()
        yield {"type": "message", "id": mid, "at": stamp(t_spam + timedelta(minutes=2)),
               "chat": chat, "user": spam_uid, "user_name": "兼职日结", "message_id": mid,
               "text": "招兼职刷单，日结300，加V：abc12345"}
        yield {"type": "leave", "id": eid(), "at": stamp(t_spam + timedelta(minutes=5)),
               "chat": chat, "user": spam_uid, "by": "staff-0", "by_name": STAFF[0]}
        # Some people leave after a few days.
        for uid, _nick, joined in rng.sample(people, k=max(1, len(people) // 12)):
            when = joined + timedelta(days=rng.randint(1, 4), hours=rng.randint(0, 12))
            if when < end:
                yield {"type": "leave", "id": eid(), "at": stamp(when), "chat": chat,
                       "user": uid}


def load_demo(runtime: Runtime, *, seed: int = 7, now: datetime | None = None,
              group_count: int = GROUPS) -> dict[str, int]:
    """Load the demo once (a second call finds the groups and does nothing)."""
    now = now or utcnow()
    with runtime.uow.read() as conn:
        if conn.execute(select(groups.c.id).where(groups.c.platform == PLATFORM,
                                                  groups.c.external_id == "demo-g1")).first():
            return {"events": 0, "already_loaded": 1}
    rng = random.Random(seed)
    local_now = (now + timedelta(hours=8)).replace(tzinfo=None)
    start = (local_now - timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)
    end = local_now
    raws = sorted(_events(rng, start, end, group_count), key=lambda r: (r["at"], r["id"]))
    join_times = [r["at"] for r in raws if r["type"] == "join"]
    welcome_from = join_times[-15] if len(join_times) >= 15 else ""
    adapter = runtime.adapters[PLATFORM]
    count = 0
    configured = False
    with runtime.uow.write() as conn:
        for raw in raws:
            if not configured and raw["at"] >= welcome_from:
                _configure_groups(conn, now)
                configured = True
            for event in adapter.parse({k: v for k, v in raw.items() if v is not None}).events:
                do_ingest_event(conn, event, config=runtime.ingest_config, received_at=now)
                count += 1
        if not configured:
            _configure_groups(conn, now)
        _demo_crm(conn, runtime, rng)
    return {"events": count, "already_loaded": 0}


def _demo_crm(conn: Connection, runtime: Runtime, rng: random.Random) -> None:
    """Tags, a spreadsheet of budgets, segments, a lead list, a follow-up and a blacklisted
    advertiser — all through the CRM services, as an operator would set them up."""
    clock = runtime.clock()
    tags.do_create_tag(conn, actor=SYSTEM, name="问过价格", group="意向", kind="rule",
                       rule='said ~ "价格" or said ~ "定金" or said ~ "推荐哪款"',
                       description="问过价格、定金或推荐", clock=clock)
    tags.do_create_tag(conn, actor=SYSTEM, name="积极发言", group="活跃", kind="rule",
                       rule="messages >= 15", clock=clock)
    tags.do_create_tag(conn, actor=SYSTEM, name="海报进群", group="渠道", kind="rule",
                       rule='channel = "poster-a"', clock=clock)
    people = conn.execute(select(members.c.id, members.c.number, members.c.display_name)
                          .where(members.c.display_name != "兼职日结",
                                 members.c.display_name.not_in(STAFF))
                          .order_by(members.c.number)).all()
    rows = ["会员编号,预算万元,户型,手机号"]
    for person in rng.sample(people, k=min(len(people), 180)):
        phone = f"13{rng.randint(100000000, 999999999)}" if rng.random() < 0.6 else ""
        rows.append(f"{person.number},{rng.choice([8, 10, 12, 15, 18, 20, 25, 30])},"
                    f"{rng.choice(['两居', '三居', '四居', '别墅'])},{phone}")
    attributes.do_import_attributes(conn, actor=SYSTEM, path="业主预算.csv",
                                    data="\n".join(rows).encode())
    talkers = conn.execute(select(messages.c.member_id).where(messages.c.member_id.in_(
        [p.id for p in people])).group_by(messages.c.member_id)
        .order_by(func.count().desc(), messages.c.member_id).limit(3)).scalars().all()
    for member_id in talkers:
        tags.do_tag_member(conn, actor=SYSTEM, member_id=member_id, tag="意向/高意向",
                           reason="直播间下单咨询")
    segments.do_create_segment(conn, actor=SYSTEM, name="海报进群且问过价格",
                               expression='tag = "渠道/海报进群" and tag = "意向/问过价格"')
    segments.do_create_segment(conn, actor=SYSTEM, name="高预算活跃业主",
                               expression="attr.预算万元 >= 15 and messages >= 5")
    leads.do_save_lead_list(conn, actor=SYSTEM, name="交定金跟进", segment="高预算活跃业主",
                            formula='1 * messages[7d] @3d + 30 * (tag = "意向/问过价格") '
                                    "+ 2 * attr.预算万元")
    if talkers:
        records.do_add_record(conn, actor=SYSTEM, member_id=talkers[0], kind="follow_up",
                              body="直播后电话回访,确认三居室方案", due_at=clock.now
                              + timedelta(days=1))
    spammer = conn.execute(select(members.c.id).where(members.c.display_name == "兼职日结")
                           .order_by(members.c.number)).scalar()
    if spammer is not None:
        blacklist.do_blacklist(conn, actor=SYSTEM, member_id=spammer,
                               reason="发兼职刷单广告(加V引流)")


def _configure_groups(conn: Connection, now: datetime) -> None:
    """Rules, welcome and campaign settings for the demo groups, through the group service
    (validated and audited like an operator's edit)."""
    for group in groups_service.list_groups(conn, actor=SYSTEM):
        if group["platform"] == PLATFORM:
            groups_service.do_update_group(conn, actor=SYSTEM, group_id=group["id"], now=now,
                                           changes={"welcome_template": WELCOME,
                                                    "rules_text": RULES,
                                                    "group_type": "temporary",
                                                    "capacity": 100, "series": "家居团购"})


def ensure_demo_admin(runtime: Runtime, password_file: Path, new_password: str) -> tuple[str,
                                                                                         str]:
    """The demo login: created once; its password is kept in ``password_file`` (mode 600)."""
    with runtime.uow.read() as conn:
        exists = conn.execute(select(staff_users.c.id)
                              .where(staff_users.c.username == "admin")).first()
    if exists is not None:
        stored = password_file.read_text().strip() if password_file.exists() else "(unchanged)"
        return "admin", stored
    with runtime.uow.write() as conn:
        users.do_create_user(conn, actor=SYSTEM, username="admin", password=new_password,
                             role="admin", display_name="管理员")
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.write_text(new_password)
    password_file.chmod(0o600)
    return "admin", new_password
