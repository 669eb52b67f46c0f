"""Which requests the audit log records, and the hooks that record them (SPEC §9).

One table, ``AUDITED``, names every audited route by method and path template. The unit of
work (``service/deps.py``) appends the entry for a successful request in the request's own
transaction, just before it commits; a read-only request appends it in a short write
transaction of its own before the response is sent. A denied attempt (401, 403, 404, or 429
on an audited route) is rolled back with its request, so the problem handlers append it in a
transaction of its own. ``tests/service/test_audit_coverage.py`` walks every route and fails
when one that writes, or reads case-level data, has no entry here.

An entry names the actor (user id and role), the action, the resource type and id, the outcome
and the request id: never a body, a query string, a header or a personal attribute. The id of
a created resource is set by the route with ``set_resource_id``; otherwise it is the route's
last path parameter.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from service.db import Sessions
from shelters import audit
from shelters.audit import AuditRecord

log = logging.getLogger("refuge.audit")
DENIED_STATUSES = frozenset({401, 403, 404, 429})
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_RECORDED = "audit_recorded"
_RESOURCE_ID = "audit_resource_id"
_OUTCOME = "audit_outcome"


@dataclass(frozen=True, slots=True)
class Audited:
    """How one route is recorded.

    ``case_level`` marks routes that touch case-level data (SPEC §2: never shown to funders).
    ``id_param`` names the path parameter that holds the resource id (default: the last one).
    ``action_param`` names a path parameter whose value, if it is one of ``action_choices``,
    replaces ``action`` (a page that does several transitions through one route).
    """

    action: str
    resource: str
    case_level: bool = False
    id_param: str | None = None
    action_param: str | None = None
    action_choices: tuple[str, ...] = ()


V1 = "/api/v1"
UI = "/ui"
PLACEMENT_VERBS = ("accept", "decline", "admit", "discharge", "cancel")
# Keyed by (method, path template). Paths SPEC §10 lists are here even before their route
# exists, so the engineer who adds the route finds it audited already.
AUDITED: dict[tuple[str, str], Audited] = {
    # identity
    ("POST", f"{V1}/auth/token"): Audited("login", "user"),
    ("POST", f"{V1}/users"): Audited("create", "user"),
    ("PATCH", f"{V1}/users/{{user_id}}"): Audited("update", "user"),
    ("PATCH", f"{V1}/me"): Audited("update", "user"),
    ("POST", f"{V1}/users/{{user_id}}/api-keys"): Audited("create_api_key", "user"),
    ("GET", f"{V1}/users/{{user_id}}/api-keys"): Audited("list_api_keys", "user"),
    ("POST", f"{V1}/users/{{user_id}}/disable"): Audited("disable", "user"),
    ("POST", f"{V1}/users/{{user_id}}/enable"): Audited("enable", "user"),
    ("POST", f"{V1}/users/{{user_id}}/totp/reset"): Audited("reset_totp", "user"),
    ("POST", f"{V1}/api-keys/{{key_id}}/revoke"): Audited("revoke", "api_key"),
    ("POST", f"{V1}/me/password"): Audited("change_password", "user"),
    ("POST", f"{V1}/me/totp"): Audited("enrol_totp", "user"),
    ("POST", f"{V1}/me/totp/confirm"): Audited("confirm_totp", "user"),
    # registry
    ("POST", f"{V1}/regions"): Audited("create", "region"),
    ("POST", f"{V1}/organizations"): Audited("create", "organization"),
    ("POST", f"{V1}/shelters"): Audited("create", "shelter"),
    ("PATCH", f"{V1}/shelters/{{shelter_id}}"): Audited("update", "shelter"),
    ("POST", f"{V1}/shelters/{{shelter_id}}/units"): Audited("create", "unit"),
    ("PATCH", f"{V1}/units/{{unit_id}}"): Audited("update", "unit"),
    ("POST", f"{V1}/units/{{unit_id}}/confirm"): Audited("confirm", "unit"),
    ("POST", f"{V1}/availability/check"): Audited("check", "availability"),
    # cases and requests
    ("GET", f"{V1}/cases"): Audited("list", "case", case_level=True),
    ("POST", f"{V1}/cases"): Audited("create", "case", case_level=True),
    ("GET", f"{V1}/cases/{{case_id}}"): Audited("read", "case", case_level=True),
    ("PATCH", f"{V1}/cases/{{case_id}}"): Audited("update", "case", case_level=True),
    ("GET", f"{V1}/placement-requests"): Audited("list", "placement_request", case_level=True),
    ("POST", f"{V1}/placement-requests"): Audited("create", "placement_request", case_level=True),
    ("GET", f"{V1}/placement-requests/{{request_id}}"): Audited(
        "read", "placement_request", case_level=True
    ),
    ("POST", f"{V1}/placement-requests/{{request_id}}/cancel"): Audited(
        "cancel", "placement_request", case_level=True
    ),
    ("POST", f"{V1}/placement-requests/{{request_id}}/match"): Audited(
        "match", "placement_request", case_level=True
    ),
    ("POST", f"{V1}/placement-requests/{{request_id}}/declined-shelters/{{shelter_id}}/lift"): (
        Audited("lift_decline", "placement_request", case_level=True, id_param="request_id")
    ),
    # word when something needs you
    ("POST", f"{V1}/inbox/{{entry_id}}/read"): Audited("read", "inbox_entry"),
    ("POST", f"{V1}/webhooks"): Audited("create", "webhook_endpoint"),
    ("DELETE", f"{V1}/webhooks/{{endpoint_id}}"): Audited("deactivate", "webhook_endpoint"),
    ("GET", f"{V1}/webhooks/{{endpoint_id}}/deliveries"): Audited(
        "list_deliveries", "webhook_endpoint"
    ),
    # matching runs: the problem and solution documents describe every request's members
    ("GET", f"{V1}/matching-runs"): Audited("list", "matching_run", case_level=True),
    ("POST", f"{V1}/matching-runs"): Audited("create", "matching_run", case_level=True),
    ("GET", f"{V1}/matching-runs/{{run_id}}"): Audited("read", "matching_run", case_level=True),
    ("GET", f"{V1}/matching-runs/{{run_id}}/problem"): Audited(
        "read_problem", "matching_run", case_level=True
    ),
    ("GET", f"{V1}/matching-runs/{{run_id}}/solution"): Audited(
        "read_solution", "matching_run", case_level=True
    ),
    # what-if scenarios: aggregate answers; the per-run documents describe requests' members
    ("POST", f"{V1}/scenarios"): Audited("create", "scenario"),
    ("GET", f"{V1}/scenarios"): Audited("list", "scenario"),
    ("GET", f"{V1}/scenarios/{{scenario_id}}"): Audited("read", "scenario"),
    ("GET", f"{V1}/scenarios/{{scenario_id}}/runs/{{run_id}}/solution"): Audited(
        "read_solution", "scenario", case_level=True, id_param="scenario_id"
    ),
    ("POST", f"{V1}/scenarios/{{scenario_id}}/replay"): Audited("replay", "scenario"),
    # placements
    ("GET", f"{V1}/placements"): Audited("list", "placement", case_level=True),
    ("GET", f"{V1}/placements/{{placement_id}}"): Audited("read", "placement", case_level=True),
    **{
        ("POST", f"{V1}/placements/{{placement_id}}/{verb}"): Audited(
            verb, "placement", case_level=True
        )
        for verb in PLACEMENT_VERBS
    },
    # funders: grants are written; reports are read from case-level rows, in aggregate
    ("POST", f"{V1}/grants"): Audited("create", "grant"),
    **{
        ("GET", f"{V1}/reports/{name}{suffix}"): Audited(f"read_{name.replace('-', '_')}", "report")
        for name in ("allocation", "grants", "unmet-demand")
        for suffix in ("", ".svg", ".xlsx")
    },
    **{
        ("GET", f"{V1}/reports/fairness{suffix}"): Audited("read_fairness", "report")
        for suffix in ("", ".xlsx")
    },
    ("GET", f"{V1}/reports/time-to-placement"): Audited("read_time_to_placement", "report"),
    # exports and the log itself
    ("GET", f"{V1}/export/hsds"): Audited("export", "hsds"),
    ("GET", f"{V1}/export/htcds-aggregates"): Audited("export", "htcds"),
    ("GET", f"{V1}/audit-events"): Audited("list", "audit_event"),
    # web pages (service/ui): the same actions through forms, and the pages that show cases
    ("POST", f"{UI}/login"): Audited("login", "user"),
    ("POST", f"{UI}/logout"): Audited("logout", "user"),
    ("POST", f"{UI}/settings"): Audited("update", "user"),
    ("GET", f"{UI}/coordinator"): Audited("list", "placement", case_level=True),
    ("GET", f"{UI}/units/{{unit_id}}/edit"): Audited("read", "unit"),
    ("POST", f"{UI}/units/{{unit_id}}"): Audited("update", "unit"),
    ("POST", f"{UI}/placements/{{placement_id}}/{{action}}"): Audited(
        "transition",
        "placement",
        case_level=True,
        id_param="placement_id",
        action_param="action",
        action_choices=PLACEMENT_VERBS,
    ),
    ("GET", f"{UI}/caseworker"): Audited("list", "case", case_level=True),
    ("POST", f"{UI}/cases"): Audited("create", "case", case_level=True),
    # The new-case form lists my cases' codes, to choose whom the new case is kept apart from.
    ("GET", f"{UI}/cases/new"): Audited("open", "case_form", case_level=True),
    ("POST", f"{UI}/cases/new"): Audited("open", "case_form", case_level=True),
    ("POST", f"{UI}/cases/{{case_id}}/requests"): Audited("request_beds", "case", case_level=True),
    ("POST", f"{UI}/cases/{{case_id}}/check"): Audited("check", "case", case_level=True),
    ("GET", f"{UI}/find-bed"): Audited("open", "availability"),
    ("POST", f"{UI}/find-bed"): Audited("check", "availability"),
    ("POST", f"{UI}/requests/{{request_id}}/match"): Audited(
        "match", "placement_request", case_level=True
    ),
    ("POST", f"{UI}/requests/{{request_id}}/declined-shelters/{{shelter_id}}/lift"): Audited(
        "lift_decline", "placement_request", case_level=True, id_param="request_id"
    ),
    **{
        ("GET", f"{UI}/reports/{name}.{ext}"): Audited(f"read_{name.replace('-', '_')}", "report")
        for name in ("allocation", "grants", "unmet-demand")
        for ext in ("svg", "csv", "xlsx")
    },
    ("GET", f"{UI}/reports/fairness.csv"): Audited("read_fairness", "report"),
    ("GET", f"{UI}/reports/fairness.xlsx"): Audited("read_fairness", "report"),
    ("GET", f"{UI}/reports/time-to-placement.csv"): Audited("read_time_to_placement", "report"),
    ("GET", f"{UI}/reports/htcds.csv"): Audited("export", "htcds"),
    ("GET", f"{UI}/scenarios"): Audited("list", "scenario"),
    ("POST", f"{UI}/scenarios"): Audited("create", "scenario"),
    ("GET", f"{UI}/scenarios/{{scenario_id}}"): Audited("read", "scenario"),
    ("POST", f"{UI}/inbox/{{entry_id}}/read"): Audited("read", "inbox_entry"),
    ("POST", f"{UI}/units/{{unit_id}}/confirm"): Audited("confirm", "unit"),
    # counts of waiting people by region: read like a report
    ("GET", f"{UI}/national"): Audited("read_national", "report"),
    ("GET", f"{UI}/national.svg"): Audited("read_national", "report"),
    # the admin's pages
    ("POST", f"{UI}/runs"): Audited("create", "matching_run", case_level=True),
    ("GET", f"{UI}/runs/{{run_id}}"): Audited("read", "matching_run", case_level=True),
    ("POST", f"{UI}/users"): Audited("create", "user"),
    ("GET", f"{UI}/users/{{user_id}}/api-keys"): Audited("list_api_keys", "user"),
    ("POST", f"{UI}/api-keys/{{key_id}}/revoke"): Audited("revoke", "api_key"),
    ("POST", f"{UI}/users/{{user_id}}/disable"): Audited("disable", "user"),
    ("GET", f"{UI}/webhooks"): Audited("list_deliveries", "webhook_endpoint"),
    ("POST", f"{UI}/users/{{user_id}}/enable"): Audited("enable", "user"),
}

# Routes that write or sit under a case-level path but are deliberately not recorded.
NOT_AUDITED: dict[tuple[str, str], str] = {
    ("GET", f"{UI}/reports"): "a page of links; the charts and downloads it links are audited",
}


def spec_for(method: str, path: str) -> Audited | None:
    """The table entry for a route, if it is audited."""
    return AUDITED.get((method.upper(), path))


def set_resource_id(request: Request, resource_id: int | str) -> None:
    """Name the resource a route created, for its audit entry."""
    setattr(request.state, _RESOURCE_ID, resource_id)


def _route_path(request: Request) -> str | None:
    route: Any = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def _spec(request: Request) -> Audited | None:
    path = _route_path(request)
    return spec_for(request.method, path) if path is not None else None


def _resource_id(request: Request, spec: Audited, path: str) -> str | int | None:
    chosen: str | int | None = getattr(request.state, _RESOURCE_ID, None)
    if chosen is not None:
        return chosen
    names = _PARAM.findall(path)
    name = spec.id_param or (names[-1] if names else None)
    value: Any = request.path_params.get(name) if name else None
    return value if isinstance(value, (str, int)) else None


def _action(request: Request, spec: Audited) -> str:
    if spec.action_param is None:
        return spec.action
    value = request.path_params.get(spec.action_param)
    return value if value in spec.action_choices else spec.action


def set_outcome(request: Request, outcome: str) -> None:
    """Record this request as ``denied`` or ``failed`` although its route returns normally.

    For routes that answer a refusal themselves (the web pages render their own error pages)
    instead of raising.
    """
    if outcome not in audit.OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    setattr(request.state, _OUTCOME, outcome)


def _record(request: Request, spec: Audited, outcome: str) -> AuditRecord:
    principal: Any = getattr(request.state, "principal", None)
    role = getattr(getattr(principal, "role", None), "value", None)
    path = _route_path(request) or ""
    return AuditRecord(
        action=_action(request, spec),
        resource_type=spec.resource,
        outcome=getattr(request.state, _OUTCOME, outcome),
        actor_user_id=getattr(principal, "user_id", None),
        actor_role=role,
        resource_id=_resource_id(request, spec, path),
        request_id=getattr(request.state, "request_id", None),
    )


def _claim(request: Request) -> Audited | None:
    """The route's entry if this request has not been recorded yet; marks it recorded."""
    spec = _spec(request)
    if spec is None or getattr(request.state, _RECORDED, False):
        return None
    setattr(request.state, _RECORDED, True)
    return spec


def forget(request: Request) -> None:
    """The request's entry was rolled back: let a retry of the request record it again."""
    setattr(request.state, _RECORDED, False)


def commit_with_entry(session: Session, request: Request) -> None:
    """Commit the request's unit of work, its audit entry (if audited) appended last."""
    spec = _claim(request)
    if spec is None:
        session.commit()
    else:
        audit.append_and_commit(session, _record(request, spec, "ok"))


def _append_alone(request: Request, record: AuditRecord) -> None:
    sessions: Sessions = request.app.state.sessions
    with sessions.write() as session:
        audit.append_and_commit(session, record)


def record_alone(request: Request) -> None:
    """Append the request's entry in a short transaction of its own (read-only requests)."""
    spec = _claim(request)
    if spec is not None:
        try:
            _append_alone(request, _record(request, spec, "ok"))
        except BaseException:
            forget(request)
            raise


def wants_denial(request: Request, status: int) -> bool:
    """Whether this refusal is one the log records and has not recorded yet (no I/O)."""
    return (
        status in DENIED_STATUSES
        and not getattr(request.state, _RECORDED, False)
        and _spec(request) is not None
    )


def record_denied(request: Request, status: int) -> None:
    """Append a denied attempt in its own transaction; the request's own has rolled back.

    A failure to write is logged and swallowed: the caller is refused either way.
    """
    if status not in DENIED_STATUSES:
        return
    spec = _claim(request)
    if spec is None:
        return
    try:
        _append_alone(request, _record(request, spec, "denied"))
    except Exception:  # the database may be down; the refusal stands
        forget(request)
        log.warning("could not record a denied attempt", exc_info=True)
