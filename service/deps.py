"""Request-scoped dependencies: the unit of work.

A route asks for ``ReadDb`` when it only reads, ``WriteDb`` when it writes (reads of case-level
data write an audit entry, so they ask for ``WriteDb`` too). The dependency is function-scoped
(FastAPI ≥ 0.121): it commits before the response is sent, so a failed commit becomes an error
response and never a 201 after the fact. Nothing else commits during a request.

Both dependencies are async generators: opening a session does no I/O (it begins on its first
statement, in the route's worker thread), so only the end of the unit of work — commit or
rollback, and the audit entry — is handed to a worker thread. A sync generator dependency
costs two thread hand-offs per request instead of one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service import audit
from service.db import Sessions
from shelters.errors import DomainError


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def _unit_of_work(
    session: Session,
    before_commit: Callable[[Session], None] | None = None,
    on_commit_failure: Callable[[], None] | None = None,
) -> Iterator[Session]:
    with session:
        try:
            yield session
        except DomainError as exc:
            if exc.commit_anyway:
                session.commit()
            else:
                session.rollback()
            raise
        except BaseException:
            session.rollback()
            raise
        else:
            try:
                if before_commit is not None:
                    before_commit(session)
                session.commit()
            except BaseException:
                if on_commit_failure is not None:
                    on_commit_failure()
                raise


async def _end(
    unit: AbstractContextManager[Session],
    exc: BaseException | None,
    after: Callable[[], None] | None = None,
) -> None:
    """End the unit of work in a worker thread: commit (then ``after``) or roll back."""

    def end() -> None:
        if exc is None:
            unit.__exit__(None, None, None)
            if after is not None:
                after()
        else:
            unit.__exit__(type(exc), exc, exc.__traceback__)

    await run_in_threadpool(end)


async def write_session(request: Request) -> AsyncIterator[Session]:
    """A session whose transaction commits when the route returns and rolls back on error.

    An audited request (``service/audit.py``) appends its audit entry in this transaction,
    just before the commit.
    """
    unit = contextmanager(_unit_of_work)(
        _sessions(request).write(),
        before_commit=lambda session: audit.record_in(session, request),
        # The entry went down with the transaction; a retry of the request must append it again.
        on_commit_failure=lambda: audit.forget(request),
    )
    session = unit.__enter__()  # no I/O: the session begins on its first statement
    try:
        yield session
    except BaseException as exc:
        await _end(unit, exc)
        raise
    await _end(unit, None)


async def read_session(request: Request) -> AsyncIterator[Session]:
    """A session for routes that only read; on SQLite its transaction never takes the lock.

    An audited request appends its audit entry in a short write transaction of its own once
    the read has succeeded, before the response is sent.
    """
    unit = contextmanager(_unit_of_work)(_sessions(request).read())
    session = unit.__enter__()  # no I/O: the session begins on its first statement
    try:
        yield session
    except BaseException as exc:
        await _end(unit, exc)
        raise
    await _end(unit, None, after=lambda: audit.record_alone(request))


WriteDb = Annotated[Session, Depends(write_session, scope="function")]
ReadDb = Annotated[Session, Depends(read_session, scope="function")]
