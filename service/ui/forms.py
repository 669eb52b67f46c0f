"""Reading the pages' forms into the domain's inputs.

Only shape is checked here (numbers are numbers); every rule about what a case may be is the
domain's (``validate_profile``), so its messages reach the page unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from starlette.datastructures import FormData

from shelters.errors import InvalidInput
from shelters.profiles import CaseProfile, MemberProfile

MEMBER_ROWS = 4
REFS = "ABCD"
_LANGUAGE = re.compile(r"^[a-z]{2}$")


@dataclass
class ProfileForm:
    """What the case form showed or received, to fill it in again after an error."""

    members: list[dict[str, str]] = field(
        default_factory=lambda: [
            {"ref": REFS[i], "sex": "", "age": "", "guardian": ""} for i in range(MEMBER_ROWS)
        ]
    )
    required_services: list[str] = field(default_factory=list)
    languages: str = ""
    wheelchair: bool = False
    high_risk: bool = False
    current_region: str = ""


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def read_profile_form(form: FormData) -> ProfileForm:
    """The raw values of a submitted case form."""
    return ProfileForm(
        members=[
            {
                "ref": _text(form, f"member-{i}-ref") or REFS[i],
                "sex": _text(form, f"member-{i}-sex"),
                "age": _text(form, f"member-{i}-age"),
                "guardian": _text(form, f"member-{i}-guardian"),
            }
            for i in range(MEMBER_ROWS)
        ],
        required_services=[v for v in form.getlist("required_services") if isinstance(v, str)],
        languages=_text(form, "languages"),
        wheelchair=form.get("wheelchair") == "on",
        high_risk=form.get("high_risk") == "on",
        current_region=_text(form, "current_region"),
    )


def profile_from(values: ProfileForm) -> CaseProfile:
    """The case profile a form describes; rows without an age are left out."""
    members = []
    for row in values.members:
        if not row["age"]:
            continue
        if not row["age"].isdigit():
            raise InvalidInput("member {ref}: age must be a whole number of years", ref=row["ref"])
        members.append(
            MemberProfile(
                ref=row["ref"][:8],
                sex=row["sex"],
                age=int(row["age"]),
                guardian_ref=row["guardian"] or None,
            )
        )
    languages = tuple(sorted({p.strip().lower() for p in values.languages.split(",") if p.strip()}))
    bad = [code for code in languages if not _LANGUAGE.match(code)]
    if bad:
        raise InvalidInput("languages are two-letter ISO 639-1 codes separated by commas")
    return CaseProfile(
        members=tuple(members),
        required_services=tuple(values.required_services),
        languages=languages,
        wheelchair=values.wheelchair,
        high_risk=values.high_risk,
        current_region=values.current_region or None,
    )


def whole_number(form: FormData, name: str) -> int:
    """A non-negative whole number from a form field."""
    text = _text(form, name)
    if not text.isdigit():
        raise InvalidInput(
            "{field} must be a whole number, 0 or more", field=name.replace("_", " ")
        )
    return int(text)
