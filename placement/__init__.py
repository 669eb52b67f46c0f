"""Refuge placement solver: problem document in, solution document out (SPEC §6).

Pure: imports only the standard library and OR-Tools. No database, no web.
"""

__version__ = "0.1.0"

from placement.eligibility import (
    assign_beds,
    eligibility_reasons,
    member_status,
    rule_admits,
)
from placement.expansion import BedOption, ExpansionPlan, plan_beds
from placement.problem import (
    AdmissionRule,
    Location,
    Member,
    Problem,
    ProblemError,
    Region,
    Request,
    Shelter,
    Unit,
    Weights,
    problem_digest,
)
from placement.solution import (
    Assignment,
    Bed,
    Objective,
    Solution,
    SolutionError,
    SolverInfo,
    Unplaced,
)
from placement.solve import solve
from placement.verify import verify

__all__ = [
    "AdmissionRule",
    "Assignment",
    "Bed",
    "BedOption",
    "ExpansionPlan",
    "Location",
    "Member",
    "Objective",
    "Problem",
    "ProblemError",
    "Region",
    "Request",
    "Shelter",
    "Solution",
    "SolutionError",
    "SolverInfo",
    "Unit",
    "Unplaced",
    "Weights",
    "__version__",
    "assign_beds",
    "eligibility_reasons",
    "member_status",
    "plan_beds",
    "problem_digest",
    "rule_admits",
    "solve",
    "verify",
]
