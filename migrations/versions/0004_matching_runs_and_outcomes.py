"""matching runs and outcomes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 17:51:23.011048
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shelters.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "matching_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("started_by", sa.Integer(), nullable=False),
        sa.Column("created_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", shelters.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", shelters.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("solver_version", sa.String(length=100), nullable=True),
        sa.Column("problem_digest", sa.String(length=64), nullable=True),
        sa.Column("problem", sa.JSON(), nullable=True),
        sa.Column("solution", sa.JSON(), nullable=True),
        sa.Column("wall_s", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("requests_count", sa.Integer(), nullable=False),
        sa.Column("placed_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.CheckConstraint("kind IN ('batch', 'single')", name=op.f("ck_matching_runs_kind_known")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')",
            name=op.f("ck_matching_runs_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["started_by"],
            ["users.id"],
            name=op.f("fk_matching_runs_started_by_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matching_runs")),
    )
    with op.batch_alter_table("matching_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_matching_runs_status"), ["status"], unique=False)

    op.create_table(
        "run_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("placed", sa.Boolean(), nullable=False),
        sa.Column("placement_id", sa.Integer(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("reason_codes", sa.JSON(), nullable=False),
        sa.Column("recorded_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_run_outcomes_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["placements.id"],
            name=op.f("fk_run_outcomes_placement_id_placements"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["placement_requests.id"],
            name=op.f("fk_run_outcomes_request_id_placement_requests"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["matching_runs.id"],
            name=op.f("fk_run_outcomes_run_id_matching_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_outcomes")),
    )
    with op.batch_alter_table("run_outcomes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_run_outcomes_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_run_outcomes_recorded_at"), ["recorded_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_run_outcomes_request_id"), ["request_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_run_outcomes_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("run_outcomes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_outcomes_run_id"))
        batch_op.drop_index(batch_op.f("ix_run_outcomes_request_id"))
        batch_op.drop_index(batch_op.f("ix_run_outcomes_recorded_at"))
        batch_op.drop_index(batch_op.f("ix_run_outcomes_organization_id"))

    op.drop_table("run_outcomes")
    with op.batch_alter_table("matching_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matching_runs_status"))

    op.drop_table("matching_runs")
