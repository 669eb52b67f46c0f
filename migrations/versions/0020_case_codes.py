"""cases.exploitation_types and cases.referral_source: coded fields for the HTCDS export

Revision ID: 0020_case_codes
Revises: 0019_escalation
Create Date: 2026-12-04 21:40:00.000000

Optional coded case fields (shelters/catalogue.py), never free text: the types of exploitation
a case was identified with and who referred it. Existing cases have none. Added in place on
both engines (a batch copy of ``cases`` would trip the foreign keys that point at it); the empty
list is the column's server default so that SQLite can add it NOT NULL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_case_codes"
down_revision: str | None = "0019_escalation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "cases",
        sa.Column("exploitation_types", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )
    op.add_column("cases", sa.Column("referral_source", sa.String(length=20), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE cases DROP COLUMN referral_source")
    op.execute("ALTER TABLE cases DROP COLUMN exploitation_types")
