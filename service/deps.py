"""Request-scoped dependencies: the unit of work.

A route asks for ``ReadDb`` when it only reads, ``WriteDb`` when it writes (reads of case-level
data write an audit entry, so they ask for ``WriteDb`` too). The dependency is function-scoped
(FastAPI ≥ 0.121): it commits before the response is sent, so a failed commit becomes an error
response and never a 201 after the fact. Nothing else commits during a request.

Both dependencies are async generators: opening a session does no I/O (it begins on its first
statement, in the route's worker thread). A sync endpoint ends its units of work — commit or
rollback, and the audit entry — in its own worker thread (``ends_units_of_work``, applied by
``UnitOfWorkRoute``, the route class of every router); otherwise the dependency ends them in a
worker thread of their own. Each hand-off to a worker thread and back cost about a third of a
millisecond of CPU on the load machine, as much as a small query.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service import audit
from service.db import Sessions
from shelters.errors import DomainError


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


_UNIT = "refuge_unit_of_work"


class UnitOfWork:
    """One request's transaction: ``end`` commits it (or rolls it back) and closes it, once."""

    def __init__(
        self,
        session: Session,
        *,
        commit: Callable[[Session], None] | None = None,
        on_commit_failure: Callable[[], None] | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self.session = session  # not begun: no I/O until its first statement
        self.ended = False
        self._commit = commit or Session.commit
        self._on_commit_failure = on_commit_failure
        self._after_commit = after_commit
        session.info[_UNIT] = self

    def end(self, exc: BaseException | None) -> None:
        """Commit if the route succeeded (or failed with ``commit_anyway``), else roll back.

        Blocking I/O: call it from a worker thread. A second call does nothing.
        """
        if self.ended:
            return
        self.ended = True
        session = self.session
        with session:
            if isinstance(exc, DomainError) and exc.commit_anyway:
                session.commit()
            elif exc is not None:
                session.rollback()
            else:
                try:
                    self._commit(session)
                except BaseException:
                    if self._on_commit_failure is not None:
                        self._on_commit_failure()
                    raise
        if exc is None and self._after_commit is not None:
            self._after_commit()

    async def __aenter__(self) -> Session:
        return self.session

    async def __aexit__(self, kind: Any, exc: BaseException | None, traceback: Any) -> None:
        # What the endpoint did not end (an async endpoint's unit) ends in a worker thread.
        if not self.ended:
            await run_in_threadpool(self.end, exc)


def ends_units_of_work(call: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a sync endpoint so that it ends its units of work in its own worker thread.

    Otherwise the session dependency would hand the commit to another worker thread once
    the endpoint has returned; the dependency then finds the unit ended and does nothing.
    """

    @functools.wraps(call)
    def endpoint(**values: Any) -> Any:
        units = [
            v.info[_UNIT] for v in values.values() if isinstance(v, Session) and _UNIT in v.info
        ]
        try:
            result = call(**values)
        except BaseException as exc:
            for unit in units:
                unit.end(exc)
            raise
        for unit in units:
            unit.end(None)
        return result

    return endpoint


class UnitOfWorkRoute(APIRoute):
    """The route class of every router: a sync endpoint ends its units of work itself."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = ends_units_of_work(endpoint)
        super().__init__(path, endpoint, **kwargs)


async def write_session(request: Request) -> AsyncIterator[Session]:
    """A session whose transaction commits when the route returns and rolls back on error.

    An audited request (``service/audit.py``) appends its audit entry in this transaction, as
    its last statement, together with the commit.
    """
    unit = UnitOfWork(
        _sessions(request).write(),
        commit=lambda session: audit.commit_with_entry(session, request),
        # The entry went down with the transaction; a retry of the request must append it again.
        on_commit_failure=lambda: audit.forget(request),
    )
    async with unit as session:
        yield session


async def read_session(request: Request) -> AsyncIterator[Session]:
    """A session for routes that only read; on SQLite its transaction never takes the lock.

    An audited request appends its audit entry in a short write transaction of its own once
    the read has succeeded, before the response is sent.
    """
    unit = UnitOfWork(_sessions(request).read(), after_commit=lambda: audit.record_alone(request))
    async with unit as session:
        yield session


WriteDb = Annotated[Session, Depends(write_session, scope="function")]
ReadDb = Annotated[Session, Depends(read_session, scope="function")]
