"""Case codes: random, non-sequential, with a check character (SPEC §4, §9).

13 symbols of Crockford's base-32 alphabet carry 65 random bits; a 14th symbol is a Luhn
mod 32 check, which catches every single mistyped symbol and every swap of two neighbours but
one: 0 and Z (values 0 and 31) swapped, Luhn mod N's blind spot.
Shown in groups, e.g. ``K7QM-2ZC9-VX4T-PB``; reading ignores case and hyphens and takes
O for 0 and I/L for 1, as Crockford intends.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_SYMBOLS = 13
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


def _check_symbol(payload: str) -> str:
    n = len(ALPHABET)
    total = 0
    factor = 2
    for symbol in reversed(payload):
        addend = factor * _VALUE[symbol]
        total += addend // n + addend % n
        factor = 1 if factor == 2 else 2
    return ALPHABET[(n - total % n) % n]


def new_case_code() -> str:
    """A fresh random case code with its check symbol, grouped by four."""
    payload = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_SYMBOLS))
    raw = payload + _check_symbol(payload)
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def normalize(code: str) -> str | None:
    """The canonical grouped form of a code, or None when it is malformed or mistyped."""
    raw = code.upper().translate(_ALIASES)
    if len(raw) != RANDOM_SYMBOLS + 1 or any(c not in _VALUE for c in raw):
        return None
    if _check_symbol(raw[:-1]) != raw[-1]:
        return None
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))
