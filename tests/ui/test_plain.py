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
