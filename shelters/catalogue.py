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
