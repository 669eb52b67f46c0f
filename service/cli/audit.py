"""``refuge audit verify``, ``refuge audit anchor`` and ``refuge purge`` (SPEC §9).

Register on the main Typer app with :func:`register`. They use ``REFUGE_DATABASE_URL``.
Exit codes: 0 success; 1 a broken or truncated chain (verify), or a database that is missing
or not migrated; 2 a malformed argument.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Annotated

import typer

# One transaction on the configured database, refused in one line when it is missing or not
# migrated (the database layer and the domain are imported when a command runs).
from service.cli.support import QUIET_HELP, Progress, shows_progress
from service.cli.support import transaction as _transaction


def verify_command(
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            help="SEQ:HASH printed earlier by `refuge audit anchor`; also detects truncation.",
        ),
    ] = None,
) -> None:
    """Recompute the audit hash chain; exit 1 if it is broken (or truncated after --anchor)."""
    from service.settings import Settings
    from shelters import audit

    try:
        parsed = audit.parse_anchor(anchor) if anchor is not None else None
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    settings = Settings()
    with _transaction(settings) as session:
        result = audit.verify(session, anchor=parsed)
    typer.echo(
        json.dumps(
            {
                "ok": result.ok,
                "checked": result.checked,
                "first_broken_seq": result.first_broken_seq,
            }
        )
    )
    if not result.ok:
        typer.echo(f"error: the audit chain breaks at seq {result.first_broken_seq}", err=True)
        raise typer.Exit(1)


def anchor_command() -> None:
    """Print the chain's head as SEQ:HASH, to keep outside the system for later verification."""
    from service.settings import Settings
    from shelters import audit

    settings = Settings()
    with _transaction(settings) as session:
        seq, digest = audit.head(session)
    typer.echo(f"{seq}:{digest}")


def purge_command(
    older_than: Annotated[
        int | None,
        typer.Option(
            "--older-than",
            min=1,
            help="Days since a case's last placement ended (default: REFUGE_RETENTION_DAYS).",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
) -> None:
    """Remove member data of cases finished more than N days ago; safe to run again."""
    from service.settings import Settings
    from shelters import retention

    settings = Settings()
    days = older_than if older_than is not None else settings.retention_days
    with (
        _transaction(settings) as session,
        Progress(enabled=shows_progress(quiet=quiet)) as progress,
    ):
        progress.task(f"purging cases finished more than {days} days ago")
        result = retention.purge(
            session,
            older_than=timedelta(days=days),
            request_id=f"purge-{uuid.uuid4().hex}",
        )
    typer.echo(
        json.dumps(
            {
                "cutoff": result.cutoff.isoformat(),
                "purged_cases": len(result.case_ids),
                "idempotency_keys_deleted": result.idempotency_keys_deleted,
            }
        )
    )


def register(app: typer.Typer) -> None:
    """Add ``audit verify``, ``audit anchor`` and ``purge`` to ``app``."""
    group = typer.Typer(
        no_args_is_help=True, rich_markup_mode=None, help="The tamper-evident audit log."
    )
    group.command("verify")(verify_command)
    group.command("anchor")(anchor_command)
    app.add_typer(group, name="audit")
    app.command("purge")(purge_command)
