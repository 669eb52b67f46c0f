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
