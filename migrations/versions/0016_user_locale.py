"""users.locale: the language each user reads Refuge in

Revision ID: 0016_user_locale
Revises: 0015_localized_names
Create Date: 2026-12-03 06:00:00.000000

``users.locale`` is ``kk``, ``ru``, ``en`` or NULL (the browser's ``Accept-Language``, else
``REFUGE_DEFAULT_LOCALE``). A change of it is a change of the row, so the principal caches hear
of it through the trigger of 0010 and the next request is answered in the new language.

Plain ``ALTER TABLE`` on both engines, the CHECK on the column itself: SQLite adds and drops
such a column in place, where a batch copy of ``users`` would trip the foreign keys that point
at it from every other table.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_user_locale"
down_revision: str | None = "0015_localized_names"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE users ADD COLUMN locale VARCHAR(8) "
        "CONSTRAINT ck_users_locale_known CHECK (locale IN ('kk', 'ru', 'en'))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN locale")
