"""one open request per case; declines a caseworker lifted

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 23:00:00.000000

A partial unique index keeps a case to one pending or proposed request at a time: the use
case checks under the case's row lock first and answers with a problem naming the request,
so the index only backs that check. ``placements.decline_lifted_at`` records that a
caseworker lifted a shelter's decline, so that the shelter may be proposed for the request
again. Fails on a database that already holds two open requests for one case: cancel one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shelters.models

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status IN ('pending', 'proposed')")


def upgrade() -> None:
    op.add_column(
        "placements",
        sa.Column("decline_lifted_at", shelters.models.UTCDateTime(), nullable=True),
    )
    op.create_index(
        "uq_placement_requests_open_case",
        "placement_requests",
        ["case_id"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("uq_placement_requests_open_case", table_name="placement_requests")
    # Not in batch mode: rebuilding ``placements`` on SQLite would cascade to its beds.
    op.drop_column("placements", "decline_lifted_at")
