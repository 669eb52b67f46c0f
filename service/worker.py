"""``refuge worker``: executes batch matching runs and delivers webhooks; serves no HTTP.

Webhooks: the outbox of service/webhooks.py, every ``REFUGE_WEBHOOK_POLL_S``.

The queue is the ``matching_runs`` table itself (service/jobs.py, shelters/runs.py): a run is
claimed with ``SELECT … FOR UPDATE SKIP LOCKED``, its claim kept alive by heartbeats, and a run
whose process stopped beating is requeued by any other process, or failed after
``REFUGE_RUN_MAX_CLAIMS`` claims. Any number of ``refuge serve`` and ``refuge worker`` processes
share one database; set ``REFUGE_RUN_WORKER=false`` for the servers and they only queue.

Why not a queue library such as procrastinate: a run's row already is its job (status, claim,
heartbeat, attempts, the problem and solution kept for replay) and is written in the same
transactions as the proposals it makes; a second job table would be a second truth about the
same run, to be kept in step across crashes. procrastinate also needs PostgreSQL, and Refuge's
default is SQLite, where the serving process runs the same loop.

SIGTERM or SIGINT: claim nothing more, finish the runs being solved (their heartbeats go on),
then exit 0. A second signal exits at once; what was being solved is then requeued by another
process after ``REFUGE_RUN_HEARTBEAT_TIMEOUT_S``, as after a crash.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from service import jobs, webhooks
from service.db import Sessions, make_engine
from service.settings import Settings

log = logging.getLogger("refuge.worker")


def run(settings: Settings, *, stop: threading.Event | None = None) -> None:
    """Execute batch runs with ``settings.solver_threads`` solvers until ``stop`` is set."""
    stop = stop or threading.Event()
    engine = make_engine(settings.database_url)
    sessions = Sessions(engine)
    executor = jobs.make_executor(settings, inline=False)
    worker = jobs.RunWorker(sessions, settings, executor)
    worker.start()
    deliverer = webhooks.Deliverer(sessions, settings.webhook_poll_s)
    if settings.webhook_poll_s > 0:
        deliverer.start()
    log.info(
        "worker started",
        extra={"worker_id": worker.worker_id, "concurrency": settings.solver_threads},
    )
    try:
        stop.wait()
    finally:
        log.info("worker stopping: finishing the runs it holds", extra={"held": len(worker.held())})
        worker.stop()
        executor.shutdown(wait=True)  # the runs being solved end; none is started any more
        worker.stop()  # nothing held now: the heartbeat loop ends
        deliverer.stop()
        engine.dispose()
        log.info("worker stopped", extra={"worker_id": worker.worker_id})


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT; a second one exits at once."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise SystemExit(128 + signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
