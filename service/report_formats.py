"""How reports are written out: CSV (RFC 4180), spreadsheets (.xlsx) and SVG charts.

Charts are drawn on ``Figure`` objects, never through ``pyplot``, so requests served in
parallel threads do not share a figure.

Suppressed cells never turn into zeros: CSV and .xlsx write ``<k`` (e.g. ``<11``), charts draw
``<k`` where the bar would start. Cells that begin with ``= + - @`` (or a tab or
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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Literal

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import offset_copy
from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from shelters.reports import (
    STATUS_CELLS,
    AllocationReport,
    Disclosure,
    GrantsReport,
    UnmetDemandReport,
)

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
ALERT = "#b42318"
Look = tuple[str, str]
"""A bar's colour and hatch. Each meaning has its own colour on every chart, and the colours
that would look alike in greyscale differ in hatch, so a printed report still tells them apart."""
LOOK_AVAILABLE: Look = ("#c9d6e3", "")
LOOK_OCCUPIED: Look = ("#1f5f8b", "")
LOOK_HELD: Look = ("#e0a030", "////")
LOOK_FUNDED: Look = ("#8f9ba8", "--")
LOOK_UNMET: Look = ("#e07b53", "")
STATUS_LOOKS: tuple[Look, ...] = (
    ("#45236e", ""),  # adults
    ("#2a9d8f", "\\\\"),  # accompanied children
    ("#d6336c", "xxx"),  # unaccompanied minors
)
Layout = Literal["wide", "narrow"]
"""``wide`` for a screen or a printed page; ``narrow`` for a phone (about 380 px)."""
WIDE_IN = 10.5
NARROW_IN = 4.0


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
        "priority": _("Priority"),
        "placed": _("Placed"),
        "escalated": _("Escalated"),
        "waiting": _("Still waiting"),
        "field": _("Field"),
        "value": _("Value"),
        "people": _("People"),
        "group": _("Group of people"),
        "placed_share": _("Share placed"),
        "outside_preferred_share": _("Share placed outside the preferred regions"),
        "declined_no_capacity": _("Declined: no capacity"),
        "declined_not_eligible": _("Declined: not eligible"),
        "declined_safety_concern": _("Declined: safety concern"),
        "declined_staffing": _("Declined: staffing"),
        "declined_other": _("Declined: other reason"),
        "flags": _("Disparity flags"),
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
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False))


def _svg(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


def _style(ax: Any, *, people: bool = False) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.spines["left"].set_color(MUTED)
    ax.spines["bottom"].set_color(MUTED)
    ax.tick_params(colors=INK, labelsize=9)
    ax.xaxis.grid(True, color="#e4e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    if people:
        # People come whole: never a tick at 0.5 of a person.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _bar_style(look: Look) -> dict[str, Any]:
    """``barh`` keywords for a look: its colour, and its hatch drawn in a darker line."""
    colour, hatch = look
    if not hatch:
        return {"color": colour}
    return {"color": colour, "hatch": hatch, "edgecolor": "#ffffff", "linewidth": 0}


def _handle(look: Look) -> Patch:
    colour, hatch = look
    return Patch(facecolor=colour, hatch=hatch or None, edgecolor="#ffffff", linewidth=0)


def _columns(labels: Sequence[str], width_in: float) -> int:
    """How many legend entries fit side by side in ``width_in`` inches at 8 pt.

    Estimated from the longest label (about 0.075 in a letter, plus the swatch and the gap),
    so that the legend is never wider than its panel: entries never run into each other or
    into the next panel's legend, in any language.
    """
    entry = max(len(label) for label in labels) * 0.075 + 0.5
    return max(1, min(len(labels), int(width_in // entry)))


def _legend_under(ax: Any, figure: Figure, handles: list[Any], labels: list[str]) -> None:
    """A legend centred under ``ax``'s axis label; the layout makes room for it."""
    width = ax.get_position().width * figure.get_figwidth()
    ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0),
        bbox_transform=offset_copy(ax.transAxes, fig=figure, y=-30, units="points"),
        ncol=_columns(labels, width),
        fontsize=8,
        frameon=False,
    )


def _footnote(figure: Figure, text: str) -> None:
    """Small print under everything the layout placed, legends included, never over them."""
    figure.draw_without_rendering()
    bottom = figure.get_tightbbox().y0 / figure.get_figheight()  # figure fraction
    figure.text(0.01, bottom - 0.01, text, fontsize=7.5, color=MUTED, va="top", wrap=False)


def _suppressed_marker(ax: Any, y: float, k: int) -> None:
    """A suppressed cell: ``<k`` where its bar would begin, and no bar of any length."""
    ax.text(0, y, f" <{k}", va="center", ha="left", fontsize=7.5, color=MUTED, style="italic")


def _suppressed_words(k: int, _: Translate) -> str:
    return _(
        "<{k}: suppressed (fewer than {k}, or hidden so that another cell cannot be worked out)"
    ).format(k=k)


NARROW_STEP = 1.6
"""On a phone a row's label stands above its bars, so rows are further apart."""


def _positions(n: int, layout: Layout) -> list[float]:
    """Where each row's bars are centred, the first row on top."""
    step = 1.0 if layout == "wide" else NARROW_STEP
    return [step * i for i in range(n)][::-1]


def _row_labels(ax: Any, positions: Sequence[float], labels: Sequence[str], layout: Layout) -> None:
    """Group labels: beside the bars on a screen, above them on a phone (bars keep the width)."""
    if layout == "wide":
        ax.set_yticks(positions, labels)
        return
    ax.set_yticks([])
    for y, label in zip(positions, labels, strict=True):
        ax.text(0, y + 0.45, _wrap(label, 48), va="bottom", ha="left", fontsize=8, color=INK)
    ax.set_ylim(-0.6, (max(positions) if positions else 0) + 1.2)


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


def _title(figure: Figure, text: str, layout: Layout) -> None:
    figure.suptitle(
        _wrap(text, 120 if layout == "wide" else 38),
        x=0.01,
        ha="left",
        fontsize=12 if layout == "wide" else 10.5,
        color=INK,
        fontweight="bold",
    )


def allocation_svg(
    report: AllocationReport, _: Translate = _english, *, layout: Layout = "wide"
) -> bytes:
    """Two panels per group: bed-nights available/occupied/held, and people admitted by status.

    ``_`` translates every word on the chart; group labels are the report's own. ``wide``
    puts the panels side by side (a screen, a printed page); ``narrow`` stacks them for a
    phone's width.
    """
    with _chart_style():
        return _allocation_svg(report, _, layout)


def _allocation_svg(report: AllocationReport, _: Translate, layout: Layout) -> bytes:
    rows = list(report.rows)
    labels = [r.label for r in rows]
    n = max(len(rows), 1)
    if layout == "wide":
        figure = Figure(figsize=(WIDE_IN, 2.6 + 0.42 * n), layout="constrained")
        beds, people = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]}, sharey=True)
    else:
        figure = Figure(figsize=(NARROW_IN, 5.0 + 1.1 * n), layout="constrained")
        beds, people = figure.subplots(2, 1)
    positions = _positions(len(rows), layout)
    legend = [_("available"), _("occupied"), _("held for a proposal")]
    beds.barh(
        positions, [r.bed_nights_available for r in rows], height=0.7, **_bar_style(LOOK_AVAILABLE)
    )
    occupied = [r.bed_nights_occupied for r in rows]
    beds.barh(positions, occupied, height=0.42, **_bar_style(LOOK_OCCUPIED))
    beds.barh(
        positions,
        [r.bed_nights_held for r in rows],
        left=occupied,
        height=0.42,
        **_bar_style(LOOK_HELD),
    )
    ends = [max(r.bed_nights_available, r.bed_nights_occupied + r.bed_nights_held) for r in rows]
    top = max([*ends, 1])
    for y, row, end in zip(positions, rows, ends, strict=True):
        rate = "-" if row.occupancy_rate is None else f"{row.occupancy_rate:.0%}"
        beds.text(end + top * 0.01, y, rate, va="center", fontsize=8, color=INK)
    beds.set_xlim(0, top * 1.15)
    _row_labels(beds, positions, labels, layout)
    beds.set_xlabel(_("bed-nights"), color=INK, fontsize=9)
    beds.set_title(
        _wrap(
            _("Beds: available, occupied and held (occupancy %)"), 62 if layout == "wide" else 48
        ),
        loc="left",
        fontsize=10,
        color=INK,
    )
    _legend_under(
        beds, figure, [_handle(x) for x in (LOOK_AVAILABLE, LOOK_OCCUPIED, LOOK_HELD)], legend
    )
    _style(beds)

    height = 0.8 / len(STATUS_CELLS)
    for i, (cell, look) in enumerate(zip(STATUS_CELLS, STATUS_LOOKS, strict=True)):
        offset = 0.4 - height * (i + 0.5)
        for y, row in zip(positions, rows, strict=True):
            if cell in row.suppressed:
                _suppressed_marker(people, y + offset, report.k)
            else:
                people.barh(
                    y + offset, getattr(row, cell) or 0, height=height * 0.9, **_bar_style(look)
                )
    peak = max([int(getattr(r, c) or 0) for r in rows for c in STATUS_CELLS] + [report.k])
    people.set_xlim(0, peak * 1.1)
    if layout == "narrow":
        _row_labels(people, positions, labels, layout)
    people.set_title(_wrap(_("People admitted, by status"), 40), loc="left", fontsize=10, color=INK)
    people.set_xlabel(_("people"), color=INK, fontsize=9)
    _legend_under(people, figure, [_handle(x) for x in STATUS_LOOKS], list(_status_labels(_)))
    _style(people, people=True)
    _title(
        figure,
        _allocation_title(report.group_by, _period(report.period.first, report.period.last, _), _),
        layout,
    )
    width = 150 if layout == "wide" else 64
    _footnote(
        figure,
        _wrap(_("A bed-night is one bed counted at the midnight (UTC) that ends each date."), width)
        + "\n"
        + _wrap(_suppressed_words(report.k, _), width)
        + "\n"
        + _wrap(disclosure_line(report.disclosure, _), width),
    )
    return _svg(figure)


def grants_svg(report: GrantsReport, _: Translate = _english, *, layout: Layout = "wide") -> bytes:
    """Funded against available and occupied bed-nights per grant; under-delivery flagged.

    ``_`` translates every word on the chart; shelter names are the report's own.
    """
    with _chart_style():
        return _grants_svg(report, _, layout)


def _grants_svg(report: GrantsReport, _: Translate, layout: Layout) -> bytes:
    rows = list(report.rows)
    n = max(len(rows), 1)
    legend = [_("funded"), _("available (delivered)"), _("occupied")]
    labels = [
        _("Grant {grant} · {shelter}").format(grant=r.grant_id, shelter=r.shelter_name)
        for r in rows
    ]
    wide = layout == "wide"
    figure = Figure(
        figsize=(WIDE_IN if wide else NARROW_IN, 2.4 + (0.6 if wide else 1.3) * n),
        layout="constrained",
    )
    ax = figure.subplots()
    # On a phone a grant's figures go on a line under its bars: rows are further apart.
    positions = [p * (1 if wide else 1.4) for p in _positions(len(rows), layout)]
    h = 0.26
    ax.barh(
        [p + h for p in positions],
        [r.funded_bed_nights for r in rows],
        height=h,
        **_bar_style(LOOK_FUNDED),
    )
    ax.barh(
        positions, [r.available_bed_nights for r in rows], height=h, **_bar_style(LOOK_AVAILABLE)
    )
    ax.barh(
        [p - h for p in positions],
        [r.occupied_bed_nights for r in rows],
        height=h,
        **_bar_style(LOOK_OCCUPIED),
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
            else _("{cost} {currency} per occupied bed-night").format(
                cost=row.cost_per_occupied_bed_night, currency=row.currency
            )
        )
        flag = _("UNDER-DELIVERY") + " · " if row.under_delivery else ""
        colour = ALERT if row.under_delivery else INK
        if wide:
            end = max(row.funded_bed_nights, row.available_bed_nights, row.occupied_bed_nights)
            words = flag + share + (" · " + cost if cost else "")
            ax.text(end + top * 0.01, y, words, va="center", fontsize=8, color=colour)
        else:
            words = _wrap(flag + share, 56) + ("\n" + _wrap(cost, 56) if cost else "")
            ax.text(0, y - 0.45, words, va="top", ha="left", fontsize=7.5, color=colour)
    _row_labels(ax, positions, labels, layout)
    ax.set_xlim(0, top * (1.6 if wide else 1.05))
    if not wide:
        ax.set_ylim(-1.3, (max(positions) if positions else 0) + 1.2)
    ax.set_xlabel(_("bed-nights"), color=INK, fontsize=9)
    _legend_under(
        ax, figure, [_handle(x) for x in (LOOK_FUNDED, LOOK_AVAILABLE, LOOK_OCCUPIED)], legend
    )
    _style(ax)
    _title(
        figure,
        _("Grants: funded and delivered bed-nights, {period}").format(
            period=_period(report.period.first, report.period.last, _)
        ),
        layout,
    )
    width = 150 if wide else 64
    _footnote(
        figure,
        _wrap(
            _(
                "Under-delivery: available bed-nights below {threshold} of funded bed-nights. "
                "Costs are the grant amount pro rata to the days in the period."
            ).format(threshold="80 %"),
            width,
        )
        + "\n"
        + _wrap(disclosure_line(report.disclosure, _), width),
    )
    return _svg(figure)


def _unmet_reason(code: str, _: Translate) -> str:
    """A reason code in a few words, for a chart's row label (the table keeps the code)."""
    name = code.partition(":")[0]
    if name == "declined":
        reason = code.partition(":")[2]
        words = {
            "no_capacity": _("declined: no capacity"),
            "not_eligible": _("declined: not eligible"),
            "safety_concern": _("declined: safety concern"),
            "staffing": _("declined: staffing"),
        }
        return words.get(reason, _("declined: other reason"))
    if name == "missing_service":
        return _("a needed service missing")
    short = {
        "too_few_beds": _("too few free beds"),
        "capacity": _("too few free beds"),
        "capacity_taken": _("beds taken by others"),
        "member_not_admitted": _("no unit admits a member"),
        "guardian_unit_mismatch": _("no unit for a child with its guardian"),
        "security_level_too_low": _("security too low"),
        "region_excluded": _("region excluded"),
        "shelter_excluded": _("shelter excluded"),
        "declined_by_shelter": _("declined before"),
        "separated_case_housed": _("someone to keep apart is there"),
        "separated_from": _("someone to keep apart is there"),
        "not_wheelchair_accessible": _("not wheelchair accessible"),
        "shelter_not_open": _("shelter not open"),
        "no_shelters": _("no open shelter"),
        "not_chosen": _("another shelter preferred"),
        "not_examined": _("not examined before the time limit"),
    }
    return short.get(name, code)


def unmet_demand_svg(
    report: UnmetDemandReport,
    region_names: Mapping[str, str],
    _: Translate = _english,
    *,
    layout: Layout = "wide",
    most: int = 25,
) -> bytes:
    """Requests left unplaced per region and reason: the ``most`` largest, then suppressed ones.

    ``region_names`` gives each region code its name in the reader's language.
    """
    with _chart_style():
        return _unmet_svg(report, region_names, _, layout, most)


def _unmet_svg(
    report: UnmetDemandReport,
    region_names: Mapping[str, str],
    _: Translate,
    layout: Layout,
    most: int,
) -> bytes:
    shown = sorted(
        (r for r in report.rows if r.requests is not None and r.requests > 0),
        key=lambda r: (-(r.requests or 0), r.region, r.reason_code),
    )
    hidden = [r for r in report.rows if r.requests is None]
    rows = (shown + hidden)[:most]
    left_out = len(shown) + len(hidden) - len(rows)
    labels = [
        f"{region_names.get(r.region, r.region)} · {_unmet_reason(r.reason_code, _)}" for r in rows
    ]
    wide = layout == "wide"
    n = max(len(rows), 1)
    figure = Figure(
        figsize=(WIDE_IN if wide else NARROW_IN, 2.4 + (0.32 if wide else 0.55) * n),
        layout="constrained",
    )
    ax = figure.subplots()
    positions = _positions(len(rows), layout)
    peak = max([r.requests or 0 for r in rows] + [report.k])
    for y, row in zip(positions, rows, strict=True):
        if row.requests is None:
            _suppressed_marker(ax, y, report.k)
            continue
        ax.barh(y, row.requests, height=0.6, **_bar_style(LOOK_UNMET))
        ax.text(
            row.requests + peak * 0.01, y, str(row.requests), va="center", fontsize=8, color=INK
        )
    _row_labels(ax, positions, labels, layout)
    ax.set_xlim(0, peak * 1.12)
    ax.set_xlabel(_("requests left unplaced"), color=INK, fontsize=9)
    _style(ax, people=True)
    _title(
        figure,
        _("Unmet demand by region and reason, {period}").format(
            period=_period(report.period.first, report.period.last, _)
        ),
        layout,
    )
    width = 150 if wide else 64
    notes = [
        _("A request counts once per reason, in the period of its first unplaced run or decline."),
        _suppressed_words(report.k, _),
    ]
    if not rows:
        notes.insert(0, _("No request was left unplaced in this period."))
    if left_out:
        notes.append(_("{count} more rows are in the table (CSV, Excel).").format(count=left_out))
    notes.append(disclosure_line(report.disclosure, _))
    _footnote(figure, "\n".join(_wrap(note, width) for note in notes))
    return _svg(figure)
