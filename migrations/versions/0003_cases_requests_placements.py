"""cases requests placements

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 17:39:42.719148
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shelters.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("required_services", sa.JSON(), nullable=False),
        sa.Column("desired_services", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("wheelchair", sa.Boolean(), nullable=False),
        sa.Column("high_risk", sa.Boolean(), nullable=False),
        sa.Column("excluded_regions", sa.JSON(), nullable=False),
        sa.Column("excluded_shelter_ids", sa.JSON(), nullable=False),
        sa.Column("current_region", sa.String(length=64), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("purged_at", shelters.models.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(lat IS NULL) = (lon IS NULL)", name=op.f("ck_cases_location_complete")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_cases_version_positive")),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_cases_created_by_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["current_region"],
            ["regions.code"],
            name=op.f("fk_cases_current_region_regions"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_cases_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("code", name=op.f("uq_cases_code")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cases_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.JSON(), nullable=True),
        sa.Column("created_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('running', 'done')", name=op.f("ck_idempotency_keys_state_known")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "case_separations",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("other_case_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_separations_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "other_case_id", name=op.f("pk_case_separations")),
    )
    with op.batch_alter_table("case_separations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_separations_other_case_id"), ["other_case_id"], unique=False
        )

    op.create_table(
        "placement_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("preferred_regions", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("region_code", sa.String(length=64), nullable=True),
        sa.Column("people_adult", sa.Integer(), nullable=False),
        sa.Column("people_accompanied_child", sa.Integer(), nullable=False),
        sa.Column("people_unaccompanied_minor", sa.Integer(), nullable=False),
        sa.Column("people_female", sa.Integer(), nullable=False),
        sa.Column("people_male", sa.Integer(), nullable=False),
        sa.Column("people_other", sa.Integer(), nullable=False),
        sa.Column("created_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", shelters.models.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'proposed', 'placed', 'cancelled')",
            name=op.f("ck_placement_requests_status_known"),
        ),
        sa.CheckConstraint(
            "people_adult >= 0 AND people_accompanied_child >= 0 AND people_unaccompanied_minor >= 0 AND people_female >= 0 AND people_male >= 0 AND people_other >= 0",
            name=op.f("ck_placement_requests_people_non_negative"),
        ),
        sa.CheckConstraint(
            "priority BETWEEN 1 AND 5", name=op.f("ck_placement_requests_priority_range")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_placement_requests_case_id_cases"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_placement_requests_created_by_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_placement_requests_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["region_code"],
            ["regions.code"],
            name=op.f("fk_placement_requests_region_code_regions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placement_requests")),
    )
    with op.batch_alter_table("placement_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_placement_requests_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_placement_requests_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_placement_requests_status"), ["status"], unique=False)

    op.create_table(
        "placements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("shelter_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("expires_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("proposed_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", shelters.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("admitted_at", shelters.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", shelters.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decline_reason", sa.String(length=20), nullable=True),
        sa.Column("matching_run_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "decline_reason IS NULL OR decline_reason IN ('no_capacity', 'not_eligible', 'safety_concern', 'staffing', 'other')",
            name=op.f("ck_placements_decline_reason_known"),
        ),
        sa.CheckConstraint(
            "status IN ('proposed', 'accepted', 'admitted', 'discharged', 'declined', 'expired', 'cancelled')",
            name=op.f("ck_placements_status_known"),
        ),
        sa.CheckConstraint("people >= 1", name=op.f("ck_placements_people_positive")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_placements_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["placement_requests.id"],
            name=op.f("fk_placements_request_id_placement_requests"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["shelter_id"],
            ["shelters.id"],
            name=op.f("fk_placements_shelter_id_shelters"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placements")),
    )
    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_placements_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_placements_request_id"), ["request_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_placements_shelter_id"), ["shelter_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_placements_status"), ["status"], unique=False)

    op.create_table(
        "placement_beds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("placement_id", sa.Integer(), nullable=False),
        sa.Column("member_ref", sa.String(length=16), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["placements.id"],
            name=op.f("fk_placement_beds_placement_id_placements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_placement_beds_unit_id_units"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placement_beds")),
        sa.UniqueConstraint("placement_id", "member_ref", name="uq_placement_beds_member"),
    )
    with op.batch_alter_table("placement_beds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_placement_beds_placement_id"), ["placement_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_placement_beds_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "placement_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("placement_id", sa.Integer(), nullable=False),
        sa.Column("at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["users.id"],
            name=op.f("fk_placement_transitions_actor_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["placements.id"],
            name=op.f("fk_placement_transitions_placement_id_placements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placement_transitions")),
    )
    with op.batch_alter_table("placement_transitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_placement_transitions_placement_id"), ["placement_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("placement_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_placement_transitions_placement_id"))

    op.drop_table("placement_transitions")
    with op.batch_alter_table("placement_beds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_placement_beds_unit_id"))
        batch_op.drop_index(batch_op.f("ix_placement_beds_placement_id"))

    op.drop_table("placement_beds")
    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_placements_status"))
        batch_op.drop_index(batch_op.f("ix_placements_shelter_id"))
        batch_op.drop_index(batch_op.f("ix_placements_request_id"))
        batch_op.drop_index(batch_op.f("ix_placements_organization_id"))

    op.drop_table("placements")
    with op.batch_alter_table("placement_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_placement_requests_status"))
        batch_op.drop_index(batch_op.f("ix_placement_requests_organization_id"))
        batch_op.drop_index(batch_op.f("ix_placement_requests_case_id"))

    op.drop_table("placement_requests")
    with op.batch_alter_table("case_separations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_separations_other_case_id"))

    op.drop_table("case_separations")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_created_at"))

    op.drop_table("idempotency_keys")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_organization_id"))

    op.drop_table("cases")
