"""Reason codes (SPEC §4, §6) said in plain words for the pages.

Only wording lives here: which reasons apply is decided by the domain and the solver.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from placement.solution import Reason
from shelters.catalogue import SERVICES
from shelters.profiles import CaseProfile

STATUS_WORDS = {
    "adult": "adult",
    "accompanied_child": "child with a guardian in the group",
    "unaccompanied_minor": "unaccompanied minor",
}
DECLINE_WORDS = {
    "no_capacity": "No capacity",
    "not_eligible": "Not eligible",
    "safety_concern": "Safety concern",
    "staffing": "Staffing",
    "other": "Other",
}
_FIXED = {
    "shelter_not_open": "The shelter is not open.",
    "region_excluded": "The shelter is in a region this case must stay away from.",
    "shelter_excluded": "This case must stay away from this shelter.",
    "declined_by_shelter": (
        "The shelter declined this request; it is not proposed again unless the decline is lifted."
    ),
    "separated_case_housed": (
        "Someone this case must be kept apart from is held or housed in this shelter."
    ),
    "not_wheelchair_accessible": "The shelter is not wheelchair accessible.",
    "security_level_too_low": "The case is high-risk and the shelter's security is standard.",
    "capacity": "It could take the group, but has too few suitable free beds right now.",
    "too_few_beds": "It could take the group, but has too few suitable free beds right now.",
    "capacity_taken": "Its suitable beds were taken by other requests meanwhile.",
    "not_chosen": "It would fit, but the solver preferred another shelter.",
    "no_shelters": "There is no open shelter.",
}


def member_words(profile: CaseProfile, statuses: Mapping[str, str], ref: str) -> str:
    """'member B (male, 15, unaccompanied minor)'."""
    member = next((m for m in profile.members if m.ref == ref), None)
    if member is None:
        return f"member {ref}"
    status = STATUS_WORDS.get(statuses.get(ref, ""), statuses.get(ref, ""))
    return f"member {ref} ({member.sex}, {member.age}, {status})"


def reason_words(
    code: str, profile: CaseProfile | None = None, statuses: Mapping[str, str] | None = None
) -> str:
    """One reason code in a sentence; unknown codes are shown as they are."""
    if code in _FIXED:
        return _FIXED[code]
    name, _, arg = code.partition(":")
    if name == "missing_service":
        return f"It does not offer {SERVICES.get(arg, arg).lower()}, which the case needs."
    if name in ("member_not_admitted", "guardian_unit_mismatch"):
        who = member_words(profile, statuses or {}, arg) if profile else f"member {arg}"
        if name == "member_not_admitted":
            return f"No unit there admits {who}."
        return f"No unit there takes {who} together with their guardian."
    if name == "capacity_taken":
        if not arg:
            return "Its suitable beds were taken by other requests."
        return f"Its suitable beds were taken by request {arg}."
    if name == "separated_from":
        if not arg:
            return "A request this case must be kept apart from is placed there."
        return f"Request {arg}, which this case must be kept apart from, is placed there."
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
