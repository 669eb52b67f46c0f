"""The fixed catalogue of shelter services (SPEC §3.1).

The codes are what the API speaks; the names are English msgids, marked for the catalogues and
said in the caller's language by the service (``service/i18n.py``).
"""

from __future__ import annotations

from shelters.errors import N_

SERVICES: dict[str, str] = {
    "medical_care": N_("Medical care"),
    "psychological_counselling": N_("Psychological counselling"),
    "child_psychologist": N_("Child psychologist"),
    "legal_aid": N_("Legal aid"),
    "interpretation": N_("Interpretation"),
    "education": N_("Education"),
    "vocational_training": N_("Vocational training"),
    "substance_use_treatment": N_("Substance use treatment"),
    "disability_support": N_("Disability support"),
    "mother_and_baby_care": N_("Mother and baby care"),
}

# Coded case fields for counting the same way as IOM's Human Trafficking Case Data Standard
# (HTCDS) and the Counter-Trafficking Data Collaborative's published tables: the type of
# exploitation a case was identified with (several may apply) and who referred it. Codes, never
# free text; the words are msgids like the services'. docs/htcds.md maps each to its standard.
EXPLOITATION_TYPES: dict[str, str] = {
    "sexual": N_("Sexual exploitation"),
    "labour": N_("Forced labour"),
    "forced_criminality": N_("Forced criminality"),
    "begging": N_("Forced begging"),
    "forced_marriage": N_("Forced marriage"),
    "other": N_("Other exploitation"),
}
REFERRAL_SOURCES: dict[str, str] = {
    "police": N_("Police"),
    "ngo": N_("NGO"),
    "self": N_("Self-referral"),
    "hotline": N_("Hotline"),
    "other": N_("Other referral"),
}

# Unit types for what-if scenarios (shelters/scenarios.py): a code and its admission rules in
# the problem document's shape, written with the deployment's majority age ``m`` (a minor is
# 0 to m-1 years old, an adult m to 120). The words are msgids like the services'.
UNIT_TYPES: dict[str, str] = {
    "unaccompanied_girls": N_("Unaccompanied girls"),
    "unaccompanied_boys": N_("Unaccompanied boys"),
    "unaccompanied_minors": N_("Unaccompanied minors"),
    "mothers_with_children": N_("Mothers with children"),
    "women": N_("Women"),
    "men": N_("Men"),
    "families": N_("Families"),
}
MAX_AGE = 120


def unit_type_rules(code: str, majority_age: int) -> list[dict[str, object]]:
    """The admission rules of unit type ``code`` (a key of ``UNIT_TYPES``); ``KeyError`` if none.

    Children of a mother or family unit are ``accompanied_child``; unaccompanied units take
    minors without a guardian in their case; adult units take adults of the named sexes.
    """
    minor = {"min_age": 0, "max_age": majority_age - 1}
    adult = {"min_age": majority_age, "max_age": MAX_AGE}
    every_sex = ["female", "male", "other"]
    rules: dict[str, list[dict[str, object]]] = {
        "unaccompanied_girls": [
            {"sexes": ["female"], **minor, "statuses": ["unaccompanied_minor"]}
        ],
        "unaccompanied_boys": [{"sexes": ["male"], **minor, "statuses": ["unaccompanied_minor"]}],
        "unaccompanied_minors": [
            {"sexes": every_sex, **minor, "statuses": ["unaccompanied_minor"]}
        ],
        "mothers_with_children": [
            {"sexes": ["female"], **adult, "statuses": ["adult"]},
            {"sexes": every_sex, **minor, "statuses": ["accompanied_child"]},
        ],
        "women": [{"sexes": ["female"], **adult, "statuses": ["adult"]}],
        "men": [{"sexes": ["male"], **adult, "statuses": ["adult"]}],
        "families": [
            {"sexes": every_sex, **adult, "statuses": ["adult"]},
            {"sexes": every_sex, **minor, "statuses": ["accompanied_child"]},
        ],
    }
    return rules[code]
