"""What the ``refuge`` commands share: errors, the database they need, and progress.

Importing this module, like every ``service/cli*`` module, costs next to nothing: the database
layer, the solver and the web app are imported inside the functions that use them, so that
``refuge --help`` and commands that need none of them start at once (README, "Command line").
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from service.settings import Settings


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on standard error; raise the exit it returns."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _where(settings: Settings) -> str:
    path = settings.sqlite_path()
    if path is not None:
        return str(path.resolve())
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def migrate_database(settings: Settings) -> None:
    """Bring the database schema to the newest Alembic revision (creating a SQLite file)."""
    from alembic import command

    from migrations import alembic_config
    from service.db import make_engine

    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection=connection), "head")
    finally:
        engine.dispose()


def require_database(settings: Settings) -> None:
    """Refuse, in one line and with exit 1, a database that is missing or not migrated.

    A SQLite file that does not exist is not created (opening it would); a database without
    Refuge's schema, or at an older revision, is named with the command that fixes it.
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import SQLAlchemyError

    from migrations import alembic_config
    from service.db import READ_ONLY, make_engine

    where = _where(settings)
    path = settings.sqlite_path()
    if path is not None and not path.is_file():
        raise fail(
            f"no database at {where}: run `refuge migrate` there first, "
            "or set REFUGE_DATABASE_URL to the database to use"
        )
    engine = make_engine(settings.database_url)
    try:
        with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise fail(f"cannot open the database at {where}: {reason}") from None
    finally:
        engine.dispose()
    newest = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    if not current:
        raise fail(f"the database at {where} has no Refuge schema: run `refuge migrate` first")
    if current != newest:
        raise fail(
            f"the database at {where} is at revision {', '.join(sorted(current))}, not the "
            f"newest ({', '.join(sorted(newest))}): run `refuge migrate` first"
        )


@contextmanager
def transaction(settings: Settings) -> Iterator[Session]:
    """One transaction on the configured, existing database, committed if the block succeeds."""
    from sqlalchemy.orm import Session

    from service.db import make_engine

    require_database(settings)
    engine = make_engine(settings.database_url)
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session
    finally:
        engine.dispose()


def shows_progress(*, quiet: bool, stream: IO[str] | None = None) -> bool:
    """Whether a long command draws progress: on a terminal, unless ``--quiet`` or TERM=dumb.

    Progress goes to standard error, so piped or redirected output stays the data alone.
    """
    stream = sys.stderr if stream is None else stream
    if quiet or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


QUIET_HELP = "No progress display (it is drawn only on a terminal, on standard error)."


class Progress:
    """A progress display on standard error, or nothing at all (see :func:`shows_progress`).

    ``task`` starts a line with a spinner, elapsed time and, given ``total``, a bar;
    ``advance`` moves it on; ``echo`` prints a line of output above the display.
    """

    def __init__(self, *, enabled: bool) -> None:
        self._progress: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            self._progress = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )

    def __enter__(self) -> Progress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def task(self, description: str, total: float | None = None) -> int:
        """Start a task line; returns its id (``-1`` when nothing is drawn)."""
        if self._progress is None:
            return -1
        return int(self._progress.add_task(description, total=total))

    def advance(self, task: int, amount: float = 1) -> None:
        if self._progress is not None and task >= 0:
            self._progress.advance(task, amount)

    def done(self, task: int) -> None:
        """Remove a finished task line."""
        if self._progress is not None and task >= 0:
            self._progress.remove_task(task)

    def echo(self, line: str) -> None:
        """Print a line of output at once: above the display when both share a terminal."""
        if self._progress is not None and sys.stdout.isatty():
            self._progress.console.out(line, highlight=False)
            return
        typer.echo(line)
        sys.stdout.flush()
