"""All tables (SQLAlchemy Core + ORM-free ``Table`` objects).

Core tables keep services explicit about the SQL they run and make the same statements work
on SQLite and PostgreSQL. Times are stored as timezone-aware UTC (see ``UTCDateTime``).

Kept in one module on purpose: the migrations are compared against this one ``metadata``
(a test), and a table is easier to find beside the ones it references.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite so autoincrement works there.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Refuses naive datetimes on the way in; returns aware UTC on the way out (SQLite too)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _id() -> Column[Any]:
    return Column("id", Id, primary_key=True, autoincrement=True)


def _created() -> Column[Any]:
    return Column("created_at", UTCDateTime(), nullable=False)


staff_users = Table(
    "staff_users",
    metadata,
    _id(),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(128), nullable=False, default=""),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("language", String(8), nullable=False, default="zh-CN"),
    Column("active", Boolean, nullable=False, default=True),
    Column("session_version", Integer, nullable=False, default=1),
    _created(),
    Column("last_login_at", UTCDateTime()),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    _id(),
    Column("user_id", Id, ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(128), nullable=False, default=""),
    _created(),
    Column("last_used_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
    Column("expires_at", UTCDateTime()),  # NULL on tokens made before expiry: created + 90 d
)

# A signed-in browser: the cookie carries a random id whose hash is stored here, so logging
# out, a password or role change and disabling the account end it (a copied cookie stops
# working), and staff can see and end their other sessions.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    _id(),
    Column("user_id", Id, ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False),
    Column("sid_hash", String(64), nullable=False, unique=True),
    _created(),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
    Column("end_reason", String(32)),  # logout, password, role, disabled, ended
    Column("client", String(64), nullable=False, default=""),
    Index("ix_staff_sessions_user", "user_id", "ended_at"),
)

# Failed sign-ins per account and per client address, for the login back-off.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(160), primary_key=True),  # "user:<name>" or "client:<address>"
    Column("failures", Integer, nullable=False),
    Column("first_at", UTCDateTime(), nullable=False),
    Column("blocked_until", UTCDateTime()),
)

# One row per named counter; member numbers come from here so they are gap-free and never reused.
counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

members = Table(
    "members",
    metadata,
    _id(),
    Column("number", BigInteger, nullable=False, unique=True),
    Column("display_name", String(255), nullable=False, default=""),
    Column("merged_into_id", Id, ForeignKey("members.id")),
    _created(),
    Column("first_seen_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    # personal data: masked for roles without MEMBER_PII (see services.crm_access)
    Column("phone", String(32), nullable=False, default=""),
    Column("address", Text, nullable=False, default=""),
    Index("ix_members_phone", "phone"),
)

# Custom attributes joined from spreadsheets: text always, number when the text is one, so
# segments can compare "error rate > 0.3" with the same SQL on SQLite and PostgreSQL.
member_attributes = Table(
    "member_attributes",
    metadata,
    Column("member_id", Id, ForeignKey("members.id"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value_text", Text, nullable=False, default=""),
    Column("value_num", Float),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("source", String(128), nullable=False, default=""),
    Index("ix_member_attributes_name_num", "name", "value_num"),
)

# What each custom attribute is: personal data (the default for any attribute not listed
# here, or listed as personal) is masked for roles without personal-data access and cannot
# be filtered or ranked on by them; ``kind`` chooses how a value is masked.
attribute_fields = Table(
    "attribute_fields",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("personal", Boolean, nullable=False, default=True),
    Column("kind", String(16), nullable=False, default=""),  # id_number, name, email, …
    Column("updated_by", String(128), nullable=False, default=""),
    Column("updated_at", UTCDateTime(), nullable=False),
)

identities = Table(
    "identities",
    metadata,
    _id(),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False, index=True),
    Column("platform", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("display_name", String(255), nullable=False, default=""),
    Column("weak", Boolean, nullable=False, default=False),
    Column("staff", Boolean, nullable=False, default=False, server_default=false()),
    _created(),
    UniqueConstraint("platform", "kind", "external_id", name="uq_identities_platform_kind_ext"),
)

groups = Table(
    "groups",
    metadata,
    _id(),
    Column("platform", String(32), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("owner_member_id", Id, ForeignKey("members.id")),
    Column("group_type", String(16), nullable=False, default="long_term"),
    Column("series", String(64), nullable=False, default=""),
    Column("capacity", Integer, nullable=False, default=500),
    Column("state", String(16), nullable=False, default="active"),
    Column("state_since", UTCDateTime()),  # when it entered its state (None: from the start)
    Column("starts_at", UTCDateTime()),  # a recruiting group becomes active then
    Column("rules_text", Text, nullable=False, default=""),
    Column("announcement", Text, nullable=False, default=""),
    Column("settings", JSON, nullable=False, default=dict),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("platform", "external_id", name="uq_groups_platform_ext"),
)

# people's roles in a group as the team assigns them (F7): they count as the team's own
group_roles = Table(
    "group_roles",
    metadata,
    _id(),
    Column("group_id", Id, ForeignKey("groups.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("role", String(16), nullable=False),  # owner presenter expert atmosphere advisor
    Column("assigned_by", String(64), nullable=False, default=""),
    _created(),
    UniqueConstraint("group_id", "member_id", "role", name="uq_group_roles"),
    Index("ix_group_roles_member", "member_id"),
)

memberships = Table(
    "memberships",
    metadata,
    _id(),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("group_id", Id, ForeignKey("groups.id"), nullable=False),
    Column("joined_at", UTCDateTime(), nullable=False),
    Column("join_scene", String(16), nullable=False, default="unknown"),
    Column("inviter_member_id", Id, ForeignKey("members.id")),
    Column("channel", String(128), nullable=False, default=""),
    # False when the join was not seen, only implied (someone spoke in a group we watch).
    Column("join_observed", Boolean, nullable=False, default=True),
    Column("left_at", UTCDateTime()),
    Column("leave_scene", String(16)),
    # first and last member message while this membership was open (kept by ingest and
    # imports, so reports need not scan all messages for lurkers and time-to-first-message)
    Column("first_message_at", UTCDateTime()),
    Column("last_message_at", UTCDateTime()),
    Index("ix_memberships_group_current", "group_id", "left_at"),
    Index("ix_memberships_member", "member_id", "group_id"),
)

messages = Table(
    "messages",
    metadata,
    _id(),
    Column("group_id", Id, ForeignKey("groups.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id")),
    Column("platform_message_id", String(255), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=False),
    Column("direction", String(8), nullable=False, default="in"),
    Column("message_type", String(32), nullable=False, default="text"),
    Column("text", Text, nullable=False, default=""),
    Column("recalled", Boolean, nullable=False, default=False),
    UniqueConstraint("group_id", "platform_message_id", name="uq_messages_group_pmid"),
    Index("ix_messages_group_sent", "group_id", "sent_at"),
    Index("ix_messages_member_sent", "member_id", "sent_at"),
)

# Append-only history of what happened to members: the source of truth for analytics.
member_events = Table(
    "member_events",
    metadata,
    _id(),
    Column("member_id", Id, ForeignKey("members.id")),  # null for group-level events (renames)
    Column("group_id", Id, ForeignKey("groups.id")),
    Column("kind", String(32), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("actor_member_id", Id, ForeignKey("members.id")),
    Column("data", JSON, nullable=False, default=dict),
    Column("inbound_event_id", Id, ForeignKey("inbound_events.id")),
    Index("ix_member_events_member_time", "member_id", "occurred_at"),
    Index("ix_member_events_group_kind_time", "group_id", "kind", "occurred_at"),
    Index("ix_member_events_kind_member", "kind", "member_id", "occurred_at"),
)

# Per member, how many member events of each kind and how many messages (kind "message"):
# kept by ingest, imports and merges, so "events.checkin >= 5" is an index range, not a
# GROUP BY over millions of events. Windowed conditions still read the events themselves.
member_counts = Table(
    "member_counts",
    metadata,
    Column("member_id", Id, ForeignKey("members.id"), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("n", BigInteger, nullable=False),
    Index("ix_member_counts_kind_n", "kind", "n"),
)

tags = Table(
    "tags",
    metadata,
    _id(),
    Column("name", String(64), nullable=False),
    Column("tag_group", String(64), nullable=False, default=""),
    Column("color", String(16), nullable=False, default=""),
    # "manual", or "rule": then ``rule`` holds a segment expression kept true incrementally
    Column("kind", String(8), nullable=False, default="manual"),
    Column("rule", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    _created(),
    UniqueConstraint("tag_group", "name", name="uq_tags_group_name"),
)

member_tags = Table(
    "member_tags",
    metadata,
    Column("member_id", Id, ForeignKey("members.id"), primary_key=True),
    Column("tag_id", Id, ForeignKey("tags.id"), primary_key=True),
    Column("added_at", UTCDateTime(), nullable=False),
    Column("added_by", String(128), nullable=False, default=""),
    Column("source", String(32), nullable=False, default="manual"),
    Column("reason", Text, nullable=False, default=""),
    Index("ix_member_tags_tag", "tag_id", "member_id"),
)

# Tag history: every add and removal, by whom (staff or rule) and why.
tag_events = Table(
    "tag_events",
    metadata,
    _id(),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("tag_id", Id, ForeignKey("tags.id"), nullable=False),
    Column("action", String(8), nullable=False),  # add | remove
    Column("at", UTCDateTime(), nullable=False),
    Column("by", String(128), nullable=False),
    Column("source", String(32), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Index("ix_tag_events_member_at", "member_id", "at"),
)

# Service records (F3): notes, calls and follow-ups written by staff on a member's timeline.
service_records = Table(
    "service_records",
    metadata,
    _id(),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # note | call | follow_up
    Column("body", Text, nullable=False),
    Column("author_id", Id, ForeignKey("staff_users.id")),
    Column("author", String(128), nullable=False),
    _created(),
    Column("due_at", UTCDateTime()),
    Column("done_at", UTCDateTime()),
    Column("done_by", String(128)),
    Index("ix_service_records_member", "member_id", "created_at"),
    Index("ix_service_records_due", "done_at", "due_at"),
)

# Blacklist (F4): active while not lifted and not expired; rows are never deleted.
blacklist = Table(
    "blacklist",
    metadata,
    _id(),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("reason", Text, nullable=False),
    Column("added_by", String(128), nullable=False),
    Column("added_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("lifted_at", UTCDateTime()),
    Column("lifted_by", String(128)),
    # the moderation decision that blacklisted them (overturning it lifts the entry)
    Column("decision_id", Id, ForeignKey("moderation_decisions.id")),
    Index("ix_blacklist_member", "member_id", "lifted_at"),
)

# Member merges: which rows moved, so a merge can be undone exactly.
member_merges = Table(
    "member_merges",
    metadata,
    _id(),
    Column("source_member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("target_member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("by", String(128), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("moved", JSON, nullable=False),
    Column("undone_at", UTCDateTime()),
    Column("undone_by", String(128)),
)

# Merge suggestions a person looked at and rejected (kept out of the review list).
merge_dismissals = Table(
    "merge_dismissals",
    metadata,
    Column("member_a", Id, ForeignKey("members.id"), primary_key=True),
    Column("member_b", Id, ForeignKey("members.id"), primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("by", String(128), nullable=False),
)

# Saved segments (F5): an expression in the segment language (domain/segments.py).
segments = Table(
    "segments",
    metadata,
    _id(),
    Column("name", String(128), nullable=False, unique=True),
    Column("expression", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_by", String(128), nullable=False),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Lead lists (F6): a segment ranked by a readable scoring formula.
lead_lists = Table(
    "lead_lists",
    metadata,
    _id(),
    Column("name", String(128), nullable=False, unique=True),
    Column("segment_id", Id, ForeignKey("segments.id"), nullable=False),
    Column("formula", Text, nullable=False),
    Column("created_by", String(128), nullable=False),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Every raw inbound event once: the dedupe key is (platform, external_event_id).
inbound_events = Table(
    "inbound_events",
    metadata,
    _id(),
    Column("platform", String(32), nullable=False),
    Column("external_event_id", String(255), nullable=False),
    Column("event_kind", String(64), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False, default="processed"),
    Column("rules_fired", JSON, nullable=False, default=list),
    Column("rule_errors", JSON, nullable=False, default=list),
    # actions the rules asked for that were not taken: the event was too old to answer
    Column("stale_actions", Integer, nullable=False, default=0, server_default="0"),
    UniqueConstraint("platform", "external_event_id", name="uq_inbound_platform_ext"),
)

outbox = Table(
    "outbox",
    metadata,
    _id(),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("platform", String(32), nullable=False),
    Column("group_id", Id, ForeignKey("groups.id")),
    Column("member_id", Id, ForeignKey("members.id")),
    Column("action_type", String(32), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("rule", String(64), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("lease_until", UTCDateTime()),
    Column("claimed_by", String(64)),
    Column("last_error", Text, nullable=False, default=""),
    Column("receipt", JSON),
    Column("inbound_event_id", Id, ForeignKey("inbound_events.id")),
    Column("staff_task_id", Id, ForeignKey("staff_tasks.id")),
    _created(),
    Column("delivered_at", UTCDateTime()),
    # sends with the same batch key in a group merge while pending (welcome batching)
    Column("batch_key", String(64)),
    # a reply not sent by then is dropped (status expired): it would answer a stale event
    Column("expires_at", UTCDateTime()),
    Index("ix_outbox_due", "status", "next_attempt_at"),
    Index("ix_outbox_batch", "group_id", "batch_key", "status"),
    # pushes name their delivery here (delivery:<id>) so the delivery log counts its rows
    Index("ix_outbox_rule", "rule"),
)

staff_tasks = Table(
    "staff_tasks",
    metadata,
    _id(),
    Column("kind", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("platform", String(32), nullable=False, default=""),
    Column("group_id", Id, ForeignKey("groups.id")),
    Column("member_id", Id, ForeignKey("members.id")),
    Column("payload", JSON, nullable=False, default=dict),
    Column("status", String(16), nullable=False, default="open"),
    Column("due_at", UTCDateTime()),
    _created(),
    Column("done_at", UTCDateTime()),
    Column("done_by", Id, ForeignKey("staff_users.id")),
    Column("outcome", Text, nullable=False, default=""),
    Index("ix_staff_tasks_status", "status", "created_at"),
)

scheduled_jobs = Table(
    "scheduled_jobs",
    metadata,
    _id(),
    Column("key", String(255), nullable=False, unique=True),
    Column("kind", String(64), nullable=False),
    Column("platform", String(32), nullable=False, default="system"),
    Column("group_id", Id, ForeignKey("groups.id")),
    Column("payload", JSON, nullable=False, default=dict),
    Column("next_run_at", UTCDateTime(), nullable=False),
    Column("every_seconds", Integer),
    Column("status", String(16), nullable=False, default="active"),
    Column("lease_until", UTCDateTime()),
    Column("claimed_by", String(64)),
    Column("runs", Integer, nullable=False, default=0),
    Column("last_run_at", UTCDateTime()),
    _created(),
    # a recurring step time (daily 08:00, weekly 周一 09:00, holiday 09:00): the next run is
    # computed from it in the team's time zone, not by adding seconds
    Column("recurrence", String(64)),
    Index("ix_scheduled_jobs_due", "status", "next_run_at"),
)

# Automation (issue 5) -------------------------------------------------------------------

# Rule settings: group_id 0 holds the team's defaults, any other id a group's overrides.
automation_settings = Table(
    "automation_settings",
    metadata,
    Column("group_id", Id, primary_key=True, autoincrement=False),
    Column("settings", JSON, nullable=False, default=dict),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(128), nullable=False),
)

# FAQ entries (F12); group_id NULL = every group. ``questions`` holds one phrasing per line.
faqs = Table(
    "faqs",
    metadata,
    _id(),
    Column("group_id", Id, ForeignKey("groups.id")),
    Column("key", String(64), nullable=False, default=""),  # the id in an imported CSV
    Column("questions", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("match", String(16), nullable=False, default="fuzzy"),
    Column("pattern", Text, nullable=False, default=""),
    Column("cooldown_seconds", Integer, nullable=False, default=300),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("hits", Integer, nullable=False, default=0),
    Column("created_by", String(128), nullable=False),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Moderation word lists (F13): one word per line; severity block | review | weak.
word_lists = Table(
    "word_lists",
    metadata,
    _id(),
    Column("name", String(128), nullable=False, unique=True),
    Column("severity", String(16), nullable=False),
    Column("words", Text, nullable=False),
    Column("source", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_by", String(128), nullable=False),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Every moderation decision with its reasons; status ``pending`` = in the review queue.
moderation_decisions = Table(
    "moderation_decisions",
    metadata,
    _id(),
    Column("group_id", Id, ForeignKey("groups.id")),
    Column("member_id", Id, ForeignKey("members.id")),
    Column("message_id", String(255), nullable=False, default=""),
    Column("text", Text, nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("reasons", JSON, nullable=False, default=list),
    # what the classifier saw (link, mobile, flood, list:block …): the ad rate and the
    # member events are told apart by them
    Column("signals", JSON, nullable=False, default=list),
    Column("action", String(16), nullable=False),  # none | warn | remove | blacklist | review
    Column("status", String(16), nullable=False),  # logged | pending | confirmed | overturned
    Column("inbound_event_id", Id, ForeignKey("inbound_events.id")),
    _created(),
    Column("reviewed_by", String(128)),
    Column("reviewed_at", UTCDateTime()),
    Index("ix_moderation_member", "member_id", "group_id", "created_at"),
    Index("ix_moderation_status", "status", "created_at"),
)

# Group health alerts raised once each (F24): the key names the alert and what anchors it
# (the day a leave spike happened, the day talk stopped), so a standing alert is one task.
health_alerts = Table(
    "health_alerts",
    metadata,
    _id(),
    Column("key", String(255), nullable=False, unique=True),
    Column("group_id", Id, ForeignKey("groups.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detail", JSON, nullable=False, default=dict),
    Column("raised_at", UTCDateTime(), nullable=False),
    Column("task_id", Id, ForeignKey("staff_tasks.id")),
    Index("ix_health_alerts_group", "group_id", "raised_at"),
)

# Check-ins (F14): one per member, group and team-local day; ``streak`` as of that day.
checkins = Table(
    "checkins",
    metadata,
    _id(),
    Column("group_id", Id, ForeignKey("groups.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("day", String(10), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("streak", Integer, nullable=False),
    Column("source", String(16), nullable=False),  # keyword | image | form | import
    Column("message_id", String(255), nullable=False, default=""),
    UniqueConstraint("group_id", "member_id", "day", name="uq_checkins_group_member_day"),
    Index("ix_checkins_member", "member_id", "group_id", "day"),
)

# Points (F14): an append-only ledger; ``ref`` makes an award idempotent.
points_ledger = Table(
    "points_ledger",
    metadata,
    _id(),
    Column("group_id", Id, ForeignKey("groups.id")),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("points", Integer, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("ref", String(255), nullable=False, unique=True),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_points_group_at", "group_id", "at"),
)

# Draws (F15): the seed and the eligible list are kept so anyone can re-run a draw.
draws = Table(
    "draws",
    metadata,
    _id(),
    Column("group_id", Id, ForeignKey("groups.id")),
    Column("title", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # lottery | red_packet
    Column("eligibility", Text, nullable=False),
    Column("seed", String(64), nullable=False),
    Column("eligible", JSON, nullable=False),
    Column("prizes", JSON, nullable=False),
    Column("winners", JSON, nullable=False),
    Column("created_by", String(128), nullable=False),
    _created(),
)

# When a rule last fired in a group (FAQ cool-downs).
rule_cooldowns = Table(
    "rule_cooldowns",
    metadata,
    Column("rule_key", String(64), primary_key=True),
    Column("group_id", Id, primary_key=True, autoincrement=False),
    Column("last_at", UTCDateTime(), nullable=False),
)

# Content and scheduling (issue 6) -----------------------------------------------------

# Scripts (话术, F16); every save is a new row in script_versions as well.
scripts = Table(
    "scripts",
    metadata,
    _id(),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("variables", JSON, nullable=False, default=list),  # custom variables it declares
    Column("attachments", JSON, nullable=False, default=list),
    Column("version", Integer, nullable=False, default=1),
    Column("archived", Boolean, nullable=False, default=False),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(128), nullable=False),
)

script_versions = Table(
    "script_versions",
    metadata,
    _id(),
    Column("script_id", Id, ForeignKey("scripts.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("name", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("variables", JSON, nullable=False, default=list),
    Column("attachments", JSON, nullable=False, default=list),
    Column("changed_by", String(128), nullable=False),
    Column("changed_at", UTCDateTime(), nullable=False),
    Column("note", String(255), nullable=False, default=""),
    UniqueConstraint("script_id", "version", name="uq_script_versions_script_version"),
)

# SOP playbooks (F17): steps with a step time, a target and a script, attached to groups.
playbooks = Table(
    "playbooks",
    metadata,
    _id(),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False, default="active"),  # active | paused
    Column("campaign_start", UTCDateTime()),  # the T of relative steps
    Column("variables", JSON, nullable=False, default=dict),  # {activity}, {deadline}, custom
    # a lifecycle state: the playbook runs in each group that enters it, T = the move
    Column("on_state", String(16), nullable=False, default="", server_default=""),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
)

playbook_steps = Table(
    "playbook_steps",
    metadata,
    _id(),
    Column("playbook_id", Id, ForeignKey("playbooks.id"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("name", String(128), nullable=False, default=""),
    Column("at", String(64), nullable=False),
    Column("script_id", Id, ForeignKey("scripts.id"), nullable=False),
    Column("target", JSON),  # null: the playbook's groups
    Column("max_messages_last_hour", Integer),  # warm-up trigger: only in quiet groups
    Column("skipped", Boolean, nullable=False, default=False),
)

playbook_groups = Table(
    "playbook_groups",
    metadata,
    Column("playbook_id", Id, ForeignKey("playbooks.id"), primary_key=True,
           autoincrement=False),
    Column("group_id", Id, ForeignKey("groups.id"), primary_key=True, autoincrement=False),
)

# Broadcasts (F18): one push to groups or segment members, now or at a time.
broadcasts = Table(
    "broadcasts",
    metadata,
    _id(),
    Column("name", String(128), nullable=False),
    Column("script_id", Id, ForeignKey("scripts.id")),
    Column("text", Text, nullable=False, default=""),
    Column("attachments", JSON, nullable=False, default=list),
    Column("variables", JSON, nullable=False, default=dict),
    Column("target", JSON, nullable=False),
    Column("send_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),  # scheduled | sent | cancelled
    Column("pin", Boolean, nullable=False, default=False),  # pinned in each group once sent
    Column("created_by", String(128), nullable=False),
    _created(),
)

# The delivery log: one row per fired occurrence (a broadcast, a playbook step on a day).
deliveries = Table(
    "deliveries",
    metadata,
    _id(),
    Column("key", String(255), nullable=False, unique=True),
    Column("source", String(16), nullable=False),  # broadcast | playbook
    Column("broadcast_id", Id, ForeignKey("broadcasts.id")),
    Column("playbook_id", Id, ForeignKey("playbooks.id")),
    Column("step_id", Id, ForeignKey("playbook_steps.id")),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("fired_at", UTCDateTime(), nullable=False),
    Column("text", Text, nullable=False, default=""),
    Column("recipients", Integer, nullable=False, default=0),
    Column("planned", Integer, nullable=False, default=0),
    Column("deferred", Integer, nullable=False, default=0),
    Column("queued", Integer, nullable=False, default=0),
    Column("dropped", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),
    Column("confirmations", Integer, nullable=False, default=0),
    Column("detail", JSON, nullable=False, default=dict),
    Index("ix_deliveries_due", "due_at"),
)

# Every push placed (not dropped), per group or member, for the frequency caps.
push_log = Table(
    "push_log",
    metadata,
    _id(),
    Column("platform", String(32), nullable=False),
    Column("group_id", Id, ForeignKey("groups.id")),
    Column("member_id", Id, ForeignKey("members.id")),
    Column("at", UTCDateTime(), nullable=False),
    Column("delivery_id", Id, ForeignKey("deliveries.id"), nullable=False),
    Index("ix_push_log_group_at", "group_id", "at"),
    Index("ix_push_log_member_at", "member_id", "at"),
)

# Activity series (F22): a theme that runs again and again (X, Y, Z in seed 000).
activity_series = Table(
    "activity_series",
    metadata,
    _id(),
    Column("code", String(32), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    _created(),
)

# One issue of a series (X1, X2 …). Days are team-local ISO dates (like check-ins); money is
# in fen (1/100 yuan) so sums are exact on both databases. ``reach`` and ``targets`` feed the
# funnel (F26): people reached per channel, and the plan's number for each funnel step.
activities = Table(
    "activities",
    metadata,
    _id(),
    Column("series_id", Id, ForeignKey("activity_series.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("code", String(40), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("opens_on", String(10), nullable=False),
    Column("starts_on", String(10), nullable=False),
    Column("ends_on", String(10), nullable=False),
    Column("capacity", Integer, nullable=False, default=0),  # 0 = no limit
    Column("price_fen", BigInteger, nullable=False, default=0),
    Column("deposit_fen", BigInteger, nullable=False, default=0),
    Column("refund_tiers", JSON, nullable=False, default=list),
    Column("complete_checkins", Integer, nullable=False, default=0),
    Column("reach", JSON, nullable=False, default=dict),
    Column("targets", JSON, nullable=False, default=dict),
    Column("state", String(16), nullable=False, default="planned"),
    Column("settled_at", UTCDateTime()),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("series_id", "seq", name="uq_activities_series_seq"),
    Index("ix_activities_starts", "starts_on"),
)

activity_groups = Table(
    "activity_groups",
    metadata,
    Column("activity_id", Id, ForeignKey("activities.id"), primary_key=True),
    Column("group_id", Id, ForeignKey("groups.id"), primary_key=True),
)

# Sign-ups: one per member and issue. Settlement fills checkins/percent/refund/completed.
enrolments = Table(
    "enrolments",
    metadata,
    _id(),
    Column("activity_id", Id, ForeignKey("activities.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("enrolled_at", UTCDateTime(), nullable=False),
    Column("source", String(16), nullable=False),  # dashboard | api | csv | demo
    Column("channel", String(128), nullable=False, default=""),
    Column("deposit_fen", BigInteger, nullable=False, default=0),
    Column("status", String(16), nullable=False, default="enrolled"),  # | cancelled
    Column("external_ref", String(128), nullable=False, default=""),
    Column("checkins", Integer),
    Column("refund_percent", Float),
    Column("refund_fen", BigInteger),
    Column("completed", Boolean),
    Column("settled_at", UTCDateTime()),
    UniqueConstraint("activity_id", "member_id", name="uq_enrolments_activity_member"),
    # status inside both: the cohort report reads issue → members → their enrolments, only
    # the enrolled ones, from the indexes alone (migration 0009)
    Index("ix_enrolments_member", "member_id", "status", "activity_id"),
    Index("ix_enrolments_activity_status", "activity_id", "status", "member_id"),
)

# Money that is not an activity deposit (F23): intention deposits (付定), orders and costs.
# ``external_ref`` (an order number) makes a CSV import idempotent.
conversions = Table(
    "conversions",
    metadata,
    _id(),
    Column("kind", String(16), nullable=False),  # deposit | order | cost
    Column("activity_id", Id, ForeignKey("activities.id")),
    Column("group_id", Id, ForeignKey("groups.id")),
    Column("member_id", Id, ForeignKey("members.id")),
    Column("amount_fen", BigInteger, nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("channel", String(128), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("source", String(16), nullable=False),
    Column("external_ref", String(128), unique=True),
    _created(),
    Index("ix_conversions_activity_kind", "activity_id", "kind"),
    Index("ix_conversions_member", "member_id", "occurred_at"),
)

# WeCom connector (issue 8) ------------------------------------------------------------------

# One row per connected corp; secret, token and aes_key are Fernet ciphertexts (at rest).
wecom_corps = Table(
    "wecom_corps",
    metadata,
    _id(),
    Column("corp_id", String(64), nullable=False, unique=True),
    Column("name", String(128), nullable=False, default=""),
    Column("agent_id", Integer, nullable=False),
    Column("secret", Text, nullable=False),
    Column("token", Text, nullable=False),
    Column("aes_key", Text, nullable=False),
    # the last sync and callback figures shown on the setup page
    Column("status", JSON, nullable=False, default=dict),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Telegram bots the team connected: the token and the webhook secret sealed at rest, how
# updates arrive (webhook or polling, with getUpdates' offset so a restart neither loses nor
# repeats one) and the last error.
telegram_bots = Table(
    "telegram_bots",
    metadata,
    _id(),
    Column("bot_id", String(32), nullable=False, unique=True),
    Column("username", String(64), nullable=False, default=""),
    Column("name", String(128), nullable=False, default=""),
    Column("token", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("mode", String(16), nullable=False, default="polling"),  # polling | webhook
    Column("webhook_url", Text, nullable=False, default=""),
    Column("poll_offset", BigInteger, nullable=False, default=0),
    Column("status", JSON, nullable=False, default=dict),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Where each bot is and what it may do there (its status and rights from my_chat_member).
telegram_chats = Table(
    "telegram_chats",
    metadata,
    _id(),
    Column("bot_id", String(32), nullable=False),
    Column("chat_id", String(64), nullable=False),
    Column("title", String(255), nullable=False, default=""),
    Column("status", String(16), nullable=False),  # administrator | member | left | kicked …
    Column("rights", JSON, nullable=False, default=dict),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("bot_id", "chat_id", name="uq_telegram_chats_bot_chat"),
    Index("ix_telegram_chats_chat", "chat_id"),
)

# Which of the team's bots may write to a person privately: one that person wrote to (a
# private chat is open) and has not blocked since. A private send goes through such a bot
# even when the person's group is run by another.
telegram_private_chats = Table(
    "telegram_private_chats",
    metadata,
    _id(),
    Column("bot_id", String(32), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # open | blocked
    Column("last_at", UTCDateTime(), nullable=False),
    UniqueConstraint("bot_id", "user_id", name="uq_telegram_private_chats_bot_user"),
    Index("ix_telegram_private_chats_user", "user_id", "status"),
)

# What a platform pushed to us (a WeCom callback, decrypted; a Telegram webhook update), as
# received: stored before answering and processed after by the worker, so a platform's
# retries are one row (the digest of the body) and nothing is lost in a crash.
raw_inbox = Table(
    "raw_inbox",
    metadata,
    _id(),
    Column("platform", String(32), nullable=False),
    Column("account", String(64), nullable=False),  # the corp, the bot
    Column("digest", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=False, default=""),
    Column("processed_at", UTCDateTime()),
    UniqueConstraint("platform", "account", "digest", name="uq_raw_inbox_digest"),
    Index("ix_raw_inbox_status", "platform", "status", "id"),
)

# What qunyun last read of each customer group: its owner and member_version (callbacks carry
# LastMemVer/CurMemVer, so a gap shows that one was lost).
wecom_chats = Table(
    "wecom_chats",
    metadata,
    _id(),
    Column("corp_id", String(64), nullable=False),
    Column("chat_id", String(128), nullable=False, unique=True),
    Column("owner", String(128), nullable=False, default=""),
    Column("member_version", String(64), nullable=False, default=""),
    Column("status", Integer, nullable=False, default=0),
    Column("synced_at", UTCDateTime()),
    Index("ix_wecom_chats_corp", "corp_id"),
)

# Join codes (F8, 群活码): one per channel, keeping up to five groups attached and rotating a
# fresh group in as one fills; ``state`` (= the channel) tells which code brought a member.
join_codes = Table(
    "join_codes",
    metadata,
    _id(),
    Column("platform", String(32), nullable=False),
    Column("account", String(64), nullable=False),
    Column("channel", String(30), nullable=False),
    Column("config_id", String(128), nullable=False, default=""),
    Column("remark", String(64), nullable=False, default=""),
    Column("chat_ids", JSON, nullable=False, default=list),
    Column("spare_chat_ids", JSON, nullable=False, default=list),
    Column("full_chat_ids", JSON, nullable=False, default=list),
    Column("capacity", Integer, nullable=False, default=200),
    Column("fill_ratio", Float, nullable=False, default=0.9),
    Column("auto_create_room", Boolean, nullable=False, default=True),
    Column("room_base_name", String(64), nullable=False, default=""),
    Column("qr_code", Text, nullable=False, default=""),
    Column("state", String(16), nullable=False, default="active"),
    Column("rotations", Integer, nullable=False, default=0),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("platform", "account", "channel", name="uq_join_codes_channel"),
)

# Group welcome templates registered on a platform (owners apply them in the WeCom client).
welcome_templates = Table(
    "welcome_templates",
    metadata,
    _id(),
    Column("platform", String(32), nullable=False),
    Column("account", String(64), nullable=False),
    Column("template_id", String(128), nullable=False),
    Column("text", Text, nullable=False),
    Column("attachment", JSON, nullable=False, default=dict),
    Column("notify", Boolean, nullable=False, default=True),
    Column("created_by", String(128), nullable=False),
    _created(),
    UniqueConstraint("platform", "template_id", name="uq_welcome_templates_ext"),
)

# A platform's own tags mirrored onto qunyun tags (WeCom corp tags).
platform_tags = Table(
    "platform_tags",
    metadata,
    _id(),
    Column("platform", String(32), nullable=False),
    Column("account", String(64), nullable=False),
    Column("external_id", String(128), nullable=False),
    Column("tag_id", Id, ForeignKey("tags.id"), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    UniqueConstraint("platform", "account", "external_id", name="uq_platform_tags_ext"),
)

# Requests to join a group whose admins approve newcomers (Telegram's join requests) and
# what the entry gate or a person decided; written only by services/entry.py.
# campaign plans (F28/F29): the plan, its stages (the Gantt's bars), its daily targets
plans = Table(
    "plans",
    metadata,
    _id(),
    Column("name", String(128), nullable=False, unique=True),
    Column("activity_id", Id, ForeignKey("activities.id")),  # enrolments and sales from it
    Column("group_ids", JSON, nullable=False),  # joins and talk from these (else the activity's)
    Column("starts_on", String(10), nullable=False),
    Column("ends_on", String(10), nullable=False),
    Column("goal", JSON, nullable=False),  # the calculator's inputs and answer
    Column("margin", Float, nullable=False),  # a day this far under target is flagged
    Column("created_by", String(128), nullable=False),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
)

plan_stages = Table(
    "plan_stages",
    metadata,
    _id(),
    Column("plan_id", Id, ForeignKey("plans.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # warmup recruiting launch follow_up other
    Column("name", String(128), nullable=False),
    Column("starts_on", String(10), nullable=False),
    Column("ends_on", String(10), nullable=False),
    # the stage's retro: what worked, what did not, what to change next time
    Column("retro_worked", Text, nullable=False, default="", server_default=""),
    Column("retro_not", Text, nullable=False, default="", server_default=""),
    Column("retro_change", Text, nullable=False, default="", server_default=""),
    Index("ix_plan_stages_plan", "plan_id"),
)

plan_problems = Table(  # the problem log: what went wrong, who owns it, how it ended
    "plan_problems",
    metadata,
    _id(),
    Column("plan_id", Id, ForeignKey("plans.id"), nullable=False),
    Column("issue", Text, nullable=False),
    Column("owner_id", Id, ForeignKey("staff_users.id")),
    Column("status", String(16), nullable=False),  # open closed
    Column("resolution", Text, nullable=False, default="", server_default=""),
    _created(),
    Column("closed_at", UTCDateTime()),
    Index("ix_plan_problems_plan", "plan_id"),
)

plan_targets = Table(
    "plan_targets",
    metadata,
    Column("plan_id", Id, ForeignKey("plans.id"), primary_key=True, autoincrement=False),
    Column("day", String(10), primary_key=True),
    Column("metric", String(16), primary_key=True),  # joined active enrolled deposit purchase
    Column("value", Integer, nullable=False),
    Column("alerted_at", UTCDateTime()),  # the day fell short and the lead was told (once)
)

plan_roles = Table(  # who does what in the plan, in a group or for the whole plan
    "plan_roles",
    metadata,
    _id(),
    Column("plan_id", Id, ForeignKey("plans.id"), nullable=False),
    Column("user_id", Id, ForeignKey("staff_users.id"), nullable=False),
    Column("role", String(16), nullable=False),  # pm presenter kol atmosphere advisor
    Column("group_id", Id, ForeignKey("groups.id")),
    UniqueConstraint("plan_id", "user_id", "role", "group_id", name="uq_plan_roles"),
)

plan_items = Table(  # the materials checklist
    "plan_items",
    metadata,
    _id(),
    Column("plan_id", Id, ForeignKey("plans.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # poster script gift product other
    Column("title", String(200), nullable=False),
    Column("owner_id", Id, ForeignKey("staff_users.id")),
    Column("due_on", String(10)),
    Column("status", String(16), nullable=False),  # todo doing done
    Index("ix_plan_items_plan", "plan_id"),
)

plan_budget = Table(  # planned and actual money, line by line
    "plan_budget",
    metadata,
    _id(),
    Column("plan_id", Id, ForeignKey("plans.id"), nullable=False),
    Column("category", String(16), nullable=False),  # gifts red_packets rewards ads other
    Column("title", String(200), nullable=False),
    Column("planned_fen", BigInteger, nullable=False),
    Column("actual_fen", BigInteger, nullable=False),
    Index("ix_plan_budget_plan", "plan_id"),
)

# merging small groups into a target (F10): the merge, and each member's move
group_merges = Table(
    "group_merges",
    metadata,
    _id(),
    Column("platform", String(32), nullable=False),
    Column("target_group_id", Id, ForeignKey("groups.id"), nullable=False),
    # where those who do not fit go (an existing group, or one planned for it)
    Column("overflow_group_id", Id, ForeignKey("groups.id")),
    Column("source_group_ids", JSON, nullable=False),
    Column("invite_text", Text, nullable=False),
    Column("gap_minutes", Integer, nullable=False),  # the dissolution SOP's gap afterwards
    Column("status", String(16), nullable=False),  # running | done
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("finish_at", UTCDateTime(), nullable=False),  # the emptied groups dissolve then
    Column("finished_at", UTCDateTime()),
)

group_merge_members = Table(
    "group_merge_members",
    metadata,
    _id(),
    Column("merge_id", Id, ForeignKey("group_merges.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("from_group_id", Id, ForeignKey("groups.id"), nullable=False),
    Column("to_group_id", Id, ForeignKey("groups.id"), nullable=False),
    Column("invited_at", UTCDateTime()),  # None: the destination has no join code yet
    UniqueConstraint("merge_id", "member_id", name="uq_group_merge_members"),
)

join_requests = Table(
    "join_requests",
    metadata,
    _id(),
    Column("group_id", Id, ForeignKey("groups.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    # pending | asked | answered (open) · approved | declined | expired (closed)
    Column("status", String(16), nullable=False),
    Column("channel", String(128), nullable=False, default=""),
    Column("bio", Text, nullable=False, default=""),
    Column("answers", JSON, nullable=False, default=list),  # [{"at", "text"}]
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("decided_at", UTCDateTime()),
    Column("decided_by", String(128), nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
    Column("updated_at", UTCDateTime(), nullable=False),
    # the applicant's own upload link (share-to-join) and the screenshot it received
    Column("token", String(32), unique=True),
    Column("screenshot", String(200), nullable=False, default=""),
    Index("ix_join_requests_group", "group_id", "status", "requested_at"),
    Index("ix_join_requests_member", "member_id", "status"),
    Index("ix_join_requests_status", "status", "requested_at"),
)

# Fission campaigns (F20/F21), written only by services/fission.py: a campaign over entry
# groups with task stages; participants with their own join code; each invite (the first
# inviter of a person only) pending until it is valid or taken back; rewards reserved from
# each stage's stock (``taken`` never passes ``stock``: one conditional UPDATE).
fission_campaigns = Table(
    "fission_campaigns",
    metadata,
    _id(),
    Column("name", String(128), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("account", String(64), nullable=False),  # the corp, the bot, the sandbox
    Column("group_ids", JSON, nullable=False),
    Column("completers_group_id", Id, ForeignKey("groups.id")),
    Column("valid_hours", Integer, nullable=False, default=0),
    Column("poster", JSON, nullable=False, default=dict),  # layout and background file
    # the loop's messages as the team wrote them (empty: the defaults), keyed by kind
    Column("texts", JSON, nullable=False, default=dict),
    # the stages' thresholds and rewards as written at creation (they never change), read
    # with the campaign by every credited join instead of a query of its own
    Column("plan", JSON, nullable=False, default=list),
    # newcomers through a code take part too (their own code and poster with the welcome)
    Column("enrol_newcomers", Boolean, nullable=False, default=True),
    Column("completers_tag", String(64), nullable=False, default=""),
    Column("completers_code_id", Id, ForeignKey("join_codes.id")),  # made on first need
    Column("status", String(16), nullable=False),  # active | paused | ended
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
)

fission_stages = Table(
    "fission_stages",
    metadata,
    Column("campaign_id", Id, ForeignKey("fission_campaigns.id"), primary_key=True,
           autoincrement=False),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("invites", Integer, nullable=False),
    Column("reward", String(64), nullable=False),
    Column("stock", Integer, nullable=False),
    Column("taken", Integer, nullable=False, default=0),
    Column("cost_cents", Integer, nullable=False, default=0),  # what one reward costs
    Column("kind", String(16), nullable=False, default="invites"),  # invites | share
)

fission_participants = Table(
    "fission_participants",
    metadata,
    _id(),
    Column("campaign_id", Id, ForeignKey("fission_campaigns.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("code", String(30), nullable=False),
    Column("link", Text, nullable=False, default=""),
    Column("join_code_id", Id, ForeignKey("join_codes.id")),
    # the unguessable part of the poster's public address (a platform fetches the picture)
    Column("token", String(32)),
    # how many of their invites are valid: counted up as each becomes valid (row-locked, so
    # each count is seen once) instead of counting the invites every time
    Column("valid_invites", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("campaign_id", "member_id", name="uq_fission_participants_member"),
    UniqueConstraint("token", name="uq_fission_participants_token"),
    UniqueConstraint("code", name="uq_fission_participants_code"),
)

fission_invites = Table(
    "fission_invites",
    metadata,
    _id(),
    Column("campaign_id", Id, ForeignKey("fission_campaigns.id"), nullable=False),
    Column("inviter_id", Id, ForeignKey("members.id"), nullable=False),
    Column("invitee_id", Id, ForeignKey("members.id"), nullable=False),
    Column("group_id", Id, ForeignKey("groups.id"), nullable=False),
    Column("joined_at", UTCDateTime(), nullable=False),
    Column("valid_at", UTCDateTime(), nullable=False),  # joined_at + the campaign's hours
    Column("status", String(16), nullable=False),  # pending | valid | revoked
    Column("reason", String(64), nullable=False, default=""),
    # the newcomer is still to be welcomed with their own code and poster (the worker)
    Column("welcome_due", Boolean, nullable=False, default=False),
    UniqueConstraint("campaign_id", "invitee_id", name="uq_fission_invites_invitee"),
    Index("ix_fission_invites_welcome", "welcome_due"),
    Index("ix_fission_invites_inviter", "campaign_id", "inviter_id", "status"),
    Index("ix_fission_invites_due", "status", "valid_at"),
    Index("ix_fission_invites_invitee", "invitee_id", "status"),  # a leave looks it up
)

fission_rewards = Table(
    "fission_rewards",
    metadata,
    _id(),
    Column("campaign_id", Id, ForeignKey("fission_campaigns.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("reward", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # reserved | shipped | cancelled | sold_out
    Column("tracking", String(64), nullable=False, default=""),  # the parcel's number
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime()),
    # the claim step: a private link (its token's SHA-256 kept, never the token) that takes
    # name, phone and address once; sent by the worker after the reward is reserved
    Column("claim_hash", String(64)),
    Column("claim_sent_at", UTCDateTime()),
    Column("claimed_at", UTCDateTime()),
    Column("claim", JSON, nullable=False, default=dict),
    UniqueConstraint("campaign_id", "member_id", "position", name="uq_fission_rewards_stage"),
    UniqueConstraint("claim_hash", name="uq_fission_rewards_claim"),
    Index("ix_fission_rewards_unsent", "status", "claim_sent_at"),
)

fission_shots = Table(  # a share stage's screenshots, each checked by a person
    "fission_shots",
    metadata,
    _id(),
    Column("campaign_id", Id, ForeignKey("fission_campaigns.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("position", Integer, nullable=False),  # the share stage
    Column("file", String(200), nullable=False),  # under <data dir>/posters/shots
    Column("status", String(16), nullable=False),  # pending | approved | declined
    Column("reason", String(200), nullable=False, default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("decided_at", UTCDateTime()),
    Column("decided_by", String(128), nullable=False, default=""),
    Index("ix_fission_shots_queue", "campaign_id", "status"),
    Index("ix_fission_shots_member", "campaign_id", "member_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    _id(),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False, default=""),
    Column("object_id", String(64), nullable=False, default=""),
    Column("detail", JSON, nullable=False, default=dict),
    Index("ix_audit_log_at", "at"),
)

