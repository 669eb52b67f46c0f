"""solver reasons grouped per code: solution documents /1 → /2, outcome reasons likewise

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 21:00:00.000000

A stored solution document of schema ``refuge.placement-solution/1`` lists one reason string
per shelter (``shelter:<id>:<code>``, ``shelter:<id>:capacity_taken:<request>``); schema ``/2``
groups them per code (``{"code", "shelters", "by"}``), with id lists that repeat written once
in ``shelter_sets`` / ``request_sets``. ``run_outcomes.reasons`` gets the same objects, written
out. Both directions are lossless: a ``by`` request is written back at the shelter the
document assigns it to. The conversion is written out here, not imported from ``placement``,
so that this revision keeps meaning what it meant when the solver changes again. Replay is
untouched: a run's problem and the assignments of its solution do not change.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

V1 = "refuge.placement-solution/1"
V2 = "refuge.placement-solution/2"
BY_CODES = ("capacity_taken", "separated_from")

runs = sa.table("matching_runs", sa.column("id", sa.Integer), sa.column("solution", sa.JSON))
outcomes = sa.table(
    "run_outcomes",
    sa.column("id", sa.Integer),
    sa.column("run_id", sa.Integer),
    sa.column("placed", sa.Boolean),
    sa.column("reasons", sa.JSON),
)

Reason = tuple[str, tuple[str, ...], tuple[str, ...]]


def grouped(strings: Iterable[str]) -> list[Reason]:
    """``/1`` strings → (code, shelters, by), sorted by code, ids in code-point order."""
    shelters: dict[str, set[str]] = {}
    by: dict[str, set[str]] = {}
    for text in strings:
        if text == "no_shelters":
            shelters.setdefault(text, set())
            continue
        _, _, rest = text.partition(":")
        shelter, _, code = rest.partition(":")
        name, _, arg = code.partition(":")
        if name in BY_CODES:
            code = name
            by.setdefault(code, set())
            if arg:
                by[code].add(arg)
        shelters.setdefault(code, set()).add(shelter)
    return [(c, tuple(sorted(shelters[c])), tuple(sorted(by.get(c, ())))) for c in sorted(shelters)]


def written(reason: Reason) -> dict[str, Any]:
    code, shelters, by = reason
    out: dict[str, Any] = {"code": code, "shelters": list(shelters)}
    if code in BY_CODES:
        out["by"] = list(by)
    return out


def read(entry: Mapping[str, Any], sets: Sequence[Any], requests: Sequence[Any]) -> Reason:
    def ids(v: Any, table: Sequence[Any]) -> tuple[str, ...]:
        return tuple(table[v] if isinstance(v, int) else v)

    return (entry["code"], ids(entry["shelters"], sets), ids(entry.get("by", []), requests))


def strings(reasons: Iterable[Reason], assigned: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for code, shelters, by in reasons:
        if code == "no_shelters":
            out.append(code)
            continue
        for s in shelters:
            if code in BY_CODES:
                out.extend(f"shelter:{s}:{code}:{q}" for q in by if assigned.get(q) == s)
            else:
                out.append(f"shelter:{s}:{code}")
    return sorted(out)


def interned(unplaced: list[tuple[str, list[Reason]]]) -> dict[str, Any]:
    """``shelter_sets``, ``request_sets`` and ``unplaced`` as ``placement.solution`` writes them.

    A list of two or more ids used by two or more reasons goes in the table, in first-use order.
    """
    counts: list[dict[tuple[str, ...], int]] = [{}, {}]
    for _, reasons in unplaced:
        for _, shelters, by in reasons:
            for k, ids in ((0, shelters), (1, by)):
                if len(ids) > 1:
                    counts[k][ids] = counts[k].get(ids, 0) + 1
    tables = [[ids for ids, n in c.items() if n > 1] for c in counts]
    index = [{ids: i for i, ids in enumerate(t)} for t in tables]
    docs = []
    for request, reasons in unplaced:
        out = []
        for code, shelters, by in reasons:
            entry: dict[str, Any] = {
                "code": code,
                "shelters": index[0].get(shelters, list(shelters)),
            }
            if code in BY_CODES:
                entry["by"] = index[1].get(by, list(by))
            out.append(entry)
        docs.append({"request": request, "reasons": out})
    return {
        "shelter_sets": [list(t) for t in tables[0]],
        "request_sets": [list(t) for t in tables[1]],
        "unplaced": docs,
    }


def solution_up(doc: Mapping[str, Any]) -> dict[str, Any]:
    rest = interned([(u["request"], grouped(u["reasons"])) for u in doc["unplaced"]])
    out = {k: v for k, v in doc.items() if k != "unplaced"}
    out["schema"] = V2
    out.update(rest)
    return out


def assignments_of(doc: Mapping[str, Any]) -> dict[str, str]:
    return {a["request"]: a["shelter"] for a in doc.get("assignments", ())}


def solution_down(doc: Mapping[str, Any]) -> dict[str, Any]:
    assigned = assignments_of(doc)
    sets, requests = doc.get("shelter_sets", []), doc.get("request_sets", [])
    # ``work`` stays: a /1 reader ignores it, and a replay of a cut run needs it after the
    # upgrade back.
    dropped = ("shelter_sets", "request_sets")
    out = {k: v for k, v in doc.items() if k not in dropped}
    out["schema"] = V1
    out["unplaced"] = [
        {
            "request": u["request"],
            "reasons": strings((read(r, sets, requests) for r in u["reasons"]), assigned),
        }
        for u in doc["unplaced"]
    ]
    return out


def stored(conn: sa.Connection) -> Iterator[tuple[int, dict[str, Any]]]:
    # A JSON null as well as SQL NULL may mean "no solution yet": both are skipped.
    for run_id, doc in conn.execute(sa.select(runs.c.id, runs.c.solution)).all():
        if isinstance(doc, dict):
            yield run_id, doc


def upgrade() -> None:
    conn = op.get_bind()
    for run_id, doc in stored(conn):
        if doc.get("schema") == V1:
            new = solution_up(doc)
            conn.execute(runs.update().where(runs.c.id == run_id).values(solution=new))
    unplaced = sa.select(outcomes.c.id, outcomes.c.reasons).where(outcomes.c.placed.is_(False))
    for outcome_id, reasons in conn.execute(unplaced).all():
        if reasons and all(isinstance(r, str) for r in reasons):
            new = [written(r) for r in grouped(reasons)]
            conn.execute(outcomes.update().where(outcomes.c.id == outcome_id).values(reasons=new))


def downgrade() -> None:
    conn = op.get_bind()
    assigned: dict[int, dict[str, str]] = {}
    for run_id, doc in stored(conn):
        assigned[run_id] = assignments_of(doc)
        if doc.get("schema") == V2:
            old = solution_down(doc)
            conn.execute(runs.update().where(runs.c.id == run_id).values(solution=old))
    query = sa.select(outcomes.c.id, outcomes.c.run_id, outcomes.c.reasons).where(
        outcomes.c.placed.is_(False)
    )
    for outcome_id, run_id, reasons in conn.execute(query).all():
        if reasons and all(isinstance(r, dict) for r in reasons):
            old = strings((read(r, [], []) for r in reasons), assigned.get(run_id, {}))
            conn.execute(outcomes.update().where(outcomes.c.id == outcome_id).values(reasons=old))
