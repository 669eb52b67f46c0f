"""grants

Revision ID: 0005_grants
Revises: 0004
Create Date: 2026-11-28 17:57:24.324917
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shelters.models

revision: str = "0005_grants"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("funder_organization_id", sa.Integer(), nullable=False),
        sa.Column("shelter_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("funded_beds", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint('"end" >= start', name=op.f("ck_grants_period_ordered")),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_grants_amount_non_negative")),
        sa.CheckConstraint("funded_beds >= 0", name=op.f("ck_grants_funded_beds_non_negative")),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_grants_created_by_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["funder_organization_id"],
            ["organizations.id"],
            name=op.f("fk_grants_funder_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["shelter_id"],
            ["shelters.id"],
            name=op.f("fk_grants_shelter_id_shelters"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grants")),
    )
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_grants_funder_organization_id"), ["funder_organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_grants_shelter_id"), ["shelter_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grants_shelter_id"))
        batch_op.drop_index(batch_op.f("ix_grants_funder_organization_id"))

    op.drop_table("grants")
