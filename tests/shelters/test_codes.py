"""Case codes: random, checkable, forgiving of case and hyphens."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from shelters.codes import ALPHABET, RANDOM_SYMBOLS, _check_symbol, new_case_code, normalize


def test_codes_are_random_and_valid() -> None:
    codes = {new_case_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(normalize(c) == c for c in codes)
    assert all(len(c.replace("-", "")) == 14 for c in codes)


@given(st.integers(0, 13), st.sampled_from(ALPHABET))
def test_any_single_mistyped_symbol_is_caught(position: int, replacement: str) -> None:
    code = new_case_code().replace("-", "")
    if code[position] == replacement:
        return
    typo = code[:position] + replacement + code[position + 1 :]
    assert normalize(typo) is None


PAYLOADS = st.text(alphabet=ALPHABET, min_size=RANDOM_SYMBOLS, max_size=RANDOM_SYMBOLS)


@given(PAYLOADS, st.integers(0, RANDOM_SYMBOLS - 1))
@example(payload="K7QZ0M2C9VX4T", position=3)  # the blind spot, every run
def test_swapping_two_neighbours_is_caught_but_for_0_and_z(payload: str, position: int) -> None:
    # Drawn by Hypothesis, not by new_case_code: the same examples fail the same way again.
    code = payload + _check_symbol(payload)
    a, b = code[position], code[position + 1]
    if a == b:
        return
    swapped = code[:position] + b + a + code[position + 2 :]
    if {a, b} == {"0", "Z"}:
        # Luhn mod 32's one blind spot (values 0 and 31), as 0/9 is Luhn mod 10's: kept,
        # since changing the check would invalidate every code already issued.
        assert normalize(swapped) is not None
    else:
        assert normalize(swapped) is None


def test_reading_ignores_case_hyphens_and_lookalikes() -> None:
    code = new_case_code()
    assert normalize(code.lower().replace("-", "")) == code
    assert normalize(code.replace("0", "O").replace("1", "I")) == code
    assert normalize("not a code") is None
