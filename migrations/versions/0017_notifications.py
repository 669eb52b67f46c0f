"""inbox entries and the webhook outbox

Revision ID: 0017_notifications
Revises: 0016_user_locale
Create Date: 2026-12-03 12:32:00.000000

``inbox_entries``: what each user should know (an event and the ids it is about).
``webhook_endpoints``: where integrations want events, each with its signing secret.
``webhook_deliveries``: the outbox, one row per event and endpoint, written in the event's own
transaction and delivered afterwards with retries (service/webhooks.py). New tables only.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shelters.models

revision: str = "0017_notifications"
down_revision: str | None = "0016_user_locale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_webhook_endpoints_created_by_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", shelters.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_webhook_deliveries_status_known"),
        ),
        sa.CheckConstraint(
            "attempts >= 0", name=op.f("ck_webhook_deliveries_attempts_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("message_id", name=op.f("uq_webhook_deliveries_message_id")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_due", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_endpoint_id"), ["endpoint_id"], unique=False
        )

    op.create_table(
        "inbox_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("placement_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("shelter_id", sa.Integer(), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("created_at", shelters.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", shelters.models.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "event IN ('placement.proposed', 'placement.accepted', 'placement.declined', 'placement.admitted', 'placement.discharged', 'placement.expired', 'placement.cancelled', 'placement.expiring', 'member.coming_of_age', 'unit.stale')",
            name=op.f("ck_inbox_entries_event_known"),
        ),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["placements.id"],
            name=op.f("fk_inbox_entries_placement_id_placements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_inbox_entries_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_entries")),
    )
    with op.batch_alter_table("inbox_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbox_entries_placement_id"), ["placement_id"], unique=False
        )
        batch_op.create_index("ix_inbox_entries_user_unread", ["user_id", "read_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inbox_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_entries_user_unread")
        batch_op.drop_index(batch_op.f("ix_inbox_entries_placement_id"))

    op.drop_table("inbox_entries")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_endpoint_id"))
        batch_op.drop_index("ix_webhook_deliveries_due")

    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
