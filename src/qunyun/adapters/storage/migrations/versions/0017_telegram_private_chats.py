"""Which team bot may write to a person privately

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 05:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import UTCDateTime

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'telegram_private_chats',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('bot_id', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('last_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_telegram_private_chats')),
        sa.UniqueConstraint('bot_id', 'user_id', name='uq_telegram_private_chats_bot_user'),
    )
    with op.batch_alter_table('telegram_private_chats', schema=None) as batch_op:
        batch_op.create_index('ix_telegram_private_chats_user', ['user_id', 'status'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('telegram_private_chats', schema=None) as batch_op:
        batch_op.drop_index('ix_telegram_private_chats_user')
    op.drop_table('telegram_private_chats')
