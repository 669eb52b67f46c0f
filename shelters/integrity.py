"""The no-overbooking guarantee, checked from the placements themselves.

Used by the tests after every concurrent or random scenario, and by the load script after a
run: a unit's counters could agree with each other and still be wrong, so the holds and
admissions are counted from the placement rows.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

UNIT_BOOKINGS = text(
    """
    SELECT u.id, u.capacity, u.out_of_service, u.external_occupied, u.held, u.occupied,
           COALESCE(SUM(CASE WHEN p.status IN ('proposed', 'accepted') THEN 1 ELSE 0 END), 0),
           COALESCE(SUM(CASE WHEN p.status = 'admitted' THEN 1 ELSE 0 END), 0)
    FROM units u
    LEFT JOIN placement_beds b ON b.unit_id = u.id
    LEFT JOIN placements p ON p.id = b.placement_id
    GROUP BY u.id, u.capacity, u.out_of_service, u.external_occupied, u.held, u.occupied
    ORDER BY u.id
    """
)


def overbooked_units(bind: Connection | Engine) -> list[str]:
    """Every unit whose active holds and admissions exceed its beds, or whose counters lie.

    Returns one line per problem; an empty list means the invariant holds everywhere.
    """
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return overbooked_units(conn)
    problems = []
    for unit_id, capacity, oos, ext, held, occupied, holds, admitted in bind.execute(UNIT_BOOKINGS):
        if holds + admitted + oos + ext > capacity:
            problems.append(f"unit {unit_id}: {holds} held + {admitted} admitted > {capacity}")
        if (held, occupied) != (holds, admitted):
            problems.append(
                f"unit {unit_id}: counters held={held} occupied={occupied} "
                f"but placements say {holds} and {admitted}"
            )
    return problems


LIFECYCLE_CHECKS = {
    "placement without beds": """
        SELECT p.id FROM placements p
        WHERE NOT EXISTS (SELECT 1 FROM placement_beds b WHERE b.placement_id = p.id)""",
    "placement whose last transition is not its status": """
        SELECT p.id FROM placements p
        WHERE p.status <> (SELECT t.to_status FROM placement_transitions t
                           WHERE t.placement_id = p.id ORDER BY t.id DESC LIMIT 1)""",
    "proposed request without a holding placement": """
        SELECT r.id FROM placement_requests r
        WHERE r.status = 'proposed' AND NOT EXISTS (
            SELECT 1 FROM placements p
            WHERE p.request_id = r.id AND p.status IN ('proposed', 'accepted'))""",
    "request with two live placements": """
        SELECT p.request_id FROM placements p
        WHERE p.status IN ('proposed', 'accepted', 'admitted')
        GROUP BY p.request_id HAVING COUNT(*) > 1""",
    "finished run without an outcome per request": """
        SELECT m.id FROM matching_runs m
        WHERE m.status = 'done'
          AND m.requests_count <> (SELECT COUNT(*) FROM run_outcomes o WHERE o.run_id = m.id)""",
}


def half_written(bind: Connection | Engine) -> list[str]:
    """Every trace of a write that stopped halfway (placements, requests, runs).

    Returns one line per inconsistency; empty when every transaction was all or nothing.
    """
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return half_written(conn)
    found = []
    for label, sql in LIFECYCLE_CHECKS.items():
        ids = [row[0] for row in bind.execute(text(sql))]
        if ids:
            found.append(f"{label}: {ids[:10]}")
    return found
