"""Hypothesis strategies for small placement problems and a brute-force lexicographic oracle.

The oracle re-implements admission and the hard constraints in a few plain lines on purpose:
it must not share code with the solver it checks (only the soft-cost arithmetic is shared).
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st

from placement.cost import soft_cost
from placement.problem import SCHEMA, Problem

SEXES = ["female", "male", "other"]
RULE_SHAPES: list[list[dict[str, Any]]] = [
    [  # women and children
        {"sexes": ["female"], "min_age": 18, "max_age": 120, "statuses": ["adult"]},
        {"sexes": SEXES, "min_age": 0, "max_age": 12, "statuses": ["accompanied_child"]},
    ],
    [{"sexes": ["female"], "min_age": 18, "max_age": 120, "statuses": ["adult"]}],
    [{"sexes": ["male", "other"], "min_age": 18, "max_age": 120, "statuses": ["adult"]}],
    [{"sexes": SEXES, "min_age": 6, "max_age": 17, "statuses": ["unaccompanied_minor"]}],
    [  # any adult, and children with them
        {"sexes": SEXES, "min_age": 18, "max_age": 120, "statuses": ["adult"]},
        {"sexes": SEXES, "min_age": 0, "max_age": 17, "statuses": ["accompanied_child"]},
    ],
]
SMALL_SERVICES = ["medical_care", "legal_aid", "interpretation", "child_psychologist"]


@st.composite
def members(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A group: an adult alone, an adult with children, or minors alone."""
    kind = draw(st.sampled_from(["adult", "adult", "family", "minors"]))
    out: list[dict[str, Any]] = []
    if kind in ("adult", "family"):
        sex = draw(st.sampled_from(["female", "female", "male", "other"]))
        out.append({"ref": "A", "sex": sex, "age": draw(st.integers(18, 70))})
    if kind == "family":
        for ref in "BC"[: draw(st.integers(1, 2))]:
            out.append(
                {
                    "ref": ref,
                    "sex": draw(st.sampled_from(SEXES)),
                    "age": draw(st.integers(0, 14)),
                    "guardian_ref": "A",
                }
            )
    if kind == "minors":
        for ref in "AB"[: draw(st.integers(1, 2))]:
            out.append(
                {"ref": ref, "sex": draw(st.sampled_from(SEXES)), "age": draw(st.integers(4, 17))}
            )
    return out


@st.composite
def problem_docs(
    draw: st.DrawFn, max_requests: int = 5, max_shelters: int = 3, max_beds: int = 3
) -> dict[str, Any]:
    """A small, valid problem document exercising every hard constraint."""
    n_regions = draw(st.integers(1, 2))
    regions = [{"code": f"g{i}", "lat": 43.0 + i, "lon": 70.0 + 2 * i} for i in range(n_regions)]
    shelters = []
    rarely = st.sampled_from([False, False, False, False, True])
    for si in range(draw(st.integers(1, max_shelters))):
        units = [
            {
                "id": f"u{si}{ui}",
                "free_beds": draw(st.integers(0, max_beds)),
                "admits": draw(st.sampled_from([RULE_SHAPES[0], *RULE_SHAPES])),
            }
            for ui in range(draw(st.integers(1, 2)))
        ]
        shelters.append(
            {
                "id": f"s{si}",
                "region": f"g{draw(st.integers(0, n_regions - 1))}",
                "location": draw(st.none() | st.just({"lat": 43.5, "lon": 71.0 + si})),
                "security_level": draw(st.sampled_from(["standard", "high"])),
                "wheelchair_accessible": draw(st.booleans()),
                "services": draw(st.lists(st.sampled_from(SMALL_SERVICES), unique=True)),
                "languages": draw(st.lists(st.sampled_from(["kk", "ru"]), unique=True)),
                "status": "suspended" if draw(rarely) else "open",
                "units": units,
            }
        )
    n_requests = draw(st.integers(1, max_requests))
    ids = [f"r{i}" for i in range(n_requests)]
    requests = []
    for rid in ids:
        region = draw(st.none() | st.sampled_from([r["code"] for r in regions]))
        requests.append(
            {
                "id": rid,
                "priority": draw(st.integers(1, 5)),
                "members": draw(members()),
                "required_services": ["medical_care"] if draw(rarely) else [],
                "desired_services": draw(st.lists(st.sampled_from(SMALL_SERVICES), unique=True)),
                "languages": draw(st.lists(st.sampled_from(["kk", "ru", "en"]), unique=True)),
                "wheelchair": draw(rarely),
                "high_risk": draw(rarely),
                "excluded_regions": ["g0"] if draw(rarely) else [],
                "excluded_shelters": ["s0"] if draw(rarely) else [],
                "preferred_regions": draw(
                    st.lists(st.sampled_from([r["code"] for r in regions]), unique=True, max_size=1)
                ),
                "separate_from": draw(
                    st.lists(st.sampled_from([i for i in ids if i != rid] or ["x"]), max_size=1)
                )
                if draw(st.booleans())
                else [],
                "current_region": region,
                "location": draw(st.none() | st.just({"lat": 44.0, "lon": 72.5})),
            }
        )
    return {
        "schema": SCHEMA,
        "majority_age": 18,
        "regions": regions,
        "shelters": shelters,
        "requests": requests,
    }


# --- brute force ----------------------------------------------------------------------------


def _status(m: Any, members: Any, majority: int) -> str:
    if m.age >= majority:
        return "adult"
    for g in members:
        if g.ref == m.guardian_ref and g.ref != m.ref and g.age >= majority:
            return "accompanied_child"
    return "unaccompanied_minor"


def _admits(unit: Any, m: Any, status: str) -> bool:
    return any(
        m.sex in r.sexes and r.min_age <= m.age <= r.max_age and status in r.statuses
        for r in unit.admits
    )


def _options(problem: Problem, q: Any) -> list[tuple[str, dict[str, str]]]:
    """Every (shelter, {member: unit}) respecting admission, guardians and shelter rules."""
    out = []
    for s in problem.shelters:
        if (
            s.status != "open"
            or s.region in q.excluded_regions
            or s.id in q.excluded_shelters
            or any(c not in s.services for c in q.required_services)
            or (q.wheelchair and not s.wheelchair_accessible)
            or (q.high_risk and s.security_level != "high")
        ):
            continue
        statuses = [_status(m, q.members, problem.majority_age) for m in q.members]
        for combo in itertools.product(s.units, repeat=len(q.members)):
            beds = {m.ref: u.id for m, u in zip(q.members, combo, strict=True)}
            if not all(
                _admits(u, m, st_) for m, u, st_ in zip(q.members, combo, statuses, strict=True)
            ):
                continue
            if any(
                st_ == "accompanied_child" and beds[m.ref] != beds[m.guardian_ref]
                for m, st_ in zip(q.members, statuses, strict=True)
            ):
                continue
            out.append((s.id, beds))
    return out


def brute_force(problem: Problem) -> tuple[tuple[int, ...], int]:
    """The lexicographic optimum: (people placed per priority 5..1, minimal soft cost)."""
    regions = {r.code: r for r in problem.regions}
    shelters = {s.id: s for s in problem.shelters}
    free = {u.id: u.free_beds for s in problem.shelters for u in s.units}
    reqs = problem.requests
    options = [_options(problem, q) for q in reqs]
    best: list[Any] = [None]

    def key(placed: list[int], cost: int) -> tuple[Any, ...]:
        return (*placed, -cost)

    def go(i: int, placed: list[int], cost: int, where: dict[str, str]) -> None:
        if i == len(reqs):
            k = key(placed, cost)
            if best[0] is None or k > best[0]:
                best[0] = k
            return
        q = reqs[i]
        go(i + 1, placed, cost, where)
        for sid, beds in options[i]:
            clash = any(where.get(other) == sid for other in q.separate_from) or any(
                sid == w and q.id in reqs_by_id[o].separate_from for o, w in where.items()
            )
            if clash:
                continue
            need: dict[str, int] = {}
            for unit in beds.values():
                need[unit] = need.get(unit, 0) + 1
            if any(free[u] < n for u, n in need.items()):
                continue
            for u, n in need.items():
                free[u] -= n
            placed[5 - q.priority] += len(q.members)
            where[q.id] = sid
            go(i + 1, placed, cost + soft_cost(q, shelters[sid], regions, problem.weights), where)
            del where[q.id]
            placed[5 - q.priority] -= len(q.members)
            for u, n in need.items():
                free[u] += n

    reqs_by_id = {q.id: q for q in reqs}
    go(0, [0, 0, 0, 0, 0], 0, {})
    assert best[0] is not None
    return tuple(best[0][:5]), -best[0][5]
