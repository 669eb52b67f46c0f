"""placement_requests.escalated_at, and the inbox event request.escalated

Revision ID: 0019_escalation
Revises: 0018_unit_freshness
Create Date: 2026-12-04 21:10:00.000000

A request left pending past ``REFUGE_ESCALATE_AFTER_HOURS`` for its priority is escalated once:
the moment is kept on the request, and its organisation's caseworkers and the admins get an
inbox entry. Existing requests start unescalated; the next sweep escalates those already
overdue. The inbox's event check gains the new event (SQLite: a batch copy of
``inbox_entries``, which no other table points at).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shelters.models

revision: str = "0019_escalation"
down_revision: str | None = "0018_unit_freshness"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "placement.proposed",
    "placement.accepted",
    "placement.declined",
    "placement.admitted",
    "placement.discharged",
    "placement.expired",
    "placement.cancelled",
    "placement.expiring",
    "member.coming_of_age",
    "unit.stale",
)
AFTER = (*BEFORE, "request.escalated")


def _known(events: tuple[str, ...]) -> str:
    return "event IN ({})".format(", ".join(f"'{e}'" for e in events))


def _check(events: tuple[str, ...]) -> None:
    with op.batch_alter_table("inbox_entries", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_inbox_entries_event_known"), type_="check")
        batch_op.create_check_constraint("event_known", _known(events))


def upgrade() -> None:
    op.add_column(
        "placement_requests",
        sa.Column("escalated_at", shelters.models.UTCDateTime(timezone=True), nullable=True),
    )
    _check(AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM inbox_entries WHERE event = 'request.escalated'")
    _check(BEFORE)
    # In place on both engines: a batch copy of placement_requests would trip the foreign keys
    # that point at it.
    op.execute("ALTER TABLE placement_requests DROP COLUMN escalated_at")
