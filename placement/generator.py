"""Seeded generator of synthetic but realistic shelter networks and placement requests.

All people are synthetic (refs "A", "B", ...); regions are made-up codes with centroids spread
over a Kazakhstan-sized box. The mix follows issue 5: shelters with 1-3 units of the admission
rule shapes of SPEC §4 (women-and-children, adult women, adult men, family, a few units for
unaccompanied minors); about 30 % unaccompanied minors, 20 % mothers with children, sibling
groups, separation pairs, exclusions and high-risk cases. Beds are scarce on purpose (about
85 % of the people asking) so that the objective has something to decide.
"""

from __future__ import annotations

import random
import string
from typing import Any

from placement.problem import SCHEMA, SERVICES

ALL_SEXES = ["female", "male", "other"]

UNIT_TEMPLATES: dict[str, list[dict[str, Any]]] = {
    "women_and_children": [
        {"sexes": ["female"], "min_age": 18, "max_age": 120, "statuses": ["adult"]},
        {"sexes": ALL_SEXES, "min_age": 0, "max_age": 12, "statuses": ["accompanied_child"]},
    ],
    "adult_women": [{"sexes": ["female"], "min_age": 18, "max_age": 120, "statuses": ["adult"]}],
    "adult_men": [
        {"sexes": ["male", "other"], "min_age": 18, "max_age": 120, "statuses": ["adult"]}
    ],
    "family": [
        {"sexes": ALL_SEXES, "min_age": 18, "max_age": 120, "statuses": ["adult"]},
        {"sexes": ALL_SEXES, "min_age": 0, "max_age": 17, "statuses": ["accompanied_child"]},
    ],
    "unaccompanied_minors": [
        {"sexes": ALL_SEXES, "min_age": 6, "max_age": 17, "statuses": ["unaccompanied_minor"]}
    ],
}

_SHELTER_KINDS: list[tuple[tuple[str, ...], float]] = [
    (("women_and_children",), 0.22),
    (("women_and_children", "adult_women"), 0.18),
    (("adult_women",), 0.12),
    (("adult_men",), 0.10),
    (("women_and_children", "adult_men"), 0.08),
    (("family",), 0.08),
    (("women_and_children", "unaccompanied_minors"), 0.08),
    (("unaccompanied_minors",), 0.07),
    (("adult_women", "adult_men", "unaccompanied_minors"), 0.07),
]


def _ref(i: int) -> str:
    return string.ascii_uppercase[i]


def generate(n_requests: int, n_shelters: int, seed: int = 0) -> dict[str, Any]:
    """Return a problem document with ``n_requests`` requests and ``n_shelters`` shelters.

    The same arguments always give the same document (``random.Random(seed)``; no global
    state). Regions: one per ~15 shelters, between 3 and 20. Free beds per unit are at least 1.
    """
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducibility wanted
    n_regions = max(3, min(20, n_shelters // 15 + 1))
    centroids = [
        (f"region-{i:02d}", round(rng.uniform(41.0, 55.0), 4), round(rng.uniform(50.0, 85.0), 4))
        for i in range(n_regions)
    ]
    regions: list[dict[str, Any]] = [{"code": c, "lat": a, "lon": o} for c, a, o in centroids]
    people_estimate = 1.75 * n_requests
    beds_per_shelter = max(2.0, 0.85 * people_estimate / max(1, n_shelters))
    kinds = [k for k, _ in _SHELTER_KINDS]
    kind_weights = [w for _, w in _SHELTER_KINDS]
    shelters = []
    for si in range(n_shelters):
        code, lat, lon = rng.choice(centroids)
        kind = rng.choices(kinds, kind_weights)[0]
        services = sorted(
            {
                c
                for c, p in zip(
                    SERVICES, (0.7, 0.8, 0.35, 0.6, 0.3, 0.4, 0.4, 0.15, 0.2, 0.4), strict=True
                )
                if rng.random() < p
            }
        )
        if "unaccompanied_minors" in kind and rng.random() < 0.8:
            services = sorted({*services, "child_psychologist", "education"})
        total = max(len(kind), round(rng.gauss(beds_per_shelter, beds_per_shelter / 3)))
        shares = [rng.random() + 0.5 for _ in kind]
        units = []
        for ui, template in enumerate(kind):
            beds = max(1, round(total * shares[ui] / sum(shares)))
            units.append(
                {"id": f"u{si}-{ui}", "free_beds": beds, "admits": UNIT_TEMPLATES[template]}
            )
        located = rng.random() < 0.7
        shelters.append(
            {
                "id": f"s{si}",
                "region": code,
                "location": {
                    "lat": round(lat + rng.uniform(-0.5, 0.5), 4),
                    "lon": round(lon + rng.uniform(-0.5, 0.5), 4),
                }
                if located
                else None,
                "security_level": "high" if rng.random() < 0.3 else "standard",
                "wheelchair_accessible": rng.random() < 0.4,
                "services": services,
                "languages": sorted(
                    {"kk", "ru"} if rng.random() < 0.6 else {rng.choice(["kk", "ru"])}
                ),
                "units": units,
            }
        )
    requests = [_request(rng, ri, centroids, shelters) for ri in range(n_requests)]
    # Separation pairs: about 2 % of requests must never share a shelter with another one.
    for _ in range(n_requests // 50):
        a, b = rng.sample(range(n_requests), 2) if n_requests >= 2 else (0, 0)
        if a != b:
            requests[a]["separate_from"] = sorted(
                {*requests[a]["separate_from"], requests[b]["id"]}
            )
    return {
        "schema": SCHEMA,
        "majority_age": 18,
        "regions": regions,
        "shelters": shelters,
        "requests": requests,
    }


def _request(
    rng: random.Random,
    ri: int,
    centroids: list[tuple[str, float, float]],
    shelters: list[dict[str, Any]],
) -> dict[str, Any]:
    kind = rng.random()
    members: list[dict[str, Any]] = []
    required: set[str] = set()
    if kind < 0.30:  # unaccompanied minors: alone, or siblings without an adult
        n = 1 if rng.random() < 0.75 else rng.randint(2, 3)
        for i in range(n):
            members.append(
                {
                    "ref": _ref(i),
                    "sex": rng.choice(["female", "female", "male"]),
                    "age": rng.randint(8, 17),
                    "guardian_ref": None,
                }
            )
        if rng.random() < 0.5:
            required.add("child_psychologist")
        priority = 4
    elif kind < 0.50:  # a mother with children
        members.append(
            {"ref": "A", "sex": "female", "age": rng.randint(18, 45), "guardian_ref": None}
        )
        for i in range(rng.randint(1, 3)):
            age = rng.randint(0, 12) if rng.random() < 0.85 else rng.randint(13, 17)
            members.append(
                {
                    "ref": _ref(i + 1),
                    "sex": rng.choice(["female", "male"]),
                    "age": age,
                    "guardian_ref": "A",
                }
            )
        if rng.random() < 0.3:
            required.add("mother_and_baby_care")
        priority = 3
    else:  # adults: mostly alone, sometimes two (e.g. sisters)
        n = 1 if rng.random() < 0.9 else 2
        sex = rng.choices(["female", "male", "other"], [0.65, 0.3, 0.05])[0]
        for i in range(n):
            members.append(
                {"ref": _ref(i), "sex": sex, "age": rng.randint(18, 60), "guardian_ref": None}
            )
        priority = 3
    roll = rng.random()
    if roll < 0.1:
        priority = 5
    elif roll < 0.2:
        priority = max(1, priority - 1)
    elif roll < 0.25:
        priority = 1
    if rng.random() < 0.2:
        required.add("medical_care")
    if rng.random() < 0.1:
        required.add("legal_aid")
    code, lat, lon = rng.choice(centroids)
    located = rng.random() < 0.2
    return {
        "id": f"r{ri}",
        "priority": priority,
        "members": members,
        "required_services": sorted(required),
        "desired_services": sorted({"psychological_counselling"} if rng.random() < 0.4 else set()),
        "languages": [rng.choice(["kk", "ru"])] if rng.random() < 0.8 else [],
        "wheelchair": rng.random() < 0.03,
        "high_risk": rng.random() < 0.1,
        "excluded_regions": [code] if rng.random() < 0.05 else [],
        "excluded_shelters": [rng.choice(shelters)["id"]]
        if shelters and rng.random() < 0.03
        else [],
        "preferred_regions": [code] if rng.random() < 0.3 else [],
        "separate_from": [],
        "current_region": code,
        "location": {
            "lat": round(lat + rng.uniform(-0.3, 0.3), 3),
            "lon": round(lon + rng.uniform(-0.3, 0.3), 3),
        }
        if located
        else None,
    }
