"""Plain words for every reason code the domain and the solver give."""

from __future__ import annotations

import pytest

from service.ui import plain


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("declined_by_shelter", "declined this request"),
        ("separated_case_housed", "kept apart from"),
    ],
)
def test_new_reason_codes_are_said_in_plain_words(code: str, words: str) -> None:
    assert words in plain.reason_words(code)


def test_grouped_solver_reasons_are_said_shelter_by_shelter() -> None:
    from placement.solution import Reason

    groups = plain.solver_reasons(
        [
            Reason("capacity_taken", ("3",), ("17",)),
            Reason("member_not_admitted:A", ("3", "12")),
            Reason("separated_from", ("12", "4"), ("20", "21")),
        ]
    )
    assert groups == [
        plain.ShelterReasons(3, ["capacity_taken:17", "member_not_admitted:A"]),
        plain.ShelterReasons(4, ["separated_from"]),
        plain.ShelterReasons(12, ["member_not_admitted:A", "separated_from"]),
    ]
    assert "request 17" in plain.reason_words("capacity_taken:17")
    assert "kept apart" in plain.reason_words("separated_from")
    general = plain.solver_reasons([Reason("capacity_taken", ())])
    assert general == [plain.ShelterReasons(None, ["capacity_taken"])]
    assert "other requests" in plain.reason_words("capacity_taken")
