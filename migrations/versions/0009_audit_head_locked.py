"""audit head under the chain lock in one round trip (PostgreSQL)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 01:55:00.000000

An append took the chain's advisory lock and then read the head, two round trips while every
other writer waits for the lock. A PL/pgSQL function does both in one call; being VOLATILE,
its second statement takes a fresh snapshot under READ COMMITTED, so it sees the entry of the
writer that held the lock before (one statement with both would read a snapshot taken before
the lock was granted). SQLite needs no lock: its write transaction excludes other writers.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_FUNCTION = """
CREATE FUNCTION refuge_audit_head_locked(lock_class integer, lock_object integer)
RETURNS TABLE (seq integer, hash varchar) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_class, lock_object);
    RETURN QUERY
        SELECT e.seq, e.hash FROM audit_events AS e ORDER BY e.seq DESC LIMIT 1;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION refuge_audit_head_locked(integer, integer)")
