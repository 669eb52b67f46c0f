"""Server-rendered pages under /ui for coordinators, caseworkers, admins and funders.

Each page declares who may open it (``page_allow`` or ``PUBLIC``) exactly as the API's routes
do, takes the same unit of work, and calls the same use cases as the API, so every rule and
permission is the domain's. Forms work without JavaScript; every POST carries the session's
CSRF token. A form the domain refuses (a stale version, too few beds) is shown again with the
domain's message, and nothing of it is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from service import audit, i18n, metrics
from service.auth import ANY_ROLE, PUBLIC, log_in
from service.deps import ReadDb, UnitOfWorkRoute, WriteDb
from service.ratelimit import limited
from service.routes import reports as report_routes
from service.routes.cases import case_out, requests_out
from service.routes.placements import placement_out
from service.routes.shelters import shelter_out, unit_out
from service.schemas import PlacementOut, ShelterOut
from service.settings import Settings
from service.ui import forms, plain
from service.ui.session import (
    CSRF_FIELD,
    anonymous_session,
    logged_in_session,
    page_allow,
    posted_form,
    read_session,
    session_principal,
    write_session,
)
from shelters import (
    availability,
    cases,
    freshness,
    identity,
    lifecycle,
    matching,
    notifications,
    registry,
    web_sessions,
)
from shelters.catalogue import EXPLOITATION_TYPES, REFERRAL_SOURCES
from shelters.errors import (
    N_,
    CapacityExceeded,
    Conflict,
    DomainError,
    InvalidCredentials,
    InvalidInput,
    SecondFactorRequired,
    StaleVersion,
    TooManyAttempts,
)
from shelters.identity import Principal, Role
from shelters.models import DECLINE_REASONS, utcnow
from shelters.names import localized_name
from shelters.pagination import MAX_LIMIT
from shelters.profiles import CaseProfile

PREFIX = "/ui"
HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = {"refuge.css": "text/css; charset=utf-8"}
router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=UnitOfWorkRoute)

COORDINATING = (Role.ADMIN, Role.COORDINATOR)
CASE_READERS = (Role.ADMIN, Role.CASEWORKER)
BED_FINDERS = (Role.ADMIN, Role.COORDINATOR, Role.CASEWORKER)
REPORT_READERS = (Role.ADMIN, Role.FUNDER)
HOME = {
    Role.ADMIN: "/ui/admin",
    Role.COORDINATOR: "/ui/coordinator",
    Role.CASEWORKER: "/ui/caseworker",
    Role.FUNDER: "/ui/reports",
}
WAITING = ("proposed", "accepted", "admitted")
NOTICES = {
    "unit_saved": N_("Beds saved."),
    "unit_confirmed": N_("Thank you: the numbers are marked as current."),
    "accept": N_("Placement accepted: the beds stay held until you admit the people."),
    "decline": N_("Placement declined: its beds are free again."),
    "admit": N_("Admitted: the held beds are now occupied."),
    "discharge": N_("Discharged: the beds are free again."),
    "case_created": N_("Case created."),
    "case_requested": N_("Case created and a bed requested: use “Match now” to hold beds."),
    "request_created": N_("Request created: use “Match now” to hold beds."),
    "decline_lifted": N_("The shelter may be proposed for this request again."),
    "logged_out": N_("You are logged out."),
    "settings_saved": N_("Settings saved."),
    "key_revoked": N_("API key revoked: it no longer works."),
}
Action = Literal["accept", "decline", "admit", "discharge"]
Form = Annotated[FormData, Depends(posted_form)]


# --- rendering --------------------------------------------------------------------------------


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def named(obj: Any, locale: str) -> str:
    """A region's or shelter's name in ``locale`` (its ``names``), else its ``name``."""
    return "" if obj is None else localized_name(obj, None, locale)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> Response:
    """A page in the request's language (``Content-Language``), its session cookie re-signed.

    Re-signing restarts the session's idle clock.
    """
    locale = i18n.request_locale(request)
    templates: Jinja2Templates = request.app.state.ui_templates[locale]
    session = anonymous_session(request)
    principal = getattr(request.state, "principal", None)
    zone = _settings(request).timezone
    notice = NOTICES.get(request.query_params.get("notice", ""))
    base = {
        "principal": principal,
        "home": HOME.get(principal.role) if principal else None,
        "csrf_field": CSRF_FIELD,
        "csrf": session.csrf,
        "notice": i18n.gettext(locale, notice) if notice else None,
        "when": lambda moment: i18n.format_datetime(moment, locale, zone),
        "day": lambda value: i18n.format_date(value, locale),
        "number": lambda value: i18n.format_number(value, locale),
        "words": lambda message: i18n.gettext(locale, message),
        "role_words": lambda role: plain.words(locale, plain.ROLE_WORDS, role),
        "state": lambda code: plain.words(locale, plain.STATE_WORDS, code),
        "sex": lambda code: plain.words(locale, plain.SEX_WORDS, code),
        "member_status": lambda code: plain.words(locale, plain.STATUS_WORDS, code),
        "named": lambda obj: named(obj, locale),
        "decline": lambda code: plain.words(locale, plain.DECLINE_WORDS, code),
        # How long ago a moment was, or how long until it comes, as people say it.
        "ago": lambda moment: i18n.format_duration(utcnow() - moment, locale),
        "left": lambda moment: i18n.format_duration(moment - utcnow(), locale),
        "unread": _unread(request, principal),
        "age_out": lambda member: _age_out(member, locale, _settings(request).majority_age),
    }
    response = templates.TemplateResponse(request, name, base | (context or {}), status)
    i18n.say_language(response, locale)
    write_session(request, response, session)
    return response


def _unread(request: Request, principal: Principal | None) -> int:
    """The caller's unread inbox entries, for the count beside "Inbox"."""
    if principal is None:
        return 0
    with request.app.state.sessions.read() as session:
        return notifications.unread_count(session, principal)


def redirect(request: Request, url: str) -> Response:
    """303 See Other: the browser GETs ``url`` (post/redirect/get)."""
    response = RedirectResponse(url, status_code=303)
    session = read_session(request)
    if session is not None:
        write_session(request, response, session)
    return response


def _undo(db: Session, exc: DomainError) -> None:
    """Forget what a refused use case may have flushed (a login failure counts all the same)."""
    if not exc.commit_anyway:
        db.rollback()


# --- public: login, static files ----------------------------------------------------------------


@router.get("/static/{name}", dependencies=[PUBLIC])
def static_file(name: str) -> Response:
    """The pages' stylesheet (only the files listed in STATIC)."""
    if name not in STATIC:
        return Response(status_code=404)
    return Response((HERE / "static" / name).read_bytes(), media_type=STATIC[name])


def _safe_next(target: str | None) -> str:
    if target and target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target:
        return target
    return PREFIX


@router.get("/login", dependencies=[PUBLIC])
def login_form(request: Request, next: str | None = None) -> Response:
    """The login form."""
    session = read_session(request)
    if session is not None and session.user_id is not None:
        return redirect(request, _safe_next(next))
    return render(request, "login.html", {"next": _safe_next(next)})


@router.post("/login", dependencies=[PUBLIC])
def login(request: Request, form: Form, db: WriteDb) -> Response:
    """Log in through the same throttled check as the API's token endpoint."""
    sent_next = form.get("next")
    target = _safe_next(sent_next if isinstance(sent_next, str) else None)
    session = read_session(request)
    sent = form.get(CSRF_FIELD)
    locale = i18n.request_locale(request)
    if session is None or sent != session.csrf:
        message = i18n.gettext(locale, N_("Your session had expired. Please log in again."))
        audit.set_outcome(request, "denied")
        return render(request, "login.html", {"next": target, "error": message}, 403)
    settings = _settings(request)
    username = str(form.get("username") or "")
    code = form.get("totp")
    try:
        user = log_in(
            db,
            settings,
            username=username,
            password=str(form.get("password") or ""),
            code=code if isinstance(code, str) and code else None,
        )
    except TooManyAttempts as exc:
        minutes = max(1, round(exc.retry_after_s / 60))
        message = i18n.ngettext(
            locale,
            "Too many failed logins. Try again in about {n} minute.",
            "Too many failed logins. Try again in about {n} minutes.",
            minutes,
        )
        audit.set_outcome(request, "denied")
        return render(request, "login.html", {"next": target, "error": message}, 429)
    except InvalidCredentials as exc:
        audit.set_outcome(request, "denied")
        message = i18n.gettext(
            locale,
            N_("Enter a valid one-time code from your authenticator app (or a recovery code).")
            if isinstance(exc, SecondFactorRequired)
            else N_("Incorrect username or password."),
        )
        ctx = {"next": target, "error": message, "username": username}
        return render(request, "login.html", ctx, 401)
    audit.set_resource_id(request, user.id)
    if session.token is not None:  # logged in already (perhaps as someone else): that ends
        web_sessions.end(db, session.token)
    # A new session id at every login: a session fixed before login is never the one used.
    token = web_sessions.start(db, user.id, request.app.state.ui_settings.policy)
    response = RedirectResponse(target, status_code=303)
    write_session(request, response, logged_in_session(request, user.id, token))
    return response


@router.post("/logout")
def logout(
    request: Request, principal: Annotated[Principal, page_allow(*ANY_ROLE)], db: WriteDb
) -> Response:
    """End the session on the server: its cookie, even copied, no longer logs anyone in."""
    audit.set_resource_id(request, principal.user_id)
    session = read_session(request)
    if session is not None and session.token is not None:
        web_sessions.end(db, session.token)
    response = RedirectResponse(f"{PREFIX}/login?notice=logged_out", status_code=303)
    write_session(request, response, None)
    return response


@router.get("/settings")
def settings_page(
    request: Request, principal: Annotated[Principal, page_allow(*ANY_ROLE)]
) -> Response:
    """Choose the language of the pages."""
    context = {
        "chosen": principal.locale,
        "languages": i18n.language_names(),
        "zone": _settings(request).timezone,
    }
    return render(request, "settings.html", context)


@router.post("/settings")
def save_settings(
    request: Request,
    principal: Annotated[Principal, page_allow(*ANY_ROLE)],
    form: Form,
    db: WriteDb,
) -> Response:
    """Save the language chosen (empty: the browser's); the next page is in it."""
    chosen = form.get("locale")
    locale = chosen if isinstance(chosen, str) and chosen else None
    audit.set_resource_id(request, principal.user_id)
    try:
        identity.set_locale(db, principal, principal.user_id, locale)
    except InvalidInput as exc:
        _undo(db, exc)
        context = {
            "chosen": principal.locale,
            "languages": i18n.language_names(),
            "zone": _settings(request).timezone,
            "error": i18n.error_detail(exc, i18n.request_locale(request)),
        }
        return render(request, "settings.html", context, 422)
    return redirect(request, f"{PREFIX}/settings?notice=settings_saved")


@router.get("")
def home(request: Request, principal: Annotated[Principal, page_allow(*ANY_ROLE)]) -> Response:
    """Each role's own page."""
    return redirect(request, HOME[principal.role])


# --- coordinators -------------------------------------------------------------------------------


def all_shelters(db: Session, principal: Principal) -> list[ShelterOut]:
    """The shelters the caller may read, as the API shows them to the same caller."""
    located = registry.located_shelters(db, principal)
    shelters: list[ShelterOut] = []
    cursor: str | None = None
    while True:
        page = registry.list_shelters(db, principal, limit=MAX_LIMIT, cursor=cursor)
        shelters.extend(shelter_out(s, located=s.id in located) for s in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return shelters


def _all_units(db: Session, principal: Principal, shelter_id: int) -> list[Any]:
    units: list[Any] = []
    cursor: str | None = None
    while True:
        page = registry.list_units(db, principal, shelter_id, limit=MAX_LIMIT, cursor=cursor)
        units.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return units


def _network(db: Session) -> tuple[dict[int, Any], dict[int, str]]:
    """Every shelter's public face and unit names, as /availability shows them to any reader."""
    shelters: dict[int, Any] = {}
    units: dict[int, str] = {}
    cursor: str | None = None
    while True:
        page = availability.list_availability(db, limit=MAX_LIMIT, cursor=cursor)
        for item in page.items:
            shelters[item.id] = item
            units.update({u.id: u.name for u in item.units})
        cursor = page.next_cursor
        if cursor is None:
            return shelters, units


def _coordinator_page(
    request: Request,
    db: Session,
    principal: Principal,
    error: str | None = None,
    status: int = 200,
    *,
    shelter_id: int | None = None,
) -> Response:
    """The coordinator's page: their shelters and what waits for them.

    An admin may read every shelter, which makes one page thousands of pixels tall: admins
    choose one shelter (``shelter_id``, from ``?shelter=``) and see it and what waits there.
    """
    majority = _settings(request).majority_age
    hours = _settings(request).stale_after_hours
    locale = i18n.request_locale(request)
    choosing = principal.role is Role.ADMIN
    shelters = all_shelters(db, principal)
    choices: list[tuple[int, str, int]] = []
    if choosing:
        if shelter_id is not None:
            registry.get_shelter(db, principal, shelter_id)  # NotFound: a 404 page
        waiting_at: dict[int, int] = {}
        for placement_status in WAITING:
            page = lifecycle.list_placements(
                db, principal, limit=MAX_LIMIT, cursor=None, status=placement_status
            )
            for p in page.items:
                waiting_at[p.shelter_id] = waiting_at.get(p.shelter_id, 0) + 1
        choices = [(s.id, named(s, locale), waiting_at.get(s.id, 0)) for s in shelters]
        shelters = [s for s in shelters if s.id == shelter_id]
    regions = {r.code: named(r, locale) for r in registry.list_regions(db)}
    units = {
        s.id: [unit_out(u, stale_after_hours=hours) for u in _all_units(db, principal, s.id)]
        for s in shelters
    }
    unit_names = {u.id: u.name for us in units.values() for u in us}
    waiting: list[PlacementOut] = []
    if not choosing or shelter_id is not None:
        for placement_status in WAITING:
            page = lifecycle.list_placements(
                db,
                principal,
                limit=MAX_LIMIT,
                cursor=None,
                status=placement_status,
                shelter_id=shelter_id if choosing else None,
            )
            waiting.extend(placement_out(db, principal, p, majority) for p in page.items)
    context = {
        "shelters": shelters,
        "choosing": choosing,
        "choices": choices,
        "chosen": shelter_id,
        "regions": regions,
        "units": units,
        "unit_names": unit_names,
        "names": {s.id: named(s, locale) for s in shelters},
        "waiting": waiting,
        "decline_reasons": [
            (r, plain.words(locale, plain.DECLINE_WORDS, r)) for r in DECLINE_REASONS
        ],
        "services": plain.service_words(locale),
        "error": error,
    }
    return render(request, "coordinator.html", context, status)


def _chosen(principal: Principal, shelter_id: int) -> int | None:
    """The shelter an admin's page shows after an action there; coordinators see all theirs."""
    return shelter_id if principal.role is Role.ADMIN else None


def _back_to_shelter(principal: Principal, shelter_id: int, notice: str, anchor: str) -> str:
    """The coordinator page after an action: for an admin, at the shelter they acted in."""
    chosen = f"&shelter={shelter_id}" if principal.role is Role.ADMIN else ""
    return f"{PREFIX}/coordinator?notice={notice}{chosen}#{anchor}"


@router.get("/coordinator")
def coordinator(
    request: Request,
    principal: Annotated[Principal, page_allow(*COORDINATING)],
    db: WriteDb,
    shelter: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """My shelters, their beds, and the placements waiting for me (admins: one shelter)."""
    return _coordinator_page(request, db, principal, shelter_id=shelter)


@router.get("/units/{unit_id}/edit")
def edit_unit(
    unit_id: int,
    request: Request,
    principal: Annotated[Principal, page_allow(*COORDINATING)],
    db: WriteDb,
) -> Response:
    """The form to change a unit's beds; it carries the version it was read at."""
    unit = unit_out(
        registry.get_unit(db, principal, unit_id),
        stale_after_hours=_settings(request).stale_after_hours,
    )
    return render(request, "unit_edit.html", {"unit": unit, "values": unit.model_dump()})


@router.post("/units/{unit_id}")
def save_unit(
    unit_id: int,
    request: Request,
    principal: Annotated[Principal, page_allow(*COORDINATING)],
    form: Form,
    db: WriteDb,
) -> Response:
    """Change a unit's beds if nobody changed it since the form was read."""
    fields = ("capacity", "out_of_service", "external_occupied")
    values = {name: str(form.get(name) or "") for name in (*fields, "version")}
    try:
        changes = {name: forms.whole_number(form, name) for name in fields}
        version = forms.whole_number(form, "version")
        registry.update_unit(db, principal, unit_id, expected_version=version, changes=changes)
    except StaleVersion as exc:
        _undo(db, exc)
        current = unit_out(
            registry.get_unit(db, principal, unit_id),
            stale_after_hours=_settings(request).stale_after_hours,
        )
        ctx = {"unit": current, "values": current.model_dump(), "stale": True, "tried": values}
        return render(request, "unit_edit.html", ctx, 409)
    except (CapacityExceeded, InvalidInput) as exc:
        _undo(db, exc)
        current = unit_out(
            registry.get_unit(db, principal, unit_id),
            stale_after_hours=_settings(request).stale_after_hours,
        )
        error = i18n.error_detail(exc, i18n.request_locale(request))
        ctx = {"unit": current, "values": values, "error": error}
        return render(request, "unit_edit.html", ctx, 409 if isinstance(exc, Conflict) else 422)
    shelter_id = registry.get_unit(db, principal, unit_id).shelter_id
    return redirect(
        request, _back_to_shelter(principal, shelter_id, "unit_saved", f"unit-{unit_id}")
    )


@router.post("/units/{unit_id}/confirm")
def confirm_unit(
    unit_id: int,
    request: Request,
    principal: Annotated[Principal, page_allow(*COORDINATING)],
    form: Form,
    db: WriteDb,
) -> Response:
    """One tap: this unit's numbers are still true (refused if it changed since the page)."""
    try:
        version = forms.whole_number(form, "version")
        registry.confirm_unit(db, principal, unit_id, expected_version=version)
    except (StaleVersion, InvalidInput) as exc:
        _undo(db, exc)
        message = i18n.gettext(
            i18n.request_locale(request),
            N_("Someone changed this unit meanwhile: check its numbers again."),
        )
        shelter_id = registry.get_unit(db, principal, unit_id).shelter_id
        return _coordinator_page(
            request,
            db,
            principal,
            error=message,
            status=409,
            shelter_id=_chosen(principal, shelter_id),
        )
    shelter_id = registry.get_unit(db, principal, unit_id).shelter_id
    target = _back_to_shelter(principal, shelter_id, "unit_confirmed", f"unit-{unit_id}")
    return redirect(request, target)


@router.post("/placements/{placement_id}/{action}")
def act_on_placement(
    placement_id: int,
    action: Action,
    request: Request,
    principal: Annotated[Principal, page_allow(*COORDINATING)],
    form: Form,
    db: WriteDb,
) -> Response:
    """Accept, decline (with a reason from the fixed list), admit or discharge a placement."""
    try:
        # A decline needs its tick and a reason, from the server's side too.
        reason = forms.decline_from(form) if action == "decline" else None
        placement = lifecycle.transition(db, principal, placement_id, action, reason=reason)
    except (Conflict, InvalidInput) as exc:
        _undo(db, exc)
        status = 409 if isinstance(exc, Conflict) else 422
        error = i18n.error_detail(exc, i18n.request_locale(request))
        shelter_id = lifecycle.get_placement(db, principal, placement_id).shelter_id
        return _coordinator_page(
            request,
            db,
            principal,
            error=error,
            status=status,
            shelter_id=_chosen(principal, shelter_id),
        )
    return redirect(request, _back_to_shelter(principal, placement.shelter_id, action, "waiting"))


# --- caseworkers --------------------------------------------------------------------------------


def _caseworker_page(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    majority = _settings(request).majority_age
    cursor = request.query_params.get("cursor")
    only_escalated = request.query_params.get("escalated") == "1"
    page = cases.list_cases(
        db, principal, limit=50, cursor=cursor, code=None, escalated=only_escalated
    )
    rows: list[dict[str, Any]] = []
    for case in page.items:
        requests = lifecycle.list_requests(
            db, principal, limit=MAX_LIMIT, cursor=None, case_id=case.id
        ).items
        placements: list[PlacementOut] = []
        for r in requests:
            # Every placement of the request, ended ones too: a discharged family shows its
            # discharge, and a declined proposal says which shelter declined.
            found = lifecycle.list_placements(
                db, principal, limit=MAX_LIMIT, cursor=None, request_id=r.id
            ).items
            placements.extend(placement_out(db, principal, p, majority) for p in found)
        shown = requests_out(db, requests)
        open_request = next((r for r in requests if r.status in ("pending", "proposed")), None)
        rows.append(
            {
                "case": case_out(db, case, majority),
                "requests": shown,
                "declined": {r.id: r.declined_shelter_ids for r in shown},
                "open": open_request,
                "may_request": lifecycle.holding_request_or_placement(db, case.id) is None,
                "placements": placements,
                "standing": _standing(shown, placements),
            }
        )
    # Most urgent first: escalated requests, then live ones by priority, then the newest case.
    rows.sort(key=lambda row: (-_urgency(row), -row["case"].id))
    shelters, unit_names = _network(db)
    context = {
        "rows": rows,
        "next_cursor": page.next_cursor,
        "only_escalated": only_escalated,
        "escalated_count": notifications.escalated_waiting(
            db, organization_id=None if principal.role is Role.ADMIN else principal.organization_id
        ),
        "shelters": shelters,
        "unit_names": unit_names,
        "error": error,
        "escalate_hours": {
            priority: i18n.format_number(hours, i18n.request_locale(request))
            for priority, hours in _settings(request).escalate_after_hours.items()
        },
    }
    return render(request, "caseworker.html", context, status)


LIVE_PLACEMENTS = ("proposed", "accepted", "admitted")


def _standing(requests: list[Any], placements: list[PlacementOut]) -> dict[str, Any]:
    """Where a case stands, for its first line: its live placement, else its newest request."""
    live = [p for p in placements if p.status in LIVE_PLACEMENTS]
    if live:
        placement = max(live, key=lambda p: p.id)
        held_for = next((r for r in requests if r.id == placement.request_id), None)
        return {"state": placement.status, "placement": placement, "request": held_for}
    if requests:
        newest = max(requests, key=lambda r: r.id)
        ended = [p for p in placements if p.request_id == newest.id]
        last = max(ended, key=lambda p: p.id) if ended else None
        return {"state": newest.status, "placement": last, "request": newest}
    return {"state": "none", "placement": None, "request": None}


def _urgency(row: dict[str, Any]) -> int:
    """A request still waiting for a bed or for the shelter's answer: its priority; else 0.

    An escalated request comes above every other.
    """
    standing = row["standing"]
    waiting = standing["request"]
    if standing["state"] in ("pending", "proposed") and waiting is not None:
        escalated = waiting.escalated_at is not None and waiting.status == "pending"
        return int(waiting.priority) + (10 if escalated else 0)
    return 0


def _my_cases(db: Session, principal: Principal) -> list[tuple[int, str]]:
    """My organisation's cases as (id, code), to choose whom a new case is kept apart from."""
    page = cases.list_cases(db, principal, limit=MAX_LIMIT, cursor=None, code=None)
    return [(c.id, c.code) for c in page.items if c.purged_at is None]


def _profile_form_context(
    request: Request,
    db: Session,
    values: forms.ProfileForm,
    *,
    field_error: str = "",
) -> dict[str, Any]:
    return {
        "values": values,
        "field_error": field_error,
        "region_options": [
            (r.code, named(r, i18n.request_locale(request))) for r in registry.list_regions(db)
        ],
        "services": plain.service_words(i18n.request_locale(request)),
        "exploitation_types": plain.code_words(i18n.request_locale(request), EXPLOITATION_TYPES),
        "referral_sources": plain.code_words(i18n.request_locale(request), REFERRAL_SOURCES),
    }


def _new_case_page(
    request: Request,
    db: Session,
    principal: Principal,
    values: forms.ProfileForm,
    *,
    request_values: dict[str, Any] | None = None,
    error: str | None = None,
    field_error: str = "",
    status: int = 200,
) -> Response:
    context = _profile_form_context(request, db, values, field_error=field_error) | {
        "my_cases": _my_cases(db, principal),
        "request_values": request_values or {"wanted": False, "priority": "", "preferred": []},
        "error": error,
    }
    return render(request, "case_new.html", context, status)


def _request_values(form: FormData) -> dict[str, Any]:
    priority = form.get("priority")
    return {
        "wanted": form.get("request_bed") == "on",
        "priority": priority if isinstance(priority, str) else "",
        "preferred": [v for v in form.getlist("preferred_regions") if isinstance(v, str) and v],
    }


@router.get("/caseworker")
def caseworker(
    request: Request, principal: Annotated[Principal, page_allow(*CASE_READERS)], db: WriteDb
) -> Response:
    """My organisation's cases and where each request stands, most urgent first."""
    return _caseworker_page(request, db, principal)


@router.get("/cases/new")
def new_case_form(
    request: Request, principal: Annotated[Principal, page_allow(Role.CASEWORKER)], db: WriteDb
) -> Response:
    """The form for a new case, with every field of a case and of its first request."""
    return _new_case_page(request, db, principal, forms.ProfileForm())


@router.post("/cases/new")
def new_case_form_again(
    request: Request,
    principal: Annotated[Principal, page_allow(Role.CASEWORKER)],
    form: Form,
    db: WriteDb,
) -> Response:
    """The same form again with what was entered and one more person; nothing is written."""
    values = forms.read_profile_form(form)
    return _new_case_page(request, db, principal, values, request_values=_request_values(form))


@router.post("/cases")
def create_case(
    request: Request,
    principal: Annotated[Principal, page_allow(Role.CASEWORKER)],
    form: Form,
    db: WriteDb,
) -> Response:
    """Create a case for my organisation, and its request for beds if asked, or neither."""
    values = forms.read_profile_form(form)
    wanted = _request_values(form)
    majority = _settings(request).majority_age
    try:
        separate = forms.separate_from_ids(values, {i for i, _ in _my_cases(db, principal)})
        case = cases.create_case(
            db,
            principal,
            forms.profile_from(values),
            separate_from_case_ids=separate,
            majority_age=majority,
        )
        if wanted["wanted"]:
            lifecycle.create_request(
                db,
                principal,
                case_id=case.id,
                priority=forms.priority_from(wanted["priority"]),
                preferred_regions=wanted["preferred"],
                majority_age=majority,
            )
    except (InvalidInput, Conflict) as exc:
        db.rollback()  # nothing half-written: neither the case nor its request
        error = i18n.error_detail(exc, i18n.request_locale(request))
        field_error = forms.field_of(exc) if isinstance(exc, InvalidInput) else ""
        return _new_case_page(
            request,
            db,
            principal,
            values,
            request_values=wanted,
            error=error,
            field_error=field_error,
            status=422,
        )
    notice = "case_requested" if wanted["wanted"] else "case_created"
    return redirect(request, f"{PREFIX}/caseworker?notice={notice}#case-{case.id}")


@router.post("/cases/{case_id}/requests")
def create_request(
    case_id: int,
    request: Request,
    principal: Annotated[Principal, page_allow(Role.CASEWORKER)],
    db: WriteDb,
) -> Response:
    """Ask for beds for one of my cases (priority by the default rule)."""
    try:
        lifecycle.create_request(
            db,
            principal,
            case_id=case_id,
            priority=None,
            preferred_regions=[],
            majority_age=_settings(request).majority_age,
        )
    except Conflict as exc:
        _undo(db, exc)
        error = i18n.error_detail(exc, i18n.request_locale(request))
        return _caseworker_page(request, db, principal, error=error, status=409)
    return redirect(request, f"{PREFIX}/caseworker?notice=request_created#case-{case_id}")


@router.post("/requests/{request_id}/declined-shelters/{shelter_id}/lift")
def lift_decline(
    request_id: int,
    shelter_id: int,
    request: Request,
    principal: Annotated[Principal, page_allow(Role.CASEWORKER)],
    db: WriteDb,
) -> Response:
    """Let a shelter that declined one of my requests be proposed for it again."""
    placement_request = lifecycle.lift_decline(db, principal, request_id, shelter_id)
    target = f"{PREFIX}/caseworker?notice=decline_lifted#case-{placement_request.case_id}"
    return redirect(request, target)


def _check_page(
    request: Request,
    db: Session,
    principal: Principal,
    profile: CaseProfile,
    *,
    case: Any = None,
    open_request: Any = None,
    separate_from_case_ids: list[int] | None = None,
    may_request: bool = False,
) -> Response:
    majority = _settings(request).majority_age
    result = availability.check(
        db, profile, majority_age=majority, separate_from_case_ids=separate_from_case_ids or []
    )
    shelters, unit_names = _network(db)
    statuses = cases.statuses(profile, majority)
    locale = i18n.request_locale(request)
    # Kilometres, never coordinates: to a shelter the caller may not locate, from its region.
    km = availability.distances_km(
        db,
        registry.located_shelters(db, principal),
        profile,
        [e.shelter_id for e in result.eligible],
    )
    nearest_first = sorted(
        result.eligible,
        key=lambda e: (km.get(e.shelter_id, 10**9), -_free_beds(shelters, e.shelter_id)),
    )
    context = {
        "case": case,
        "open_request": open_request,
        "may_request": may_request,
        "regions": {r.code: named(r, locale) for r in registry.list_regions(db)},
        "eligible": nearest_first,
        "km": km,
        "free_beds": {e.shelter_id: _free_beds(shelters, e.shelter_id) for e in result.eligible},
        "ineligible": [
            (i.shelter_id, [plain.reason_words(r, profile, statuses, locale) for r in i.reasons])
            for i in result.ineligible
        ],
        "shelters": shelters,
        "unit_names": unit_names,
        "members": {
            m.ref: plain.member_words(profile, statuses, m.ref, locale) for m in profile.members
        },
    }
    return render(request, "find_bed.html", context)


def _free_beds(shelters: dict[int, Any], shelter_id: int) -> int:
    """The shelter's free beds now, as /availability shows them to any reader."""
    shelter = shelters.get(shelter_id)
    return int(shelter.available) if shelter is not None else 0


@router.get("/find-bed")
def find_bed_form(
    request: Request, principal: Annotated[Principal, page_allow(*BED_FINDERS)], db: WriteDb
) -> Response:
    """Describe a group to see which shelters could take it now."""
    context = _profile_form_context(request, db, forms.ProfileForm())
    return render(request, "find_bed_form.html", context)


@router.post("/find-bed")
def find_bed(
    request: Request,
    principal: Annotated[Principal, page_allow(*BED_FINDERS)],
    form: Form,
    db: WriteDb,
) -> Response:
    """The availability check for a group described in the form."""
    values = forms.read_profile_form(form)
    if forms.wants_another_member(form):
        return render(request, "find_bed_form.html", _profile_form_context(request, db, values))
    try:
        return _check_page(request, db, principal, forms.profile_from(values))
    except InvalidInput as exc:
        _undo(db, exc)
        error = i18n.error_detail(exc, i18n.request_locale(request))
        ctx = _profile_form_context(request, db, values, field_error=forms.field_of(exc))
        return render(request, "find_bed_form.html", ctx | {"error": error}, 422)


@router.post("/cases/{case_id}/check")
def check_case(
    case_id: int,
    request: Request,
    principal: Annotated[Principal, page_allow(*CASE_READERS)],
    db: WriteDb,
) -> Response:
    """The availability check for one of my cases."""
    case = cases.get_case(db, principal, case_id)
    requests = lifecycle.list_requests(db, principal, limit=MAX_LIMIT, cursor=None, case_id=case_id)
    open_request = next((r for r in requests.items if r.status in ("pending", "proposed")), None)
    return _check_page(
        request,
        db,
        principal,
        cases.profile_of(case),
        case=case_out(db, case, _settings(request).majority_age),
        open_request=open_request,
        separate_from_case_ids=sorted(cases.kept_apart(db, [case.id])[case.id]),
        may_request=case.purged_at is None
        and lifecycle.holding_request_or_placement(db, case.id) is None,
    )


# The API's per-user match budget, spent by clicks on the page as well.
PAGE_MATCH_LIMIT = limited("match", lambda s: s.match_rate_per_minute, source=session_principal)


@router.post("/requests/{request_id}/match", dependencies=[PAGE_MATCH_LIMIT])
def match(
    request_id: int,
    request: Request,
    principal: Annotated[Principal, page_allow(*CASE_READERS)],
    form: Form,
    db: WriteDb,
) -> Response:
    """Match one pending request now: hold the beds found, or say why there are none.

    With ``shelter_id`` (a shelter chosen on the "Find a bed" page), beds are held there or
    nowhere; without it, the best match.
    """
    settings = _settings(request)
    chosen = form.get("shelter_id")
    try:
        if chosen is not None and not (isinstance(chosen, str) and chosen.isdigit()):
            raise InvalidInput("choose a shelter from the list")
        started = time.perf_counter()
        result = matching.match_request(
            db,
            principal,
            request_id,
            snapshot=request.app.state.sessions.read,
            majority_age=settings.majority_age,
            hold_ttl=timedelta(hours=settings.hold_ttl_hours),
            shelter_id=int(chosen) if isinstance(chosen, str) else None,
        )
        metrics.observe_match(
            placed=result.placement is not None, seconds=time.perf_counter() - started
        )
    except (Conflict, InvalidInput) as exc:
        _undo(db, exc)
        error = i18n.error_detail(exc, i18n.request_locale(request))
        return _caseworker_page(
            request, db, principal, error=error, status=409 if isinstance(exc, Conflict) else 422
        )
    locale = i18n.request_locale(request)
    placement_request = lifecycle.get_request(db, principal, request_id)
    case = cases.get_case(db, principal, placement_request.case_id)
    profile = cases.profile_of(case)
    statuses = cases.statuses(profile, settings.majority_age)
    shelters, unit_names = _network(db)
    held = (
        placement_out(db, principal, result.placement, settings.majority_age)
        if result.placement is not None
        else None
    )
    stale = (
        freshness.stale_among(
            db, (b.unit_id for b in held.beds), after_hours=settings.stale_after_hours
        )
        if held is not None
        else []
    )
    context = {
        "case": case_out(db, case, settings.majority_age),
        "placement": held,
        "stale_units": [unit_names.get(unit_id, str(unit_id)) for unit_id in stale],
        "groups": [
            (g.shelter_id, [plain.reason_words(r, profile, statuses, locale) for r in g.reasons])
            for g in plain.solver_reasons(result.reasons)
        ],
        "members": {
            m.ref: plain.member_words(profile, statuses, m.ref, locale) for m in profile.members
        },
        "shelters": shelters,
        "unit_names": unit_names,
        "chosen": isinstance(chosen, str),
    }
    return render(request, "match.html", context)


# --- admins and funders -------------------------------------------------------------------------


def _report_period(first: date | None, last: date | None) -> tuple[date, date]:
    """The period asked for, by default the last calendar quarter that has ended (UTC).

    Funders may only ask for publication periods (a month, quarter or year whose quarter has
    ended), so that is the default for everyone.
    """
    if first is not None and last is not None:
        return first, last
    today = utcnow().date()
    quarter_start = today.replace(month=3 * ((today.month - 1) // 3) + 1, day=1)
    previous_end = quarter_start - timedelta(days=1)
    previous_start = previous_end.replace(month=previous_end.month - 2, day=1)
    return first or previous_start, last or previous_end


def _age_out(member: Any, locale: str, majority_age: int) -> str:
    """Words for a placed minor about to come of age (shelters.notifications), or ""."""
    facts = {"age": member.age if member.age is not None else -1}
    if member.comes_of_age:
        facts["comes_of_age"] = member.comes_of_age
    why = notifications.coming_of_age(facts, majority_age=majority_age, today=utcnow().date())
    if why == notifications.COMES_OF_AGE:
        year, month = (int(part) for part in member.comes_of_age.split("-"))
        return i18n.gettext(
            locale,
            N_("comes of age in {month}"),
            month=i18n.format_month(date(year, month, 1), locale),
        )
    if why == notifications.MAY_COME_OF_AGE:
        return i18n.gettext(locale, N_("may come of age during the stay"))
    return ""


def _asking_for_csv(request: Request) -> Request:
    """The same request as an API client asking for CSV (``Accept: text/csv``) would send it."""
    scope = dict(request.scope)
    scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"accept"]
    scope["headers"].append((b"accept", b"text/csv"))
    return Request(scope, request.receive)


FAIRNESS_GROUPINGS = {
    "status": N_("By member status"),
    "sex": N_("By sex"),
    "age_band": N_("By age band"),
    "region": N_("By region of origin"),
}


@dataclass(frozen=True)
class Preset:
    """A period one click away on the reports page."""

    label: str
    first: date
    last: date

    @property
    def query(self) -> str:
        return urlencode({"from": self.first.isoformat(), "to": self.last.isoformat()})


def _quarter_start(day: date) -> date:
    return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)


def report_presets(principal: Principal, today: date, locale: str) -> list[Preset]:
    """The last month, quarter and year a reader may ask for, as of ``today`` (UTC).

    Funders see published periods only (their quarter has ended, ``Period.published``): the
    last month of the last ended quarter, that quarter, and the last ended year. Others see the
    last ended month and quarter, the year so far and the last ended year.
    """
    quarter_end = _quarter_start(today) - timedelta(days=1)
    quarter = Preset(
        i18n.gettext(
            locale,
            N_("Quarter {quarter} {year}"),
            quarter=(quarter_end.month - 1) // 3 + 1,
            year=quarter_end.year,
        ),
        _quarter_start(quarter_end),
        quarter_end,
    )
    month_end = (
        quarter_end if principal.role is Role.FUNDER else today.replace(day=1) - timedelta(days=1)
    )
    month = Preset(i18n.format_month(month_end, locale), month_end.replace(day=1), month_end)
    last_year = Preset(
        str(today.year - 1), date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    )
    presets = [month, quarter]
    if principal.role is not Role.FUNDER and today > date(today.year, 1, 1):
        presets.append(
            Preset(
                i18n.gettext(locale, N_("{year} so far"), year=today.year),
                date(today.year, 1, 1),
                today - timedelta(days=1),
            )
        )
    presets.append(last_year)
    return presets


@router.get("/reports")
def reports_page(
    request: Request,
    principal: Annotated[Principal, page_allow(*REPORT_READERS)],
    first: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
) -> Response:
    """The allocation, grants and unmet-demand charts, their downloads, and preset periods."""
    first, to = _report_period(first, to)
    query = urlencode({"from": first.isoformat(), "to": to.isoformat()})
    period = {"from": first.isoformat(), "to": to.isoformat(), "first": first, "last": to}
    presets = report_presets(principal, utcnow().date(), i18n.request_locale(request))
    locale = i18n.request_locale(request)
    groupings = [(by, i18n.gettext(locale, words)) for by, words in FAIRNESS_GROUPINGS.items()]
    context = {
        "period": period,
        "query": query,
        "presets": presets,
        "fairness_groupings": groupings,
    }
    return render(request, "reports.html", context)


@router.get("/reports/allocation.svg")
def allocation_chart(
    request: Request,
    principal: Annotated[Principal, page_allow(*REPORT_READERS)],
    db: ReadDb,
    first: report_routes.From,
    to: report_routes.To,
    layout: report_routes.ChartLayout = "wide",
) -> Response:
    """The API's allocation chart, for the page's session."""
    return report_routes.allocation_chart(request, principal, db, first, to, "shelter", layout)


@router.get("/reports/allocation.csv")
def allocation_csv(
    request: Request,
    principal: Annotated[Principal, page_allow(*REPORT_READERS)],
    db: ReadDb,
    first: report_routes.From,
    to: report_routes.To,
) -> Response:
    """The API's allocation report as CSV for a spreadsheet (BOM, headings in words)."""
    answer: Response = report_routes.allocation(
        _asking_for_csv(request), principal, db, first, to, "shelter", bom=True, headings="words"
    )
    return answer


@router.get("/reports/allocation.xlsx")
def allocation_xlsx(
    request: Request,
    principal: Annotated[Principal, page_allow(*REPORT_READERS)],
    db: ReadDb,
    first: report_routes.From,
    to: report_routes.To,
) -> Response:
    """The API's allocation report as a spreadsheet, headings in words, for the page's session."""
    return report_routes.allocation_xlsx(
        request, principal, db, first, to, "shelter", headings="words"
    )


@router.get("/reports/grants.svg")
def grants_chart(
    request: Request,
    principal: Annotated[Principal, page_allow(*REPORT_READERS)],
    db: ReadDb,
    first: report_routes.From,
    to: report_routes.To,
    layout: report_routes.ChartLayout = "wide",
) -> Response:
    """The API's grants chart, for the page's session."""
    return report_routes.grants_chart(request, principal, db, first, to, layout)


@router.get("/reports/grants.csv")
def grants_csv(
    request: Request,
    principal: Annotated[Principal, page_allow(*REPORT_READERS)],
    db: ReadDb,
    first: report_routes.From,
    to: report_routes.To,
) -> Response:
    """The API's grants report as CSV for a spreadsheet (BOM, headings in words)."""
    answer: Response = report_routes.grants(
        _asking_for_csv(request), principal, db, first, to, bom=True, headings="words"
    )
    return answer


@router.get("/reports/grants.xlsx")
def grants_xlsx(
    request: Request,
    principal: Annotated[Principal, page_allow(*REPORT_READERS)],
    db: ReadDb,
    first: report_routes.From,
    to: report_routes.To,
) -> Response:
    """The API's grants report as a spreadsheet, headings in words, for the page's session."""
    return report_routes.grants_xlsx(request, principal, db, first, to, headings="words")


@router.get("/reports/unmet-demand.svg")
def unmet_demand_chart(
    request: Request,
    principal: Annotated[Principal, page_allow(*REPORT_READERS)],
    db: ReadDb,
    first: report_routes.From,
    to: report_routes.To,
    layout: report_routes.ChartLayout = "wide",
) -> Response:
    """The API's unmet-demand chart, for the page's session."""
    return report_routes.unmet_demand_chart(request, principal, db, first, to, layout)


@router.get("/reports/unmet-demand.csv")
def unmet_demand_csv(
    request: Request,
    principal: Annotated[Principal, page_allow(*REPORT_READERS)],
    db: ReadDb,
    first: report_routes.From,
    to: report_routes.To,
) -> Response:
    """The API's unmet-demand report as CSV for a spreadsheet (BOM, headings in words)."""
    answer: Response = report_routes.unmet_demand(
        _asking_for_csv(request), principal, db, first, to, bom=True, headings="words"
    )
    return answer


@router.get("/reports/unmet-demand.xlsx")
def unmet_demand_xlsx(
    request: Request,
    principal: Annotated[Principal, page_allow(*REPORT_READERS)],
    db: ReadDb,
    first: report_routes.From,
    to: report_routes.To,
) -> Response:
    """The API's unmet-demand report as a spreadsheet, headings in words, for the page's session."""
    return report_routes.unmet_demand_xlsx(request, principal, db, first, to, headings="words")


@router.get("/reports/fairness.csv")
def fairness_csv(
    request: Request,
    principal: Annotated[Principal, page_allow(*REPORT_READERS)],
    db: ReadDb,
    first: report_routes.From,
    to: report_routes.To,
    by: report_routes.FairnessBy = "status",
) -> Response:
    """The API's fairness report as CSV for a spreadsheet (BOM, headings in words)."""
    answer: Response = report_routes.fairness(
        _asking_for_csv(request), principal, db, first, to, by, bom=True, headings="words"
    )
    return answer


@router.get("/reports/fairness.xlsx")
def fairness_xlsx(
    request: Request,
    principal: Annotated[Principal, page_allow(*REPORT_READERS)],
    db: ReadDb,
    first: report_routes.From,
    to: report_routes.To,
    by: report_routes.FairnessBy = "status",
) -> Response:
    """The API's fairness report as a spreadsheet, headings in words, for the page's session."""
    return report_routes.fairness_xlsx(request, principal, db, first, to, by, headings="words")


@router.get("/reports/time-to-placement.csv")
def time_to_placement_csv(
    request: Request,
    principal: Annotated[Principal, page_allow(Role.ADMIN)],
    db: ReadDb,
    first: report_routes.From,
    to: report_routes.To,
) -> Response:
    """The API's time-to-placement report as CSV for a spreadsheet (admins)."""
    answer: Response = report_routes.time_to_placement(
        _asking_for_csv(request), principal, db, first, to, bom=True, headings="words"
    )
    return answer


@router.get("/reports/htcds.csv")
def htcds_csv(
    request: Request,
    principal: Annotated[Principal, page_allow(Role.ADMIN)],
    db: ReadDb,
    year: Annotated[int, Query(ge=2000, le=2100)],
) -> Response:
    """The API's HTCDS aggregate export as CSV for a spreadsheet (admins)."""
    answer: Response = report_routes.htcds_aggregates(
        _asking_for_csv(request), principal, db, year, bom=True, headings="words"
    )
    return answer
