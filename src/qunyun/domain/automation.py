"""Automation settings (issue 5): what each rule does, for the team and per group.

The team's defaults are stored under group 0; a group stores only the fields it overrides,
merged section by section, so changing a team default reaches every group that did not set
its own. Validated with pydantic so a bad value is refused with the field's name.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qunyun.i18n import InvalidValue


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WelcomeSettings(_Section):
    enabled: bool = True
    # everyone who joins within this many seconds of the first newcomer is greeted together
    batch_seconds: int = Field(0, ge=0, le=3600)
    campaign_message: str = Field("", max_length=500)


class FaqSettings(_Section):
    enabled: bool = False
    min_score: float = Field(0.75, ge=0.3, le=1.0)
    # an unanswered question (ends with ? or 吗) becomes a staff task
    handoff_unanswered: bool = False


Step = Literal["warn", "mute", "remove", "blacklist"]


def _default_escalation() -> list[Step]:
    return ["warn", "remove", "blacklist"]


class ModerationSettings(_Section):
    enabled: bool = False
    block_threshold: float = Field(0.85, gt=0, le=1)
    review_threshold: float = Field(0.5, gt=0, le=1)
    new_member_days: int = Field(3, ge=0, le=365)
    strict_shift: float = Field(0.2, ge=0, le=0.5)
    flood_messages: int = Field(12, ge=2, le=1000)
    flood_seconds: int = Field(60, ge=5, le=3600)
    new_member_flood_messages: int = Field(8, ge=2, le=1000)
    repeat_limit: int = Field(3, ge=2, le=100)
    repeat_seconds: int = Field(600, ge=10, le=86400)
    # "好的" said by three people is agreement, not spam: only longer texts count as repeats
    repeat_min_length: int = Field(8, ge=1, le=1000)
    # members (other than the sender) who posted the same text in the repeat window: a text
    # many people post (a check-in sentence, 收到) is only suspect when it is ad-like itself,
    # and then this many posters make it a coordinated ad
    crowd_limit: int = Field(3, ge=2, le=1000)
    escalation: list[Step] = Field(default_factory=_default_escalation, min_length=1,
                                   max_length=10)
    violation_days: int = Field(30, ge=1, le=365)
    # how long the "mute" step keeps a member from posting
    mute_minutes: int = Field(60, ge=1, le=525_600)
    # {reason} is what to stop doing, in plain words (发广告或联系方式, 刷屏 …)
    warn_template: str = Field("@{name} 请不要在群里{reason}，再次违规将被移出群聊。",
                               max_length=500)
    # the group owner, group admins and the team's own staff are not moderated
    exempt_staff: bool = True
    # a newcomer with a link, number or account in their name is removed on joining; a name
    # that only reads like an ad is queued for a person
    check_names: bool = True
    # this many joins within join_flood_seconds is a flood (a raid of accounts, or a poster
    # that took off): the team gets one task to look at the newcomers
    join_flood_joins: int = Field(50, ge=5, le=100_000)
    join_flood_seconds: int = Field(60, ge=10, le=3600)
    blacklist_days: int | None = Field(None, ge=1, le=3650)

    @field_validator("review_threshold")
    @classmethod
    def _review_below_block(cls, v: float, info: Any) -> float:
        block = info.data.get("block_threshold")
        if block is not None and v > block:
            raise InvalidValue("review_threshold must not exceed block_threshold")
        return v


class RefundTier(_Section):
    min_checkins: int = Field(ge=0, le=10000)
    percent: float = Field(ge=0, le=100)


class CheckinSettings(_Section):
    enabled: bool = False
    keywords: list[str] = Field(default_factory=lambda: ["打卡", "签到"], min_length=1)
    mode: Literal["keyword", "image", "image_and_keyword"] = "keyword"
    reply_template: str = Field("@{name} 打卡成功！已连续 {streak} 天，累计 {total} 天",
                                max_length=500)
    refund_tiers: list[RefundTier] = Field(default_factory=list)
    # the owner, admins and staff run the group: their "今日内容，打卡截止22点" is a notice
    include_staff: bool = False


class PointsSettings(_Section):
    enabled: bool = False
    message: int = Field(1, ge=0, le=1000)
    message_daily_cap: int = Field(10, ge=0, le=100000)
    checkin: int = Field(5, ge=0, le=1000)
    invite: int = Field(10, ge=0, le=1000)


class CapSetting(_Section):
    scope: Literal["group", "member"]
    period: Literal["day", "week", "month"]
    limit: int | Literal["days"] = Field(union_mode="left_to_right")
    platform: str = Field("*", max_length=32)

    @field_validator("limit")
    @classmethod
    def _limit(cls, v: int | str, info: Any) -> int | str:
        if v == "days" and info.data.get("period") != "month":
            raise InvalidValue("'days' only with period month")
        if isinstance(v, int) and not 0 <= v <= 1000:
            raise InvalidValue("between 0 and 1000")
        return v


def _default_caps() -> list[CapSetting]:
    # pushes (broadcasts and playbook steps), not replies: a campaign day's 3+ notices fit in
    # the group cap; WeCom's current rule is one group-send per day on average over a month
    return [CapSetting(scope="group", period="day", limit=6),
            CapSetting(scope="member", period="week", limit=3),
            CapSetting(scope="group", period="month", limit="days", platform="wecom"),
            CapSetting(scope="member", period="month", limit="days", platform="wecom")]


class BroadcastSettings(_Section):
    quiet_hours: str = Field("22:30-08:00", max_length=20)
    over_cap: Literal["queue", "drop"] = "queue"
    caps: list[CapSetting] = Field(default_factory=_default_caps, max_length=20)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, v: str) -> str:
        from qunyun.domain.content import ContentError, QuietHours

        try:
            QuietHours.parse(v)
        except ContentError as exc:
            raise InvalidValue(str(exc).removeprefix("quiet_hours: ")) from None
        return v


class FreshnessSettings(_Section):
    """How old an event may be when a rule answers it. Older events (a worker back after an
    outage, a replayed backlog, loaded history) are recorded and counted, never answered: a
    reply to a message of last week, or a removal for it, is wrong everywhere."""

    reply_minutes: int = Field(10, ge=1, le=1440)  # replies, warnings, greetings
    action_hours: int = Field(6, ge=1, le=168)  # removals, hand-offs to staff


EntryGate = Literal["review", "open", "questions", "activity", "share", "invitation"]


class EntrySettings(_Section):
    """The entry gate (F9) of a group whose admins approve newcomers (Telegram's join
    requests), by ``gate``: ``review`` a person decides in the pending queue; ``open``
    everyone is let in (not the blacklisted); ``questions`` the applicant is asked
    privately and a person reads the answers (or an answer lets them in,
    ``approve_answered``); ``activity`` those enrolled in an activity (with a deposit paid,
    ``need_deposit``) are let in, the rest turned down; ``share`` the applicant is sent an
    upload link for the screenshot of a share (``share_text``) and a person checks it;
    ``invitation`` only those who came through a member's personal code get in. A request
    nobody answers is turned down after ``timeout_hours``. On a platform that holds no
    requests (WeCom), letting someone in sends them ``invite_text`` with the group's join
    code instead."""

    gate: EntryGate = "review"
    question_text: str = Field("你好！入群前请回答：你是怎么知道我们群的？你想在群里得到什么？",
                               max_length=1000)
    approve_answered: bool = False
    activity_id: int | None = Field(None, ge=1, le=2**62)
    need_deposit: bool = False
    timeout_hours: int = Field(24, ge=1, le=720)
    decline_text: str = Field("抱歉，你的入群申请未通过：{reason}", max_length=500)
    share_text: str = Field("入群前请把我们的海报分享到朋友圈，截图后在这里上传：{link}",
                            max_length=1000)
    invite_text: str = Field("你的入群申请已通过，点这个链接进群：{link}", max_length=500)


class AutomationSettings(_Section):
    welcome: WelcomeSettings = Field(default_factory=WelcomeSettings)
    faq: FaqSettings = Field(default_factory=FaqSettings)
    moderation: ModerationSettings = Field(default_factory=ModerationSettings)
    checkin: CheckinSettings = Field(default_factory=CheckinSettings)
    points: PointsSettings = Field(default_factory=PointsSettings)
    broadcast: BroadcastSettings = Field(default_factory=BroadcastSettings)
    freshness: FreshnessSettings = Field(default_factory=FreshnessSettings)
    entry: EntrySettings = Field(default_factory=EntrySettings)


SECTIONS: tuple[str, ...] = tuple(AutomationSettings.model_fields)


class SettingsError(InvalidValue):
    """Invalid settings; the message names the section and field."""


def merge(team: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
    """Group overrides on top of team defaults, one section at a time."""
    out: dict[str, Any] = {k: dict(v) for k, v in team.items() if isinstance(v, dict)}
    for section, values in group.items():
        if isinstance(values, dict):
            out.setdefault(section, {}).update(values)
    return out


def validate(raw: dict[str, Any]) -> AutomationSettings:
    try:
        return AutomationSettings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SettingsError("{where}: {msg}", where=where, msg=first['msg']) from None
