"""Telegram bots and the chats they are in

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 00:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import UTCDateTime

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'telegram_bots',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('bot_id', sa.String(length=32), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('token', sa.Text(), nullable=False),
        sa.Column('secret', sa.Text(), nullable=False),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.Column('webhook_url', sa.Text(), nullable=False),
        sa.Column('poll_offset', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.JSON(), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_telegram_bots')),
        sa.UniqueConstraint('bot_id', name=op.f('uq_telegram_bots_bot_id')),
    )
    op.create_table(
        'telegram_chats',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('bot_id', sa.String(length=32), nullable=False),
        sa.Column('chat_id', sa.String(length=64), nullable=False),
        sa.Column('title', sa.String(length=255), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('rights', sa.JSON(), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_telegram_chats')),
        sa.UniqueConstraint('bot_id', 'chat_id', name='uq_telegram_chats_bot_chat'),
    )
    with op.batch_alter_table('telegram_chats', schema=None) as batch_op:
        batch_op.create_index('ix_telegram_chats_chat', ['chat_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('telegram_chats', schema=None) as batch_op:
        batch_op.drop_index('ix_telegram_chats_chat')
    op.drop_table('telegram_chats')
    op.drop_table('telegram_bots')
