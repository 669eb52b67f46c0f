"""``refuge backup PATH`` and ``refuge restore PATH`` (service/backup.py).

Register on the main Typer app with :func:`register`. They use ``REFUGE_DATABASE_URL``.
Each prints one JSON line: the file, its size, the engine, the schema revision and the audit
chain's anchor (``SEQ:HASH``) of what was copied. Exit codes: 0 done; 1 refused or failed, with
nothing put in place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli.support import fail, require_database

if TYPE_CHECKING:
    from service.backup import Copied

FORCE_HELP = "Replace what is there."


def _echo(copied: Copied, verb: str) -> None:
    typer.echo(
        json.dumps(
            {
                verb: str(copied.path),
                "engine": copied.engine,
                "bytes": copied.bytes,
                "revision": copied.revision,
                "audit_entries": copied.audit_entries,
                "anchor": copied.anchor,
            }
        )
    )


def backup_command(
    path: Annotated[Path, typer.Argument(help="File to write the backup to.")],
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Copy the database to PATH while the service runs; check the copy; print its anchor.

    SQLite: the online backup API. PostgreSQL: pg_dump --format=custom (its client tools must be
    installed). Keep the anchor printed: `refuge audit verify --anchor` after a restore proves
    nothing recorded up to the backup was lost or altered.
    """
    from service import backup
    from service.settings import Settings

    settings = Settings()
    require_database(settings)
    try:
        copied = backup.backup(settings.database_url, path, replace=force)
    except backup.BackupError as exc:
        raise fail(f"{exc}; nothing was written") from None
    _echo(copied, "backup")


def restore_command(
    path: Annotated[Path, typer.Argument(help="A file written by `refuge backup`.")],
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Put the backup at PATH into the configured database (stop the service first).

    Refuses a database that holds tables unless --force. Afterwards run `refuge migrate` if the
    backup is of an older version, then `refuge audit verify --anchor SEQ:HASH`.
    """
    from service import backup
    from service.settings import Settings

    settings = Settings()
    try:
        copied = backup.restore(settings.database_url, path, replace=force)
    except backup.BackupError as exc:
        raise fail(f"{exc}; the database was not changed") from None
    _echo(copied, "restored")


def register(app: typer.Typer) -> None:
    """Add ``backup`` and ``restore`` to ``app``."""
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
