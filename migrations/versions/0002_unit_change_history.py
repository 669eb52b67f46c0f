"""unit change history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 17:28:10.749533
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shelters.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unit_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("changed_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=40), nullable=False),
        sa.Column("old_value", sa.JSON(), nullable=True),
        sa.Column("new_value", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["users.id"],
            name=op.f("fk_unit_changes_actor_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_unit_changes_unit_id_units"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_changes")),
    )
    with op.batch_alter_table("unit_changes", schema=None) as batch_op:
        batch_op.create_index("ix_unit_changes_unit_id_id", ["unit_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("unit_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_unit_changes_unit_id_id")

    op.drop_table("unit_changes")
