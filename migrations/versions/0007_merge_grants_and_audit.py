"""merge grants and audit

Revision ID: 0007
Revises: 0005_grants, 0006_audit
Create Date: 2026-11-28 18:13:24.131291
"""

from collections.abc import Sequence

revision: str = "0007"
down_revision: str | tuple[str, ...] | None = ("0005_grants", "0006_audit")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
