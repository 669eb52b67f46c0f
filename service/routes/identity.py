"""Tokens, the caller, users and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from service.audit import set_resource_id
from service.auth import ANY_ROLE, PUBLIC, allow, issue_token, log_in, throttle_policy
from service.deps import ReadDb, UnitOfWorkRoute, WriteDb
from service.problems import problem_responses
from service.routes import API_PREFIX
from service.schemas import (
    ApiKeyIn,
    ApiKeyInfo,
    ApiKeyOut,
    Id,
    MeOut,
    PageOut,
    PasswordChangeIn,
    ProfileIn,
    RecoveryCodesOut,
    TokenOut,
    TotpCodeIn,
    TotpEnrolmentOut,
    UserIn,
    UserOut,
    UserStateOut,
)
from service.settings import Settings
from shelters import identity, totp
from shelters.identity import Principal, Role
from shelters.models import ApiKey, User

router = APIRouter(prefix=API_PREFIX, tags=["identity"], route_class=UnitOfWorkRoute)


def _user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        role=Role(user.role),
        organization_id=user.organization_id,
        shelter_ids=[s.id for s in user.shelters],
        locale=user.locale,
    )


class TokenForm(OAuth2PasswordRequestForm):
    """The OAuth2 password form, with the one-time code of a second factor in ``totp``."""

    def __init__(
        self,
        *,
        username: Annotated[str, Form()],
        password: Annotated[str, Form(json_schema_extra={"format": "password"})],
        totp: Annotated[
            str | None,
            Form(
                max_length=64,
                description="A TOTP code (six digits) or a recovery code: needed by accounts "
                "with a second factor and by the roles REFUGE_TOTP_REQUIRED_ROLES names.",
            ),
        ] = None,
        grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
        scope: Annotated[str, Form()] = "",
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, Form(json_schema_extra={"format": "password"})] = None,
    ) -> None:
        super().__init__(
            grant_type=grant_type,
            username=username,
            password=password,
            scope=scope,
            client_id=client_id,
            client_secret=client_secret,
        )
        self.totp = totp


@router.post(
    "/auth/token",
    dependencies=[PUBLIC],
    responses=problem_responses(401, 422, 429),
)
def create_token(
    request: Request,
    form: Annotated[TokenForm, Depends()],
    db: WriteDb,
) -> TokenOut:
    """Exchange a username and password (and a one-time code, if needed) for a bearer token."""
    settings: Settings = request.app.state.settings
    user = log_in(db, settings, username=form.username, password=form.password, code=form.totp)
    set_resource_id(request, user.id)
    token, lifetime = issue_token(settings, request.app.state.secret_key, user)
    return TokenOut(access_token=token, expires_in=lifetime)


@router.get("/me", responses=problem_responses(401))
def read_me(principal: Annotated[Principal, allow(*ANY_ROLE)], db: ReadDb) -> MeOut:
    """The calling user."""
    return _user_out(identity.get_user(db, principal.user_id))


@router.patch("/me", responses=problem_responses(401, 422))
def update_me(
    body: ProfileIn,
    request: Request,
    principal: Annotated[Principal, allow(*ANY_ROLE)],
    db: WriteDb,
) -> MeOut:
    """Choose the language of your pages and messages (kk, ru, en; null: your browser's)."""
    set_resource_id(request, principal.user_id)
    identity.set_locale(db, principal, principal.user_id, body.locale)
    return _user_out(identity.get_user(db, principal.user_id))


@router.patch("/users/{user_id}", responses=problem_responses(401, 403, 404, 422))
def update_user(
    user_id: Id,
    body: ProfileIn,
    principal: Annotated[Principal, allow(Role.ADMIN)],
    db: WriteDb,
) -> UserOut:
    """Set a user's language (admins)."""
    identity.set_locale(db, principal, user_id, body.locale)
    return _user_out(identity.get_user(db, user_id))


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
)
def create_user(
    body: UserIn,
    request: Request,
    principal: Annotated[Principal, allow(Role.ADMIN)],
    db: WriteDb,
) -> UserOut:
    """Create a user (admins only)."""
    user = identity.create_user(
        db,
        username=body.username,
        password=body.password,
        role=body.role,
        organization_id=body.organization_id,
        shelter_ids=body.shelter_ids,
        locale=body.locale,
    )
    set_resource_id(request, user.id)
    return _user_out(identity.get_user(db, user.id))


def _key_info(key: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=key.id,
        user_id=key.user_id,
        prefix=key.prefix,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


@router.post(
    "/users/{user_id}/api-keys",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 404, 422),
)
def create_api_key(
    user_id: Id,
    principal: Annotated[Principal, allow(*ANY_ROLE)],
    db: WriteDb,
    body: ApiKeyIn | None = None,
) -> ApiKeyOut:
    """Create an API key for yourself, or (admins) for any user; the token is shown once."""
    user = identity.user_for_key_issue(db, principal, user_id)
    expires_at = body.expires_at if body is not None else None
    key, token = identity.issue_api_key(db, user.id, expires_at=expires_at)
    return ApiKeyOut(token=token, id=key.id, expires_at=key.expires_at)


@router.get("/users/{user_id}/api-keys", responses=problem_responses(401, 404))
def list_api_keys(
    user_id: Id, principal: Annotated[Principal, allow(*ANY_ROLE)], db: ReadDb
) -> PageOut[ApiKeyInfo]:
    """Your API keys, or (admins) any user's, newest first; never their secrets."""
    # A user has a handful of keys: one page, in the envelope every list has.
    keys = [_key_info(k) for k in identity.list_api_keys(db, principal, user_id)]
    return PageOut(items=keys, next_cursor=None)


@router.post("/api-keys/{key_id}/revoke", responses=problem_responses(401, 404))
def revoke_api_key(
    key_id: Id, principal: Annotated[Principal, allow(*ANY_ROLE)], db: WriteDb
) -> ApiKeyInfo:
    """Revoke an API key at once: your own, or (admins) anyone's."""
    return _key_info(identity.revoke_api_key(db, principal, key_id))


@router.post("/users/{user_id}/disable", responses=problem_responses(401, 403, 404, 409))
def disable_user(
    user_id: Id, principal: Annotated[Principal, allow(Role.ADMIN)], db: WriteDb
) -> UserStateOut:
    """Disable a user (admins): their tokens, keys and web sessions stop working at once."""
    user, ended = identity.set_active(db, principal.user_id, user_id, active=False)
    return UserStateOut(id=user.id, active=user.is_active, web_sessions_ended=ended)


@router.post("/users/{user_id}/enable", responses=problem_responses(401, 403, 404))
def enable_user(
    user_id: Id, principal: Annotated[Principal, allow(Role.ADMIN)], db: WriteDb
) -> UserStateOut:
    """Enable a disabled user again (admins)."""
    user, _ = identity.set_active(db, principal.user_id, user_id, active=True)
    return UserStateOut(id=user.id, active=user.is_active, web_sessions_ended=0)


@router.post(
    "/users/{user_id}/totp/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
def reset_totp(
    user_id: Id, principal: Annotated[Principal, allow(Role.ADMIN)], db: WriteDb
) -> Response:
    """Remove a user's second factor and recovery codes (admins; a lost device)."""
    identity.get_user(db, user_id)
    totp.reset(db, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 422, 429),
)
def change_password(
    body: PasswordChangeIn,
    request: Request,
    principal: Annotated[Principal, allow(*ANY_ROLE)],
    db: WriteDb,
) -> Response:
    """Change your password; every web session of yours ends at once."""
    set_resource_id(request, principal.user_id)
    identity.change_password(
        db,
        principal.user_id,
        current_password=body.current_password,
        new_password=body.new_password,
        policy=throttle_policy(request.app.state.settings),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/me/totp",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 409),
)
def begin_totp(
    request: Request, principal: Annotated[Principal, allow(*ANY_ROLE)], db: WriteDb
) -> TotpEnrolmentOut:
    """Begin setting up a second factor: the secret is shown once, as an otpauth URI."""
    set_resource_id(request, principal.user_id)
    uri = totp.begin_enrolment(db, identity.get_user(db, principal.user_id))
    return TotpEnrolmentOut(otpauth_uri=uri)


@router.post("/me/totp/confirm", responses=problem_responses(401, 409, 422))
def confirm_totp(
    body: TotpCodeIn,
    request: Request,
    principal: Annotated[Principal, allow(*ANY_ROLE)],
    db: WriteDb,
) -> RecoveryCodesOut:
    """Switch the second factor on with a first code; the recovery codes are shown once."""
    set_resource_id(request, principal.user_id)
    return RecoveryCodesOut(recovery_codes=totp.confirm_enrolment(db, principal.user_id, body.code))
