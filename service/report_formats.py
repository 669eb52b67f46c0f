"""How reports are written out: CSV (RFC 4180), spreadsheets (.xlsx) and SVG charts.

Charts are drawn on ``Figure`` objects, never through ``pyplot``, so requests served in
parallel threads do not share a figure.

Suppressed cells never turn into zeros: CSV and .xlsx write ``<k`` (e.g. ``<11``), charts draw
a hatched marker labelled "suppressed". Cells that begin with ``= + - @`` (or a tab or
carriage return) are prefixed with an apostrophe so that a spreadsheet does not run them as
formulas. CSV and .xlsx are written from one table (:func:`report_table`), so they hold the
same cells; .xlsx keeps numbers as numbers.

Every word a person reads is written ``_("...")``: the functions take a gettext-style
translator ``_`` (English when none is given), and ``pybabel extract`` finds the messages.
Codes (column names, reason codes, ``true``/``false``) never change with the language.

**Fonts.** Charts are drawn with DejaVu Sans, which covers Cyrillic with every letter Kazakh
adds to it (ә, ғ, қ, ң, ө, ұ, and the straight u, shha and dotted i); matplotlib ships it
and most Linux systems have it. Text stays text in the SVG (``svg.fonttype`` ``none``), with
``font-family: 'DejaVu Sans', 'Arial', 'Liberation Sans', sans-serif``: the words can be read
by a screen reader, searched, copied and checked by a test, and the file is less than half
the size of one with every glyph drawn as a path. A viewer without DejaVu Sans takes Arial or
Liberation Sans, which cover Kazakh too; their letters are narrower, so the layout still
fits. Those settings are matplotlib's global ``rcParams``, read while a figure is built and
saved: every chart is drawn inside :func:`_chart_style`, which holds a lock.
"""

from __future__ import annotations

import csv
import io
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.transforms import offset_copy
from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from shelters.reports import STATUS_CELLS, AllocationReport, Disclosure, GrantsReport

CSV_MEDIA_TYPE = "text/csv; charset=utf-8; header=present"
SVG_MEDIA_TYPE = "image/svg+xml"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOM = "\ufeff"
"""The UTF-8 byte order mark: Excel reads a CSV that starts with it as UTF-8, not ANSI."""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHART_FONTS = ["DejaVu Sans", "Arial", "Liberation Sans"]
"""The chart font, then what a viewer without it may take; all three cover Kazakh."""
_CHART_LOCK = threading.Lock()

Translate = Callable[[str], str]
"""A gettext-style translator: the English message in, the reader's words out."""


def _english(message: str) -> str:
    return message


INK = "#1f2933"
MUTED = "#7b8794"
AVAILABLE = "#c9d6e3"
OCCUPIED = "#1f5f8b"
HELD = "#e0a030"
FUNDED = "#9aa5b1"
ALERT = "#b42318"
STATUS_COLOURS = ("#1f5f8b", "#5aa0c8", "#e0a030")


def _cell(value: Any, suppressed: bool, k: int) -> str:
    if suppressed:
        return f"<{k}"
    if value is None:
        return ""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def disclosure_line(disclosure: Disclosure, _: Translate = _english) -> str:
    """One line saying how a report was protected, for CSV, spreadsheets and charts."""
    said = _("disclosure: {method}, period {period}.").format(
        method=disclosure.method, period=disclosure.period
    )
    return f"{said} {disclosure.statement_in(_)}"


def _headings(_: Translate) -> dict[str, str]:
    """The words for every report column, in the reader's language."""
    return {
        "key": _("Code"),
        "label": _("Name"),
        "bed_nights_available": _("Bed-nights available"),
        "bed_nights_occupied": _("Bed-nights occupied"),
        "bed_nights_held": _("Bed-nights held for a proposal"),
        "occupancy_rate": _("Occupancy rate"),
        "placements_proposed": _("Placements proposed"),
        "placements_accepted": _("Placements accepted"),
        "placements_admitted": _("Placements admitted"),
        "placements_declined": _("Placements declined"),
        "placements_expired": _("Placements expired"),
        "median_hours_to_proposal": _("Median hours to proposal"),
        "median_hours_to_admission": _("Median hours to admission"),
        "people_adult": _("Adults"),
        "people_accompanied_child": _("Accompanied children"),
        "people_unaccompanied_minor": _("Unaccompanied minors"),
        "people_female": _("Women and girls"),
        "people_male": _("Men and boys"),
        "people_other": _("Other sex"),
        "grant_id": _("Grant number"),
        "funder_organization_id": _("Funder organisation number"),
        "shelter_id": _("Shelter number"),
        "shelter_name": _("Shelter name"),
        "currency": _("Currency"),
        "amount_in_period": _("Amount in the period"),
        "funded_bed_nights": _("Bed-nights funded"),
        "available_bed_nights": _("Bed-nights available"),
        "occupied_bed_nights": _("Bed-nights occupied"),
        "cost_per_occupied_bed_night": _("Cost per occupied bed-night"),
        "under_delivery": _("Under-delivery"),
        "region": _("Region"),
        "reason_code": _("Reason code"),
        "requests": _("Requests"),
    }


def column_headings(columns: Sequence[str], _: Translate = _english) -> list[str]:
    """The header row people read: each column's words, translated by ``_``.

    A column without words of its own keeps its code. Machine clients read the codes
    (``columns`` itself): those never change with the language.
    """
    words = _headings(_)
    return [words.get(column, column) for column in columns]


Cell = str | int | float | Decimal | None


def _value(value: Any, suppressed: bool, k: int) -> Cell:
    """A cell as a spreadsheet keeps it: numbers as numbers, everything else as CSV text."""
    if suppressed or value is None or isinstance(value, bool):
        return _cell(value, suppressed, k) or None
    if isinstance(value, int | float | Decimal) and value >= 0:
        return value
    return _cell(value, suppressed, k)


def report_table(
    columns: Sequence[str],
    rows: Iterable[dict[str, Any]],
    *,
    k: int | None = None,
    disclosure: Disclosure | None = None,
    headings: Sequence[str] | None = None,
    _: Translate = _english,
) -> list[list[Cell]]:
    """The cells of a report export: a header row, one row per record, the disclosure line.

    The header row is ``headings`` if given, else the column codes. A row's ``suppressed``
    list names the cells written as ``<k``. With ``disclosure``, a last record of one field
    says how the report was protected (it begins with ``#``, which spreadsheet and CSV
    readers show as text). Empty cells are None; numbers stay numbers (never negative here).
    """
    table: list[list[Cell]] = [list(headings if headings is not None else columns)]
    for row in rows:
        hidden = set(row.get("suppressed") or ())
        table.append(
            [_value(row.get(name), name in hidden and k is not None, k or 0) for name in columns]
        )
    if disclosure is not None:
        table.append(["# " + disclosure_line(disclosure, _)])
    return table


def cell_text(value: Cell) -> str:
    """A table cell as CSV writes it."""
    return "" if value is None else str(value)


def to_csv(
    columns: Sequence[str],
    rows: Iterable[dict[str, Any]],
    *,
    k: int | None = None,
    disclosure: Disclosure | None = None,
    headings: Sequence[str] | None = None,
    bom: bool = False,
    _: Translate = _english,
) -> str:
    """RFC 4180 CSV (CRLF line ends, quoted where needed) of :func:`report_table`.

    With ``bom``, the text starts with a UTF-8 byte order mark, so that Excel under a Windows
    locale that is not UTF-8 (a Cyrillic one, say) reads it as UTF-8 instead of showing
    mojibake; other readers may then see the mark as part of the first heading.
    """
    buffer = io.StringIO()
    if bom:
        buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    for record in report_table(columns, rows, k=k, disclosure=disclosure, headings=headings, _=_):
        writer.writerow(cell_text(value) for value in record)
    return buffer.getvalue()


def to_xlsx(
    columns: Sequence[str],
    rows: Iterable[dict[str, Any]],
    *,
    sheet: str,
    k: int | None = None,
    disclosure: Disclosure | None = None,
    headings: Sequence[str] | None = None,
    _: Translate = _english,
) -> bytes:
    """An .xlsx workbook of one sheet named ``sheet`` holding the cells of :func:`to_csv`.

    Text cells are always text, never formulas; numbers are numbers, so a spreadsheet can sum
    them. The header row is bold and stays in view; the first heading carries a note (Excel's
    comment) with the disclosure line, which is also the last row, as in the CSV.
    """
    table = report_table(columns, rows, k=k, disclosure=disclosure, headings=headings, _=_)
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = sheet[:31]
    for record in table:
        ws.append(record)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in ws.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # a text starting with "=" stays text
    ws.freeze_panes = "A2"
    for index, heading in enumerate(table[0], start=1):
        ws.column_dimensions[get_column_letter(index)].width = min(
            max(len(cell_text(heading)) + 2, 10), 40
        )
    if disclosure is not None:
        ws["A1"].comment = Comment(
            _wrap(disclosure_line(disclosure, _), 60), "Refuge", width=420, height=160
        )
    book.properties.creator = "Refuge"
    book.properties.title = sheet
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@contextmanager
def _chart_style() -> Iterator[None]:
    """Draw with text kept as text in :data:`CHART_FONTS`, one chart at a time.

    rcParams are global: the lock keeps two threads from drawing under each other's settings.
    """
    style = {"svg.fonttype": "none", "font.family": "sans-serif", "font.sans-serif": CHART_FONTS}
    with _CHART_LOCK, matplotlib.rc_context(style):  # type: ignore[arg-type]
        yield


def _wrap(text: str, width: int = 150) -> str:
    return "\n".join(textwrap.wrap(text, width))


def _svg(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.spines["left"].set_color(MUTED)
    ax.spines["bottom"].set_color(MUTED)
    ax.tick_params(colors=INK, labelsize=9)
    ax.xaxis.grid(True, color="#e4e7eb", linewidth=0.8)
    ax.set_axisbelow(True)


def _under(ax: Any, figure: Figure) -> dict[str, Any]:
    """Where a legend goes: centred under the axis label, however tall the chart is."""
    return {
        "loc": "upper center",
        "bbox_to_anchor": (0.5, 0),
        "bbox_transform": offset_copy(ax.transAxes, fig=figure, y=-32, units="points"),
    }


def _columns(labels: Sequence[str]) -> int:
    """Legend entries in a row: all three, or fewer when their words are long (Kazakh, Russian).

    A legend stays about as wide as its panel, so that it does not run into the next one's.
    """
    if sum(len(label) for label in labels) <= 36:
        return 3
    return 2 if max(len(label) for label in labels) <= 18 else 1


def _legend_height(labels: Sequence[str]) -> float:
    """Inches to add to a chart whose legend takes more than one line."""
    lines = -(-len(labels) // _columns(labels))
    return 0.16 * (lines - 1)


def _suppressed_marker(ax: Any, y: float, height: float, width: float, _: Translate) -> None:
    ax.barh(y, width, height=height, color="none", edgecolor=MUTED, hatch="///", linewidth=0.6)
    ax.text(
        width * 1.15,
        y,
        _("suppressed"),
        va="center",
        ha="left",
        fontsize=7.5,
        color=MUTED,
        style="italic",
    )


def _status_labels(_: Translate) -> tuple[str, ...]:
    """The words for :data:`STATUS_CELLS`, in order."""
    return (_("adults"), _("accompanied children"), _("unaccompanied minors"))


def _period(first: Any, last: Any, _: Translate) -> str:
    return _("{first} to {last}").format(first=first.isoformat(), last=last.isoformat())


def _allocation_title(group_by: str, period: str, _: Translate) -> str:
    if group_by == "region":
        return _("Bed allocation by region, {period}").format(period=period)
    if group_by == "organization":
        return _("Bed allocation by organisation, {period}").format(period=period)
    return _("Bed allocation by shelter, {period}").format(period=period)


def allocation_svg(report: AllocationReport, _: Translate = _english) -> bytes:
    """Two panels per group: bed-nights available/occupied/held, and people admitted by status.

    ``_`` translates every word on the chart; group labels are the report's own.
    """
    with _chart_style():
        return _allocation_svg(report, _)


def _allocation_svg(report: AllocationReport, _: Translate) -> bytes:
    rows = list(report.rows)
    labels = [r.label for r in rows]
    n = max(len(rows), 1)
    legend = [_("available"), _("occupied"), _("held for a proposal")]
    figure = Figure(figsize=(11, 1.6 + 0.42 * n + _legend_height(legend)))
    beds, people = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]}, sharey=True)
    positions = list(range(len(rows)))[::-1]
    beds.barh(
        positions,
        [r.bed_nights_available for r in rows],
        height=0.7,
        color=AVAILABLE,
        label=legend[0],
    )
    beds.barh(
        positions,
        [r.bed_nights_occupied for r in rows],
        height=0.42,
        color=OCCUPIED,
        label=legend[1],
    )
    occupied = [r.bed_nights_occupied for r in rows]
    beds.barh(
        positions,
        [r.bed_nights_held for r in rows],
        left=occupied,
        height=0.42,
        color=HELD,
        label=legend[2],
    )
    ends = [max(r.bed_nights_available, r.bed_nights_occupied + r.bed_nights_held) for r in rows]
    top = max([*ends, 1])
    for y, row, end in zip(positions, rows, ends, strict=True):
        rate = "-" if row.occupancy_rate is None else f"{row.occupancy_rate:.0%}"
        beds.text(end + top * 0.01, y, rate, va="center", fontsize=8, color=INK)
    beds.set_xlim(0, top * 1.12)
    beds.set_yticks(positions, labels)
    beds.set_xlabel(_("bed-nights"), color=INK, fontsize=9)
    beds.set_title(
        _wrap(_("Beds: available, occupied and held (occupancy %)"), 62),
        loc="left",
        fontsize=10,
        color=INK,
    )
    beds.legend(**_under(beds, figure), ncol=_columns(legend), fontsize=8, frameon=False)
    _style(beds)

    height = 0.8 / len(STATUS_CELLS)
    peak = max([int(getattr(r, c) or 0) for r in rows for c in STATUS_CELLS] + [report.k])
    status_labels = _status_labels(_)
    for i, (cell, colour) in enumerate(zip(STATUS_CELLS, STATUS_COLOURS, strict=True)):
        offset = 0.4 - height * (i + 0.5)
        for y, row in zip(positions, rows, strict=True):
            value = getattr(row, cell)
            if cell in row.suppressed:
                _suppressed_marker(people, y + offset, height * 0.9, peak * 0.04, _)
            else:
                people.barh(y + offset, value or 0, height=height * 0.9, color=colour)
    people.set_title(_wrap(_("People admitted, by status"), 40), loc="left", fontsize=10, color=INK)
    people.set_xlabel(_("people"), color=INK, fontsize=9)
    handles = [Patch(facecolor=c) for c in STATUS_COLOURS]
    handles.append(Patch(facecolor="none", edgecolor=MUTED, hatch="///"))
    names = [
        *status_labels,
        _("suppressed (fewer than {k}, or hidden to protect one)").format(k=report.k),
    ]
    people.legend(
        handles,
        names,
        **_under(people, figure),
        ncol=2,
        fontsize=7.5,
        frameon=False,
    )
    _style(people)
    period = _period(report.period.first, report.period.last, _)
    figure.suptitle(
        _allocation_title(report.group_by, period, _),
        x=0.01,
        ha="left",
        fontsize=12,
        color=INK,
        fontweight="bold",
    )
    figure.text(
        0.01,
        -0.02,
        _("A bed-night is one bed counted at the midnight (UTC) that ends each date.")
        + "\n"
        + _wrap(disclosure_line(report.disclosure, _)),
        fontsize=7.5,
        color=MUTED,
        va="top",
    )
    figure.tight_layout()
    return _svg(figure)


def grants_svg(report: GrantsReport, _: Translate = _english) -> bytes:
    """Funded against available and occupied bed-nights per grant; under-delivery flagged.

    ``_`` translates every word on the chart; shelter names are the report's own.
    """
    with _chart_style():
        return _grants_svg(report, _)


def _grants_svg(report: GrantsReport, _: Translate) -> bytes:
    rows = list(report.rows)
    n = max(len(rows), 1)
    legend = [_("funded"), _("available (delivered)"), _("occupied")]
    figure = Figure(figsize=(10, 1.6 + 0.6 * n + _legend_height(legend)))
    ax = figure.subplots()
    positions = list(range(len(rows)))[::-1]
    h = 0.26
    ax.barh(
        [p + h for p in positions],
        [r.funded_bed_nights for r in rows],
        height=h,
        color=FUNDED,
        label=legend[0],
    )
    ax.barh(
        positions,
        [r.available_bed_nights for r in rows],
        height=h,
        color=AVAILABLE,
        edgecolor=OCCUPIED,
        linewidth=0.5,
        label=legend[1],
    )
    ax.barh(
        [p - h for p in positions],
        [r.occupied_bed_nights for r in rows],
        height=h,
        color=OCCUPIED,
        label=legend[2],
    )
    top = max(
        [max(r.funded_bed_nights, r.available_bed_nights, r.occupied_bed_nights) for r in rows]
        + [1]
    )
    for y, row in zip(positions, rows, strict=True):
        share = (
            _("{share} of funded").format(
                share=f"{row.available_bed_nights / row.funded_bed_nights:.0%}"
            )
            if row.funded_bed_nights
            else _("nothing funded")
        )
        cost = (
            ""
            if row.cost_per_occupied_bed_night is None
            else " · "
            + _("{cost} {currency} per occupied bed-night").format(
                cost=row.cost_per_occupied_bed_night, currency=row.currency
            )
        )
        flag = _("UNDER-DELIVERY") + " · " if row.under_delivery else ""
        ax.text(
            max(row.funded_bed_nights, row.available_bed_nights, row.occupied_bed_nights)
            + top * 0.01,
            y,
            flag + share + cost,
            va="center",
            fontsize=8,
            color=ALERT if row.under_delivery else INK,
        )
    ax.set_yticks(
        positions,
        [
            _("Grant {grant} · {shelter}").format(grant=r.grant_id, shelter=r.shelter_name)
            for r in rows
        ],
    )
    ax.set_xlim(0, top * 1.6)
    ax.set_xlabel(_("bed-nights"), color=INK, fontsize=9)
    ax.legend(**_under(ax, figure), ncol=_columns(legend), fontsize=8, frameon=False)
    _style(ax)
    period = _period(report.period.first, report.period.last, _)
    ax.set_title(
        _("Grants: funded and delivered bed-nights, {period}").format(period=period),
        loc="left",
        fontsize=12,
        color=INK,
        fontweight="bold",
    )
    figure.text(
        0.01,
        -0.02,
        _(
            "Under-delivery: available bed-nights below {threshold} of funded bed-nights. "
            "Costs are the grant amount pro rata to the days in the period."
        ).format(threshold="80 %")
        + "\n"
        + _wrap(disclosure_line(report.disclosure, _)),
        fontsize=7.5,
        color=MUTED,
        va="top",
    )
    figure.tight_layout()
    return _svg(figure)
