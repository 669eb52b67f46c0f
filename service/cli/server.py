"""Running Refuge: ``migrate``, ``serve``, ``worker``, ``settings`` and ``openapi``."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli.support import fail, migrate_database, require_database, transaction

if TYPE_CHECKING:
    from service.settings import Settings

_fail = fail  # the name the commands below have always used


def migrate() -> None:
    """Create or upgrade the database schema (REFUGE_DATABASE_URL)."""
    from service.settings import Settings

    migrate_database(Settings())
    typer.echo("database is at the newest revision")


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
    from service import demo_history
    from shelters import demo
    from shelters.models import utcnow

    migrate_database(settings)
    start = demo_history.history_start(utcnow())
    with transaction(settings) as session:
        fresh = not demo.has_network(session)
        passwords = demo.load_demo(session, since=start if fresh else None)
    if fresh:
        typer.echo(f"Writing {demo_history.MONTHS} months of synthetic history ...")
        demo_history.load_history(settings, start=start)
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


def register(app: typer.Typer) -> None:
    """Add the commands of this module to ``app``."""
    app.command()(migrate)
    app.command()(serve)
    app.command("worker")(worker_command)
    app.command("settings")(settings_command)
    app.command()(openapi)
