"""Files people open in spreadsheets: CSV with a BOM on request, .xlsx with the CSV's cells."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from service.report_formats import (
    BOM,
    XLSX_MEDIA_TYPE,
    column_headings,
    to_csv,
    to_xlsx,
)
from service.routes.reports import ALLOCATION_COLUMNS, GRANT_COLUMNS, UNMET_COLUMNS
from shelters.identity import Role
from tests.conftest import World
from tests.service.test_reports import MONTH, PERIOD, crafted  # noqa: F401 (a fixture)

REPORTS = {
    "allocation": {"group_by": "region"},
    "grants": {},
    "unmet-demand": {},
}


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _sheet(content: bytes) -> list[list[Any]]:
    book = load_workbook(io.BytesIO(content))
    assert len(book.sheetnames) == 1
    return [list(row) for row in book.active.iter_rows(values_only=True)]  # type: ignore[union-attr]


def _same_cell(in_xlsx: Any, in_csv: str) -> bool:
    """A spreadsheet cell holds what the CSV says: the same text, or the same number."""
    if in_xlsx is None:
        return in_csv == ""
    if isinstance(in_xlsx, int | float) and not isinstance(in_xlsx, bool):
        return Decimal(str(in_xlsx)) == Decimal(in_csv)
    return bool(in_xlsx == in_csv)


def _assert_same_cells(sheet: list[list[Any]], table: list[list[str]]) -> None:
    assert len(sheet) == len(table)
    for number, (row, record) in enumerate(zip(sheet, table, strict=True)):
        # openpyxl pads every row to the widest one (the disclosure line has one cell).
        cells = row[: len(record)]
        assert all(value is None for value in row[len(record) :]), number
        assert all(_same_cell(x, c) for x, c in zip(cells, record, strict=True)), (
            number,
            cells,
            record,
        )


@pytest.mark.parametrize("report", REPORTS)
@pytest.mark.usefixtures("crafted")
def test_csv_starts_with_a_bom_only_when_asked(
    client: TestClient, world: World, report: str
) -> None:
    url = f"/api/v1/reports/{report}"
    headers = world.headers(Role.ADMIN) | {"Accept": "text/csv"}
    params = PERIOD | REPORTS[report]
    plain = client.get(url, params=params, headers=headers)
    marked = client.get(url, params=params | {"bom": "1"}, headers=headers)
    unmarked = client.get(url, params=params | {"bom": "0"}, headers=headers)
    assert not plain.content.startswith(b"\xef\xbb\xbf")
    assert unmarked.content == plain.content
    assert marked.content.startswith(b"\xef\xbb\xbf")
    assert marked.content[3:] == plain.content
    assert marked.headers["content-type"] == plain.headers["content-type"]
    assert marked.content.decode("utf-8-sig") == plain.text
    # JSON has no mark to carry: the parameter changes nothing there.
    as_json = client.get(url, params=params | {"bom": "1"}, headers=world.headers(Role.ADMIN))
    assert as_json.headers["content-type"] == "application/json"


@pytest.mark.parametrize("report", REPORTS)
@pytest.mark.parametrize("headings", ["codes", "words"])
@pytest.mark.usefixtures("crafted")
def test_xlsx_holds_exactly_the_cells_of_the_csv(
    client: TestClient, world: World, report: str, headings: str
) -> None:
    headers = world.headers(Role.ADMIN)
    params = PERIOD | REPORTS[report] | {"headings": headings}
    url = f"/api/v1/reports/{report}"
    text = client.get(url, params=params, headers=headers | {"Accept": "text/csv"}).text
    by_path = client.get(f"{url}.xlsx", params=params, headers=headers)
    by_accept = client.get(url, params=params, headers=headers | {"Accept": XLSX_MEDIA_TYPE})
    for answer in (by_path, by_accept):
        assert answer.status_code == 200
        assert answer.headers["content-type"] == XLSX_MEDIA_TYPE
        assert answer.headers["content-disposition"] == f'attachment; filename="{report}.xlsx"'
        _assert_same_cells(_sheet(answer.content), _csv(text))
    table = _csv(text)
    assert len(table) >= 3  # headings, at least one row, the disclosure line
    assert table[-1][0].startswith("# disclosure: ")


@pytest.mark.usefixtures("crafted")
def test_suppressed_cells_stay_suppressed_in_the_spreadsheet(
    client: TestClient, world: World
) -> None:
    headers = world.headers(Role.ADMIN)
    params = PERIOD | {"group_by": "region"}
    body = client.get("/api/v1/reports/allocation", params=params, headers=headers).json()
    sheet = _sheet(
        client.get("/api/v1/reports/allocation.xlsx", params=params, headers=headers).content
    )
    columns = list(sheet[0])
    rows = {row[0]: dict(zip(columns, row, strict=True)) for row in sheet[1:-1]}
    hidden = 0
    for record in [*body["rows"], {"key": "total", **body["totals"]}]:
        for cell in record["suppressed"]:
            assert rows[record["key"]][cell] == "<11"
            hidden += 1
    assert hidden > 0
    # No number below k that JSON withholds shows up in the sheet.
    for record in body["rows"]:
        for cell in record["suppressed"]:
            assert not isinstance(rows[record["key"]][cell], int | float)
    unmet = _sheet(
        client.get("/api/v1/reports/unmet-demand.xlsx", params=PERIOD, headers=headers).content
    )
    assert list(unmet[1]) == ["astana", "declined:no_capacity", "<11", "<11", 0, 0]


@pytest.mark.usefixtures("crafted")
def test_the_spreadsheet_notes_the_disclosure_line_on_its_first_heading(
    client: TestClient, world: World
) -> None:
    content = client.get(
        "/api/v1/reports/allocation.xlsx", params=MONTH, headers=world.headers(Role.FUNDER)
    ).content
    ws = load_workbook(io.BytesIO(content)).active
    assert ws is not None
    note = ws["A1"].comment
    assert note is not None
    assert " ".join(note.text.split()).startswith("disclosure: linked-tables, period 2026-03.")
    assert ws.freeze_panes == "A2"


@pytest.mark.parametrize("report", REPORTS)
@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.CASEWORKER])
def test_only_admins_and_funders_get_the_spreadsheets(
    client: TestClient, world: World, report: str, role: Role
) -> None:
    url = f"/api/v1/reports/{report}.xlsx"
    assert client.get(url, params=PERIOD, headers=world.headers(role)).status_code == 403
    assert client.get(url, params=PERIOD).status_code == 401


def test_text_that_looks_like_a_formula_stays_text_in_the_spreadsheet() -> None:
    rows = [
        {"label": "=HYPERLINK(1)", "n": 3},
        {"label": "@x", "n": 0},
        {"label": "plain", "n": None, "suppressed": ["n"]},
    ]
    content = to_xlsx(("label", "n"), rows, sheet="test", k=11)
    ws = load_workbook(io.BytesIO(content)).active
    assert ws is not None
    assert [[c.value for c in row] for row in ws.iter_rows()] == [
        ["label", "n"],
        ["'=HYPERLINK(1)", 3],
        ["'@x", 0],
        ["plain", "<11"],
    ]
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    _assert_same_cells(
        [[c.value for c in row] for row in ws.iter_rows()],
        _csv(to_csv(("label", "n"), rows, k=11)),
    )


def test_headings_in_the_readers_words_and_codes_for_programs() -> None:
    kazakh = {"Region": "Өңір", "Reason code": "Себеп коды", "Requests": "Өтінімдер"}
    words = column_headings(UNMET_COLUMNS, lambda s: kazakh.get(s, s))
    assert words[:3] == ["Өңір", "Себеп коды", "Өтінімдер"]
    text = to_csv(UNMET_COLUMNS, [], headings=words, bom=True)
    assert text.startswith(BOM + "Өңір,Себеп коды,Өтінімдер,")
    assert to_csv(UNMET_COLUMNS, []).startswith("region,reason_code,requests,")
    # Every column of every report has words of its own.
    for columns in (ALLOCATION_COLUMNS, GRANT_COLUMNS, UNMET_COLUMNS):
        assert all(w != c for w, c in zip(column_headings(columns), columns, strict=True))
