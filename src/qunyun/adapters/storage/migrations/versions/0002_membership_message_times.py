"""membership first/last message times

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 09:50:00

Backfills both columns from messages sent while each membership was open.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import qunyun.adapters.storage.tables

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
UPDATE memberships SET
  first_message_at = (SELECT min(m.sent_at) FROM messages m
                      WHERE m.group_id = memberships.group_id
                        AND m.member_id = memberships.member_id AND m.direction = 'in'
                        AND m.sent_at >= memberships.joined_at
                        AND (memberships.left_at IS NULL OR m.sent_at <= memberships.left_at)),
  last_message_at = (SELECT max(m.sent_at) FROM messages m
                     WHERE m.group_id = memberships.group_id
                       AND m.member_id = memberships.member_id AND m.direction = 'in'
                       AND m.sent_at >= memberships.joined_at
                       AND (memberships.left_at IS NULL OR m.sent_at <= memberships.left_at))
"""


def upgrade() -> None:
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_message_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_message_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=True))
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_column('last_message_at')
        batch_op.drop_column('first_message_at')
