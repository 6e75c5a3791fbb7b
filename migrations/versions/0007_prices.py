"""prices fetched from the providers' price APIs, with each price's source and date

``prices`` keeps the last good refresh per provider; ``price_refreshes`` says
how refreshing went (failures are counted, the old prices stay). Offers and
nodes say where their price came from and as of when.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 11:32:35.907418
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('price_refreshes',
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(), nullable=True),
    sa.Column('attempted_at', sa.DateTime(), nullable=True),
    sa.Column('prices', sa.Integer(), server_default='0', nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('provider', name=op.f('pk_price_refreshes'))
    )
    op.create_table('prices',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('region', sa.String(length=128), nullable=False),
    sa.Column('size', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('price', sa.Float(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('fetched_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prices')),
    sa.UniqueConstraint('provider', 'size', 'region', 'kind', name=op.f('uq_prices_provider_size_region_kind'))
    )
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price_source', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('price_as_of', sa.DateTime(), nullable=True))

    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price_source', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('price_as_of', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('spot_price_per_hour', sa.Float(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.drop_column('spot_price_per_hour')
        batch_op.drop_column('price_as_of')
        batch_op.drop_column('price_source')

    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.drop_column('price_as_of')
        batch_op.drop_column('price_source')

    op.drop_table('prices')
    op.drop_table('price_refreshes')
