"""units.confirmed_at: when a coordinator last said a unit's numbers are true

Revision ID: 0018_unit_freshness
Revises: 0017_notifications
Create Date: 2026-12-03 13:00:00.000000

Existing units take their ``updated_at`` (the last time a coordinator changed them), so a unit
nobody touched for days is stale from the first start, as it should be. PostgreSQL: added
nullable, filled, made NOT NULL. SQLite: added NOT NULL with a placeholder default and filled at
once, in place; a batch copy of ``units`` would trip the foreign keys that point at it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shelters.models

revision: str = "0018_unit_freshness"
down_revision: str | None = "0017_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE units ADD COLUMN confirmed_at DATETIME NOT NULL "
            "DEFAULT '1970-01-01 00:00:00.000000'"
        )
        op.execute("UPDATE units SET confirmed_at = updated_at")
        return
    op.add_column(
        "units",
        sa.Column("confirmed_at", shelters.models.UTCDateTime(timezone=True), nullable=True),
    )
    op.execute("UPDATE units SET confirmed_at = updated_at")
    op.alter_column(
        "units",
        "confirmed_at",
        existing_type=shelters.models.UTCDateTime(timezone=True),
        nullable=False,
    )


def downgrade() -> None:
    op.execute("ALTER TABLE units DROP COLUMN confirmed_at")
