"""scenarios and scenario_runs: what-if capacity scenarios over stored matching runs

Revision ID: 0021_scenarios
Revises: 0020_case_codes
Create Date: 2026-12-05 10:00:00.000000

A scenario re-solves the stored problems of a period's matching runs with changes applied
(units added or removed, grants changed) and keeps aggregate answers only (shelters/scenarios.py).
Each re-solved run keeps its solution document and the changed problem's digest so that it
replays byte for byte. Claimed, beaten and recovered like batch runs (service/jobs.py). Nothing
here points from a real placement, hold or run outcome to a scenario.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shelters.models

revision: str = "0021_scenarios"
down_revision: str | None = "0020_case_codes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    utc = shelters.models.UTCDateTime(timezone=True)
    op.create_table(
        "scenarios",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("runs_total", sa.Integer(), nullable=False),
        sa.Column("runs_done", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("started_by", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("started_at", utc, nullable=True),
        sa.Column("finished_at", utc, nullable=True),
        sa.Column("solver_version", sa.String(length=100), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("worker_id", sa.String(length=32), nullable=True),
        sa.Column("heartbeat_at", utc, nullable=True),
        sa.Column("claims", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')",
            name=op.f("ck_scenarios_status_known"),
        ),
        sa.CheckConstraint(
            "kind IN ('what_if', 'bed_budget')", name=op.f("ck_scenarios_kind_known")
        ),
        sa.CheckConstraint("claims >= 0", name=op.f("ck_scenarios_claims_not_negative")),
        sa.CheckConstraint(
            "runs_done >= 0 AND runs_done <= runs_total",
            name=op.f("ck_scenarios_progress_in_range"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_scenarios_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["started_by"],
            ["users.id"],
            name=op.f("fk_scenarios_started_by_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenarios")),
    )
    op.create_index(
        op.f("ix_scenarios_organization_id"), "scenarios", ["organization_id"], unique=False
    )
    op.create_index(op.f("ix_scenarios_status"), "scenarios", ["status"], unique=False)
    op.create_table(
        "scenario_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scenario_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("base_run_id", sa.Integer(), nullable=False),
        sa.Column("problem_digest", sa.String(length=64), nullable=False),
        sa.Column("solution", sa.JSON(), nullable=False),
        sa.Column("before_replays", sa.Boolean(), nullable=False),
        sa.Column("placed_before", sa.Integer(), nullable=False),
        sa.Column("placed_after", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["base_run_id"],
            ["matching_runs.id"],
            name=op.f("fk_scenario_runs_base_run_id_matching_runs"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["scenario_id"],
            ["scenarios.id"],
            name=op.f("fk_scenario_runs_scenario_id_scenarios"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenario_runs")),
        sa.UniqueConstraint("scenario_id", "base_run_id", name="uq_scenario_runs_base_run"),
        sa.UniqueConstraint("scenario_id", "position", name="uq_scenario_runs_position"),
    )
    op.create_index(
        op.f("ix_scenario_runs_scenario_id"), "scenario_runs", ["scenario_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_scenario_runs_scenario_id"), table_name="scenario_runs")
    op.drop_table("scenario_runs")
    op.drop_index(op.f("ix_scenarios_status"), table_name="scenarios")
    op.drop_index(op.f("ix_scenarios_organization_id"), table_name="scenarios")
    op.drop_table("scenarios")
