"""Fission campaigns, stages, participants, invites and rewards

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 06:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import UTCDateTime

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'fission_campaigns',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('platform', sa.String(length=32), nullable=False),
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('group_ids', sa.JSON(), nullable=False),
        sa.Column('completers_group_id', ID, nullable=True),
        sa.Column('valid_hours', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_by', sa.String(length=128), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['completers_group_id'], ['groups.id'],
                                name=op.f('fk_fission_campaigns_completers_group_id_groups')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_fission_campaigns')),
    )
    op.create_table(
        'fission_stages',
        sa.Column('campaign_id', ID, autoincrement=False, nullable=False),
        sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('invites', sa.Integer(), nullable=False),
        sa.Column('reward', sa.String(length=64), nullable=False),
        sa.Column('stock', sa.Integer(), nullable=False),
        sa.Column('taken', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['fission_campaigns.id'],
                                name=op.f('fk_fission_stages_campaign_id_fission_campaigns')),
        sa.PrimaryKeyConstraint('campaign_id', 'position', name=op.f('pk_fission_stages')),
    )
    op.create_table(
        'fission_participants',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('campaign_id', ID, nullable=False),
        sa.Column('member_id', ID, nullable=False),
        sa.Column('code', sa.String(length=30), nullable=False),
        sa.Column('link', sa.Text(), nullable=False),
        sa.Column('join_code_id', ID, nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['campaign_id'], ['fission_campaigns.id'],
            name=op.f('fk_fission_participants_campaign_id_fission_campaigns')),
        sa.ForeignKeyConstraint(['join_code_id'], ['join_codes.id'],
                                name=op.f('fk_fission_participants_join_code_id_join_codes')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'],
                                name=op.f('fk_fission_participants_member_id_members')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_fission_participants')),
        sa.UniqueConstraint('campaign_id', 'member_id', name='uq_fission_participants_member'),
        sa.UniqueConstraint('code', name='uq_fission_participants_code'),
    )
    op.create_table(
        'fission_invites',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('campaign_id', ID, nullable=False),
        sa.Column('inviter_id', ID, nullable=False),
        sa.Column('invitee_id', ID, nullable=False),
        sa.Column('group_id', ID, nullable=False),
        sa.Column('joined_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('valid_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['fission_campaigns.id'],
                                name=op.f('fk_fission_invites_campaign_id_fission_campaigns')),
        sa.ForeignKeyConstraint(['group_id'], ['groups.id'],
                                name=op.f('fk_fission_invites_group_id_groups')),
        sa.ForeignKeyConstraint(['invitee_id'], ['members.id'],
                                name=op.f('fk_fission_invites_invitee_id_members')),
        sa.ForeignKeyConstraint(['inviter_id'], ['members.id'],
                                name=op.f('fk_fission_invites_inviter_id_members')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_fission_invites')),
        sa.UniqueConstraint('campaign_id', 'invitee_id', name='uq_fission_invites_invitee'),
    )
    with op.batch_alter_table('fission_invites', schema=None) as batch_op:
        batch_op.create_index('ix_fission_invites_due', ['status', 'valid_at'], unique=False)
        batch_op.create_index('ix_fission_invites_inviter',
                              ['campaign_id', 'inviter_id', 'status'], unique=False)
        batch_op.create_index('ix_fission_invites_invitee', ['invitee_id', 'status'],
                              unique=False)
    op.create_table(
        'fission_rewards',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('campaign_id', ID, nullable=False),
        sa.Column('member_id', ID, nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('reward', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['fission_campaigns.id'],
                                name=op.f('fk_fission_rewards_campaign_id_fission_campaigns')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'],
                                name=op.f('fk_fission_rewards_member_id_members')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_fission_rewards')),
        sa.UniqueConstraint('campaign_id', 'member_id', 'position',
                            name='uq_fission_rewards_stage'),
    )


def downgrade() -> None:
    op.drop_table('fission_rewards')
    with op.batch_alter_table('fission_invites', schema=None) as batch_op:
        batch_op.drop_index('ix_fission_invites_invitee')
        batch_op.drop_index('ix_fission_invites_inviter')
        batch_op.drop_index('ix_fission_invites_due')
    op.drop_table('fission_invites')
    op.drop_table('fission_participants')
    op.drop_table('fission_stages')
    op.drop_table('fission_campaigns')
