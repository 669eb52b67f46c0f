"""Tokens, the caller, users and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from service.audit import set_resource_id
from service.auth import ANY_ROLE, PUBLIC, allow, issue_token
from service.deps import ReadDb, UnitOfWorkRoute, WriteDb
from service.problems import problem_responses
from service.routes import API_PREFIX
from service.schemas import ApiKeyOut, Id, MeOut, TokenOut, UserIn, UserOut
from service.settings import Settings
from shelters import identity
from shelters.identity import Principal, Role, ThrottlePolicy
from shelters.models import User

router = APIRouter(prefix=API_PREFIX, tags=["identity"], route_class=UnitOfWorkRoute)


def _user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        role=Role(user.role),
        organization_id=user.organization_id,
        shelter_ids=[s.id for s in user.shelters],
    )


@router.post(
    "/auth/token",
    dependencies=[PUBLIC],
    responses=problem_responses(401, 422, 429),
)
def create_token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: WriteDb,
) -> TokenOut:
    """Exchange a username and password for a bearer token (OAuth2 password flow)."""
    settings: Settings = request.app.state.settings
    user = identity.authenticate(
        db,
        username=form.username,
        password=form.password,
        policy=ThrottlePolicy(
            max_failures=settings.login_max_failures,
            window_s=settings.login_window_s,
            lockout_s=settings.login_lockout_s,
        ),
    )
    set_resource_id(request, user.id)
    token, lifetime = issue_token(settings, request.app.state.secret_key, user)
    return TokenOut(access_token=token, expires_in=lifetime)


@router.get("/me", responses=problem_responses(401))
def read_me(principal: Annotated[Principal, allow(*ANY_ROLE)], db: ReadDb) -> MeOut:
    """The calling user."""
    return _user_out(identity.get_user(db, principal.user_id))


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
    )
    set_resource_id(request, user.id)
    return _user_out(identity.get_user(db, user.id))


@router.post(
    "/users/{user_id}/api-keys",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 404),
)
def create_api_key(
    user_id: Id, principal: Annotated[Principal, allow(*ANY_ROLE)], db: WriteDb
) -> ApiKeyOut:
    """Create an API key for yourself, or (admins) for any user; the token is shown once."""
    user = identity.user_for_key_issue(db, principal, user_id)
    return ApiKeyOut(token=identity.create_api_key(db, user))
