"""The ``refuge`` command line.

One module per group of commands, each with a ``register`` function: ``server`` (migrate,
serve, worker, settings, openapi), ``access`` (users, API keys, taking access back),
``placement`` (solve, verify, bench, generate), ``reports``, ``audit`` (verify, anchor, purge),
``backup`` (backup, restore) and ``webhooks`` (deliver); ``support`` holds what they share.
Every one of them imports what its commands need (the database layer, the solver, the web app)
inside the commands, so that ``refuge --help`` and a command that needs none of them start
without loading them (tests/service/test_cli.py).
"""

from __future__ import annotations

import typer

from service.cli import access, audit, backup, placement, reports, server, webhooks
from service.cli.support import migrate_database

__all__ = ["app", "main", "migrate_database"]

# The plain help formatter: the rich one of typer 0.29 labels flags `<bool>`, as if they
# took a value, and cuts a long default off with an ellipsis.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Refuge: shelter beds and placement.",
)

for group in (server, access, placement, reports, audit, backup, webhooks):
    group.register(app)


def main() -> None:
    """Entry point of the ``refuge`` script."""
    app()
