"""names of regions and shelters per language

Revision ID: 0015_localized_names
Revises: 0014
Create Date: 2026-12-03 06:00:00.000000

``regions.names`` and ``shelters.names``: a JSON map from a language code (``kk``, ``ru``,
``en``) to the name in that language; ``name`` stays the fallback. Existing rows get ``{}``
(no names yet). One JSON column rather than a column per language: the API reads and writes
the same map, a PATCH replaces it whole, and both columns are added with a plain
``ADD COLUMN``; a column per language could carry CHECK constraints, but adding those on
SQLite means rebuilding ``shelters`` in batch mode, whose ``DROP TABLE`` would cascade to its
units (see 0013). The keys and values are checked where every writer passes,
``shelters.names.check_names``.

The revision before is ``0014`` (the id in ``0014_grouped_solver_reasons.py``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_localized_names"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("regions", "shelters")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table,
            sa.Column("names", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
        )


def downgrade() -> None:
    # Not in batch mode: rebuilding ``shelters`` on SQLite would cascade to its units.
    for table in TABLES:
        op.drop_column(table, "names")
