"""The ``refuge`` command line.

Each group of commands lives in a module of its own (``service/cli_*.py``) with a ``register``
function, added at the end of this module. Every one of them imports what its commands need
(the database layer, the solver, the web app) inside the commands, so that ``refuge --help``
and a command that needs none of them start without loading them (tests/service/test_cli.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service import cli_access, cli_audit, cli_backup, cli_placement, cli_reports
from service.cli_support import fail, migrate_database, require_database, transaction

if TYPE_CHECKING:
    from service.settings import Settings

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

_fail = fail  # the name the commands below have always used


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (REFUGE_DATABASE_URL)."""
    from service.settings import Settings

    migrate_database(Settings())
    typer.echo("database is at the newest revision")


@app.command()
def serve(
    demo_data: Annotated[
        bool,
        typer.Option(
            "--demo", help="Migrate, load demo data and print the addresses and demo logins."
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Serve the API and the web pages with uvicorn."""
    from service.settings import SecretKeyMissing, Settings

    settings = Settings()
    # The port first: a server that cannot listen changes nothing (no demo passwords rotated).
    sock = _listen(host, port)
    try:
        if not demo_data:
            _require_served_database(settings)
        try:
            settings.resolved_secret_key()
        except SecretKeyMissing as exc:
            raise _fail(str(exc)) from None
        if demo_data:
            _load_demo(settings, host, sock.getsockname()[1])
            # The demo's people read Russian first; each worker reads it from the environment.
            os.environ.setdefault("REFUGE_DEFAULT_LOCALE", "ru")
        # Each worker reads its settings from the environment; how many there are sets the
        # default of REFUGE_MAX_IN_FLIGHT.
        os.environ["REFUGE_WORKER_PROCESSES"] = str(workers)
        with _metrics_directory(workers):
            _run_uvicorn(sock, workers=workers)
    finally:
        sock.close()


@contextlib.contextmanager
def _metrics_directory(workers: int) -> Iterator[None]:
    """Several worker processes count /metrics into files of one directory, summed per scrape.

    A deployer's ``PROMETHEUS_MULTIPROC_DIR`` is used as it is; otherwise a fresh directory
    lives as long as this server.
    """
    if workers == 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="refuge-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, or exit 1 in one line when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # uvicorn's default backlog
    except OSError as exc:
        sock.close()
        raise _fail(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; nothing was changed"
        ) from None
    sock.set_inheritable(True)  # the worker processes serve it too
    return sock


def _require_served_database(settings: Settings) -> None:
    """A SQLite file must exist and be migrated; a PostgreSQL server may come up later."""
    if settings.is_sqlite:
        require_database(settings)


def _load_demo(settings: Settings, host: str, port: int) -> None:
    from shelters import demo

    migrate_database(settings)
    with transaction(settings) as session:
        passwords = demo.load_demo(session)
    base = f"http://{host}:{port}"
    typer.echo(f"Refuge demo at {base}")
    typer.echo(f"  web pages: {base}/ui   API: {base}/api/v1   OpenAPI: {base}/api/v1/openapi.json")
    typer.echo("Demo logins (new random passwords, shown only now):")
    for username, password in passwords.items():
        typer.echo(f"  {username:<18} {password}")
    typer.echo(
        f"Get a token: curl -s -X POST {base}/api/v1/auth/token "
        "-d username=demo-coordinator -d password=<password above>"
    )


def _run_uvicorn(sock: socket.socket, *, workers: int) -> None:
    """Serve the app on ``sock`` in this process, or in ``workers`` processes sharing it."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from service import logs

    config = uvicorn.Config(
        "service.app:create_app_from_env",
        factory=True,
        workers=workers,
        access_log=False,
        log_config=logs.config(),  # applied by uvicorn in every worker process
    )
    server = uvicorn.Server(config)
    try:
        if workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    if workers == 1 and not server.started:
        raise typer.Exit(3)


@app.command("worker")
def worker_command(
    concurrency: Annotated[
        int, typer.Option(min=1, max=16, help="Batch runs this process solves at once.")
    ] = 1,
) -> None:
    """Execute queued batch matching runs, beside any number of servers and workers.

    Serves no HTTP. The servers keep queueing runs; set REFUGE_RUN_WORKER=false for them when
    workers should do all the solving. SIGTERM finishes the runs being solved, then exits.
    """
    import logging.config

    from service import logs, worker
    from service.settings import Settings

    settings = Settings().model_copy(update={"solver_threads": concurrency, "run_worker": True})
    require_database(settings)
    logging.config.dictConfig(logs.config())
    worker.run(settings, stop=worker.stop_on_signals())


@app.command("settings")
def settings_command(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per setting.")] = False,
) -> None:
    """List every REFUGE_* setting in effect here, where it came from, and what it means.

    Secrets (the signing key, the metrics token) show as ******** when set; a database URL
    never shows its password. Exit 1 when a setting in the environment is invalid.
    """
    from dataclasses import asdict

    from pydantic import ValidationError

    from service.settings import Settings, describe

    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"REFUGE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise _fail(f"invalid settings: {problems}") from None
    rows = describe(settings, os.environ)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(asdict(row), ensure_ascii=False))
        return
    width = max(len(row.env) for row in rows)
    for row in rows:
        marker = "*" if row.source == "environment" else " "
        typer.echo(f"{row.env:<{width}} {marker} {row.value or '(unset)'}")
        if row.description:
            typer.echo(f"{'':<{width}}     {row.description}")
    typer.echo("(* set in the environment; the others are defaults)")


@app.command("create-user")
def create_user(
    username: str,
    role: Annotated[
        str, typer.Option(metavar="ROLE", help="admin, coordinator, caseworker or funder.")
    ],
    organization_id: Annotated[int | None, typer.Option(help="The user's organisation.")] = None,
    shelter_id: Annotated[
        list[int] | None, typer.Option(help="A shelter a coordinator runs (repeatable).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user; the password is read from standard input, never from the command line."""
    from service.settings import Settings
    from shelters import identity
    from shelters.errors import DomainError
    from shelters.identity import Role

    if role not in {r.value for r in Role}:
        raise _fail(f"--role must be one of {', '.join(r.value for r in Role)}", 2)
    if not password_stdin:
        raise _fail("pass --password-stdin and the password on standard input", 2)
    settings = Settings()
    require_database(settings)
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        with transaction(settings) as session:
            user = identity.create_user(
                session,
                username=username,
                password=password,
                role=Role(role),
                organization_id=organization_id,
                shelter_ids=shelter_id or [],
            )
            typer.echo(json.dumps({"id": user.id, "username": user.username, "role": user.role}))
    except DomainError as exc:
        raise _fail(exc.detail) from None


@app.command("create-api-key")
def create_api_key(username: str) -> None:
    """Create an API key for a user and print it once."""
    from sqlalchemy import select

    from service.settings import Settings
    from shelters import identity
    from shelters.models import User

    with transaction(Settings()) as session:
        user_id = session.scalar(select(User.id).where(User.username == username))
        if user_id is None:
            raise _fail(f"no user named {username!r}")
        token = identity.create_api_key(session, identity.get_user(session, user_id))
    typer.echo(token)


@app.command()
def openapi(
    output: Annotated[Path, typer.Option(help="Where to write the document.")] = Path(
        "openapi/openapi.json"
    ),
) -> None:
    """Write the OpenAPI document of the API."""
    import secrets

    from service.app import create_app
    from service.settings import Settings

    # Only the routes matter here: an in-memory database and a throwaway key.
    settings = Settings(database_url="sqlite://", secret_key=secrets.token_urlsafe(48))
    document = create_app(settings).openapi()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    typer.echo(f"wrote {output}")


cli_placement.register(app)
cli_reports.register(app)
cli_audit.register(app)
cli_access.register(app)
cli_backup.register(app)


def main() -> None:
    """Entry point of the ``refuge`` script."""
    app()
