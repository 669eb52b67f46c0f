"""notify when a user's role, state or shelters change (PostgreSQL)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 04:00:00.000000

Every API process keeps the principals of recent callers (``service/principals.py``) for as
long as nothing about them changes. These triggers say when something does: any change to a
row of ``users`` or ``user_shelters`` sends the user's id on the channel ``refuge_principal``,
and a TRUNCATE of either table sends ``*`` (forget everyone). PostgreSQL delivers a
notification when the transaction that sent it commits, and never if it rolls back. SQLite
needs nothing: its processes look every caller up.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "refuge_principal"

PG_FUNCTION = f"""
CREATE FUNCTION refuge_principal_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- TG_ARGV[0] names the column that holds the user's id.
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('{CHANNEL}', '*');
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('{CHANNEL}', to_jsonb(OLD) ->> TG_ARGV[0]);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('{CHANNEL}', to_jsonb(NEW) ->> TG_ARGV[0]);
    END IF;
    RETURN NULL;
END
$$
"""

TRIGGERS = {
    # A new user has no cached principal; a new shelter assignment changes one.
    "users_principal_changed": ("users", "UPDATE OR DELETE", "id"),
    "user_shelters_principal_changed": ("user_shelters", "INSERT OR UPDATE OR DELETE", "user_id"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(PG_FUNCTION)
    for name, (table, events, column) in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} AFTER {events} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION refuge_principal_changed('{column}')"
        )
        op.execute(
            f"CREATE TRIGGER {name}_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuge_principal_changed('*')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (table, _events, _column) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER {name}_truncate ON {table}")
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP FUNCTION refuge_principal_changed()")
