"""Typed request and response bodies for /api/v1 (XCreate / XUpdate / XPublic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from qunyun.services.errors import InvalidInput


def patch_values(body: BaseModel, *, nullable: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields a PATCH sets; ``null`` only where it means something ("no cap", "no
    start"), else a 422 naming the field (it used to reach services as None: a 500)."""
    values = body.model_dump(exclude_unset=True)
    for name, value in values.items():
        if value is None and name not in nullable:
            raise InvalidInput("{name}: may not be null (leave it out to keep it)", name=name)
    return values


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Me(_Out):
    id: int
    username: str
    role: str
    language: str


class GroupPublic(_Out):
    id: int
    platform: str
    external_id: str
    name: str
    group_type: str
    state: str
    capacity: int
    members: int
    messages: int
    last_message_at: datetime | None = None


class GroupDetail(_Out):
    id: int
    platform: str
    external_id: str
    name: str
    group_type: str
    series: str
    state: str
    state_since: datetime | None = None
    starts_at: datetime | None = None
    next_states: list[str] = []
    capacity: int
    rules_text: str
    announcement: str
    settings: dict[str, Any]
    member_count: int


class GroupMemberOut(_Out):
    id: int
    number: int
    display_name: str
    joined_at: datetime
    join_scene: str | None
    channel: str | None
    last_seen_at: datetime
    staff: bool


class GroupUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=255)
    group_type: str | None = None
    series: str | None = Field(default=None, max_length=64)
    capacity: int | None = None
    state: str | None = None  # moved by the lifecycle: only to a state allowed from here
    rules_text: str | None = Field(default=None, max_length=5000)
    announcement: str | None = Field(default=None, max_length=5000)
    welcome_template: str | None = Field(default=None, max_length=2000)
    tags: list[str] | None = None
    starts_at: datetime | None = None
    cooling_speakers: int | None = None
    cooling_days: int | None = None
    cooling_health: int | None = None  # 0 (not judged) to 100


class GroupPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: str = Field(max_length=32)
    name: str = Field(max_length=255)
    group_type: str = Field(default="temporary", max_length=16)
    capacity: int = Field(default=200, ge=2, le=2000)
    starts_at: datetime | None = None


class GroupLink(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chat: str = Field(max_length=255)


class GroupRoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: int = Field(ge=1, le=2**63 - 1)
    role: str = Field(max_length=16)
    remove: bool = False


class Dissolution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gap_minutes: int = Field(default=24 * 60, ge=1, le=30 * 24 * 60)
    notice: str | None = Field(default=None, max_length=1000)
    new_name: str | None = Field(default=None, max_length=64)
    dry_run: bool = True


class GroupMerge(BaseModel):
    """Merge ``source_ids`` into ``target_id`` (``dry_run``, the default: the plan only)."""

    model_config = ConfigDict(extra="forbid")
    source_ids: list[int] = Field(min_length=1, max_length=50)
    target_id: int = Field(ge=1, le=2**62)
    overflow_id: int | None = Field(default=None, ge=1, le=2**62)
    invite: str | None = Field(default=None, max_length=1000)
    wait_minutes: int = Field(default=3 * 24 * 60, ge=60, le=30 * 24 * 60)
    gap_minutes: int = Field(default=24 * 60, ge=1, le=30 * 24 * 60)
    dry_run: bool = True


class LurkerRemoval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(default=30, ge=1, le=3650)
    member_ids: list[int] | None = Field(default=None, max_length=5000)
    notice: str | None = Field(default=None, max_length=500)
    dry_run: bool = True  # the default is to look first


class GroupStateChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: str = Field(max_length=16)
    reason: str = Field(default="", max_length=500)


class MemberPublic(_Out):
    id: int
    number: int
    display_name: str
    first_seen_at: datetime
    last_seen_at: datetime
    # in a list: the groups they are in now, their tags, the channel of their latest join
    groups: list[str] = []
    tags: list[str] = []
    channel: str = ""
    staff: bool = False  # one of the team's own people (platform says so, owns or runs a group)


class IdentityPublic(_Out):
    platform: str
    kind: str
    external_id: str
    display_name: str
    weak: bool


class MembershipPublic(_Out):
    group_id: int
    joined_at: datetime
    join_scene: str
    channel: str
    join_observed: bool
    left_at: datetime | None = None
    leave_scene: str | None = None


class MemberDetail(MemberPublic):
    identities: list[IdentityPublic]
    memberships: list[MembershipPublic]


class TaskPublic(_Out):
    id: int
    kind: str
    title: str
    reason: str
    platform: str
    group_id: int | None = None
    member_id: int | None = None
    status: str
    created_at: datetime
    done_at: datetime | None = None
    outcome: str


class TaskDone(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: str = Field(default="", max_length=2000)
    dismiss: bool = False


class OutboxPublic(_Out):
    id: int
    idempotency_key: str
    platform: str
    group_id: int | None = None
    action_type: str
    payload: dict[str, Any]
    rule: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str
    created_at: datetime
    delivered_at: datetime | None = None
    staff_task_id: int | None = None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str
    password: str
    role: str = "viewer"
    language: str = "zh-CN"
    display_name: str = ""


class UserUpdate(BaseModel):
    """An admin's change to an account; any change ends the account's sessions."""

    model_config = ConfigDict(extra="forbid")
    role: str | None = None
    active: bool | None = None
    password: str | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str
    new_password: str


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str | None = None  # default: oneself
    label: str = Field("", max_length=128)
    days: int = Field(90, ge=1, le=366)


class TokenCreated(BaseModel):
    username: str
    token: str
    days: int


class TokenPublic(_Out):
    id: int
    username: str
    label: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    live: bool


class SessionPublic(_Out):
    id: int
    created_at: datetime
    expires_at: datetime
    client: str
    current: bool


class UserPublic(_Out):
    id: int
    username: str
    display_name: str
    role: str
    language: str
    active: bool


class IngestOut(BaseModel):
    duplicate: bool
    skipped: dict[str, int]
    events: int
    outbox_ids: list[int]
    rules_fired: list[str]
    # actions the rules asked for but did not take: the event was too old to answer
    stale: list[str] = []
