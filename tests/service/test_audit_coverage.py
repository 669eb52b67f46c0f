"""No route that writes, or reads case-level data, escapes the audit log.

The table in ``service/audit.py`` is the one place that says what is audited; these tests walk
every route of the app and fail when a newcomer forgets to add theirs.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

from service.app import iter_api_routes
from service.audit import AUDITED, NOT_AUDITED
from service.deps import read_session, write_session

WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
# Path segments that name case-level data (SPEC §2, §9): cases, requests, placements, matching
# runs with their problem and solution documents, exports and reports built from them.
CASE_LEVEL_SEGMENTS = {
    "cases",
    "placement-requests",
    "placements",
    "matching-runs",
    "export",
    "reports",
}


def routes(app: FastAPI) -> list[tuple[str, str, Any]]:
    return [
        (method, route.path, route)
        for route in iter_api_routes(app)
        for method in sorted(route.methods - {"HEAD", "OPTIONS"})
    ]


def must_be_audited(method: str, path: str, route: Any = None) -> bool:
    """Writes; reads under a case-level path; and any route whose unit of work may write.

    Reads of case-level data take ``WriteDb`` so that their entry can be appended (see
    service/deps.py), which makes a ``write_session`` the surest sign of an audited route.
    """
    if method in WRITE_METHODS:
        return True
    if route is not None and write_session in sessions_of(route):
        return True
    segments = {s.split(".")[0] for s in path.split("/") if s and not s.startswith("{")}
    return bool(segments & CASE_LEVEL_SEGMENTS)


def sessions_of(route: Any) -> set[Any]:
    found: set[Any] = set()
    stack: list[Any] = [route.dependant]
    while stack:
        dependant = stack.pop()
        if dependant.call in (write_session, read_session):
            found.add(dependant.call)
        stack.extend(dependant.dependencies)
    return found


def test_every_write_and_every_case_level_read_has_an_audit_entry(app: FastAPI) -> None:
    missing = [
        f"{method} {path}"
        for method, path, route in routes(app)
        if must_be_audited(method, path, route)
        and (method, path) not in AUDITED
        and (method, path) not in NOT_AUDITED
    ]
    assert missing == [], "add these routes to AUDITED in service/audit.py"


def test_every_audited_route_has_a_unit_of_work_that_can_record_it(app: FastAPI) -> None:
    # The entry is appended by write_session/read_session; a route without one records nothing.
    silent = [
        f"{method} {path}"
        for method, path, route in routes(app)
        if (method, path) in AUDITED and not sessions_of(route)
    ]
    assert silent == []


def test_the_walk_sees_the_routes_it_guards(app: FastAPI) -> None:
    seen = {(m, p) for m, p, _ in routes(app)}
    assert ("POST", "/api/v1/cases") in seen
    assert ("GET", "/api/v1/placements/{placement_id}") in seen
    assert must_be_audited("GET", "/api/v1/reports/allocation.svg")
    assert must_be_audited("GET", "/ui/reports/grants.csv")
    assert must_be_audited("GET", "/ui/cases/{case_id}")
    assert not must_be_audited("GET", "/api/v1/shelters/{shelter_id}")


def test_table_entries_are_well_formed() -> None:
    for (method, path), spec in AUDITED.items():
        assert method in WRITE_METHODS | {"GET"}, path
        assert path.startswith(("/api/v1/", "/ui")), path
        assert re.fullmatch(r"[a-z_]{1,40}", spec.action), path
        assert re.fullmatch(r"[a-z_]{1,40}", spec.resource), path
        params = re.findall(r"\{([^}:]+)", path)
        assert spec.id_param is None or spec.id_param in params, path
        assert spec.action_param is None or spec.action_param in params, path
    assert not set(AUDITED) & set(NOT_AUDITED)
