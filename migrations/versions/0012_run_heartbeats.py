"""matching runs: which process holds a run, its heartbeat, and how often it was claimed

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 23:00:00.000000

A batch run is claimed by one process (``worker_id``, a random token of that process), which
beats ``heartbeat_at`` every few seconds while it holds the run. A running run whose heartbeat
is older than the timeout belonged to a process that died: another process requeues it, or
fails it once it has been claimed ``claims`` times (``service/jobs.py``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shelters.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("matching_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker_id", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("heartbeat_at", shelters.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("claims", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_matching_runs_claims_not_negative"), "claims >= 0"
        )


def downgrade() -> None:
    with op.batch_alter_table("matching_runs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_matching_runs_claims_not_negative"), type_="check")
        batch_op.drop_column("claims")
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("worker_id")
