"""automation operators can leave on

Stale replies expire in the outbox (``outbox.expires_at``) and the actions not taken for a
late event are counted (``inbound_events.stale_actions``); moderation decisions keep the
classifier's signals (ad rate, member events); a blacklist entry names the decision that
made it (overturning the decision lifts it); group health alerts are raised once each.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import Id, UTCDateTime

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stale_actions', sa.Integer(), nullable=False,
                                      server_default='0'))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', UTCDateTime(), nullable=True))
    with op.batch_alter_table('moderation_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signals', sa.JSON(), nullable=False,
                                      server_default='[]'))
    with op.batch_alter_table('blacklist', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decision_id', Id, nullable=True))
        batch_op.create_foreign_key('fk_blacklist_decision_id_moderation_decisions',
                                    'moderation_decisions', ['decision_id'], ['id'])
    op.create_table(
        'health_alerts',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('group_id', Id, nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.Column('raised_at', UTCDateTime(), nullable=False),
        sa.Column('task_id', Id, nullable=True),
        sa.ForeignKeyConstraint(['group_id'], ['groups.id'],
                                name='fk_health_alerts_group_id_groups'),
        sa.ForeignKeyConstraint(['task_id'], ['staff_tasks.id'],
                                name='fk_health_alerts_task_id_staff_tasks'),
        sa.PrimaryKeyConstraint('id', name='pk_health_alerts'),
        sa.UniqueConstraint('key', name='uq_health_alerts_key'),
    )
    with op.batch_alter_table('health_alerts', schema=None) as batch_op:
        batch_op.create_index('ix_health_alerts_group', ['group_id', 'raised_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('health_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_health_alerts_group')
    op.drop_table('health_alerts')
    with op.batch_alter_table('blacklist', schema=None) as batch_op:
        batch_op.drop_constraint('fk_blacklist_decision_id_moderation_decisions',
                                 type_='foreignkey')
        batch_op.drop_column('decision_id')
    with op.batch_alter_table('moderation_decisions', schema=None) as batch_op:
        batch_op.drop_column('signals')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.drop_column('stale_actions')
