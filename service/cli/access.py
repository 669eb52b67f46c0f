"""Giving access and taking it back from the command line.

``create-user`` and ``create-api-key``; ``disable-user``, ``enable-user``, ``list-api-keys``,
``revoke-api-key`` and ``reset-totp``.
Register on the main Typer app with :func:`register`. They use ``REFUGE_DATABASE_URL`` and
write each change to the audit chain, in the change's own transaction, with the actor role
``operator`` (whoever runs the command on the server; no user of the service). Exit codes:
0 done; 1 no such user or key, or the change is refused.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli.support import fail, require_database, transaction

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

OPERATOR_ROLE = "operator"


@contextmanager
def _refused_in_one_line() -> Iterator[None]:
    """A refused change (no such user or key, not allowed) is one line and exit 1."""
    from shelters.errors import DomainError

    try:
        yield
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


@contextmanager
def _audited(action: str, resource_type: str) -> Iterator[tuple[Session, list[int]]]:
    """One transaction whose audit entry names the resource id the block appends to ``ids``.

    A refused change rolls back with its entry: nothing is written.
    """
    from service.settings import Settings
    from shelters import audit
    from shelters.audit import AuditRecord

    with _refused_in_one_line(), transaction(Settings()) as session:
        ids: list[int] = []
        yield session, ids
        record = AuditRecord(
            action=action,
            resource_type=resource_type,
            actor_role=OPERATOR_ROLE,
            resource_id=ids[0] if ids else None,
            request_id=f"cli-{uuid.uuid4().hex}",
        )
        audit.append(session, record)


def _set_active(username: str, *, active: bool) -> None:
    from shelters import identity

    with _audited("enable" if active else "disable", "user") as (session, ids):
        user_id = identity.find_user_id(session, username)
        ids.append(user_id)
        user, ended = identity.set_active(session, None, user_id, active=active)
        out = {"id": user.id, "username": user.username, "active": user.is_active}
    typer.echo(json.dumps(out | ({} if active else {"web_sessions_ended": ended})))


def disable_user(username: str) -> None:
    """Disable a user: their tokens, API keys and web sessions stop working at once."""
    _set_active(username, active=False)


def enable_user(username: str) -> None:
    """Enable a disabled user again (their unrevoked, unexpired keys work again)."""
    _set_active(username, active=True)


def list_api_keys(username: str) -> None:
    """List a user's API keys (never their secrets), newest first, one JSON object a line."""
    from service.settings import Settings
    from shelters import identity

    with _refused_in_one_line(), transaction(Settings()) as session:
        user_id = identity.find_user_id(session, username)
        for key in identity.list_user_api_keys(session, user_id):
            typer.echo(
                json.dumps(
                    {
                        "id": key.id,
                        "prefix": key.prefix,
                        "created_at": key.created_at.isoformat(),
                        "expires_at": key.expires_at and key.expires_at.isoformat(),
                        "revoked_at": key.revoked_at and key.revoked_at.isoformat(),
                        "last_used_at": key.last_used_at and key.last_used_at.isoformat(),
                    }
                )
            )


def revoke_api_key(key_id: int) -> None:
    """Revoke an API key by its id (see list-api-keys); it stops working at once."""
    from shelters import identity

    with _audited("revoke", "api_key") as (session, ids):
        ids.append(key_id)
        key = identity.revoke_api_key(session, None, key_id)
        assert key.revoked_at is not None
        out = {"id": key.id, "user_id": key.user_id, "revoked_at": key.revoked_at.isoformat()}
    typer.echo(json.dumps(out))


def reset_totp(username: str) -> None:
    """Remove a user's second factor and recovery codes (a lost device)."""
    from shelters import identity, totp

    with _audited("reset_totp", "user") as (session, ids):
        user_id = identity.find_user_id(session, username)
        ids.append(user_id)
        had = totp.reset(session, user_id)
    typer.echo(json.dumps({"id": user_id, "second_factor_removed": had}))


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
        raise fail(f"--role must be one of {', '.join(r.value for r in Role)}", 2)
    if not password_stdin:
        raise fail("pass --password-stdin and the password on standard input", 2)
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
        raise fail(exc.detail) from None


def create_api_key(username: str) -> None:
    """Create an API key for a user and print it once."""
    from sqlalchemy import select

    from service.settings import Settings
    from shelters import identity
    from shelters.models import User

    with transaction(Settings()) as session:
        user_id = session.scalar(select(User.id).where(User.username == username))
        if user_id is None:
            raise fail(f"no user named {username!r}")
        token = identity.create_api_key(session, identity.get_user(session, user_id))
    typer.echo(token)


def register(app: typer.Typer) -> None:
    """Add the commands of this module to ``app``."""
    app.command("create-user")(create_user)
    app.command("create-api-key")(create_api_key)
    app.command("disable-user")(disable_user)
    app.command("enable-user")(enable_user)
    app.command("list-api-keys")(list_api_keys)
    app.command("revoke-api-key")(revoke_api_key)
    app.command("reset-totp")(reset_totp)
