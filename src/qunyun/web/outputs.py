"""What the feature APIs return, declared so the OpenAPI document describes each answer.

Fields were taken from the services' answers as the tests see them. The models allow extra
fields (``extra="allow"``): an answer is never cut to the declared fields, so a field a
service adds appears at once and is declared here when someone documents it. Fields that
are absent from some answers, or can be null, are optional."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class Out(BaseModel):
    model_config = ConfigDict(extra="allow", from_attributes=True)


class JoinCodeGroupOut(Out):
    chat_id: str
    name: str = ""
    members: int = 0
    fill: float = 0.0
    via_code: int = 0
    role: str = ""


class JoinCodeOut(Out):
    """A join code with each group's fill and the members it brought."""

    id: int
    platform: str
    account: str
    channel: str
    config_id: str = ""
    remark: str = ""
    chat_ids: list[str] = []
    spare_chat_ids: list[str] = []
    full_chat_ids: list[str] = []
    capacity: int | None = None
    fill_ratio: float | None = None
    qr_code: str = ""
    state: str = ""
    rotations: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    groups: list[JoinCodeGroupOut] = []
    members_via_code: int = 0


class RotationOut(Out):
    """A join code that rotated: the groups that filled, those brought in, the list now."""

    code_id: int
    channel: str
    filled: list[str]
    added: list[str]
    attached: list[str]
    task_id: int | None = None


class TagOut(Out):
    """A tag and how many members carry it."""

    id: int
    name: str
    tag_group: str = ""
    color: str = ""
    kind: str = ""
    rule: str = ""
    description: str = ""
    created_at: datetime | None = None
    members: int | None = None


class SegmentOut(Out):
    """A saved segment (an expression over members)."""

    id: int
    name: str
    expression: str
    description: str = ""
    created_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    members: int | None = None


class SegmentMemberOut(Out):
    """A member in a segment."""

    id: int
    number: int
    display_name: str = ""
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None


class ScriptOut(Out):
    """A script (话术) at its current version; ``history`` on one script's page."""

    id: int
    name: str
    kind: str = ""
    body: str = ""
    variables: list[Any] = []
    attachments: list[dict[str, Any]] = []
    version: int | None = None
    archived: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    updated_by: str = ""
    history: list[dict[str, Any]] | None = None


class PlaybookOut(Out):
    """A playbook with its steps and groups (``missed``: steps a shift moved into the past)."""

    id: int
    name: str
    description: str = ""
    status: str = ""
    campaign_start: datetime | None = None
    on_state: str = ""  # runs in each group entering this lifecycle state
    variables: dict[str, Any] = {}
    created_at: datetime | None = None
    updated_at: datetime | None = None
    steps: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    missed: list[Any] | None = None


class PlaybookSummaryOut(Out):
    """A playbook in the list."""

    id: int
    name: str
    description: str = ""
    status: str = ""
    campaign_start: datetime | None = None
    on_state: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    step_count: int = 0
    group_count: int = 0


class BroadcastOut(Out):
    """A broadcast (群发): what, to whom, when, and its state."""

    id: int
    name: str
    script_id: int | None = None
    script_name: str | None = None
    text: str = ""
    attachments: list[dict[str, Any]] = []
    variables: dict[str, Any] = {}
    target: dict[str, Any] = {}
    target_text: str = ""
    send_at: datetime | None = None
    status: str = ""
    pin: bool = False  # pinned in each group once sent, where the platform can pin
    created_by: str = ""
    created_at: datetime | None = None
    deliveries: list[dict[str, Any]] | None = None


class DeliveryOut(Out):
    """A planned or fired send of a playbook step or a broadcast, with what became of it."""

    id: int
    key: str = ""
    source: str = ""
    broadcast_id: int | None = None
    playbook_id: int | None = None
    step_id: int | None = None
    due_at: datetime | None = None
    fired_at: datetime | None = None
    text: str = ""
    recipients: int = 0
    planned: int = 0
    deferred: int = 0
    queued: int = 0
    dropped: int = 0
    skipped: int = 0


class FaqOut(Out):
    """An FAQ entry: its phrasings, answer and hits."""

    id: int
    group_id: int | None = None
    group_name: str | None = None
    key: str = ""
    question_list: list[str] = []
    answer: str = ""
    match: str = ""
    pattern: str = ""
    cooldown_seconds: int = 0
    enabled: bool = True
    hits: int = 0
    created_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


class SeriesOut(Out):
    """An activity series with its issues."""

    id: int
    code: str
    name: str
    description: str = ""
    created_at: datetime | None = None
    issues: list[dict[str, Any]] = []
    participants: int = 0


class ActivityOut(Out):
    """An issue of a series (one activity): dates, money in fen, groups and its state."""

    id: int
    code: str
    name: str
    series_id: int | None = None
    series_code: str | None = None
    series_name: str | None = None
    seq: int | None = None
    opens_on: date | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    capacity: int | None = None
    price_fen: int | None = None
    deposit_fen: int | None = None
    refund_tiers: list[Any] = []
    complete_checkins: int | None = None
    state: str = ""
    settled_at: datetime | None = None
    group_ids: list[int] = []
    created_at: datetime | None = None
    updated_at: datetime | None = None


class BlacklistEntryOut(Out):
    """A blacklist entry, live or lifted."""

    id: int
    member_id: int
    number: int | None = None
    display_name: str = ""
    reason: str = ""
    added_by: str = ""
    added_at: datetime | None = None
    expires_at: datetime | None = None
    lifted_at: datetime | None = None
    lifted_by: str | None = None
    decision_id: int | None = None


class FollowUpOut(Out):
    """A follow-up record on a member."""

    id: int
    member_id: int
    number: int | None = None
    display_name: str = ""
    kind: str = ""
    body: str = ""
    author: str = ""
    created_at: datetime | None = None
    due_at: datetime | None = None
    done_at: datetime | None = None
    done_by: str | None = None


class AttributeFieldOut(Out):
    """A custom attribute: its kind, whether it is personal, how many members have it."""

    name: str
    personal: bool
    kind: str = ""
    members: int = 0


class CorpOut(Out):
    """A connected WeCom corp (its secrets are never shown)."""

    corp_id: str
    name: str = ""
    agent_id: int | None = None
    callback_path: str = ""
    status: dict[str, Any] = {}
    created_at: datetime | None = None
    updated_at: datetime | None = None


class MirrorStatusOut(Out):
    """Whether the analytics mirror is in use, where, and as of when."""

    enabled: bool
    path: str = ""
    every_minutes: float | None = None
    refreshed_at: datetime | None = None
    rows: dict[str, Any] | None = None
    error: str | None = None
    refreshing: bool = False
    started: bool | None = None


class AlertOut(Out):
    """A group health alert (raised once, as a staff task)."""

    id: int
    group_id: int
    group: str | None = None
    group_name: str | None = None
    kind: str = ""
    text: str = ""
    task_id: int | None = None
    task_status: str | None = None
    raised_at: datetime | None = None


class CreatedOut(Out):
    """What a create answers when it only names the new row."""

    id: int


class ChannelLineOut(Out):
    """One channel's (or inviter's) members and what they went on to do."""

    key: str
    label: str
    staff: bool
    members: int
    enrolled: int
    paid: int
    purchased: int
    revenue_fen: int
    revenue: float
    enrol_rate: float | None


class ChannelReportOut(Out):
    """The channel report: its reading (model, by, period, activity), lines and totals."""

    model: str
    by: str
    since: str | None
    until: str | None
    activity: str | None
    lines: list[ChannelLineOut]
    totals: dict[str, float]
