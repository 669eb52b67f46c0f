"""The fixed catalogue of shelter services (SPEC §3.1)."""

from __future__ import annotations

SERVICES: dict[str, str] = {
    "medical_care": "Medical care",
    "psychological_counselling": "Psychological counselling",
    "child_psychologist": "Child psychologist",
    "legal_aid": "Legal aid",
    "interpretation": "Interpretation",
    "education": "Education",
    "vocational_training": "Vocational training",
    "substance_use_treatment": "Substance use treatment",
    "disability_support": "Disability support",
    "mother_and_baby_care": "Mother and baby care",
}
