"""Reading the pages' forms into the domain's inputs.

Only shape is checked here (numbers are numbers); every rule about what a case may be is the
domain's (``validate_profile``), so its messages reach the page unchanged.

The case form has as many member rows as ``member_count`` says: "Add another person" posts the
form back with one more row, so a group of any size (up to the API's 20) is entered without
JavaScript, and what was typed is kept.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

from pydantic import ValidationError
from starlette.datastructures import FormData

from service.schemas import UserIn
from shelters.errors import InvalidInput
from shelters.profiles import CaseProfile, MemberProfile

MEMBER_ROWS = 4  # rows an empty form starts with
MAX_MEMBERS = 20  # as the API's CaseProfileIn.members
ADD_MEMBER = "add_member"  # the name of the "add another person" button
_LANGUAGE = re.compile(r"^[a-z]{2}$")


def member_ref(index: int) -> str:
    """The label of the ``index``-th row: A … Z, then M27, M28 … (never a name)."""
    letters = string.ascii_uppercase
    return letters[index] if index < len(letters) else f"M{index + 1}"


def _blank_rows(count: int) -> list[dict[str, str]]:
    return [
        {"ref": member_ref(i), "sex": "", "age": "", "guardian": "", "comes_of_age": ""}
        for i in range(count)
    ]


@dataclass
class ProfileForm:
    """What the case form showed or received, to fill it in again after an error."""

    members: list[dict[str, str]] = field(default_factory=lambda: _blank_rows(MEMBER_ROWS))
    required_services: list[str] = field(default_factory=list)
    desired_services: list[str] = field(default_factory=list)
    languages: str = ""
    wheelchair: bool = False
    high_risk: bool = False
    current_region: str = ""
    excluded_regions: list[str] = field(default_factory=list)
    exploitation_types: list[str] = field(default_factory=list)
    referral_source: str = ""
    separate_from: list[str] = field(default_factory=list)  # case ids, as posted

    @property
    def may_add_member(self) -> bool:
        return len(self.members) < MAX_MEMBERS


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def _count(form: FormData) -> int:
    text = _text(form, "member_count")
    count = int(text) if text.isdigit() else MEMBER_ROWS
    return max(1, min(count, MAX_MEMBERS))


def wants_another_member(form: FormData) -> bool:
    """The form was posted by "Add another person", not by its main button."""
    return ADD_MEMBER in form


def read_profile_form(form: FormData) -> ProfileForm:
    """The raw values of a submitted case form; one more row if another person was asked for."""
    count = _count(form)
    members = [
        {
            "ref": member_ref(i),
            "sex": _text(form, f"member-{i}-sex"),
            "age": _text(form, f"member-{i}-age"),
            "guardian": _text(form, f"member-{i}-guardian"),
            "comes_of_age": _text(form, f"member-{i}-comes_of_age"),
        }
        for i in range(count)
    ]
    if wants_another_member(form) and count < MAX_MEMBERS:
        members.extend(_blank_rows(count + 1)[count:])
    return ProfileForm(
        members=members,
        required_services=_texts(form, "required_services"),
        desired_services=_texts(form, "desired_services"),
        languages=_text(form, "languages"),
        wheelchair=form.get("wheelchair") == "on",
        high_risk=form.get("high_risk") == "on",
        current_region=_text(form, "current_region"),
        excluded_regions=_texts(form, "excluded_regions"),
        separate_from=_texts(form, "separate_from"),
        exploitation_types=_texts(form, "exploitation_types"),
        referral_source=_text(form, "referral_source"),
    )


def field_of(exc: InvalidInput) -> str:
    """Which field of the case form a refusal is about, or "" for the whole form.

    The domain names a member by ``ref``; other messages are told by their first words.
    """
    ref = exc.params.get("ref")
    if isinstance(ref, str):
        return f"member-{ref}"
    for start, name in (
        ("languages", "languages"),
        ("unknown regions", "regions"),
        ("unknown services", "services"),
        ("priority", "priority"),
        ("a case to keep apart", "separate_from"),
    ):
        if exc.message.startswith(start):
            return name
    return ""


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
                ref=row["ref"],
                sex=row["sex"],
                age=int(row["age"]),
                guardian_ref=row["guardian"] or None,
                comes_of_age=row.get("comes_of_age") or None,
            )
        )
    languages = tuple(sorted({p.strip().lower() for p in values.languages.split(",") if p.strip()}))
    bad = [code for code in languages if not _LANGUAGE.match(code)]
    if bad:
        raise InvalidInput("languages are two-letter ISO 639-1 codes separated by commas")
    return CaseProfile(
        members=tuple(members),
        required_services=tuple(values.required_services),
        desired_services=tuple(
            s for s in values.desired_services if s not in values.required_services
        ),
        languages=languages,
        wheelchair=values.wheelchair,
        high_risk=values.high_risk,
        excluded_regions=tuple(sorted(set(values.excluded_regions))),
        current_region=values.current_region or None,
        exploitation_types=tuple(sorted(set(values.exploitation_types))),
        referral_source=values.referral_source or None,
    )


def separate_from_ids(values: ProfileForm, mine: set[int]) -> list[int]:
    """The cases chosen to keep apart from: only my organisation's, chosen by their code."""
    chosen = {int(v) for v in values.separate_from if v.isdigit()}
    if len(chosen) != len(set(values.separate_from)) or not chosen <= mine:
        raise InvalidInput("a case to keep apart from must be one of your organisation's cases")
    return sorted(chosen)


def priority_from(text: str) -> int | None:
    """The priority chosen (1-5), or None for the default rule."""
    if not text:
        return None
    if text not in ("1", "2", "3", "4", "5"):
        raise InvalidInput("priority must be a whole number from 1 to 5")
    return int(text)


def whole_number(form: FormData, name: str) -> int:
    """A non-negative whole number from a form field."""
    text = _text(form, name)
    if not text.isdigit():
        raise InvalidInput(
            "{field} must be a whole number, 0 or more", field=name.replace("_", " ")
        )
    return int(text)


def user_from(form: FormData, *, password: str) -> UserIn:
    """The API's user-creation body from the page's form, checked by the same schema.

    The shape rules (what a username may be, the known roles and languages) are ``UserIn``'s,
    so a page and an API client are refused alike; the first field refused is named in words.
    """
    organization = _text(form, "organization_id")
    # Not a whole number: left as text, which the strict schema refuses.
    shelters = [int(t) if t.isdigit() else t for t in _texts(form, "shelter_ids")]
    raw = {
        "username": _text(form, "username"),
        "password": password,
        "role": _text(form, "role"),
        "organization_id": int(organization) if organization.isdigit() else organization or None,
        "shelter_ids": shelters,
        "locale": _text(form, "locale") or None,
    }
    try:
        return UserIn.model_validate(raw)
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else ""
        if field == "username":
            raise InvalidInput(
                "a username is 3 to 64 small Latin letters, digits, dots, dashes or "
                "underscores, starting with a letter or a digit"
            ) from None
        if field == "role":
            raise InvalidInput("choose a role from the list") from None
        if field == "organization_id":
            raise InvalidInput("choose an organisation from the list") from None
        if field == "locale":
            raise InvalidInput("choose a language from the list") from None
        raise InvalidInput("choose shelters from the list") from None


def decline_from(form: FormData) -> str:
    """The reason of a decline posted with its confirming tick, both of which the page needs.

    The browser asks for both too, but a form can be posted without a browser. Whether the
    reason is one of the fixed list is the domain's rule (``lifecycle.transition``).
    """
    if form.get("confirm") != "yes":
        raise InvalidInput("tick “Yes, decline this placement” to decline it")
    reason = _text(form, "reason")
    if not reason:
        raise InvalidInput("choose a reason for declining from the list")
    return reason
