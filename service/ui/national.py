"""The national picture page and its SVG: where lone minors can and cannot be placed.

A schematic tile map of Kazakhstan's regions (shelters/national.py places them), each tile
coloured and patterned by the free places for unaccompanied minors — red and hatched where there
are none, so it reads in greyscale too — with the demand waiting beside; under it a table with
every group's free beds, for those who read rather than look. Each tile and row also says how
many of the region's units have numbers nobody confirmed within ``REFUGE_STALE_AFTER_HOURS``.
The SVG is written by hand: a few rectangles and words need no plotting library.
"""

from __future__ import annotations

from typing import Annotated
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service import i18n
from service.deps import ReadDb, UnitOfWorkRoute
from service.ui.routes import PREFIX, named, render
from service.ui.session import page_allow
from shelters import national
from shelters.errors import N_
from shelters.identity import Principal, Role

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=UnitOfWorkRoute)
READERS = (Role.ADMIN, Role.COORDINATOR, Role.CASEWORKER, Role.FUNDER)
GROUP_WORDS = {
    "unaccompanied_minor": N_("unaccompanied minors"),
    "accompanied_child": N_("children with a guardian"),
    "adult_female": N_("women"),
    "adult_male": N_("men"),
}
TILE_W, TILE_H, GAP, TOP = 150, 110, 8, 40
TITLE = N_("Free places for unaccompanied minors, by region")
NO_PLACE = N_("no free place for an unaccompanied minor")
SOME_PLACES = N_("free places; below: unaccompanied minors waiting in the region")
WAITING = N_("waiting: {n}")
STALE = N_("not confirmed: {n}")
STALE_LEGEND = N_("not confirmed: units whose numbers nobody confirmed within {hours} hours")


def _count(value: int | None, k: int, locale: str) -> str:
    return f"<{k}" if value is None else i18n.format_number(value, locale)


def _picture(request: Request, db: ReadDb, principal: Principal) -> list[national.RegionPicture]:
    k = request.app.state.settings.suppression_k
    hours = request.app.state.settings.stale_after_hours
    return national.picture(
        db, aggregate_only=principal.role is Role.FUNDER, k=k, stale_after_hours=hours
    )


def svg(regions: list[national.RegionPicture], locale: str, k: int, hours: float) -> bytes:
    """The tile map as an SVG document (viewBox only: it scales to the page's width)."""
    _ = lambda message, **params: i18n.gettext(locale, message, **params)  # noqa: E731
    columns = max((r.tile[0] for r in regions), default=0) + 1
    rows = max((r.tile[1] for r in regions), default=0) + 1
    width = columns * (TILE_W + GAP) + GAP
    legend_y = TOP + rows * (TILE_H + GAP) + 10
    height = legend_y + 86
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'font-family="DejaVu Sans, sans-serif" aria-labelledby="t">',
        '<defs><pattern id="none" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="8" height="8" fill="#fdecea"/>'
        '<line x1="0" y1="0" x2="0" y2="8" stroke="#b3261e" stroke-width="3"/></pattern></defs>',
        f'<title id="t">{escape(_(TITLE))}</title>',
        f'<text x="{GAP}" y="26" font-size="18" font-weight="bold">{escape(_(TITLE))}</text>',
    ]
    for region in regions:
        col, row = region.tile
        x, y = GAP + col * (TILE_W + GAP), TOP + row * (TILE_H + GAP)
        minors = region.beds["unaccompanied_minor"]
        fill = "url(#none)" if minors == 0 else "#e7f4ea"
        stroke = "#b3261e" if minors == 0 else "#2e7d32"
        name = named(region.region, locale)
        lines = [name] if len(name) <= 17 else _wrap(name, 17)[:2]
        out.append(
            f'<rect x="{x}" y="{y}" width="{TILE_W}" height="{TILE_H}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="2"/>'
        )
        # A white card inside the tile keeps the words readable over the hatching.
        out.append(
            f'<rect x="{x + 4}" y="{y + 4}" width="{TILE_W - 8}" height="{TILE_H - 8}" rx="4" '
            'fill="#ffffff" fill-opacity="0.86"/>'
        )
        for i, line in enumerate(lines):
            out.append(
                f'<text x="{x + 10}" y="{y + 20 + 14 * i}" font-size="12" font-weight="bold">'
                f"{escape(line)}</text>"
            )
        out.append(
            f'<text x="{x + 10}" y="{y + 64}" font-size="22" font-weight="bold" fill="{stroke}">'
            f"{escape(i18n.format_number(minors, locale))}</text>"
        )
        waiting = _(WAITING, n=_count(region.minors_waiting, k, locale))
        out.append(f'<text x="{x + 10}" y="{y + 84}" font-size="11">{escape(waiting)}</text>')
        stale = _(STALE, n=i18n.format_number(region.stale_units, locale))
        weight = ' font-weight="bold" fill="#8a4b00"' if region.stale_units else ""
        out.append(
            f'<text x="{x + 10}" y="{y + 100}" font-size="11"{weight}>{escape(stale)}</text>'
        )
    out.append(
        f'<rect x="{GAP}" y="{legend_y}" width="26" height="18" fill="url(#none)" '
        'stroke="#b3261e"/>'
        f'<text x="{GAP + 34}" y="{legend_y + 14}" font-size="12">'
        f"{escape(_(NO_PLACE))}</text>"
        f'<rect x="{GAP}" y="{legend_y + 26}" width="26" height="18" fill="#e7f4ea" '
        'stroke="#2e7d32"/>'
        f'<text x="{GAP + 34}" y="{legend_y + 40}" font-size="12">'
        f"{escape(_(SOME_PLACES))}</text>"
        f'<text x="{GAP}" y="{legend_y + 66}" font-size="12" fill="#8a4b00">'
        f"{escape(_(STALE_LEGEND, hours=i18n.format_number(hours, locale)))}</text>"
    )
    out.append("</svg>")
    return "\n".join(out).encode()


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


@router.get("/national")
def national_page(
    request: Request, principal: Annotated[Principal, page_allow(*READERS)], db: ReadDb
) -> Response:
    """The map of free places for lone minors and the table of every group's free beds."""
    locale = i18n.request_locale(request)
    k = request.app.state.settings.suppression_k
    regions = _picture(request, db, principal)
    rows = [
        {
            "name": named(r.region, locale),
            "beds": [i18n.format_number(r.beds[g], locale) for g in national.GROUPS],
            "shelters": r.shelters,
            "requests": _count(r.requests_waiting, k, locale),
            "minors": _count(r.minors_waiting, k, locale),
            "none": r.beds["unaccompanied_minor"] == 0,
            "stale": r.stale_units,
            "units": r.units,
        }
        for r in regions
    ]
    groups = [i18n.gettext(locale, GROUP_WORDS[g]) for g in national.GROUPS]
    nowhere = [row["name"] for row in rows if row["none"]]
    somewhere = [row["name"] for row in rows if not row["none"]]
    context = {
        "rows": rows,
        "groups": groups,
        "nowhere": nowhere,
        "somewhere": somewhere,
        "k": k,
        "hours": request.app.state.settings.stale_after_hours,
    }
    return render(request, "national.html", context)


@router.get("/national.svg")
def national_svg(
    request: Request, principal: Annotated[Principal, page_allow(*READERS)], db: ReadDb
) -> Response:
    """The same picture as an SVG, for reports."""
    locale = i18n.request_locale(request)
    settings = request.app.state.settings
    picture = svg(
        _picture(request, db, principal), locale, settings.suppression_k, settings.stale_after_hours
    )
    response = Response(picture, media_type="image/svg+xml")
    i18n.say_language(response, locale)
    return response
