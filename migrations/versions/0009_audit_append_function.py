"""audit append in one round trip under the chain lock (PostgreSQL)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 01:55:00.000000

An append took the chain's advisory lock, read the head and inserted the entry: three round
trips while every other writer waits for the lock. A PL/pgSQL function does all three in one
call. Being VOLATILE, its statements each take a fresh snapshot under READ COMMITTED, so the
head it reads after the lock is granted includes the entry of the writer that held the lock
before (one SQL statement would read a snapshot taken before the lock). The caller passes the
entry's canonical content split around the previous hash and the sequence number (the only
parts it cannot know before the lock); the function completes it and hashes it with SHA-256,
as ``shelters.audit.entry_hash`` does, which ``verify`` recomputes. SQLite needs no lock: its
write transaction excludes other writers.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_FUNCTION = """
CREATE FUNCTION refuge_audit_append(
    lock_class integer,
    lock_object integer,
    content_before text,
    content_after text,
    entry_at timestamptz,
    entry_actor_user_id integer,
    entry_actor_role varchar,
    entry_action varchar,
    entry_resource_type varchar,
    entry_resource_id varchar,
    entry_outcome varchar,
    entry_request_id varchar
)
RETURNS TABLE (new_seq integer, new_prev_hash varchar, new_hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    last_seq integer;
    last_hash varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_class, lock_object);
    SELECT e.seq, e.hash INTO last_seq, last_hash
        FROM audit_events AS e ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        last_seq := 0;
        last_hash := repeat('0', 64);
    END IF;
    new_seq := last_seq + 1;
    new_prev_hash := last_hash;
    new_hash := encode(
        sha256(convert_to(
            content_before || last_hash || content_after || new_seq::text || '}', 'UTF8'
        )),
        'hex'
    );
    INSERT INTO audit_events (
        seq, at, actor_user_id, actor_role, action, resource_type, resource_id, outcome,
        request_id, prev_hash, hash
    ) VALUES (
        new_seq, entry_at, entry_actor_user_id, entry_actor_role, entry_action,
        entry_resource_type, entry_resource_id, entry_outcome, entry_request_id, last_hash,
        new_hash
    );
    RETURN NEXT;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION refuge_audit_append(integer, integer, text, text, timestamptz, "
            "integer, varchar, varchar, varchar, varchar, varchar, varchar)"
        )
