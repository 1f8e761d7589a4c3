"""one raw inbox for every platform

WeCom's callback inbox (``wecom_callbacks``) becomes ``raw_inbox`` with the platform and
account (the corp, a bot) as columns, so Telegram's webhook updates take the same durable
path: stored before answering, processed by the worker. Rows are copied over as they are.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 19:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import UTCDateTime

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'raw_inbox',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('platform', sa.String(length=32), nullable=False),
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('received_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('processed_at', UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_raw_inbox')),
        sa.UniqueConstraint('platform', 'account', 'digest', name='uq_raw_inbox_digest'),
    )
    with op.batch_alter_table('raw_inbox', schema=None) as batch_op:
        batch_op.create_index('ix_raw_inbox_status', ['platform', 'status', 'id'], unique=False)
    op.execute(
        "INSERT INTO raw_inbox (platform, account, digest, body, received_at, status, "
        "attempts, error, processed_at) SELECT 'wecom', corp_id, digest, xml, received_at, "
        "status, attempts, error, processed_at FROM wecom_callbacks ORDER BY id")
    with op.batch_alter_table('wecom_callbacks', schema=None) as batch_op:
        batch_op.drop_index('ix_wecom_callbacks_status')
    op.drop_table('wecom_callbacks')


def downgrade() -> None:
    op.create_table(
        'wecom_callbacks',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('corp_id', sa.String(length=64), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('xml', sa.Text(), nullable=False),
        sa.Column('received_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('processed_at', UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_wecom_callbacks')),
        sa.UniqueConstraint('corp_id', 'digest', name='uq_wecom_callbacks_digest'),
    )
    with op.batch_alter_table('wecom_callbacks', schema=None) as batch_op:
        batch_op.create_index('ix_wecom_callbacks_status', ['status', 'id'], unique=False)
    op.execute(
        "INSERT INTO wecom_callbacks (corp_id, digest, xml, received_at, status, attempts, "
        "error, processed_at) SELECT account, digest, body, received_at, status, attempts, "
        "error, processed_at FROM raw_inbox WHERE platform = 'wecom' ORDER BY id")
    with op.batch_alter_table('raw_inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_raw_inbox_status')
    op.drop_table('raw_inbox')
