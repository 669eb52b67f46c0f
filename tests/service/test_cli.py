"""The refuge command line: migrate, create-user, create-api-key, openapi, serve; what every
command does without a database, and what ``--help`` loads and shows."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from migrations import alembic_config
from service.cli import app
from service.db import make_engine
from shelters import demo
from shelters.models import ApiKey, Organization, User
from tests.conftest import TEST_SECRET

REFUGE = str(Path(sys.executable).with_name("refuge"))


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("REFUGE_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    return url


def test_create_user_reads_the_password_from_stdin(cli_db: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["create-user", "ops-admin", "--role", "admin", "--password-stdin"],
        input="a very long admin password\n",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["role"] == "admin"
    engine = make_engine(cli_db)
    with Session(engine) as session:
        user = session.scalars(select(User).where(User.username == "ops-admin")).one()
        assert user.password_hash.startswith("$argon2id$")
    engine.dispose()


def test_create_user_without_password_stdin_is_refused(cli_db: str) -> None:
    result = CliRunner().invoke(app, ["create-user", "ops-admin", "--role", "admin"])
    assert result.exit_code == 2


def test_create_user_for_unknown_organization_fails_cleanly(cli_db: str) -> None:
    result = CliRunner().invoke(
        app,
        [
            "create-user",
            "cw",
            "--role",
            "caseworker",
            "--organization-id",
            "42",
            "--password-stdin",
        ],
        input="a very long password here\n",
    )
    assert result.exit_code == 1
    assert "organization 42 does not exist" in result.output


def test_create_api_key_prints_a_token_once_and_stores_a_hash(cli_db: str) -> None:
    engine = make_engine(cli_db)
    with Session(engine) as session, session.begin():
        session.add(Organization(name="Funding org", kind="funder"))
    runner = CliRunner()
    runner.invoke(
        app,
        ["create-user", "fund", "--role", "funder", "--organization-id", "1", "--password-stdin"],
        input="a very long password here\n",
    )
    result = runner.invoke(app, ["create-api-key", "fund"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("rfg_")
    with Session(engine) as session:
        key = session.scalars(select(ApiKey)).one()
        secret = token.split("_", 2)[2]
        assert key.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in {key.secret_sha256, key.prefix}
    engine.dispose()
    assert runner.invoke(app, ["create-api-key", "nobody"]).exit_code == 1


def test_openapi_command_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    result = CliRunner().invoke(app, ["openapi", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["info"]["title"] == "Refuge"


# --- a server that cannot listen changes nothing ------------------------------------------------


def password_hashes(url: str) -> dict[str, str]:
    engine = make_engine(url)
    with Session(engine) as session:
        hashes = {u.username: u.password_hash for u in session.scalars(select(User))}
    engine.dispose()
    return hashes


def test_serve_demo_on_a_taken_port_fails_in_one_line_and_rotates_no_password(
    fresh_database: str, tmp_path: Path
) -> None:
    engine = make_engine(fresh_database)
    with Session(engine) as session, session.begin():
        demo.load_demo(session)
    engine.dispose()
    before = password_hashes(fresh_database)
    assert "demo-admin" in before
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = subprocess.run(
            [REFUGE, "serve", "--demo", "--port", str(port)],
            env=os.environ
            | {"REFUGE_DATABASE_URL": fresh_database, "REFUGE_SECRET_KEY": TEST_SECRET},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    assert result.stdout == ""  # no banner, no passwords
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert "address already in use" in line.lower()
    assert password_hashes(fresh_database) == before


# --- commands that need a database refuse a missing or unmigrated one --------------------------

NEEDS_A_DATABASE = [
    ["audit", "verify"],
    ["audit", "anchor"],
    ["purge"],
    ["create-user", "someone", "--role", "admin", "--password-stdin"],
    ["create-api-key", "someone"],
    ["serve", "--port", "0"],
]


def run_in(folder: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """``refuge ARGS`` in ``folder`` with the default database, ./refuge.db."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFUGE_")}
    return subprocess.run(
        [REFUGE, *args],
        env=env | {"REFUGE_SECRET_KEY": TEST_SECRET},
        cwd=folder,
        input="a very long admin password\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("args", NEEDS_A_DATABASE, ids=" ".join)
def test_a_command_in_a_folder_without_a_database_creates_none_and_says_so(
    args: list[str], tmp_path: Path
) -> None:
    result = run_in(tmp_path, args)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line == (
        f"error: no database at {(tmp_path / 'refuge.db').resolve()}: run `refuge migrate` "
        "there first, or set REFUGE_DATABASE_URL to the database to use"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", NEEDS_A_DATABASE, ids=" ".join)
def test_a_command_refuses_a_database_without_the_schema(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'refuge.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE unrelated (id INTEGER PRIMARY KEY)")
    engine.dispose()
    result = run_in(tmp_path, args)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line == (
        f"error: the database at {(tmp_path / 'refuge.db').resolve()} has no Refuge schema: "
        "run `refuge migrate` first"
    )


def test_a_database_at_an_older_revision_is_named_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    [first] = ScriptDirectory.from_config(alembic_config()).get_bases()
    engine = make_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), first)
    engine.dispose()
    monkeypatch.setenv("REFUGE_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["audit", "anchor"])
    assert result.exit_code == 1
    assert f"is at revision {first}, not the newest" in result.stderr
    assert result.stderr.rstrip().endswith("run `refuge migrate` first")
    assert CliRunner().invoke(app, ["migrate"]).exit_code == 0
    assert CliRunner().invoke(app, ["audit", "anchor"]).exit_code == 0


def test_migrate_creates_the_database_it_is_pointed_at(tmp_path: Path) -> None:
    result = run_in(tmp_path, ["migrate"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "refuge.db").is_file()
    assert run_in(tmp_path, ["audit", "verify"]).returncode == 0


def test_create_user_refuses_an_unknown_role(cli_db: str) -> None:
    result = CliRunner().invoke(
        app, ["create-user", "x", "--role", "overlord", "--password-stdin"], input="p\n"
    )
    assert result.exit_code == 2
    assert result.stderr == "error: --role must be one of admin, coordinator, caseworker, funder\n"


# --- the command line starts without the solver, the plotting library or the app --------------

HEAVY = ("ortools", "matplotlib", "fastapi", "sqlalchemy", "uvicorn", "alembic", "rich")


@pytest.mark.parametrize(
    "args", [["--help"], ["bench", "--help"], ["audit", "verify", "--help"], ["serve", "--help"]]
)
def test_help_loads_no_heavy_library(args: list[str]) -> None:
    script = (
        "import sys\n"
        "from service.cli import app\n"
        "try:\n"
        f"    app({args!r})\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: " in result.stdout
    assert result.stderr.strip() == "[]"


# --- help text ---------------------------------------------------------------------------------


def help_of(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_flags_show_no_value_placeholder_and_defaults_are_whole() -> None:
    serve = help_of("serve")
    [demo_line] = [line for line in serve.splitlines() if "--demo" in line]
    [help_line] = [line for line in serve.splitlines() if "--help" in line]
    assert demo_line.split()[:2] == ["--demo", "Migrate,"]
    assert help_line.split() == ["--help", "Show", "this", "message", "and", "exit."]
    assert "<bool>" not in help_of() + serve + help_of("purge") + help_of("audit", "verify")
    bench = help_of("bench")
    assert "2000x300,10000x1000,20000x2000]" in bench
    assert "…" not in bench
