"""A playbook that runs in a group when the group enters a lifecycle state ("when a group
turns cooling, run the revival SOP")

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 15:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0026'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('playbooks') as batch:
        batch.add_column(sa.Column('on_state', sa.String(16), nullable=False,
                                   server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('playbooks') as batch:
        batch.drop_column('on_state')
