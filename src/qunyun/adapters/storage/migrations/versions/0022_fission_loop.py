"""The fission loop's follow-ups: message texts, newcomers enrolled, the completers' code and
tag, reward costs, public poster tokens, and the reward claim step; the stage plan on the
campaign and a valid-invite counter per participant, so a credited join reads less

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 08:30:00
"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import Id, UTCDateTime

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('fission_campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('texts', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('plan', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('enrol_newcomers', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.add_column(sa.Column('completers_tag', sa.String(length=64), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('completers_code_id', Id, nullable=True))
        batch_op.create_foreign_key('fk_fission_campaigns_completers_code_id_join_codes',
                                    'join_codes', ['completers_code_id'], ['id'])
    with op.batch_alter_table('fission_stages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cost_cents', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                      server_default='invites'))
    with op.batch_alter_table('fission_participants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('valid_invites', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.create_unique_constraint('uq_fission_participants_token', ['token'])
    with op.batch_alter_table('fission_invites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('welcome_due', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.create_index('ix_fission_invites_welcome', ['welcome_due'], unique=False)
    with op.batch_alter_table('fission_rewards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('claim_sent_at', UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('claimed_at', UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('claim', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.create_unique_constraint('uq_fission_rewards_claim', ['claim_hash'])
        batch_op.create_index('ix_fission_rewards_unsent', ['status', 'claim_sent_at'],
                              unique=False)
    op.create_table(
        'fission_shots',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('campaign_id', Id, nullable=False),
        sa.Column('member_id', Id, nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('file', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('decided_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('decided_by', sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['fission_campaigns.id'],
                                name='fk_fission_shots_campaign_id_fission_campaigns'),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'],
                                name='fk_fission_shots_member_id_members'),
        sa.PrimaryKeyConstraint('id', name='pk_fission_shots'))
    op.create_index('ix_fission_shots_queue', 'fission_shots', ['campaign_id', 'status'])
    op.create_index('ix_fission_shots_member', 'fission_shots', ['campaign_id', 'member_id'])
    # campaigns made before: their plan from their stages, their participants' counts
    bind = op.get_bind()
    plans: dict[int, list[dict[str, object]]] = {}
    for campaign_id, position, invites, reward in bind.execute(sa.text(
            "SELECT campaign_id, position, invites, reward FROM fission_stages "  # all invites
            "ORDER BY campaign_id, position")):
        plans.setdefault(int(campaign_id), []).append(
            {"position": int(position), "invites": int(invites), "reward": str(reward),
             "kind": "invites"})
    for campaign_id, plan in plans.items():
        bind.execute(sa.text("UPDATE fission_campaigns SET plan = :plan WHERE id = :id"),
                     {"plan": json.dumps(plan, ensure_ascii=False), "id": campaign_id})
    bind.execute(sa.text(
        "UPDATE fission_participants SET valid_invites = (SELECT count(*) FROM fission_invites "
        "i WHERE i.campaign_id = fission_participants.campaign_id AND i.inviter_id = "
        "fission_participants.member_id AND i.status = 'valid')"))


def downgrade() -> None:
    op.drop_index('ix_fission_shots_member', table_name='fission_shots')
    op.drop_index('ix_fission_shots_queue', table_name='fission_shots')
    op.drop_table('fission_shots')
    with op.batch_alter_table('fission_rewards', schema=None) as batch_op:
        batch_op.drop_index('ix_fission_rewards_unsent')
        batch_op.drop_constraint('uq_fission_rewards_claim', type_='unique')
        for column in ('claim', 'claimed_at', 'claim_sent_at', 'claim_hash'):
            batch_op.drop_column(column)
    with op.batch_alter_table('fission_invites', schema=None) as batch_op:
        batch_op.drop_index('ix_fission_invites_welcome')
        batch_op.drop_column('welcome_due')
    with op.batch_alter_table('fission_participants', schema=None) as batch_op:
        batch_op.drop_constraint('uq_fission_participants_token', type_='unique')
        batch_op.drop_column('valid_invites')
        batch_op.drop_column('token')
    with op.batch_alter_table('fission_stages', schema=None) as batch_op:
        batch_op.drop_column('kind')
        batch_op.drop_column('cost_cents')
    with op.batch_alter_table('fission_campaigns', schema=None) as batch_op:
        batch_op.drop_constraint('fk_fission_campaigns_completers_code_id_join_codes',
                                 type_='foreignkey')
        for column in ('completers_code_id', 'completers_tag', 'enrol_newcomers', 'plan',
                       'texts'):
            batch_op.drop_column(column)
