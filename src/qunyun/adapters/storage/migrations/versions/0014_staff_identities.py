"""identities remember when the platform said the person is staff

A platform marks the team's own people (WeCom's corp users, a sandbox ``*_staff`` flag);
storing it on the identity lets member lists show staff as staff instead of as customers.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 23:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('staff', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_column('staff')
