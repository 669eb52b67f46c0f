"""The placement solution: a frozen mirror of ``refuge.placement-solution/1``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from placement.problem import PRIORITIES, canonical_json

SCHEMA = "refuge.placement-solution/1"


class SolutionError(ValueError):
    """A solution document is malformed; the message names the JSON path."""


@dataclass(frozen=True)
class SolverInfo:
    """How the solution was computed; all of it is part of the reproducible result."""

    name: str
    version: str
    seed: int
    workers: int
    time_limit_s: float


@dataclass(frozen=True)
class Objective:
    """Objective values, or bounds on them.

    Attributes:
        placed_by_priority: people placed per priority, ordered 5, 4, 3, 2, 1. As a bound:
            an upper bound on each level.
        soft_cost: total soft cost. As a bound: a lower bound.
    """

    placed_by_priority: tuple[int, int, int, int, int]
    soft_cost: int

    def to_document(self) -> dict[str, Any]:
        """``{"placed_by_priority": {"5": n, …, "1": n}, "soft_cost": n}``."""
        return {
            "placed_by_priority": {
                str(p): n for p, n in zip(PRIORITIES, self.placed_by_priority, strict=True)
            },
            "soft_cost": self.soft_cost,
        }


@dataclass(frozen=True)
class Bed:
    """One member's bed: the member's ref and the unit id."""

    member: str
    unit: str


@dataclass(frozen=True)
class Assignment:
    """A request placed whole in one shelter."""

    request: str
    shelter: str
    beds: tuple[Bed, ...]


@dataclass(frozen=True)
class Unplaced:
    """A request left unplaced, with sorted reason strings (format in docs/solver.md)."""

    request: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Solution:
    """A solution document.

    ``assignments`` follow the problem's request order, ``unplaced`` too; beds follow member
    order. ``wall_s`` and ``safety_net_expired`` describe this run only and are left out of
    :meth:`result_bytes`, which is byte-identical for the same problem, seed and parameters
    unless ``safety_net_expired`` is true. ``work`` (the deterministic work each phase was
    given and used, and where the wall clock cut the run) is part of the result: a replay with
    it (``solve(..., replay=work)``) gives the same bytes even when the clock cut the run.
    """

    status: Literal["optimal", "feasible"]
    problem_digest: str
    solver: SolverInfo
    objective: Objective
    bound: Objective
    wall_s: float
    assignments: tuple[Assignment, ...]
    unplaced: tuple[Unplaced, ...]
    safety_net_expired: bool = False
    work: Mapping[str, Any] | None = None

    def to_document(self) -> dict[str, Any]:
        """The JSON document (``refuge.placement-solution/1``)."""
        return {
            "schema": SCHEMA,
            "status": self.status,
            "problem_digest": self.problem_digest,
            "solver": {
                "name": self.solver.name,
                "version": self.solver.version,
                "seed": self.solver.seed,
                "workers": self.solver.workers,
                "time_limit_s": self.solver.time_limit_s,
            },
            "objective": self.objective.to_document(),
            "bound": self.bound.to_document(),
            **({} if self.work is None else {"work": dict(self.work)}),
            "wall_s": self.wall_s,
            "safety_net_expired": self.safety_net_expired,
            "assignments": [
                {
                    "request": a.request,
                    "shelter": a.shelter,
                    "beds": [{"member": b.member, "unit": b.unit} for b in a.beds],
                }
                for a in self.assignments
            ],
            "unplaced": [{"request": u.request, "reasons": list(u.reasons)} for u in self.unplaced],
        }

    def result_bytes(self) -> bytes:
        """Canonical JSON of everything but the run's timing (``wall_s``, safety net)."""
        doc = self.to_document()
        del doc["wall_s"]
        del doc["safety_net_expired"]
        return canonical_json(doc)

    @classmethod
    def from_document(cls, doc: object) -> Solution:
        """Parse a solution document.

        Raises:
            SolutionError: naming the path of the first malformed field. Only the shape is
                checked here; :func:`placement.verify.verify` checks it against a problem.
        """
        d = _obj(doc, "$")
        if d.get("schema") != SCHEMA:
            raise SolutionError(f"schema: must be {SCHEMA!r}")
        status = d.get("status")
        if status not in ("optimal", "feasible"):
            raise SolutionError("status: must be optimal or feasible")
        s = _obj(d.get("solver"), "solver")
        assignments = []
        for i, a in enumerate(_arr(d.get("assignments"), "assignments")):
            ao = _obj(a, f"assignments[{i}]")
            beds = tuple(
                Bed(
                    member=_s(_obj(b, f"assignments[{i}].beds[{j}]").get("member"), "member"),
                    unit=_s(_obj(b, f"assignments[{i}].beds[{j}]").get("unit"), "unit"),
                )
                for j, b in enumerate(_arr(ao.get("beds"), f"assignments[{i}].beds"))
            )
            assignments.append(
                Assignment(
                    request=_s(ao.get("request"), f"assignments[{i}].request"),
                    shelter=_s(ao.get("shelter"), f"assignments[{i}].shelter"),
                    beds=beds,
                )
            )
        unplaced = []
        for i, u in enumerate(_arr(d.get("unplaced"), "unplaced")):
            uo = _obj(u, f"unplaced[{i}]")
            reasons = tuple(
                _s(r, f"unplaced[{i}].reasons[{j}]")
                for j, r in enumerate(_arr(uo.get("reasons"), f"unplaced[{i}].reasons"))
            )
            unplaced.append(Unplaced(_s(uo.get("request"), f"unplaced[{i}].request"), reasons))
        work = d.get("work")
        if work is not None and not isinstance(work, Mapping):
            raise SolutionError("work: must be an object")
        wall = d.get("wall_s")
        if isinstance(wall, bool) or not isinstance(wall, int | float):
            raise SolutionError("wall_s: must be a number")
        return cls(
            status="optimal" if status == "optimal" else "feasible",
            problem_digest=_s(d.get("problem_digest"), "problem_digest"),
            solver=SolverInfo(
                name=_s(s.get("name"), "solver.name"),
                version=_s(s.get("version"), "solver.version"),
                seed=_i(s.get("seed"), "solver.seed"),
                workers=_i(s.get("workers"), "solver.workers"),
                time_limit_s=_f(s.get("time_limit_s"), "solver.time_limit_s"),
            ),
            objective=_objective(d.get("objective"), "objective"),
            bound=_objective(d.get("bound"), "bound"),
            wall_s=float(wall),
            assignments=tuple(assignments),
            unplaced=tuple(unplaced),
            safety_net_expired=bool(d.get("safety_net_expired", False)),
            work=None if work is None else dict(work),
        )


def _obj(v: object, path: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise SolutionError(f"{path}: must be an object")
    return v


def _arr(v: object, path: str) -> list[Any]:
    if not isinstance(v, list):
        raise SolutionError(f"{path}: must be an array")
    return v


def _s(v: object, path: str) -> str:
    if not isinstance(v, str):
        raise SolutionError(f"{path}: must be a string")
    return v


def _i(v: object, path: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise SolutionError(f"{path}: must be an integer")
    return v


def _f(v: object, path: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SolutionError(f"{path}: must be a number")
    return float(v)


def _objective(v: object, path: str) -> Objective:
    o = _obj(v, path)
    levels = _obj(o.get("placed_by_priority"), f"{path}.placed_by_priority")
    p5, p4, p3, p2, p1 = (
        _i(levels.get(str(p)), f"{path}.placed_by_priority.{p}") for p in PRIORITIES
    )
    return Objective((p5, p4, p3, p2, p1), _i(o.get("soft_cost"), f"{path}.soft_cost"))
