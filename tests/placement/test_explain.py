"""The explanations agree with an obviously correct slow version, shelter by shelter.

The fast code builds a request's codes from shelter indexes, shares answers between requests
alike and asks free beds once per kind of group and class of shelters; the reference below
visits every shelter for every unplaced request with the rule functions alone.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings

from placement import Problem
from placement.eligibility import block_candidates, eligibility_reasons, fit_blocks
from placement.explain import explain_unplaced
from placement.generator import FAMILIES, generate
from placement.greedy import greedy_placement
from placement.instance import Instance, Placement
from placement.solution import Reason
from tests.placement.strategies import problem_docs


def _slow_explain(problem: Problem, placement: Placement) -> dict[int, tuple[Reason, ...]]:
    requests, shelters = problem.requests, problem.shelters
    majority = problem.majority_age
    left = [[u.free_beds for u in s.units] for s in shelters]
    units_of: dict[int, set[int]] = {}
    for ri, (si, choice) in placement.items():
        blocks = block_candidates(requests[ri], shelters[si].units, majority)
        for (block, _), u in zip(blocks, choice, strict=True):
            left[si][u] -= len(block)
        units_of[ri] = set(choice)
    out: dict[int, tuple[Reason, ...]] = {}
    for ri, q in enumerate(requests):
        if ri in placement:
            continue
        if not shelters:
            out[ri] = (Reason("no_shelters", ()),)
            continue
        at: dict[str, list[str]] = {}
        by: dict[str, set[str]] = {}
        for si in sorted(range(len(shelters)), key=lambda i: shelters[i].id):
            s = shelters[si]
            codes = eligibility_reasons(q, s, majority)
            for code in codes:
                at.setdefault(code, []).append(s.id)
            if codes:
                continue
            blocks = block_candidates(q, s.units, majority)
            sizes = [len(b) for b, _ in blocks]
            cands = [c for _, c in blocks]
            here = [oi for oi, (osi, _) in placement.items() if osi == si]
            apart = [
                oi
                for oi in here
                if requests[oi].id in q.separate_from or q.id in requests[oi].separate_from
            ]
            if apart:
                at.setdefault("separated_from", []).append(s.id)
                by.setdefault("separated_from", set()).update(requests[oi].id for oi in apart)
            if fit_blocks(sizes, cands, [u.free_beds for u in s.units]) is None:
                at.setdefault("too_few_beds", []).append(s.id)
            elif fit_blocks(sizes, cands, left[si]) is None:
                usable = {u for c in cands for u in c}
                at.setdefault("capacity_taken", []).append(s.id)
                by.setdefault("capacity_taken", set()).update(
                    requests[oi].id for oi in here if units_of[oi] & usable
                )
            elif not apart:
                at.setdefault("not_chosen", []).append(s.id)
        out[ri] = tuple(
            Reason(code, tuple(at[code]), tuple(sorted(by.get(code, ())))) for code in sorted(at)
        )
    return out


def _partial(inst: Instance, seed: int) -> Placement:
    """The greedy placement with a random part of it undone: beds left free, reasons mixed."""
    rng = random.Random(seed)
    full = greedy_placement(inst)
    return {ri: where for ri, where in full.items() if rng.random() < 0.7}


def _check(doc: dict[str, Any], seed: int) -> None:
    problem = Problem.from_document(doc)
    inst = Instance(problem)
    for placement in (greedy_placement(inst), _partial(inst, seed), {}):
        assert explain_unplaced(inst, placement) == _slow_explain(problem, placement)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_generator_family_is_explained_as_shelter_by_shelter(family: str) -> None:
    _check(generate(240, 30, seed=5, family=family), seed=5)


def test_a_reduced_instance_is_explained_as_shelter_by_shelter() -> None:
    doc = generate(300, 40, seed=2, family="national")
    problem = Problem.from_document(doc)
    inst = Instance(problem, pair_limit=600)
    assert inst.reduced
    placement = _partial(inst, 2)
    assert explain_unplaced(inst, placement) == _slow_explain(problem, placement)


@settings(max_examples=60, deadline=None)
@given(problem_docs())
def test_small_problems_are_explained_as_shelter_by_shelter(doc: dict[str, Any]) -> None:
    _check(doc, seed=len(doc["requests"]))
