"""``refuge webhooks deliver``: one pass over the webhook outbox (service/webhooks.py).

For a cron job or after an outage; the servers and workers deliver by themselves every
``REFUGE_WEBHOOK_POLL_S``. Prints what the pass did as one JSON line. Exit 1 when the database
is missing or not migrated.
"""

from __future__ import annotations

import json

import typer

from service.cli.support import require_database


def deliver_command() -> None:
    """Post every due delivery once; failures wait for their next try."""
    from service import webhooks
    from service.db import Sessions, make_engine
    from service.settings import Settings

    settings = Settings()
    require_database(settings)
    engine = make_engine(settings.database_url)
    try:
        done = webhooks.deliver_due(Sessions(engine))
    finally:
        engine.dispose()
    typer.echo(
        json.dumps({"delivered": done.delivered, "retrying": done.retrying, "failed": done.failed})
    )


def register(app: typer.Typer) -> None:
    """Add ``webhooks deliver`` to ``app``."""
    group = typer.Typer(
        help="Outgoing webhooks, signed per Standard Webhooks.", no_args_is_help=True
    )
    group.command("deliver")(deliver_command)
    app.add_typer(group, name="webhooks")
