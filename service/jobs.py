"""Batch matching runs, executed off the event loop, by whichever process is alive.

``POST /matching-runs`` stores a queued run and returns at once; after its transaction has
committed, the run is handed to this process's ``RunWorker``, which runs it on the app's
executor (a thread pool of ``solver_threads``; inline in tests). Runs live in the database,
and a process holds a run only by its claim there:

- a job first claims its run (queued → running, with this process's random worker id and one
  claim more); a run another process claimed first is left to it;
- while a process holds runs it beats their ``heartbeat_at`` every ``run_heartbeat_s``;
- every ``run_heartbeat_s`` (and once at start) each worker process also requeues the running
  runs whose heartbeat is older than ``run_heartbeat_timeout_s`` (their process died), or
  fails those claimed ``run_max_claims`` times, and claims queued runs for its idle solvers, so
  a run queued or held by a dead process is finished by a live one;
- the job commits its own short transactions: claim, build the problem (read), solve (no
  transaction open), apply (one write transaction under the commit lock that first checks the
  claim still holds the run), or mark failed. A run whose claim was taken away writes nothing,
  so a run's proposals are written by one claim at most, exactly once.

What-if scenarios (``shelters.scenarios``) go through the same worker with the same rules:
claimed (queued → running, one claim more), beaten, requeued or failed when their process stops
beating, and executed on the same executor, sharing its solvers with batch runs. A scenario
solves with no transaction open, records its progress after each base run in a short write
that checks the claim, and writes its runs and answer in one transaction at its end, or fails
with a reason and writes nothing else.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import OperationalError

from placement import solve
from service import metrics
from service.db import Sessions
from service.settings import Settings
from shelters import audit, lifecycle, reports, runs, scenarios
from shelters.audit import AuditRecord
from shelters.errors import CapacityExceeded, Conflict
from shelters.matching import build_problem
from shelters.models import MatchingRun, Scenario, User, utcnow
from shelters.runs import Claim, Recovered
from shelters.scenarios import ScenarioClaim

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


def make_executor(settings: Settings, *, inline: bool) -> Executor:
    """The executor for batch runs of one app."""
    if inline:
        return InlineExecutor()
    return ThreadPoolExecutor(max_workers=settings.solver_threads, thread_name_prefix="solver")


def new_worker_id() -> str:
    """A random id for one process's claims: says nothing about the machine or a person."""
    return "w-" + secrets.token_hex(8)


class RunWorker:
    """One process's share of executing batch runs: claims, heartbeats, recovery.

    ``clock`` gives the time written as heartbeats and compared with them (tests inject one).
    ``start`` begins the loop that beats and polls every ``run_heartbeat_s``; without it (the
    tests' connection-bound apps) runs are executed when ``dispatch`` is called, and ``poll``
    does one round by hand.
    """

    def __init__(
        self,
        sessions: Sessions,
        settings: Settings,
        executor: Executor,
        *,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.executor = executor
        self.worker_id = worker_id or new_worker_id()
        self.clock = clock
        self._lock = threading.Lock()
        self._busy = 0  # jobs submitted and not yet ended
        self._held: set[int] = set()
        self._held_scenarios: set[int] = set()
        self._closing = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def timeout(self) -> timedelta:
        return timedelta(seconds=self.settings.run_heartbeat_timeout_s)

    def held(self) -> set[int]:
        """The runs this process's jobs hold right now."""
        with self._lock:
            return set(self._held)

    def held_scenarios(self) -> set[int]:
        """The scenarios this process's jobs hold right now."""
        with self._lock:
            return set(self._held_scenarios)

    # --- the loop ---------------------------------------------------------------------------

    def start(self) -> None:
        """Beat and poll in a thread of its own until the process ends (a daemon thread)."""
        self._thread = threading.Thread(target=self._loop, name="run-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Claim nothing more; keep beating for the runs still being solved until they end.

        The loop (a daemon thread) ends at once when this process holds no run, else after
        the last held run ends or the process exits under it.
        """
        self._closing.set()
        if not self.held() and not self.held_scenarios():
            self._stopped.set()
            if self._thread is not None:
                self._thread.join(timeout=self.settings.run_heartbeat_s + 5)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                self.poll()
            except Exception:  # the database may be restarting; try again next round
                log.warning("matching-run poll failed", exc_info=True)
            if self._closing.is_set() and not self.held() and not self.held_scenarios():
                return
            self._stopped.wait(self.settings.run_heartbeat_s)

    def poll(self) -> Recovered:
        """One round: beat the held runs, recover stale runs, claim queued runs if idle."""
        self.beat()
        recovered = self.recover()
        if recovered.requeued:
            log.warning("requeued matching runs of stopped processes: %s", recovered.requeued)
        if recovered.failed:
            log.warning("gave up matching runs claimed too often: %s", recovered.failed)
        self.pick_up()
        return recovered

    def beat(self) -> set[int]:
        """Mark this process's runs alive; returns those it still holds."""
        held = self.held()
        held_scenarios = self.held_scenarios()
        if held_scenarios:
            with self.sessions.write() as session, session.begin():
                scenarios.beat(session, held_scenarios, worker_id=self.worker_id, now=self.clock())
        if not held:
            return set()
        with self.sessions.write() as session, session.begin():
            alive = runs.beat(session, held, worker_id=self.worker_id, now=self.clock())
        for run_id in sorted(held - alive):
            # Finished a moment ago, or taken over (the job then says so when it would write).
            log.info("matching run %s no longer runs in this process's name", run_id)
        return alive

    def recover(self) -> Recovered:
        """Requeue or fail the running runs of processes that stopped beating."""
        before = self.clock() - self.timeout
        # A read first: the write transaction (SQLite: the database's one write lock) is only
        # taken when a process has died.
        with self.sessions.read() as session, session.begin():
            stale_scenarios = scenarios.stale_ids(session, before=before)
            stale_runs = runs.stale_run_ids(session, before=before)
        if stale_scenarios:
            with self.sessions.write() as session, session.begin():
                requeued, failed = scenarios.recover_stale(
                    session,
                    before=before,
                    max_claims=self.settings.run_max_claims,
                    now=self.clock(),
                )
            if requeued or failed:
                log.warning(
                    "scenarios of stopped processes: requeued %s, failed %s", requeued, failed
                )
        if not stale_runs:
            return Recovered()
        with self.sessions.write() as session, session.begin():
            return runs.recover_stale(
                session,
                before=before,
                max_claims=self.settings.run_max_claims,
                now=self.clock(),
            )

    def pick_up(self) -> int:
        """Start a job for each idle solver while queued runs wait; returns how many."""
        if self._closing.is_set() or not self.settings.run_worker:
            return 0
        with self._lock:
            idle = self.settings.solver_threads - self._busy
        if idle <= 0:
            return 0
        with self.sessions.read() as session, session.begin():
            waiting = runs.queued_run_ids(session, limit=idle)
            waiting_scenarios = scenarios.queued_ids(session, limit=idle - len(waiting))
        for _ in waiting:
            self._submit(None)
        for _ in waiting_scenarios:
            self._submit_scenario(None)
        return len(waiting) + len(waiting_scenarios)

    # --- jobs -------------------------------------------------------------------------------

    def dispatch(self, run_id: int) -> None:
        """Execute this queued run here, unless another process claims it first."""
        if self._closing.is_set() or not self.settings.run_worker:
            return  # it stays queued for a process that executes runs
        self._submit(run_id)

    def dispatch_scenario(self, scenario_id: int) -> None:
        """Execute this queued scenario here, unless another process claims it first."""
        if self._closing.is_set() or not self.settings.run_worker:
            return  # it stays queued for a process that executes runs
        self._submit_scenario(scenario_id)

    def _submit(self, run_id: int | None) -> None:
        self._submit_job(self._job, run_id)

    def _submit_scenario(self, scenario_id: int | None) -> None:
        self._submit_job(self._scenario_job, scenario_id)

    def _submit_job(self, job: Callable[[int | None], None], job_id: int | None) -> None:
        with self._lock:
            self._busy += 1
        try:
            self.executor.submit(job, job_id)
        except RuntimeError:  # the executor was shut down: the run stays queued
            with self._lock:
                self._busy -= 1

    def _scenario_job(self, scenario_id: int | None) -> None:
        """Claim ``scenario_id`` (None: the oldest queued) and run it to its end. Never raises."""
        try:
            try:
                with self.sessions.write() as session, session.begin():
                    held = scenarios.claim(
                        session, scenario_id, worker_id=self.worker_id, now=self.clock()
                    )
            except Exception:  # it stays queued; the next poll, here or elsewhere, claims it
                log.warning("could not claim scenario %s", scenario_id, exc_info=True)
                return
            if held is None:
                return
            with self._lock:
                self._held_scenarios.add(held.scenario_id)
            try:
                execute_scenario(self.sessions, self.settings, held)
            finally:
                with self._lock:
                    self._held_scenarios.discard(held.scenario_id)
        finally:
            with self._lock:
                self._busy -= 1

    def _job(self, run_id: int | None) -> None:
        """Claim ``run_id`` (None: the oldest queued run) and run it to its end. Never raises."""
        try:
            claim = self._claim(run_id)
            if claim is None:
                return
            with self._lock:
                self._held.add(claim.run_id)
            try:
                execute_claimed(self.sessions, self.settings, claim)
            finally:
                with self._lock:
                    self._held.discard(claim.run_id)
        finally:
            with self._lock:
                self._busy -= 1

    def _claim(self, run_id: int | None) -> Claim | None:
        try:
            with self.sessions.write() as session, session.begin():
                if run_id is None:
                    return runs.claim_next(session, worker_id=self.worker_id, now=self.clock())
                return runs.claim(session, run_id, worker_id=self.worker_id, now=self.clock())
        except Exception:  # the run stays queued; the next poll, here or elsewhere, claims it
            log.warning("could not claim matching run %s", run_id, exc_info=True)
            return None


def execute_claimed(sessions: Sessions, settings: Settings, claim: Claim) -> None:
    """Run a claimed batch to its end: done, or failed with a reason. Never raises."""
    try:
        _execute(sessions, settings, claim)
    except Exception as exc:
        log.exception("matching run %s failed", claim.run_id)
        metrics.observe_run("failed")
        reason = "database unavailable" if isinstance(exc, OperationalError) else "internal error"
        try:
            with sessions.write() as session, session.begin():
                runs.fail(session, claim.run_id, reason, attempts=0, claim=claim)
        except Exception:
            log.exception("could not mark matching run %s failed", claim.run_id)


def _execute(sessions: Sessions, settings: Settings, claim: Claim) -> None:
    run_id = claim.run_id
    params = runs.parameters_of(claim)
    weights = runs.weights_of(params)
    ttl = timedelta(hours=settings.hold_ttl_hours)
    for attempt in range(1, runs.MAX_ATTEMPTS + 1):
        with sessions.read() as session, session.begin():
            requests = runs.pending_requests(session, params)
            problem = build_problem(
                session, requests, majority_age=settings.majority_age, weights=weights
            )
        solving = time.perf_counter()
        solution = solve(problem, time_limit_s=params.time_limit_s, seed=params.seed)
        solve_s = time.perf_counter() - solving
        try:
            with sessions.write() as session, session.begin():
                if not params.dry_run:
                    # The commit lock before the run's row: while this waits for another
                    # run's commit, this process keeps beating for its run.
                    runs.take_commit_lock(session, idle_timeout_s=settings.run_heartbeat_timeout_s)
                run = runs.lock_claimed(session, claim)
                if run is None:
                    log.warning("matching run %s was taken from this process while it ran", run_id)
                    return
                if not run.dry_run:
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
            metrics.observe_run(solution.status, solve_s)
            return
        except (CapacityExceeded, Conflict) as exc:
            log.info("matching run %s attempt %s no longer fits: %s", run_id, attempt, exc.detail)
    metrics.observe_run("failed")
    with sessions.write() as session, session.begin():
        runs.fail(
            session,
            run_id,
            f"conflict: free beds or requests changed while solving, {runs.MAX_ATTEMPTS} times",
            attempts=runs.MAX_ATTEMPTS,
            claim=claim,
        )


def execute_scenario(sessions: Sessions, settings: Settings, held: ScenarioClaim) -> None:
    """Run a claimed scenario to its end: done, or failed with a reason. Never raises."""
    try:
        _execute_scenario(sessions, settings, held)
    except Exception as exc:
        log.exception("scenario %s failed", held.scenario_id)
        reason = "database unavailable" if isinstance(exc, OperationalError) else "internal error"
        if isinstance(exc, scenarios.ScenarioError):
            reason = exc.detail
        try:
            with sessions.write() as session, session.begin():
                scenarios.fail(session, held, reason)
        except Exception:
            log.exception("could not mark scenario %s failed", held.scenario_id)


def _execute_scenario(sessions: Sessions, settings: Settings, held: ScenarioClaim) -> None:
    with sessions.read() as session, session.begin():
        scenario = session.get_one(Scenario, held.scenario_id)
        params = dict(scenario.parameters)
        kind = scenario.kind
        changes = scenarios.changes_of(scenario)
        when = reports.period(date.fromisoformat(params["from"]), date.fromisoformat(params["to"]))
        run_ids = scenarios.base_run_ids(session, when)
        where = scenarios.centroids(session)
    plan: dict[str, Any] | None = None
    if kind == "bed_budget":
        with sessions.read() as session, session.begin():
            changes, plan = scenarios.plan_budget(
                session, run_ids, params, majority_age=settings.majority_age
            )
    carry = scenarios.Carry()
    results: list[scenarios.RunResult] = []
    for done, run_id in enumerate(run_ids, start=1):
        with sessions.read() as session, session.begin():
            run = session.get_one(MatchingRun, run_id)
            problem, solution = run.problem, run.solution
        if problem is None or solution is None:
            raise scenarios.ScenarioError("matching run {run_id} has no documents", run_id=run_id)
        results.append(
            scenarios.solve_run(run_id, problem, solution, changes, carry, centroids=where)
        )
        with sessions.write() as session, session.begin():
            if not scenarios.progress(session, held, done):
                log.warning(
                    "scenario %s was taken from this process while it ran", held.scenario_id
                )
                return
    answer = scenarios.aggregate(
        results, majority_age=settings.majority_age, k=settings.suppression_k, when=when
    )
    if plan is not None:
        answer["plan"] = plan
    with sessions.write() as session, session.begin():
        if not scenarios.finish(session, held, results, answer):
            log.warning("scenario %s was taken from this process while it ran", held.scenario_id)
            return
        scenario = session.get_one(Scenario, held.scenario_id)
        starter = session.get_one(User, scenario.started_by)
        # The scenario's writes happen outside any request: one entry of their own.
        audit.append(
            session,
            AuditRecord(
                action="execute",
                resource_type="scenario",
                resource_id=held.scenario_id,
                actor_user_id=scenario.started_by,
                actor_role=starter.role,
            ),
        )
