"""The admin's pages: the first screen (audit chain, runs), a run's outcome, and the users.

Everything here calls the same use cases as the API's admin routes; each page is admins' only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import Response
from sqlalchemy import select

from placement.solution import Reason
from service import audit as audit_routes
from service import i18n, problems
from service.deps import ReadDb, UnitOfWorkRoute, WriteDb
from service.routes import notifications as notification_routes
from service.routes import runs as run_routes
from service.ui import forms, plain
from service.ui.routes import PREFIX, Form, all_shelters, named, redirect, render
from service.ui.session import page_allow
from shelters import audit, identity, notifications, registry, runs
from shelters.errors import N_, DomainError, InvalidInput
from shelters.identity import Principal, Role
from shelters.models import RunOutcome, User
from shelters.pagination import MAX_LIMIT

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=UnitOfWorkRoute)
ADMIN = page_allow(Role.ADMIN)
RECENT_RUNS = 20
RECENT_DELIVERIES = 10
DELIVERY_WORDS = {
    "pending": N_("waiting to be sent"),
    "delivered": N_("delivered"),
    "failed": N_("failed for good"),
}
RUN_WORDS = {
    "queued": N_("waiting for a solver"),
    "running": N_("being solved"),
    "done": N_("done"),
    "failed": N_("failed"),
}


def _runs(db: Any, principal: Principal) -> list[Any]:
    return list(runs.list_runs(db, principal, limit=RECENT_RUNS, cursor=None).items)


def _admin_page(
    request: Request,
    db: Any,
    principal: Principal,
    *,
    checked: audit.Verification | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    seq, digest = audit.head(db)
    context = {
        "head": seq,
        "digest": digest,
        "checked": checked,
        "runs": _runs(db, principal),
        "run_words": lambda s: plain.words(i18n.request_locale(request), RUN_WORDS, s),
        "max_time": request.app.state.settings.max_run_time_limit_s,
        "error": error,
        "escalated": notifications.escalated_waiting(db),
    }
    return render(request, "admin.html", context, status)


@router.get("/admin")
def admin_page(
    request: Request,
    principal: Annotated[Principal, ADMIN],
    db: ReadDb,
    verify: bool = False,
) -> Response:
    """The admin's first screen: the audit chain's state, then the matching runs."""
    return _admin_page(request, db, principal, checked=audit.verify(db) if verify else None)


@router.post("/runs")
def start_run(
    request: Request,
    principal: Annotated[Principal, ADMIN],
    form: Form,
    db: WriteDb,
    background: BackgroundTasks,
) -> Response:
    """Queue a batch over every pending request, then follow it on its page."""
    settings = request.app.state.settings
    try:
        try:
            limit = float(str(form.get("time_limit_s") or "10"))
        except ValueError:
            raise InvalidInput("time_limit_s must be a number of seconds") from None
        if limit <= 0:  # the form's bound; the upper one is the domain's
            raise InvalidInput(
                "time_limit_s may be at most {limit}", limit=settings.max_run_time_limit_s
            )
        run = runs.create_run(
            db,
            principal,
            runs.RunParameters(
                time_limit_s=limit, seed=0, dry_run=form.get("dry_run") == "yes", request_ids=None
            ),
            max_active=settings.max_active_runs,
            max_time_limit_s=settings.max_run_time_limit_s,
        )
    except DomainError as exc:
        db.rollback()
        error = i18n.error_detail(exc, i18n.request_locale(request))
        return _admin_page(request, db, principal, error=error, status=422)
    audit_routes.set_resource_id(request, run.id)
    background.add_task(run_routes.dispatch, request, run.id)
    return redirect(request, f"{PREFIX}/runs/{run.id}")


@router.get("/runs/{run_id}")
def run_page(
    run_id: int, request: Request, principal: Annotated[Principal, ADMIN], db: ReadDb
) -> Response:
    """A run: refreshes itself until it ends, then says what it placed and why not the rest."""
    locale = i18n.request_locale(request)
    run = runs.get_run(db, principal, run_id)
    unplaced = []
    for outcome in db.scalars(
        select(RunOutcome)
        .where(RunOutcome.run_id == run.id, RunOutcome.placed.is_(False))
        .order_by(RunOutcome.request_id)
    ):
        reasons = [
            Reason(r["code"], tuple(r.get("shelters", [])), tuple(r.get("by", [])))
            for r in outcome.reasons
        ]
        unplaced.append(
            {
                "request_id": outcome.request_id,
                "reasons": [
                    (
                        group.shelter_id,
                        [plain.reason_words(code, locale=locale) for code in group.reasons],
                    )
                    for group in plain.solver_reasons(reasons)
                ],
            }
        )
    context = {
        "run": run,
        "unplaced": unplaced,
        "status_words": plain.words(locale, RUN_WORDS, run.status),
        "following": run.status in ("queued", "running"),
    }
    return render(request, "run.html", context)


def _users_page(
    request: Request,
    db: Any,
    principal: Principal,
    *,
    cursor: str | None = None,
    error: str | None = None,
    created: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    page = identity.list_users(db, limit=100, cursor=cursor)
    organisations = registry.list_organizations(db, limit=MAX_LIMIT, cursor=None).items
    locale = i18n.request_locale(request)
    context = {
        "users": page.items,
        "next_cursor": page.next_cursor,
        "error": error,
        "created": created,
        "values": values or {},
        "roles": [role.value for role in Role],
        "organisations": {o.id: o.name for o in organisations},
        "all_shelters": [(s.id, named(s, locale)) for s in all_shelters(db, principal)],
        "languages": i18n.language_names(),
    }
    return render(request, "users.html", context, status)


@router.get("/users")
def users_page(
    request: Request,
    principal: Annotated[Principal, ADMIN],
    db: ReadDb,
    cursor: str | None = None,
) -> Response:
    """Every user: role, organisation, whether they may log in; create, disable or enable."""
    return _users_page(request, db, principal, cursor=cursor)


@router.post("/users")
def create_user(
    request: Request,
    principal: Annotated[Principal, ADMIN],
    form: Form,
    db: WriteDb,
) -> Response:
    """Create a user with the API's rules; their first password is shown this once."""
    password = identity.first_password()
    try:
        body = forms.user_from(form, password=password)
        user = identity.create_user(
            db,
            username=body.username,
            password=body.password,
            role=body.role,
            organization_id=body.organization_id,
            shelter_ids=body.shelter_ids,
            locale=body.locale,
        )
    except DomainError as exc:
        db.rollback()
        error = i18n.error_detail(exc, i18n.request_locale(request))
        values = {
            "username": form.get("username") or "",
            "role": form.get("role") or "",
            "organization_id": form.get("organization_id") or "",
            "shelter_ids": form.getlist("shelter_ids"),
            "locale": form.get("locale") or "",
        }
        status = problems.kind_of(exc).status
        return _users_page(request, db, principal, error=error, values=values, status=status)
    audit_routes.set_resource_id(request, user.id)
    created = {"id": user.id, "username": user.username, "password": password}
    return _users_page(request, db, principal, created=created, status=201)


@router.get("/users/{user_id}/api-keys")
def api_keys_page(
    user_id: int, request: Request, principal: Annotated[Principal, ADMIN], db: ReadDb
) -> Response:
    """A user's API keys, newest first: when made, last used, revoked; never their secrets."""
    keys = identity.list_api_keys(db, principal, user_id)
    user = db.get(User, user_id)  # list_api_keys said NotFound if there is none
    return render(request, "api_keys.html", {"user": user, "keys": keys})


@router.post("/api-keys/{key_id}/revoke")
def revoke_api_key(
    key_id: int, request: Request, principal: Annotated[Principal, ADMIN], db: WriteDb
) -> Response:
    """Revoke an API key at once (revoking it again keeps the first time)."""
    key = identity.revoke_api_key(db, principal, key_id)
    target = f"{PREFIX}/users/{key.user_id}/api-keys?notice=key_revoked#key-{key.id}"
    return redirect(request, target)


def _set_active(
    request: Request, principal: Principal, form: Any, db: Any, user_id: int, *, active: bool
) -> Response:
    if not active and form.get("confirm") != "yes":
        message = i18n.gettext(
            i18n.request_locale(request), N_("Tick the box to confirm that this user is disabled.")
        )
        return _users_page(request, db, principal, error=message, status=422)
    identity.set_active(db, principal.user_id, user_id, active=active)
    return redirect(request, f"{PREFIX}/users#user-{user_id}")


@router.post("/users/{user_id}/disable")
def disable_user(
    user_id: int,
    request: Request,
    principal: Annotated[Principal, ADMIN],
    form: Form,
    db: WriteDb,
) -> Response:
    """Disable a user after a tick to confirm: their tokens, keys and sessions stop at once."""
    return _set_active(request, principal, form, db, user_id, active=False)


@router.post("/users/{user_id}/enable")
def enable_user(
    user_id: int,
    request: Request,
    principal: Annotated[Principal, ADMIN],
    form: Form,
    db: WriteDb,
) -> Response:
    """Enable a disabled user again."""
    return _set_active(request, principal, form, db, user_id, active=True)


@router.get("/webhooks")
def webhooks_page(
    request: Request,
    principal: Annotated[Principal, ADMIN],
    db: ReadDb,
    cursor: str | None = None,
) -> Response:
    """Each webhook endpoint and its latest deliveries: status, tries, last error, next try."""
    locale = i18n.request_locale(request)
    page = notifications.list_endpoints(db, limit=RECENT_RUNS, cursor=cursor)
    endpoints = [
        (
            notification_routes.endpoint_out(endpoint),
            [
                notification_routes.delivery_out(d)
                for d in notifications.deliveries(
                    db, endpoint.id, limit=RECENT_DELIVERIES, cursor=None
                ).items
            ],
        )
        for endpoint in page.items
    ]
    context = {
        "endpoints": endpoints,
        "next_cursor": page.next_cursor,
        "delivery_words": lambda s: plain.words(locale, DELIVERY_WORDS, s),
    }
    return render(request, "webhooks.html", context)
