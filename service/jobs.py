"""Batch matching runs, executed off the event loop.

``POST /matching-runs`` stores a queued run and returns at once; after its transaction has
committed, the run is handed to the app's executor (a thread pool of ``solver_threads``;
inline in tests). The job commits its own short transactions: mark running, build the
problem (read), solve (no transaction open), apply (one write transaction under the commit
lock), or mark failed. Runs are in the database, so any worker process answers polls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import OperationalError

from placement import solve
from placement.solve import SAFETY_FACTOR, SAFETY_SLACK_S
from service.db import Sessions
from service.settings import Settings
from shelters import audit, lifecycle, runs
from shelters.audit import AuditRecord
from shelters.errors import CapacityExceeded, Conflict
from shelters.matching import build_problem
from shelters.models import MatchingRun

log = logging.getLogger("refuge.jobs")


class InlineExecutor(Executor):
    """Runs each job at once in the caller's thread (tests bound to one connection)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # kept on the future, as a pool would
            future.set_exception(exc)
        return future


def abandoned_after(settings: Settings) -> timedelta:
    """How old a queued or running run must be before it counts as abandoned.

    Far beyond the longest a run may take: every active run before it may use the solver's
    wall-clock safety net in full at the largest time limit allowed, plus ten minutes each
    for building and applying.
    """
    longest = SAFETY_FACTOR * settings.max_run_time_limit_s + SAFETY_SLACK_S + 600
    return timedelta(seconds=settings.max_active_runs * longest)


def make_executor(settings: Settings, *, inline: bool) -> Executor:
    """The executor for batch runs of one app."""
    if inline:
        return InlineExecutor()
    return ThreadPoolExecutor(max_workers=settings.solver_threads, thread_name_prefix="solver")


def execute_run(sessions: Sessions, settings: Settings, run_id: int) -> None:
    """Run a queued batch to its end: done, or failed with a reason. Never raises."""
    try:
        _execute(sessions, settings, run_id)
    except Exception as exc:
        log.exception("matching run %s failed", run_id)
        reason = "database unavailable" if isinstance(exc, OperationalError) else "internal error"
        try:
            with sessions.write() as session, session.begin():
                runs.fail(session, run_id, reason, attempts=0)
        except Exception:
            log.exception("could not mark matching run %s failed", run_id)


def _execute(sessions: Sessions, settings: Settings, run_id: int) -> None:
    with sessions.write() as session, session.begin():
        started = runs.start(session, run_id)
        if started is None:
            log.warning("matching run %s was given up before it started", run_id)
            return
        params = runs.parameters_of(started)
    weights = runs.weights_of(params)
    ttl = timedelta(hours=settings.hold_ttl_hours)
    for attempt in range(1, runs.MAX_ATTEMPTS + 1):
        with sessions.read() as session, session.begin():
            requests = runs.pending_requests(session, params)
            problem = build_problem(
                session, requests, majority_age=settings.majority_age, weights=weights
            )
        solution = solve(problem, time_limit_s=params.time_limit_s, seed=params.seed)
        try:
            with sessions.write() as session, session.begin():
                run = session.get_one(MatchingRun, run_id, with_for_update=True)
                if run.status != "running":
                    log.warning("matching run %s was given up while it ran", run_id)
                    return
                if not run.dry_run:
                    runs.take_commit_lock(session)
                    lifecycle.expire_holds(session)
                placements = runs.apply(session, run, solution, hold_ttl=ttl)
                runs.finish(session, run, problem, solution, placements, attempts=attempt)
                # The run's writes happen outside any request: one entry of their own.
                audit.append(
                    session,
                    AuditRecord(
                        action="execute",
                        resource_type="matching_run",
                        resource_id=run_id,
                        actor_user_id=run.started_by,
                        actor_role="admin",
                    ),
                )
            return
        except (CapacityExceeded, Conflict) as exc:
            log.info("matching run %s attempt %s no longer fits: %s", run_id, attempt, exc.detail)
    with sessions.write() as session, session.begin():
        runs.fail(
            session,
            run_id,
            f"conflict: free beds or requests changed while solving, {runs.MAX_ATTEMPTS} times",
            attempts=runs.MAX_ATTEMPTS,
        )
