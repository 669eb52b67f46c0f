"""users.locale: the language each user reads Refuge in

Revision ID: 0016_user_locale
Revises: 0014
Create Date: 2026-12-03 06:00:00.000000

``users.locale`` is ``kk``, ``ru``, ``en`` or NULL (the browser's ``Accept-Language``, else
``REFUGE_DEFAULT_LOCALE``). A change of it is a change of the row, so the principal caches hear
of it through the trigger of 0010 and the next request is answered in the new language.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_user_locale"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=8), nullable=True))
        batch_op.create_check_constraint(
            batch_op.f("ck_users_locale_known"), "locale IN ('kk', 'ru', 'en')"
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_users_locale_known"), type_="check")
        batch_op.drop_column("locale")
