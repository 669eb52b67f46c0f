"""How reports are written out: CSV (RFC 4180) and SVG charts (matplotlib).

Charts are drawn on ``Figure`` objects, never through ``pyplot``: no global state, so requests
served in parallel threads do not share a figure.

Suppressed cells never turn into zeros: CSV writes ``<k`` (e.g. ``<11``), charts draw a
hatched marker labelled "suppressed". Cells that begin with ``= + - @`` (or a tab or carriage
return) are prefixed with an apostrophe so that a spreadsheet does not run them as formulas.
"""

from __future__ import annotations

import csv
import io
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from shelters.reports import STATUS_CELLS, AllocationReport, Disclosure, GrantsReport

CSV_MEDIA_TYPE = "text/csv; charset=utf-8; header=present"
SVG_MEDIA_TYPE = "image/svg+xml"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

INK = "#1f2933"
MUTED = "#7b8794"
AVAILABLE = "#c9d6e3"
OCCUPIED = "#1f5f8b"
HELD = "#e0a030"
FUNDED = "#9aa5b1"
ALERT = "#b42318"
STATUS_COLOURS = ("#1f5f8b", "#5aa0c8", "#e0a030")
STATUS_LABELS = ("adults", "accompanied children", "unaccompanied minors")


def _cell(value: Any, suppressed: bool, k: int) -> str:
    if suppressed:
        return f"<{k}"
    if value is None:
        return ""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def disclosure_line(disclosure: Disclosure) -> str:
    """One line saying how a report was protected, for CSV and charts."""
    return f"disclosure: {disclosure.method}, period {disclosure.period}. {disclosure.statement}"


def to_csv(
    columns: Sequence[str],
    rows: Iterable[dict[str, Any]],
    *,
    k: int | None = None,
    disclosure: Disclosure | None = None,
) -> str:
    """RFC 4180 CSV (CRLF line ends, quoted where needed) with a header row.

    A row's ``suppressed`` list names the cells written as ``<k``. With ``disclosure``, a last
    record of one field says how the report was protected (it begins with ``#``, which
    spreadsheet and CSV readers show as text).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    for row in rows:
        hidden = set(row.get("suppressed") or ())
        writer.writerow(
            _cell(row.get(name), name in hidden and k is not None, k or 0) for name in columns
        )
    if disclosure is not None:
        writer.writerow(["# " + disclosure_line(disclosure)])
    return buffer.getvalue()


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


def _suppressed_marker(ax: Any, y: float, height: float, width: float) -> None:
    ax.barh(y, width, height=height, color="none", edgecolor=MUTED, hatch="///", linewidth=0.6)
    ax.text(
        width * 1.15,
        y,
        "suppressed",
        va="center",
        ha="left",
        fontsize=7.5,
        color=MUTED,
        style="italic",
    )


def allocation_svg(report: AllocationReport) -> bytes:
    """Two panels per group: bed-nights available/occupied/held, and people admitted by status."""
    rows = list(report.rows)
    labels = [r.label for r in rows]
    n = max(len(rows), 1)
    figure = Figure(figsize=(11, 1.6 + 0.42 * n))
    beds, people = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]}, sharey=True)
    positions = list(range(len(rows)))[::-1]
    beds.barh(
        positions,
        [r.bed_nights_available for r in rows],
        height=0.7,
        color=AVAILABLE,
        label="available",
    )
    beds.barh(
        positions,
        [r.bed_nights_occupied for r in rows],
        height=0.42,
        color=OCCUPIED,
        label="occupied",
    )
    occupied = [r.bed_nights_occupied for r in rows]
    beds.barh(
        positions,
        [r.bed_nights_held for r in rows],
        left=occupied,
        height=0.42,
        color=HELD,
        label="held for a proposal",
    )
    ends = [max(r.bed_nights_available, r.bed_nights_occupied + r.bed_nights_held) for r in rows]
    top = max([*ends, 1])
    for y, row, end in zip(positions, rows, ends, strict=True):
        rate = "-" if row.occupancy_rate is None else f"{row.occupancy_rate:.0%}"
        beds.text(end + top * 0.01, y, rate, va="center", fontsize=8, color=INK)
    beds.set_xlim(0, top * 1.12)
    beds.set_yticks(positions, labels)
    beds.set_xlabel("bed-nights", color=INK, fontsize=9)
    beds.set_title(
        "Beds: available, occupied and held (occupancy %)", loc="left", fontsize=10, color=INK
    )
    beds.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize=8, frameon=False)
    _style(beds)

    height = 0.8 / len(STATUS_CELLS)
    peak = max([int(getattr(r, c) or 0) for r in rows for c in STATUS_CELLS] + [report.k])
    for i, (cell, colour, _label) in enumerate(
        zip(STATUS_CELLS, STATUS_COLOURS, STATUS_LABELS, strict=True)
    ):
        offset = 0.4 - height * (i + 0.5)
        for y, row in zip(positions, rows, strict=True):
            value = getattr(row, cell)
            if cell in row.suppressed:
                _suppressed_marker(people, y + offset, height * 0.9, peak * 0.04)
            else:
                people.barh(y + offset, value or 0, height=height * 0.9, color=colour)
    people.set_title("People admitted, by status", loc="left", fontsize=10, color=INK)
    people.set_xlabel("people", color=INK, fontsize=9)
    handles = [Patch(facecolor=c) for c in STATUS_COLOURS]
    handles.append(Patch(facecolor="none", edgecolor=MUTED, hatch="///"))
    names = [*STATUS_LABELS, f"suppressed (fewer than {report.k}, or hidden to protect one)"]
    people.legend(
        handles,
        names,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=2,
        fontsize=7.5,
        frameon=False,
    )
    _style(people)
    period = f"{report.period.first.isoformat()} to {report.period.last.isoformat()}"
    figure.suptitle(
        f"Bed allocation by {report.group_by}, {period}",
        x=0.01,
        ha="left",
        fontsize=12,
        color=INK,
        fontweight="bold",
    )
    figure.text(
        0.01,
        -0.02,
        "A bed-night is one bed counted at the midnight (UTC) that ends each date.\n"
        + _wrap(disclosure_line(report.disclosure)),
        fontsize=7.5,
        color=MUTED,
        va="top",
    )
    figure.tight_layout()
    return _svg(figure)


def grants_svg(report: GrantsReport) -> bytes:
    """Funded against available and occupied bed-nights per grant; under-delivery flagged."""
    rows = list(report.rows)
    n = max(len(rows), 1)
    figure = Figure(figsize=(10, 1.6 + 0.6 * n))
    ax = figure.subplots()
    positions = list(range(len(rows)))[::-1]
    h = 0.26
    ax.barh(
        [p + h for p in positions],
        [r.funded_bed_nights for r in rows],
        height=h,
        color=FUNDED,
        label="funded",
    )
    ax.barh(
        positions,
        [r.available_bed_nights for r in rows],
        height=h,
        color=AVAILABLE,
        edgecolor=OCCUPIED,
        linewidth=0.5,
        label="available (delivered)",
    )
    ax.barh(
        [p - h for p in positions],
        [r.occupied_bed_nights for r in rows],
        height=h,
        color=OCCUPIED,
        label="occupied",
    )
    top = max(
        [max(r.funded_bed_nights, r.available_bed_nights, r.occupied_bed_nights) for r in rows]
        + [1]
    )
    for y, row in zip(positions, rows, strict=True):
        share = (
            f"{row.available_bed_nights / row.funded_bed_nights:.0%} of funded"
            if row.funded_bed_nights
            else "nothing funded"
        )
        cost = (
            ""
            if row.cost_per_occupied_bed_night is None
            else f" · {row.cost_per_occupied_bed_night} {row.currency} per occupied bed-night"
        )
        flag = "UNDER-DELIVERY · " if row.under_delivery else ""
        ax.text(
            max(row.funded_bed_nights, row.available_bed_nights, row.occupied_bed_nights)
            + top * 0.01,
            y,
            flag + share + cost,
            va="center",
            fontsize=8,
            color=ALERT if row.under_delivery else INK,
        )
    ax.set_yticks(positions, [f"Grant {r.grant_id} · {r.shelter_name}" for r in rows])
    ax.set_xlim(0, top * 1.6)
    ax.set_xlabel("bed-nights", color=INK, fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False)
    _style(ax)
    period = f"{report.period.first.isoformat()} to {report.period.last.isoformat()}"
    ax.set_title(
        f"Grants: funded and delivered bed-nights, {period}",
        loc="left",
        fontsize=12,
        color=INK,
        fontweight="bold",
    )
    figure.text(
        0.01,
        -0.02,
        "Under-delivery: available bed-nights below 80 % of funded bed-nights. "
        "Costs are the grant amount pro rata to the days in the period.\n"
        + _wrap(disclosure_line(report.disclosure)),
        fontsize=7.5,
        color=MUTED,
        va="top",
    )
    figure.tight_layout()
    return _svg(figure)
