"""The what-if page: ask "what if we funded these beds", follow it, read the answer.

Admins and funders. The form posts to the same use case as ``POST /api/v1/scenarios``; a
scenario's page refreshes itself (a meta refresh, no script) until it ends.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select

from service import audit as audit_routes
from service import i18n
from service.deps import ReadDb, UnitOfWorkRoute, WriteDb
from service.routes import scenarios as scenario_routes
from service.ui.routes import (
    PREFIX,
    Form,
    _report_period,
    named,
    redirect,
    render,
    report_presets,
)
from service.ui.session import page_allow
from shelters import catalogue, scenarios
from shelters.errors import N_, DomainError
from shelters.identity import Principal, Role
from shelters.models import Region, utcnow

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=UnitOfWorkRoute)
READERS = page_allow(Role.ADMIN, Role.FUNDER)
ROWS = 3
RECENT = 20
STATUS_WORDS = {
    "queued": N_("waiting for a solver"),
    "running": N_("being solved"),
    "done": N_("done"),
    "failed": N_("failed"),
}
GROUP_WORDS = {
    "priority": N_("By priority"),
    "status": N_("By member status"),
    "region": N_("By region of origin"),
}
STATUS_NAMES = {
    "adult": N_("Adults"),
    "accompanied_child": N_("Accompanied children"),
    "unaccompanied_minor": N_("Unaccompanied minors"),
}


def _form_context(
    request: Request, db: Any, principal: Principal, first: date, last: date
) -> dict[str, Any]:
    locale = i18n.request_locale(request)
    regions = sorted(
        ((r.code, named(r, locale)) for r in db.scalars(select(Region))), key=lambda r: r[1]
    )
    page = scenarios.list_scenarios(db, principal, limit=RECENT, cursor=None)
    return {
        "period": {"from": first.isoformat(), "to": last.isoformat(), "first": first, "last": last},
        "presets": report_presets(principal, utcnow().date(), locale),
        "regions": regions,
        "unit_types": [(code, i18n.gettext(locale, w)) for code, w in catalogue.UNIT_TYPES.items()],
        "rows": range(1, ROWS + 1),
        "scenarios": page.items,
        "status_words": lambda s: i18n.gettext(locale, STATUS_WORDS.get(s) or s),
    }


@router.get("/scenarios")
def scenarios_page(
    request: Request,
    principal: Annotated[Principal, READERS],
    db: ReadDb,
    first: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
) -> Response:
    """The what-if form and your scenarios with their progress."""
    first, to = _report_period(first, to)
    return render(request, "scenarios.html", _form_context(request, db, principal, first, to))


def _int(value: Any) -> int | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return -1  # refused by the schema's bounds, with its own words


def _body(form: Any) -> dict[str, Any]:
    kind = "bed_budget" if form.get("kind") == "bed_budget" else "what_if"
    body: dict[str, Any] = {"kind": kind, "from": form.get("from"), "to": form.get("to")}
    rows = []
    for n in range(1, ROWS + 1):
        region, unit_type = form.get(f"region_{n}"), form.get(f"unit_type_{n}")
        if not region:
            continue
        row: dict[str, Any] = {"region": region, "unit_type": unit_type or None}
        if kind == "what_if":
            rows.append(row | {"kind": "add_units", "beds": _int(form.get(f"beds_{n}"))})
        else:
            rows.append(row | {"cost_per_bed": _int(form.get(f"beds_{n}")) or 0})
    if kind == "what_if":
        body["changes"] = rows
    else:
        body.update(
            costs=rows, max_beds=_int(form.get("max_beds")), budget=_int(form.get("budget"))
        )
    return body


@router.post("/scenarios")
def start_scenario(
    request: Request,
    principal: Annotated[Principal, READERS],
    form: Form,
    db: WriteDb,
    background: BackgroundTasks,
) -> Response:
    """Queue the scenario the form describes, then follow it on its page."""
    locale = i18n.request_locale(request)
    try:
        body = scenario_routes.ScenarioIn.model_validate(_body(form), strict=False)
        scenario = scenario_routes.create(request, principal, db, body)
    except (DomainError, ValidationError) as exc:
        db.rollback()
        if isinstance(exc, DomainError):
            error = i18n.error_detail(exc, locale)
        else:
            error = i18n.gettext(
                locale,
                N_("Check the form: {fields}"),
                fields=", ".join(
                    ".".join(str(p) for p in e["loc"]) or e["msg"] for e in exc.errors()
                ),
            )
        first, to = _report_period(None, None)
        context = _form_context(request, db, principal, first, to) | {"error": error}
        return render(request, "scenarios.html", context, 422)
    audit_routes.set_resource_id(request, scenario.id)
    background.add_task(scenario_routes.dispatch, request, scenario.id)
    return redirect(request, f"{PREFIX}/scenarios/{scenario.id}")


@router.get("/scenarios/{scenario_id}")
def scenario_page(
    scenario_id: int,
    request: Request,
    principal: Annotated[Principal, READERS],
    db: ReadDb,
) -> Response:
    """One scenario: refreshes itself until it ends, then shows before and after."""
    locale = i18n.request_locale(request)
    out = scenario_routes.scenario_out(
        request, scenarios.get_scenario(db, principal, scenario_id), principal
    )
    regions = {r.code: named(r, locale) for r in db.scalars(select(Region))}

    def key_words(grouping: str, key: str) -> str:
        if grouping == "status":
            return i18n.gettext(locale, STATUS_NAMES.get(key, key))
        if grouping == "region":
            return regions.get(key, key)
        return key

    return render(
        request,
        "scenario.html",
        {
            "scenario": out,
            "following": out.status in ("queued", "running"),
            "status_words": i18n.gettext(locale, STATUS_WORDS[out.status]),
            "groups": [(g, i18n.gettext(locale, w)) for g, w in GROUP_WORDS.items()],
            "key_words": key_words,
            "unit_types": {
                code: i18n.gettext(locale, w) for code, w in catalogue.UNIT_TYPES.items()
            },
            "regions": regions,
        },
    )
