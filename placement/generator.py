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


def _uniform(n_requests: int, n_shelters: int, seed: int) -> dict[str, Any]:
    """The ``uniform`` family: issue 5's mix, regions and kinds drawn uniformly.

    Regions: one per ~15 shelters, between 3 and 20; every shelter and request in a region
    drawn uniformly. Free beds per unit are at least 1, about 85 % of the people asking.
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


FAMILIES: tuple[str, ...] = ("uniform", "national", "lone-minors", "rings")
"""Generator families, in the order ``refuge bench`` reports them."""


def generate(
    n_requests: int, n_shelters: int, seed: int = 0, family: str = "uniform"
) -> dict[str, Any]:
    """Return a problem document with ``n_requests`` requests and ``n_shelters`` shelters.

    The same arguments always give the same document (``random.Random(seed)``; no global
    state); every document is accepted by :meth:`placement.problem.Problem.from_document`, and
    every person in it is synthetic. ``family`` picks the network's shape (see
    :data:`FAMILIES`): ``uniform`` is issue 5's generator, byte for byte as before families
    existed; ``national``, ``lone-minors`` and ``rings`` are built differently, each from a
    finding in the field (see :func:`_national`, :func:`_lone_minors`, :func:`_rings`).

    Raises:
        ValueError: when ``family`` is not one of :data:`FAMILIES`.
    """
    if family == "uniform":
        return _uniform(n_requests, n_shelters, seed)
    if family == "national":
        return _national(n_requests, n_shelters, seed)
    if family == "lone-minors":
        return _lone_minors(n_requests, n_shelters, seed)
    if family == "rings":
        return _rings(n_requests, n_shelters, seed)
    raise ValueError(f"unknown generator family {family!r}; one of {', '.join(FAMILIES)}")


# --- the field families -------------------------------------------------------------------

_FAMILY_TEMPLATES: dict[str, list[dict[str, Any]]] = {
    **UNIT_TEMPLATES,
    # Teenage girls on their own: the few minors' places that do exist are often this narrow.
    "girls_minors": [
        {"sexes": ["female"], "min_age": 12, "max_age": 17, "statuses": ["unaccompanied_minor"]}
    ],
}

_SERVICE_P = (0.7, 0.8, 0.35, 0.6, 0.3, 0.4, 0.4, 0.15, 0.2, 0.4)
"""Probability that a shelter offers each service of SERVICES, in order (as ``uniform``)."""

_MINOR_UNITS = ("unaccompanied_minors", "girls_minors")


def _regions(
    rng: random.Random, n_shelters: int, cities: int
) -> tuple[list[tuple[str, float, float]], int]:
    """Region codes and centroids: ``cities`` cities (``city-a``...) first, then provinces.

    Returns the centroids and the number of cities among them.
    """
    n_provinces = max(3, min(20, n_shelters // 15 + 1)) - cities
    out = [
        (f"city-{string.ascii_lowercase[i]}", rng.uniform(41.0, 55.0), rng.uniform(50.0, 85.0))
        for i in range(cities)
    ]
    out += [
        (f"region-{i:02d}", rng.uniform(41.0, 55.0), rng.uniform(50.0, 85.0))
        for i in range(max(2, n_provinces))
    ]
    return [(c, round(a, 4), round(o, 4)) for c, a, o in out], cities


def _pick_region(
    rng: random.Random, centroids: list[tuple[str, float, float]], cities: int, city_share: float
) -> tuple[str, float, float]:
    """A region: one of the first ``cities`` with probability ``city_share``, else a province."""
    if cities and rng.random() < city_share:
        return centroids[rng.randrange(cities)]
    return centroids[rng.randrange(cities, len(centroids))]


def _minor(rng: random.Random, ref: str, lo: int, hi: int) -> dict[str, Any]:
    sex = rng.choices(ALL_SEXES, [0.6, 0.38, 0.02])[0]
    return {"ref": ref, "sex": sex, "age": rng.randint(lo, hi), "guardian_ref": None}


def _mother_with(rng: random.Random, children: int, teen_p: float) -> list[dict[str, Any]]:
    """A mother ("A") and ``children`` children in her care; a share of them teenagers."""
    out: list[dict[str, Any]] = [
        {"ref": "A", "sex": "female", "age": rng.randint(18, 48), "guardian_ref": None}
    ]
    for i in range(children):
        age = rng.randint(13, 17) if rng.random() < teen_p else rng.randint(0, 12)
        sex = rng.choice(["female", "male"])
        out.append({"ref": _ref(i + 1), "sex": sex, "age": age, "guardian_ref": "A"})
    return out


def _large_family(rng: random.Random) -> list[dict[str, Any]]:
    """4-7 members: a mother, sometimes a second adult, children 0-17 in the mother's care."""
    size = rng.randint(4, 7)
    adults = 2 if rng.random() < 0.3 else 1
    out = _mother_with(rng, size - adults, teen_p=0.3)
    if adults == 2:
        sex = rng.choice(["female", "male"])
        out.append(
            {"ref": _ref(size - 1), "sex": sex, "age": rng.randint(18, 70), "guardian_ref": None}
        )
    return out


def _adults(rng: random.Random, n: int, sex: str) -> list[dict[str, Any]]:
    return [
        {"ref": _ref(i), "sex": sex, "age": rng.randint(18, 60), "guardian_ref": None}
        for i in range(n)
    ]


def _priority(rng: random.Random, members: list[dict[str, Any]], urgent_p: float) -> int:
    """SPEC §5's default (4 with an unaccompanied minor, else 3), then a share made urgent."""
    alone = all(m["guardian_ref"] is None for m in members)
    base = 4 if any(m["age"] < 18 for m in members) and alone else 3
    roll = rng.random()
    if roll < urgent_p:
        return 5
    if roll < urgent_p + 0.1:
        return max(1, base - 1)
    if roll < urgent_p + 0.15:
        return 1
    return base


def _request_doc(
    rng: random.Random,
    ri: int,
    members: list[dict[str, Any]],
    priority: int,
    home: tuple[str, float, float],
    *,
    required: set[str],
    high_risk: bool,
    exclude_home: bool,
    n_shelters: int,
) -> dict[str, Any]:
    """A request document; the fields not drawn by the family are drawn as in ``uniform``."""
    code, lat, lon = home
    if rng.random() < 0.2:
        required.add("medical_care")
    if rng.random() < 0.1:
        required.add("legal_aid")
    located = rng.random() < 0.2
    return {
        "id": f"r{ri}",
        "priority": priority,
        "members": members,
        "required_services": sorted(required),
        "desired_services": sorted({"psychological_counselling"} if rng.random() < 0.4 else set()),
        "languages": [rng.choice(["kk", "ru"])] if rng.random() < 0.8 else [],
        "wheelchair": rng.random() < 0.03,
        "high_risk": high_risk,
        "excluded_regions": [code] if exclude_home else [],
        "excluded_shelters": [f"s{rng.randrange(n_shelters)}"]
        if n_shelters and rng.random() < 0.03
        else [],
        "preferred_regions": [code] if not exclude_home and rng.random() < 0.3 else [],
        "separate_from": [],
        "current_region": code,
        "location": {
            "lat": round(lat + rng.uniform(-0.3, 0.3), 3),
            "lon": round(lon + rng.uniform(-0.3, 0.3), 3),
        }
        if located
        else None,
    }


def _shelter_docs(
    rng: random.Random,
    n_shelters: int,
    beds: int,
    centroids: list[tuple[str, float, float]],
    cities: int,
    city_share: float,
    unit_weights: dict[str, float],
    high_p: float,
) -> list[dict[str, Any]]:
    """Shelters of 1-3 units whose types are drawn by ``unit_weights``, ``beds`` in all.

    Shelter sizes vary (log-normal weights); each unit gets at least one bed, so the total is
    ``beds`` give or take rounding. Shelters with a minors' unit mostly offer child psychology
    and education.
    """
    names = list(unit_weights)
    weights = [unit_weights[n] for n in names]
    kinds: list[list[str]] = []
    for _ in range(n_shelters):
        k = rng.choices([1, 2, 3], [0.45, 0.4, 0.15])[0]
        kinds.append(sorted(set(rng.choices(names, weights, k=k)), key=names.index))
    size_w = [rng.lognormvariate(0.0, 0.5) for _ in range(n_shelters)]
    scale = beds / max(1e-9, sum(size_w))
    shelters = []
    for si in range(n_shelters):
        code, lat, lon = _pick_region(rng, centroids, cities, city_share)
        kind = kinds[si]
        services = {c for c, p in zip(SERVICES, _SERVICE_P, strict=True) if rng.random() < p}
        if any(t in _MINOR_UNITS for t in kind) and rng.random() < 0.8:
            services |= {"child_psychologist", "education"}
        total = max(len(kind), round(size_w[si] * scale))
        shares = [rng.random() + 0.5 for _ in kind]
        units = [
            {
                "id": f"u{si}-{ui}",
                "free_beds": max(1, round(total * shares[ui] / sum(shares))),
                "admits": _FAMILY_TEMPLATES[t],
            }
            for ui, t in enumerate(kind)
        ]
        shelters.append(
            {
                "id": f"s{si}",
                "region": code,
                "location": {
                    "lat": round(lat + rng.uniform(-0.5, 0.5), 4),
                    "lon": round(lon + rng.uniform(-0.5, 0.5), 4),
                }
                if rng.random() < 0.7
                else None,
                "security_level": "high" if rng.random() < high_p else "standard",
                "wheelchair_accessible": rng.random() < 0.4,
                "services": sorted(services),
                "languages": sorted(
                    {"kk", "ru"} if rng.random() < 0.6 else {rng.choice(["kk", "ru"])}
                ),
                "units": units,
            }
        )
    return shelters


def _separate(requests: list[dict[str, Any]], group: list[int]) -> None:
    """Make every two requests of ``group`` a separation pair (each lists all the others)."""
    ids = [requests[i]["id"] for i in group]
    for i in group:
        mine = requests[i]["id"]
        requests[i]["separate_from"] = sorted(
            {*requests[i]["separate_from"], *(x for x in ids if x != mine)}
        )


def _document(
    centroids: list[tuple[str, float, float]],
    shelters: list[dict[str, Any]],
    requests: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "majority_age": 18,
        "regions": [{"code": c, "lat": a, "lon": o} for c, a, o in centroids],
        "shelters": shelters,
        "requests": requests,
    }


def _people(requests: list[dict[str, Any]]) -> int:
    return sum(len(q["members"]) for q in requests)


def _national(n_requests: int, n_shelters: int, seed: int) -> dict[str, Any]:
    """The ``national`` family: a country's network as the independent generator of issue 18 saw it.

    Two big cities (``city-a``, ``city-b``) hold 40 % of demand but 22 % of shelters, so
    their beds are saturated and much of their demand must travel. Most units are for women
    with children up to 12 (the centres the founding report describes); 11 % of unit types
    take unaccompanied minors. 14 % of requests are large families of 4-7 members (their
    teenagers need a family unit, not a women-and-children one), 12 % sibling groups without
    an adult, 12 % lone minors; separation rings of 2-5 cases (every two of a ring kept
    apart) cover about 10 % of requests; 30 % of requests exclude their own region (victims
    moved away from where they were exploited); demand is 2-3 times the beds.
    """
    rng = random.Random(f"national:{seed}")  # noqa: S311 - synthetic data, reproducible
    centroids, cities = _regions(rng, n_shelters, cities=2)
    requests = []
    for ri in range(n_requests):
        kind = rng.random()
        required: set[str] = set()
        if kind < 0.12:  # a lone minor
            members = [_minor(rng, "A", 6, 17)]
        elif kind < 0.24:  # siblings, no adult
            members = [_minor(rng, _ref(i), 4, 17) for i in range(rng.randint(2, 4))]
        elif kind < 0.38:  # a large family
            members = _large_family(rng)
        elif kind < 0.68:  # a mother with one or two children up to 12, mostly
            members = _mother_with(rng, rng.randint(1, 2), teen_p=0.1)
            if any(m["age"] <= 2 for m in members[1:]) and rng.random() < 0.5:
                required.add("mother_and_baby_care")
        elif kind < 0.92:
            members = _adults(rng, 1 if rng.random() < 0.9 else 2, "female")
        else:
            members = _adults(rng, 1, rng.choice(["male", "male", "other"]))
        if members[0]["age"] < 18 and rng.random() < 0.5:
            required.add("child_psychologist")
        home = _pick_region(rng, centroids, cities, 0.40)
        requests.append(
            _request_doc(
                rng,
                ri,
                members,
                _priority(rng, members, urgent_p=0.1),
                home,
                required=required,
                high_risk=rng.random() < 0.12,
                exclude_home=rng.random() < 0.30,
                n_shelters=n_shelters,
            )
        )
    # Rings of 2-5 cases, disjoint, about 10 % of requests in all.
    order = list(range(n_requests))
    rng.shuffle(order)
    at, in_rings = 0, n_requests // 10
    while at < in_rings:
        size = rng.randint(2, 5)
        if at + size > n_requests:
            break
        _separate(requests, order[at : at + size])
        at += size
    beds = round(_people(requests) / rng.uniform(2.0, 3.0))
    units = {
        "women_and_children": 0.50,
        "adult_women": 0.17,
        "family": 0.11,
        "unaccompanied_minors": 0.11,
        "adult_men": 0.11,
    }
    shelters = _shelter_docs(rng, n_shelters, beds, centroids, cities, 0.22, units, high_p=0.3)
    return _document(centroids, shelters, requests)


def _lone_minors(n_requests: int, n_shelters: int, seed: int) -> dict[str, Any]:
    """The ``lone-minors`` family: children on their own and nowhere to put them.

    The founding report (SPEC §1): there are no rehabilitation places for unaccompanied
    minors; centres take children only together with their mothers, so children without
    parents, or abused by their mother, have nowhere to go. Here most demand is children
    without an adult: 45 % lone minors aged 3-17 and 25 % sibling groups of 2-5, many
    urgent (priority 5) and many needing a child psychologist; the rest are mothers with
    children and lone adults. Most units (70 %) take children only with their mothers
    (women-and-children, family); 6 % take unaccompanied minors, of which a third only
    teenage girls, and young children (under 6) fit no minors' unit at all. Beds overall are
    about 80 % of the people asking, plenty for the adults and far too few for the children:
    the solver must decide which children get the few places, and explain the rest.
    """
    rng = random.Random(f"lone-minors:{seed}")  # noqa: S311 - synthetic data, reproducible
    centroids, cities = _regions(rng, n_shelters, cities=0)
    requests = []
    for ri in range(n_requests):
        kind = rng.random()
        required: set[str] = set()
        if kind < 0.45:
            members = [_minor(rng, "A", 3, 17) if rng.random() < 0.3 else _minor(rng, "A", 12, 17)]
        elif kind < 0.70:
            members = [_minor(rng, _ref(i), 2, 17) for i in range(rng.randint(2, 5))]
        elif kind < 0.85:
            members = _mother_with(rng, rng.randint(1, 3), teen_p=0.2)
        else:
            members = _adults(rng, 1, rng.choice(["female", "female", "female", "male"]))
        minors_alone = members[0]["age"] < 18
        if minors_alone and rng.random() < 0.6:
            required.add("child_psychologist")
        home = _pick_region(rng, centroids, cities, 0.0)
        requests.append(
            _request_doc(
                rng,
                ri,
                members,
                _priority(rng, members, urgent_p=0.35 if minors_alone else 0.05),
                home,
                required=required,
                high_risk=rng.random() < (0.2 if minors_alone else 0.08),
                exclude_home=rng.random() < 0.1,
                n_shelters=n_shelters,
            )
        )
    for _ in range(n_requests // 50):  # abusive relatives: pairs kept apart
        if n_requests >= 2:
            _separate(requests, rng.sample(range(n_requests), 2))
    beds = round(0.8 * _people(requests))
    units = {
        "women_and_children": 0.55,
        "family": 0.15,
        "adult_women": 0.17,
        "adult_men": 0.07,
        "unaccompanied_minors": 0.04,
        "girls_minors": 0.02,
    }
    shelters = _shelter_docs(rng, n_shelters, beds, centroids, cities, 0.0, units, high_p=0.3)
    return _document(centroids, shelters, requests)


def _rings(n_requests: int, n_shelters: int, seed: int) -> dict[str, Any]:
    """The ``rings`` family: trafficking networks whose victims must be kept apart.

    Victims of one trafficking ring, and relatives who are also the abusers, must never share
    a shelter (SPEC §4 ``separate_from``): a ring's members can recruit or threaten each
    other. Here 45 % of requests belong to rings of 3-8 cases (every two of a ring kept
    apart); a ring works out of one region but its victims come from all over the network;
    70 % of ring members are high-risk (they need a ``high`` security shelter, of which
    there are 35 %), many urgent, and half of them exclude the ring's home region. Three
    saturated cities hold 45 % of demand and 12 % of shelters. Shelters are many and small,
    and beds are about 70 % of the people asking, so separations and security, not only
    capacity, decide who is placed.
    """
    rng = random.Random(f"rings:{seed}")  # noqa: S311 - synthetic data, reproducible
    centroids, cities = _regions(rng, n_shelters, cities=3)
    # Rings first: which requests belong to which ring and where the ring works.
    order = list(range(n_requests))
    rng.shuffle(order)
    ring_of: dict[int, int] = {}
    rings: list[list[int]] = []
    ring_home: list[tuple[str, float, float]] = []
    at = 0
    while at < 0.45 * n_requests:
        size = rng.randint(3, 8)
        if at + size > n_requests:
            break
        group = order[at : at + size]
        for ri in group:
            ring_of[ri] = len(rings)
        rings.append(group)
        ring_home.append(rng.choice(centroids))
        at += size
    requests = []
    for ri in range(n_requests):
        kind = rng.random()
        required: set[str] = set()
        if kind < 0.45:
            members = _adults(rng, 1 if rng.random() < 0.85 else 2, "female")
        elif kind < 0.70:
            members = _mother_with(rng, rng.randint(1, 3), teen_p=0.15)
        elif kind < 0.85:
            members = [_minor(rng, "A", 10, 17)]
            if rng.random() < 0.5:
                required.add("child_psychologist")
        elif kind < 0.90:
            members = [_minor(rng, _ref(i), 8, 17) for i in range(rng.randint(2, 3))]
        else:
            members = _adults(rng, 1, rng.choice(["male", "male", "other"]))
        ring = ring_of.get(ri)
        if ring is None:
            home = _pick_region(rng, centroids, cities, 0.45)
            high_risk = rng.random() < 0.15
            exclude_home = rng.random() < 0.1
            urgent = 0.08
        else:
            home = ring_home[ring] if rng.random() < 0.5 else rng.choice(centroids)
            high_risk = rng.random() < 0.7
            exclude_home = home == ring_home[ring] and rng.random() < 0.5
            urgent = 0.3
        requests.append(
            _request_doc(
                rng,
                ri,
                members,
                _priority(rng, members, urgent_p=urgent),
                home,
                required=required,
                high_risk=high_risk,
                exclude_home=exclude_home,
                n_shelters=n_shelters,
            )
        )
    for group in rings:
        _separate(requests, group)
    beds = round(0.7 * _people(requests))
    units = {
        "women_and_children": 0.35,
        "adult_women": 0.30,
        "adult_men": 0.10,
        "family": 0.10,
        "unaccompanied_minors": 0.15,
    }
    shelters = _shelter_docs(rng, n_shelters, beds, centroids, cities, 0.12, units, high_p=0.35)
    return _document(centroids, shelters, requests)
