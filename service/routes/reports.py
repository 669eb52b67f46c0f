"""Funder reports (SPEC §8): JSON by default, CSV or .xlsx on request, SVG charts.

Formats: JSON by default; CSV with ``Accept: text/csv``; a spreadsheet with
``Accept: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`` or at
``….xlsx``; charts at ``….svg``. CSV and .xlsx hold the same cells. ``?bom=1`` starts the CSV
with a UTF-8 byte order mark (for Excel under a Cyrillic Windows locale); ``?headings=words``
puts the column's words instead of its code in the header row of both.

Every report request is audited by the unit of work, from the table in ``service/audit.py``
(one entry per request, naming the report; the format is the route's).

Funders ask for publication periods only (a calendar month, quarter or year that has ended;
anything else is a 422 ``period-not-published`` problem); every report says in ``disclosure``
(JSON) or its last line (CSV, SVG) how it was protected.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from service import i18n, report_formats
from service.auth import allow
from service.deps import ReadDb, UnitOfWorkRoute
from service.problems import problem_responses
from service.routes import API_PREFIX
from service.settings import Settings
from shelters import htcds, registry, reports
from shelters.disclosure import ProtectionCache
from shelters.identity import Principal, Role
from shelters.models import Shelter
from shelters.names import localized_name
from shelters.reports import GroupBy

router = APIRouter(prefix=API_PREFIX, tags=["reports"], route_class=UnitOfWorkRoute)
REPORT_READERS = (Role.ADMIN, Role.FUNDER)
From = Annotated[date, Query(alias="from", description="First date of the period, inclusive.")]
To = Annotated[date, Query(description="Last date of the period, inclusive.")]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            report_formats.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        }
    }
}
XLSX_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            report_formats.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}
        },
        "model": None,
    }
}
Bom = Annotated[
    bool,
    Query(
        description="CSV only: start with a UTF-8 byte order mark (`?bom=1`), so that Excel "
        "under a Windows locale that is not UTF-8, a Cyrillic one say, reads the file as UTF-8. "
        "Other programs may then see the mark before the first heading."
    ),
]
Headings = Annotated[
    Literal["codes", "words"],
    Query(
        description="CSV and .xlsx: the header row holds the column codes (`codes`, the "
        "default, for programs) or their words in the reader's language (`words`, for people)."
    ),
]
ChartLayout = Annotated[
    report_formats.Layout,
    Query(
        description="Charts: `wide` (the default) for a screen or a printed page, panels side "
        "by side; `narrow` for a phone, panels stacked and each row's label above its bars."
    ),
]
SVG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/svg+xml": {"schema": {"type": "string"}}}, "model": None}
}


class DisclosureOut(BaseModel):
    """How the report was protected (SPEC §8)."""

    method: Literal["linked-tables", "single-table", "none"] = Field(
        description="linked-tables: suppression chosen over every table of the year a funder "
        "can ask for; single-table: within this table only (admin windows that are not "
        "publication periods); none: the report holds no counts of people."
    )
    k: int | None = Field(description="Counts of people from 1 to k-1 are suppressed.")
    period: str = Field(description="2026, 2026-Q1, 2026-03, or first..last for other windows.")
    year: int | None = Field(description="The year whose tables are protected together.")
    tables: list[str] = Field(description="Groupings protected together with this one.")
    statement: str


class AllocationCells(BaseModel):
    bed_nights_available: int
    bed_nights_occupied: int
    bed_nights_held: int
    occupancy_rate: float | None
    placements_proposed: int | None
    placements_accepted: int | None
    placements_admitted: int | None
    placements_declined: int | None
    placements_expired: int | None
    median_hours_to_proposal: float | None
    median_hours_to_admission: float | None
    people_adult: int | None
    people_accompanied_child: int | None
    people_unaccompanied_minor: int | None
    people_female: int | None
    people_male: int | None
    people_other: int | None
    suppressed: list[str] = Field(description="Cells of this row published as null.")


class AllocationRowOut(AllocationCells):
    key: str = Field(description="Shelter id, region code or organisation id.")
    label: str


class AllocationOut(BaseModel):
    from_: date = Field(alias="from")
    to: date
    group_by: GroupBy
    k: int = Field(description="Counts of people from 1 to k-1 are suppressed.")
    rows: list[AllocationRowOut]
    totals: AllocationCells
    disclosure: DisclosureOut


class GrantRowOut(BaseModel):
    grant_id: int
    funder_organization_id: int
    shelter_id: int
    shelter_name: str
    currency: str
    amount_in_period: Decimal
    funded_bed_nights: int
    available_bed_nights: int
    occupied_bed_nights: int
    cost_per_occupied_bed_night: Decimal | None
    under_delivery: bool
    suppressed: list[str]


class GrantsOut(BaseModel):
    from_: date = Field(alias="from")
    to: date
    rows: list[GrantRowOut]
    disclosure: DisclosureOut


class UnmetRowOut(BaseModel):
    region: str
    reason_code: str
    requests: int | None
    people_adult: int | None
    people_accompanied_child: int | None
    people_unaccompanied_minor: int | None
    suppressed: list[str]


class UnmetDemandOut(BaseModel):
    from_: date = Field(alias="from")
    to: date
    k: int
    rows: list[UnmetRowOut]
    disclosure: DisclosureOut


class WaitRowOut(BaseModel):
    region: str = Field(description="Region of origin, or `all` for every region together.")
    priority: int
    requests: int | None
    placed: int | None = Field(description="Requests admitted somewhere, by the time of asking.")
    escalated: int | None
    waiting: int | None = Field(description="Requests still pending, by the time of asking.")
    median_hours_to_proposal: float | None
    median_hours_to_admission: float | None
    suppressed: list[str]


class TimeToPlacementOut(BaseModel):
    from_: date = Field(alias="from")
    to: date
    k: int
    rows: list[WaitRowOut]
    disclosure: DisclosureOut


class FairnessRowOut(BaseModel):
    group: str = Field(
        description="Member status, sex, age band or region code; `all` for every request."
    )
    requests: int | None = Field(
        description="Requests made in the period with a member in the group."
    )
    placed_share: float | None = Field(
        description="Share of the requests admitted somewhere by the time of asking."
    )
    median_hours_to_proposal: float | None
    median_hours_to_admission: float | None
    outside_preferred_share: float | None = Field(
        description="Of the placed requests that named preferred regions, the share placed "
        "outside them."
    )
    declined_no_capacity: int | None
    declined_not_eligible: int | None
    declined_safety_concern: int | None
    declined_staffing: int | None
    declined_other: int | None
    flags: list[str] = Field(
        description="placed_share_low, proposal_wait_long, admission_wait_long, "
        "outside_preferred_high: see `rule`."
    )
    suppressed: list[str]


class FairnessOut(BaseModel):
    from_: date = Field(alias="from")
    to: date
    by: reports.FairnessBy
    k: int
    rows: list[FairnessRowOut]
    total: FairnessRowOut
    rule: str = Field(description="The thresholds behind the flags, in the reader's language.")
    disclosure: DisclosureOut


ALLOCATION_COLUMNS = (
    "key",
    "label",
    *(c for c in AllocationCells.model_fields if c != "suppressed"),
)
GRANT_COLUMNS = tuple(c for c in GrantRowOut.model_fields if c != "suppressed")
UNMET_COLUMNS = tuple(c for c in UnmetRowOut.model_fields if c != "suppressed")
WAIT_COLUMNS = tuple(c for c in WaitRowOut.model_fields if c != "suppressed")
FAIRNESS_COLUMNS = tuple(c for c in FairnessRowOut.model_fields if c != "suppressed")


Format = Literal["json", "csv", "xlsx"]


def _wanted(request: Request) -> Format:
    """The table format the caller asks for: the path's extension, else ``Accept``."""
    if request.url.path.endswith(".xlsx"):
        return "xlsx"
    accept = request.headers.get("accept", "").lower()
    if report_formats.XLSX_MEDIA_TYPE in accept:
        return "xlsx"
    return "csv" if "text/csv" in accept else "json"


def _words(request: Request) -> report_formats.Translate:
    """The translator for the caller's language (service/i18n.py: user, header, default)."""
    return i18n.translations(i18n.request_locale(request)).gettext


def _in_language(request: Request, response: Response) -> Response:
    """Say which language a chart's or a table's words are in, and that they follow the caller."""
    return i18n.say_language(response, i18n.request_locale(request))


def _table_answer(
    request: Request,
    *,
    report: str,
    fmt: Format,
    columns: tuple[str, ...],
    rows: list[dict[str, Any]],
    k: int | None,
    disclosure: Any,
    bom: bool,
    headings: str,
) -> Response:
    _ = _words(request)
    words = report_formats.column_headings(columns, _) if headings == "words" else None
    if fmt == "xlsx":
        book = report_formats.to_xlsx(
            columns,
            rows,
            sheet=report,
            k=k,
            disclosure=disclosure,
            headings=words,
            _=_,
        )
        return _in_language(
            request,
            Response(
                book,
                media_type=report_formats.XLSX_MEDIA_TYPE,
                headers={"Content-Disposition": f'attachment; filename="{report}.xlsx"'},
            ),
        )
    text = report_formats.to_csv(
        columns, rows, k=k, disclosure=disclosure, headings=words, bom=bom, _=_
    )
    answer: Response = _answer(report=report, fmt="csv", csv_text=text)
    return _in_language(request, answer)


def _answer(
    *,
    report: str,
    fmt: Literal["json", "csv", "svg"],
    json_body: BaseModel | None = None,
    csv_text: str | None = None,
    svg: bytes | None = None,
) -> Any:
    if fmt == "csv":
        assert csv_text is not None
        return Response(
            csv_text.encode("utf-8"),
            media_type=report_formats.CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{report}.csv"'},
        )
    if fmt == "svg":
        assert svg is not None
        return Response(svg, media_type=report_formats.SVG_MEDIA_TYPE)
    return json_body


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _cache(request: Request) -> ProtectionCache | None:
    cache: ProtectionCache | None = getattr(request.app.state, "disclosure_cache", None)
    return cache


def _disclosure(request: Request, report: Any) -> DisclosureOut:
    """The report's disclosure, its statement in the caller's language."""
    d = report.disclosure
    fields = {k: v for k, v in asdict(d).items() if k not in ("words", "params")}
    return DisclosureOut.model_validate(fields | {"statement": d.statement_in(_words(request))})


def _names(db: Session, locale: str, kind: Literal["shelter", "region"]) -> dict[str, str]:
    """Shelters' (by id) or regions' (by code) names in the reader's language, for charts.

    Tables keep the names as the registry holds them; a chart is read, so it speaks the
    reader's language like the rest of the page.
    """
    if kind == "region":
        return {r.code: localized_name(r, r.name, locale) for r in registry.list_regions(db)}
    found = db.execute(select(Shelter.id, Shelter.name, Shelter.names))
    return {str(i): localized_name(names or {}, name, locale) for i, name, names in found}


def _allocation(
    request: Request,
    principal: Principal,
    db: Session,
    first: date,
    last: date,
    group_by: GroupBy,
) -> reports.AllocationReport:
    return reports.allocation_report(
        db,
        when=reports.period_for(principal, first, last),
        group_by=group_by,
        k=_settings(request).suppression_k,
        cache=_cache(request),
    )


def _allocation_out(request: Request, report: reports.AllocationReport) -> AllocationOut:
    totals = asdict(report.totals)
    del totals["key"], totals["label"]
    return AllocationOut.model_validate(
        {
            "from": report.period.first,
            "to": report.period.last,
            "group_by": report.group_by,
            "k": report.k,
            "rows": [AllocationRowOut(**asdict(row)) for row in report.rows],
            "totals": AllocationCells(**totals),
            "disclosure": _disclosure(request, report),
        }
    )


@router.get(
    "/reports/allocation",
    response_model=AllocationOut,
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 422)},
)
def allocation(
    request: Request,
    principal: Annotated[Principal, allow(*REPORT_READERS)],
    db: ReadDb,
    first: From,
    to: To,
    group_by: GroupBy = "shelter",
    bom: Bom = False,
    headings: Headings = "codes",
) -> Any:
    """Bed-nights, placements and people per shelter, region or organisation."""
    report = _allocation(request, principal, db, first, to, group_by)
    fmt = _wanted(request)
    if fmt != "json":
        return _table_answer(
            request,
            report="allocation",
            fmt=fmt,
            columns=ALLOCATION_COLUMNS,
            rows=[asdict(r) for r in report.rows] + [asdict(report.totals)],
            k=report.k,
            disclosure=report.disclosure,
            bom=bom,
            headings=headings,
        )
    body = _allocation_out(request, report)
    return _answer(report="allocation", fmt="json", json_body=body)


@router.get(
    "/reports/allocation.xlsx",
    response_class=Response,
    responses={**XLSX_RESPONSE, **problem_responses(401, 403, 422)},
)
def allocation_xlsx(
    request: Request,
    principal: Annotated[Principal, allow(*REPORT_READERS)],
    db: ReadDb,
    first: From,
    to: To,
    group_by: GroupBy = "shelter",
    headings: Headings = "codes",
) -> Response:
    """The allocation report as a spreadsheet (.xlsx): the cells of its CSV."""
    answer: Response = allocation(request, principal, db, first, to, group_by, headings=headings)
    return answer


@router.get(
    "/reports/allocation.svg",
    response_class=Response,
    responses={**SVG_RESPONSE, **problem_responses(401, 403, 422)},
)
def allocation_chart(
    request: Request,
    principal: Annotated[Principal, allow(*REPORT_READERS)],
    db: ReadDb,
    first: From,
    to: To,
    group_by: GroupBy = "shelter",
    layout: ChartLayout = "wide",
) -> Response:
    """Chart of the allocation report: occupancy and people admitted per group."""
    report = _allocation(request, principal, db, first, to, group_by)
    if group_by != "organization":
        names = _names(db, i18n.request_locale(request), group_by)
        rows = [replace(r, label=names.get(r.key, r.label)) for r in report.rows]
        report = replace(report, rows=rows)
    svg = report_formats.allocation_svg(report, _words(request), layout=layout)
    answer: Response = _answer(report="allocation", fmt="svg", svg=svg)
    return _in_language(request, answer)


def _grants(db: Session, principal: Principal, first: date, last: date) -> reports.GrantsReport:
    return reports.grants_report(db, principal, when=reports.period_for(principal, first, last))


@router.get(
    "/reports/grants",
    response_model=GrantsOut,
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 422)},
)
def grants(
    request: Request,
    principal: Annotated[Principal, allow(*REPORT_READERS)],
    db: ReadDb,
    first: From,
    to: To,
    bom: Bom = False,
    headings: Headings = "codes",
) -> Any:
    """Funded against delivered bed-nights per grant (funders: their own grants)."""
    report = _grants(db, principal, first, to)
    rows = [asdict(r) | {"suppressed": list(r.suppressed)} for r in report.rows]
    fmt = _wanted(request)
    if fmt != "json":
        return _table_answer(
            request,
            report="grants",
            fmt=fmt,
            columns=GRANT_COLUMNS,
            rows=rows,
            k=None,
            disclosure=report.disclosure,
            bom=bom,
            headings=headings,
        )
    body = GrantsOut.model_validate(
        {"from": first, "to": to, "rows": rows, "disclosure": _disclosure(request, report)}
    )
    return _answer(report="grants", fmt="json", json_body=body)


@router.get(
    "/reports/grants.xlsx",
    response_class=Response,
    responses={**XLSX_RESPONSE, **problem_responses(401, 403, 422)},
)
def grants_xlsx(
    request: Request,
    principal: Annotated[Principal, allow(*REPORT_READERS)],
    db: ReadDb,
    first: From,
    to: To,
    headings: Headings = "codes",
) -> Response:
    """The grants report as a spreadsheet (.xlsx): the cells of its CSV."""
    answer: Response = grants(request, principal, db, first, to, headings=headings)
    return answer


@router.get(
    "/reports/grants.svg",
    response_class=Response,
    responses={**SVG_RESPONSE, **problem_responses(401, 403, 422)},
)
def grants_chart(
    request: Request,
    principal: Annotated[Principal, allow(*REPORT_READERS)],
    db: ReadDb,
    first: From,
    to: To,
    layout: ChartLayout = "wide",
) -> Response:
    """Chart of the grants report: funded, available and occupied bed-nights per grant."""
    report = _grants(db, principal, first, to)
    names = _names(db, i18n.request_locale(request), "shelter")
    rows = [
        replace(r, shelter_name=names.get(str(r.shelter_id), r.shelter_name)) for r in report.rows
    ]
    svg = report_formats.grants_svg(replace(report, rows=rows), _words(request), layout=layout)
    answer: Response = _answer(report="grants", fmt="svg", svg=svg)
    return _in_language(request, answer)


def _unmet(
    request: Request, principal: Principal, db: Session, first: date, last: date
) -> reports.UnmetDemandReport:
    return reports.unmet_demand_report(
        db,
        when=reports.period_for(principal, first, last),
        k=_settings(request).suppression_k,
        cache=_cache(request),
    )


@router.get(
    "/reports/unmet-demand",
    response_model=UnmetDemandOut,
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 422)},
)
def unmet_demand(
    request: Request,
    principal: Annotated[Principal, allow(*REPORT_READERS)],
    db: ReadDb,
    first: From,
    to: To,
    bom: Bom = False,
    headings: Headings = "codes",
) -> Any:
    """Requests left unplaced, by region, reason code and member status."""
    report = _unmet(request, principal, db, first, to)
    k = report.k
    rows = [asdict(r) for r in report.rows]
    fmt = _wanted(request)
    if fmt != "json":
        return _table_answer(
            request,
            report="unmet-demand",
            fmt=fmt,
            columns=UNMET_COLUMNS,
            rows=rows,
            k=k,
            disclosure=report.disclosure,
            bom=bom,
            headings=headings,
        )
    body = UnmetDemandOut.model_validate(
        {"from": first, "to": to, "k": k, "rows": rows, "disclosure": _disclosure(request, report)}
    )
    return _answer(report="unmet-demand", fmt="json", json_body=body)


@router.get(
    "/reports/unmet-demand.xlsx",
    response_class=Response,
    responses={**XLSX_RESPONSE, **problem_responses(401, 403, 422)},
)
def unmet_demand_xlsx(
    request: Request,
    principal: Annotated[Principal, allow(*REPORT_READERS)],
    db: ReadDb,
    first: From,
    to: To,
    headings: Headings = "codes",
) -> Response:
    """The unmet-demand report as a spreadsheet (.xlsx): the cells of its CSV."""
    answer: Response = unmet_demand(request, principal, db, first, to, headings=headings)
    return answer


@router.get(
    "/reports/unmet-demand.svg",
    response_class=Response,
    responses={**SVG_RESPONSE, **problem_responses(401, 403, 422)},
)
def unmet_demand_chart(
    request: Request,
    principal: Annotated[Principal, allow(*REPORT_READERS)],
    db: ReadDb,
    first: From,
    to: To,
    layout: ChartLayout = "wide",
) -> Response:
    """Chart of the unmet-demand report: requests left unplaced per region and reason."""
    names = _names(db, i18n.request_locale(request), "region")
    report = _unmet(request, principal, db, first, to)
    svg = report_formats.unmet_demand_svg(report, names, _words(request), layout=layout)
    answer: Response = _answer(report="unmet-demand", fmt="svg", svg=svg)
    return _in_language(request, answer)


@router.get(
    "/reports/time-to-placement",
    response_model=TimeToPlacementOut,
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 422)},
)
def time_to_placement(
    request: Request,
    principal: Annotated[Principal, allow(Role.ADMIN)],
    db: ReadDb,
    first: From,
    to: To,
    bom: Bom = False,
    headings: Headings = "codes",
) -> Any:
    """Requests made in the period by region and priority, and how long they waited (admins).

    Placed, escalated and still waiting, and the median hours to a proposal and to admission.
    """
    k = _settings(request).suppression_k
    report = reports.time_to_placement_report(db, when=reports.period(first, to), k=k)
    rows = [asdict(r) for r in report.rows]
    fmt = _wanted(request)
    if fmt != "json":
        return _table_answer(
            request,
            report="time-to-placement",
            fmt=fmt,
            columns=WAIT_COLUMNS,
            rows=rows,
            k=k,
            disclosure=report.disclosure,
            bom=bom,
            headings=headings,
        )
    body = TimeToPlacementOut.model_validate(
        {"from": first, "to": to, "k": k, "rows": rows, "disclosure": _disclosure(request, report)}
    )
    return _answer(report="time-to-placement", fmt="json", json_body=body)


class HtcdsRowOut(BaseModel):
    value: str
    people: int | None


class HtcdsTableOut(BaseModel):
    field: str = Field(
        description="age_band, sex, member_status, region, exploitation_type or referral_source"
    )
    rows: list[HtcdsRowOut]


class HtcdsExportOut(BaseModel):
    year: int
    k: int
    total: int | None = Field(description="People assisted in the year (null when suppressed).")
    tables: list[HtcdsTableOut]
    suppressed: list[str] = Field(description="The suppressed cells, as field:value.")
    disclosure: DisclosureOut


HTCDS_COLUMNS = ("field", "value", "people")


@router.get(
    "/export/htcds-aggregates",
    response_model=HtcdsExportOut,
    tags=["export"],
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 422)},
)
def htcds_aggregates(
    request: Request,
    principal: Annotated[Principal, allow(Role.ADMIN)],
    db: ReadDb,
    year: Annotated[int, Query(ge=2000, le=2100, description="The calendar year (UTC).")],
    bom: Bom = False,
    headings: Headings = "codes",
) -> Any:
    """People assisted in a year, by age band, sex, status, region, exploitation and referral.

    Counted as shelters/htcds.py (and docs/htcds.md, field by field against HTCDS and CTDC)
    says, with counts from 1 to k-1 suppressed across all its tables at once (admins).
    """
    settings = _settings(request)
    found = htcds.export(
        db, year=year, k=settings.suppression_k, majority_age=settings.majority_age
    )
    fmt = _wanted(request)
    if fmt != "json":
        rows: list[dict[str, Any]] = [{"field": "total", "value": "all", "people": found.total}]
        rows += [
            {"field": t.field, "value": value, "people": people}
            for t in found.tables
            for value, people in t.rows
        ]
        for row in rows:  # a count is None only when it is suppressed
            row["suppressed"] = ["people"] if row["people"] is None else []
        return _table_answer(
            request,
            report=f"htcds-{year}",
            fmt=fmt,
            columns=HTCDS_COLUMNS,
            rows=rows,
            k=found.k,
            disclosure=found.disclosure,
            bom=bom,
            headings=headings,
        )
    body = HtcdsExportOut(
        year=found.year,
        k=found.k,
        total=found.total,
        tables=[
            HtcdsTableOut(field=t.field, rows=[HtcdsRowOut(value=v, people=p) for v, p in t.rows])
            for t in found.tables
        ],
        suppressed=found.suppressed,
        disclosure=_disclosure(request, found),
    )
    return _answer(report="htcds", fmt="json", json_body=body)


FairnessBy = Annotated[
    reports.FairnessBy,
    Query(description="The groups of people: member status, sex, age band or region of origin."),
]


@router.get(
    "/reports/fairness",
    response_model=FairnessOut,
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 422)},
)
def fairness(
    request: Request,
    principal: Annotated[Principal, allow(*REPORT_READERS)],
    db: ReadDb,
    first: From,
    to: To,
    by: FairnessBy = "status",
    bom: Bom = False,
    headings: Headings = "codes",
) -> Any:
    """Outcomes of the period's requests per group of people, with disparity flags."""
    report = reports.fairness_report(
        db,
        when=reports.period_for(principal, first, to),
        by=by,
        k=_settings(request).suppression_k,
    )
    rows = [asdict(r) for r in [*report.rows, report.total]]
    fmt = _wanted(request)
    if fmt != "json":
        return _table_answer(
            request,
            report="fairness",
            fmt=fmt,
            columns=FAIRNESS_COLUMNS,
            rows=[r | {"flags": " ".join(r["flags"])} for r in rows],
            k=report.k,
            disclosure=report.disclosure,
            bom=bom,
            headings=headings,
        )
    body = FairnessOut.model_validate(
        {
            "from": report.period.first,
            "to": report.period.last,
            "by": by,
            "k": report.k,
            "rows": rows[:-1],
            "total": rows[-1],
            "rule": report.rule_in(_words(request)),
            "disclosure": _disclosure(request, report),
        }
    )
    return _answer(report="fairness", fmt="json", json_body=body)


@router.get(
    "/reports/fairness.xlsx",
    response_class=Response,
    responses={**XLSX_RESPONSE, **problem_responses(401, 403, 422)},
)
def fairness_xlsx(
    request: Request,
    principal: Annotated[Principal, allow(*REPORT_READERS)],
    db: ReadDb,
    first: From,
    to: To,
    by: FairnessBy = "status",
    headings: Headings = "codes",
) -> Response:
    """The fairness report as a spreadsheet (.xlsx): the cells of its CSV."""
    answer: Response = fairness(request, principal, db, first, to, by, headings=headings)
    return answer
