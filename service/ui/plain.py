"""Reason codes (SPEC §4, §6) said in plain words for the pages.

Only wording lives here: which reasons apply is decided by the domain and the solver.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from placement.solution import Reason
from service import i18n
from shelters.catalogue import SERVICES
from shelters.errors import N_
from shelters.profiles import CaseProfile

# English words, translated where they are shown (``words(locale, ...)``); see docs/glossary.md.
STATUS_WORDS = {
    "adult": N_("adult"),
    "accompanied_child": N_("child with a guardian in the group"),
    "unaccompanied_minor": N_("unaccompanied minor"),
}
SEX_WORDS = {"female": N_("female"), "male": N_("male"), "other": N_("other")}
ROLE_WORDS = i18n.ROLE_WORDS
STATE_WORDS = i18n.STATE_WORDS
DECLINE_WORDS = {
    "no_capacity": N_("No capacity"),
    "not_eligible": N_("Not eligible"),
    "safety_concern": N_("Safety concern"),
    "staffing": N_("Staffing"),
    "other": N_("Other"),
}
_FIXED = {
    "shelter_not_open": N_("The shelter is not open."),
    "region_excluded": N_("The shelter is in a region this case must stay away from."),
    "shelter_excluded": N_("This case must stay away from this shelter."),
    "declined_by_shelter": N_(
        "The shelter declined this request; it is not proposed again unless the decline is lifted."
    ),
    "separated_case_housed": N_(
        "Someone this case must be kept apart from is held or housed in this shelter."
    ),
    "not_wheelchair_accessible": N_("The shelter is not wheelchair accessible."),
    "security_level_too_low": N_("The case is high-risk and the shelter's security is standard."),
    "capacity": N_("It could take the group, but has too few suitable free beds right now."),
    "too_few_beds": N_("It could take the group, but has too few suitable free beds right now."),
    "capacity_taken": N_("Its suitable beds were taken by other requests meanwhile."),
    "not_chosen": N_("It would fit, but the solver preferred another shelter."),
    "not_examined": N_("The solver's time limit ran out before it examined this request."),
    "no_shelters": N_("There is no open shelter."),
}


def words(locale: str, table: Mapping[str, str], code: str) -> str:
    """The words for ``code`` in ``table``, in ``locale``; an unknown code as it is."""
    english = table.get(code)
    return code if english is None else i18n.gettext(locale, english)


def service_words(locale: str) -> dict[str, str]:
    """The catalogue of services (code → name) in ``locale``, in the catalogue's order."""
    return code_words(locale, SERVICES)


def code_words(locale: str, table: Mapping[str, str]) -> dict[str, str]:
    """A code list of the catalogue (code → English msgid) in ``locale``, in its order."""
    return {code: i18n.gettext(locale, name) for code, name in table.items()}


def member_words(
    profile: CaseProfile, statuses: Mapping[str, str], ref: str, locale: str = "en"
) -> str:
    """'member B (male, 15, unaccompanied minor)'."""
    member = next((m for m in profile.members if m.ref == ref), None)
    if member is None:
        return i18n.gettext(locale, N_("member {ref}"), ref=ref)
    return i18n.gettext(
        locale,
        N_("member {ref} ({sex}, {age}, {status})"),
        ref=ref,
        sex=words(locale, SEX_WORDS, member.sex),
        age=member.age,
        status=words(locale, STATUS_WORDS, statuses.get(ref, "")),
    )


def reason_words(
    code: str,
    profile: CaseProfile | None = None,
    statuses: Mapping[str, str] | None = None,
    locale: str = "en",
) -> str:
    """One reason code in a sentence; unknown codes are shown as they are."""
    if code in _FIXED:
        return i18n.gettext(locale, _FIXED[code])
    name, _, arg = code.partition(":")
    if name == "missing_service":
        service = words(locale, SERVICES, arg).lower()
        return i18n.gettext(
            locale, N_("It does not offer {service}, which the case needs."), service=service
        )
    if name in ("member_not_admitted", "guardian_unit_mismatch"):
        who = (
            member_words(profile, statuses or {}, arg, locale)
            if profile
            else i18n.gettext(locale, N_("member {ref}"), ref=arg)
        )
        if name == "member_not_admitted":
            return i18n.gettext(locale, N_("No unit there admits {who}."), who=who)
        return i18n.gettext(
            locale, N_("No unit there takes {who} together with their guardian."), who=who
        )
    if name == "capacity_taken":
        if not arg:
            return i18n.gettext(locale, N_("Its suitable beds were taken by other requests."))
        return i18n.gettext(
            locale, N_("Its suitable beds were taken by request {request}."), request=arg
        )
    if name == "separated_from":
        if not arg:
            return i18n.gettext(
                locale, N_("A request this case must be kept apart from is placed there.")
            )
        return i18n.gettext(
            locale,
            N_("Request {request}, which this case must be kept apart from, is placed there."),
            request=arg,
        )
    return code


@dataclass(frozen=True)
class ShelterReasons:
    shelter_id: int | None
    reasons: list[str]


def solver_reasons(reasons: Sequence[Reason]) -> list[ShelterReasons]:
    """Turn the solver's grouped reasons (code → shelters) into codes per shelter, by shelter id.

    A reason naming requests (``capacity_taken``, ``separated_from``) names the request in its
    words only when it applies at one shelter and names one request; otherwise the words say
    "other requests". Reasons without a shelter (``capacity_taken`` after retries,
    ``no_shelters``) come first, with ``shelter_id`` None.
    """
    general: list[str] = []
    by_shelter: dict[int, list[str]] = {}
    for r in reasons:
        code = r.code
        if r.by and len(r.by) == 1 and len(r.shelters) == 1:
            code = f"{r.code}:{r.by[0]}"
        if not r.shelters:
            general.append(code)
        for shelter in r.shelters:
            if shelter.isdigit():
                by_shelter.setdefault(int(shelter), []).append(code)
            else:
                general.append(code)
    out = [ShelterReasons(None, general)] if general else []
    out.extend(ShelterReasons(sid, by_shelter[sid]) for sid in sorted(by_shelter))
    return out
