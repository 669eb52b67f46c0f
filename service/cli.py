"""The ``refuge`` command line."""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from alembic import command
from sqlalchemy import select
from sqlalchemy.orm import Session

from migrations import alembic_config
from service import cli_access, cli_audit, cli_placement, cli_reports
from service.app import create_app
from service.db import make_engine
from service.settings import SecretKeyMissing, Settings
from shelters import demo, identity
from shelters.errors import DomainError
from shelters.identity import Role
from shelters.models import User

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Refuge: shelter beds and placement."
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def migrate_database(settings: Settings) -> None:
    """Bring the database schema to the newest Alembic revision."""
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection=connection), "head")
    finally:
        engine.dispose()


def _session(settings: Settings) -> Session:
    return Session(make_engine(settings.database_url), expire_on_commit=False)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (REFUGE_DATABASE_URL)."""
    migrate_database(Settings())
    typer.echo("database is at the newest revision")


@app.command()
def serve(
    demo_data: Annotated[
        bool, typer.Option("--demo", help="Migrate, load demo data and print demo logins.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Serve the API with uvicorn."""
    settings = Settings()
    try:
        settings.resolved_secret_key()
    except SecretKeyMissing as exc:
        raise _fail(str(exc)) from None
    if demo_data:
        migrate_database(settings)
        with _session(settings) as session, session.begin():
            passwords = demo.load_demo(session)
        base = f"http://{host}:{port}"
        typer.echo(f"Refuge demo at {base}  (OpenAPI: {base}/api/v1/openapi.json)")
        typer.echo("Demo logins (new random passwords, shown only now):")
        for username, password in passwords.items():
            typer.echo(f"  {username:<18} {password}")
        typer.echo(
            f"Get a token: curl -s -X POST {base}/api/v1/auth/token "
            "-d username=demo-coordinator -d password=<password above>"
        )
    _configure_logging()
    # Each worker reads its settings from the environment; how many there are sets the
    # default of REFUGE_MAX_IN_FLIGHT.
    os.environ["REFUGE_WORKER_PROCESSES"] = str(workers)
    uvicorn.run(
        "service.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
    )


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("refuge.access")
    access.setLevel(logging.INFO)
    access.addHandler(handler)
    access.propagate = False
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")


@app.command("create-user")
def create_user(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, coordinator, caseworker or funder.")],
    organization_id: Annotated[int | None, typer.Option(help="The user's organisation.")] = None,
    shelter_id: Annotated[
        list[int] | None, typer.Option(help="A shelter a coordinator runs (repeatable).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user; the password is read from standard input, never from the command line."""
    if not password_stdin:
        raise _fail("pass --password-stdin and the password on standard input", 2)
    password = sys.stdin.readline().rstrip("\r\n")
    settings = Settings()
    try:
        with _session(settings) as session, session.begin():
            user = identity.create_user(
                session,
                username=username,
                password=password,
                role=role,
                organization_id=organization_id,
                shelter_ids=shelter_id or [],
            )
            typer.echo(json.dumps({"id": user.id, "username": user.username, "role": user.role}))
    except DomainError as exc:
        raise _fail(exc.detail) from None


@app.command("create-api-key")
def create_api_key(username: str) -> None:
    """Create an API key for a user and print it once."""
    settings = Settings()
    with _session(settings) as session, session.begin():
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


def main() -> None:
    """Entry point of the ``refuge`` script."""
    app()
