"""Charts in Kazakh and Russian: every word through ``_``, drawn in a font with every letter."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import matplotlib
from babel.messages.extract import extract_from_file
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

import service.report_formats as report_formats
import shelters.reports as shelters_reports
from service.report_formats import (
    CHART_FONTS,
    LOOK_AVAILABLE,
    LOOK_FUNDED,
    LOOK_HELD,
    LOOK_OCCUPIED,
    LOOK_UNMET,
    STATUS_LOOKS,
    allocation_svg,
    column_headings,
    grants_svg,
    unmet_demand_svg,
)
from service.routes.reports import ALLOCATION_COLUMNS, GRANT_COLUMNS, UNMET_COLUMNS
from shelters.reports import (
    AllocationReport,
    AllocationRow,
    Disclosure,
    GrantRow,
    GrantsReport,
    Period,
    UnmetDemandReport,
    UnmetRow,
)

KAZAKH_LETTERS = "әғқңөұүһіӘҒҚҢӨҰҮҺІ"
KAZAKH = {
    "Bed allocation by shelter, {period}": "Төсектердің баспаналар бойынша бөлінуі, {period}",
    "available": "қолжетімді",
    "occupied": "бос емес",
    "bed-nights": "төсек-күндер",
    "People admitted, by status": "Қоныстанған адамдар, мәртебесі бойынша",
    "<{k}: suppressed (fewer than {k}, or hidden so that another cell cannot be worked out)": (
        "<{k}: жасырылды"
    ),
    "unaccompanied minors": "сүйемелдеусіз кәмелетке толмағандар",
    "Grants: funded and delivered bed-nights, {period}": (
        "Гранттар: қаржыландырылған және ұсынылған төсек-күндер, {period}"
    ),
    "funded": "қаржыландырылған",
    # No word of the catalogue has "һ": a made-up message carries every letter.
    "people": "адам " + KAZAKH_LETTERS,
}
PERIOD = Period(date(2026, 3, 1), date(2026, 3, 10), datetime(2026, 4, 1, tzinfo=UTC))
MESSAGES = {
    m
    for source in (report_formats.__file__, shelters_reports.__file__)
    for _, m, _, _ in extract_from_file("python", source, keywords={"_": None, "N_": None})
}


def kazakh(message: str) -> str:
    return KAZAKH.get(message, message)


def _disclosure() -> Disclosure:
    return Disclosure(
        method="single-table",
        k=11,
        period="2026-03-01..2026-03-10",
        year=None,
        tables=(),
        words=(
            "Bed-nights and money are not counts of people: nothing in this report is suppressed."
        ),
    )


def _allocation() -> AllocationReport:
    row = AllocationRow(
        key="1",
        label="Демо дағдарыс орталығы, Алматы",
        bed_nights_available=40,
        bed_nights_occupied=30,
        bed_nights_held=2,
        occupancy_rate=0.75,
        placements_proposed=None,
        placements_accepted=None,
        placements_admitted=None,
        placements_declined=None,
        placements_expired=None,
        median_hours_to_proposal=None,
        median_hours_to_admission=None,
        people_adult=None,
        people_accompanied_child=12,
        people_unaccompanied_minor=None,
        people_female=None,
        people_male=None,
        people_other=None,
        suppressed=["people_adult", "people_unaccompanied_minor"],
    )
    return AllocationReport(
        period=PERIOD,
        group_by="shelter",
        k=11,
        rows=[row],
        totals=row,
        disclosure=_disclosure(),
    )


def _grants() -> GrantsReport:
    row = GrantRow(
        grant_id=7,
        funder_organization_id=3,
        shelter_id=1,
        shelter_name="Демо баспана, Шымкент",
        currency="KZT",
        amount_in_period=Decimal("3100.00"),
        funded_bed_nights=100,
        available_bed_nights=60,
        occupied_bed_nights=50,
        cost_per_occupied_bed_night=Decimal("62.00"),
        under_delivery=True,
        suppressed=(),
    )
    return GrantsReport(period=PERIOD, rows=[row], disclosure=_disclosure())


REGION_NAMES = {"almaty": "Алматы қаласы", "astana": "Астана қаласы"}


def _unmet() -> UnmetDemandReport:
    rows = [
        UnmetRow("almaty", "too_few_beds", 40, 30, 12, 0, []),
        UnmetRow(
            "astana", "declined:safety_concern", None, None, 0, 0, ["requests", "people_adult"]
        ),
        UnmetRow("astana", "missing_service:legal_aid", 0, 0, 0, 0, []),
    ]
    return UnmetDemandReport(period=PERIOD, k=11, rows=rows, disclosure=_disclosure())


def _texts(svg: bytes) -> list[str]:
    found = re.findall(r"<text[^>]*>([^<]*)</text>", svg.decode("utf-8"))
    return [html.unescape(text) for text in found]


def test_a_chart_in_kazakh_holds_the_kazakh_words_as_text_in_a_named_font() -> None:
    for svg in (allocation_svg(_allocation(), kazakh), grants_svg(_grants(), kazakh)):
        assert b"font-family: 'DejaVu Sans', 'Arial', 'Liberation Sans', sans-serif" in svg
        assert b"<text" in svg
    allocation = " ".join(_texts(allocation_svg(_allocation(), kazakh)))
    for word in (
        "Төсектердің баспаналар бойынша бөлінуі, 2026-03-01 to 2026-03-10",
        "қолжетімді",
        "бос емес",
        "төсек-күндер",
        "Қоныстанған адамдар, мәртебесі бойынша",
        "жасырылды",
        "сүйемелдеусіз кәмелетке толмағандар",
        "Демо дағдарыс орталығы, Алматы",
        "адам " + KAZAKH_LETTERS,
    ):
        assert word in allocation
    assert "People admitted" not in allocation
    grants = " ".join(_texts(grants_svg(_grants(), kazakh)))
    assert "Гранттар: қаржыландырылған және ұсынылған төсек-күндер" in grants
    assert "Демо баспана, Шымкент" in grants


def test_the_chart_font_has_every_kazakh_letter() -> None:
    path = font_manager.findfont(CHART_FONTS[0], fallback_to_default=False)
    assert "DejaVuSans" in Path(path).name
    charmap = FT2Font(path).get_charmap()
    missing = [letter for letter in KAZAKH_LETTERS if ord(letter) not in charmap]
    assert missing == []


def test_every_word_goes_through_the_translator_as_a_literal_message() -> None:
    asked: list[str] = []

    def recording(message: str) -> str:
        asked.append(message)
        return message

    for layout in ("wide", "narrow"):
        allocation_svg(_allocation(), recording, layout=layout)
        grants_svg(_grants(), recording, layout=layout)
        unmet_demand_svg(_unmet(), REGION_NAMES, recording, layout=layout)
    for columns in (ALLOCATION_COLUMNS, GRANT_COLUMNS, UNMET_COLUMNS):
        column_headings(columns, recording)
    # What the code asks for is what pybabel extracts: no message built at run time.
    assert set(asked) <= MESSAGES
    assert len(set(asked)) >= 50


def test_charts_in_english_keep_their_words_and_leave_the_settings_as_they_were() -> None:
    before = matplotlib.rcParams["svg.fonttype"]
    texts = " ".join(_texts(allocation_svg(_allocation())))
    assert "People admitted, by status" in texts
    assert "suppressed" in texts
    assert matplotlib.rcParams["svg.fonttype"] == before


def _width_pt(svg: bytes) -> float:
    found = re.search(rb'<svg[^>]*width="([0-9.]+)pt"', svg)
    assert found is not None
    return float(found.group(1))


def test_a_suppressed_cell_is_drawn_as_less_than_k_and_never_as_a_bar() -> None:
    report = _allocation()
    for layout in ("wide", "narrow"):
        texts = [t.strip() for t in _texts(allocation_svg(report, layout=layout))]
        # One marker per suppressed cell of the people panel, and the footnote that explains it.
        assert texts.count("<11") == len(report.rows[0].suppressed)
        assert any(t.startswith("<11: suppressed") for t in texts)
    unmet = [t.strip() for t in _texts(unmet_demand_svg(_unmet(), REGION_NAMES))]
    assert unmet.count("<11") == 1
    assert "40" in unmet


def test_the_phone_layout_is_narrow_and_says_everything_the_wide_one_says() -> None:
    for draw in (
        lambda layout: allocation_svg(_allocation(), kazakh, layout=layout),
        lambda layout: grants_svg(_grants(), kazakh, layout=layout),
        lambda layout: unmet_demand_svg(_unmet(), REGION_NAMES, kazakh, layout=layout),
    ):
        wide, narrow = draw("wide"), draw("narrow")
        # 390 px is 292.5 pt; the phone chart may be a little wider and is scaled to fit.
        assert _width_pt(narrow) <= 320 < _width_pt(wide)
        # Axis ticks may differ with the width; every word and every figure of the data stays.
        words = lambda svg: {w for t in _texts(svg) for w in t.split() if not w.isdigit()}  # noqa: E731
        assert words(wide) == words(narrow)


def test_unmet_demand_rows_name_the_region_in_the_readers_words_and_the_reason_in_few() -> None:
    texts = " ".join(_texts(unmet_demand_svg(_unmet(), REGION_NAMES)))
    assert "Алматы қаласы · too few free beds" in texts
    assert "Астана қаласы · declined: safety concern" in texts
    # A row with no request left unplaced is not drawn.
    assert "service missing" not in texts


def _luminance(colour: str) -> float:
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_each_meaning_has_its_own_colour_and_greyscale_twins_differ_in_pattern() -> None:
    looks = [LOOK_AVAILABLE, LOOK_OCCUPIED, LOOK_HELD, LOOK_FUNDED, LOOK_UNMET, *STATUS_LOOKS]
    assert len({colour for colour, _ in looks}) == len(looks)
    for i, (colour, hatch) in enumerate(looks):
        for other, other_hatch in looks[i + 1 :]:
            if abs(_luminance(colour) - _luminance(other)) < 0.12:
                assert hatch != other_hatch, (colour, other)
