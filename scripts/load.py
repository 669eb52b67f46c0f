"""Load test: a real `refuge serve` on loopback against the bare FastAPI ceiling.

    .venv/bin/python scripts/load.py --engine sqlite --workers 1
    .venv/bin/python scripts/load.py --engine postgres --workers 4

Builds a fresh database (a SQLite file, or a scratch PostgreSQL database on
REFUGE_TEST_DATABASE_URL's server) with the demo regions and a network scaled to
--shelters shelters, plus pending requests; serves it with --workers processes; then, for
--seconds each, drives with --clients concurrent clients: the bare endpoint (the ceiling),
availability reads, capacity updates (PATCH with If-Match), single-request matches from every
client at once, matches from one client with nothing else running (the latency of a match
itself), and a mixed phase. Prints throughput, p50/p95/p99 latency and the server's CPU per
request for each endpoint, counts 5xx, and checks with SQL afterwards that no unit is
overbooked. Traffic goes to 127.0.0.1 only, and every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from alembic import command
from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.orm import Session

from migrations import alembic_config
from service.auth import issue_token
from service.db import make_engine
from service.settings import Settings
from shelters import demo, identity, lifecycle
from shelters.cases import create_case
from shelters.identity import Role
from shelters.integrity import overbooked_units
from shelters.models import Organization, Unit
from shelters.profiles import CaseProfile, MemberProfile

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, status: int, seconds: float) -> None:
        self.latencies.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1


@dataclass
class Fixture:
    url: str
    secret: str
    coordinator: str
    caseworkers: list[str]
    units: list[int]
    requests: list[int]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def database(engine_name: str) -> Iterator[str]:
    if engine_name == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/load.db"
        return
    server = os.environ.get("REFUGE_TEST_DATABASE_URL", DEFAULT_PG).replace(
        "postgresql://", "postgresql+psycopg://"
    )
    name = f"refuge_load_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def build(url: str, *, shelters: int, clients: int, requests: int) -> Fixture:
    engine = make_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), "head")
    secret = secrets.token_urlsafe(48)
    settings = Settings(database_url=url, secret_key=secret)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        shelter_ids = demo.load_scaled_network(session, shelters=shelters, seed=1)
        org = Organization(name="Load caseworkers", kind="ngo")
        session.add(org)
        session.flush()
        coordinator = identity.create_user(
            session,
            username="load-coordinator",
            password=secrets.token_urlsafe(16),
            role=Role.COORDINATOR,
            organization_id=org.id,
            shelter_ids=shelter_ids,
        )
        workers = [
            identity.create_user(
                session,
                username=f"load-caseworker-{i}",
                password=secrets.token_urlsafe(16),
                role=Role.CASEWORKER,
                organization_id=org.id,
            )
            for i in range(clients)
        ]
        rng = random.Random(2)
        request_ids: list[int] = []
        for i in range(requests):
            who = identity.principal_of(workers[i % clients])
            members = [MemberProfile(ref="A", sex="female", age=rng.randint(18, 50))]
            if rng.random() < 0.4:
                members.append(
                    MemberProfile(ref="B", sex="male", age=rng.randint(0, 12), guardian_ref="A")
                )
            case = create_case(
                session,
                who,
                CaseProfile(members=tuple(members), current_region=demo.REGIONS[i % 20][0]),
                separate_from_case_ids=[],
                majority_age=18,
            )
            request = lifecycle.create_request(
                session, who, case_id=case.id, priority=None, preferred_regions=[], majority_age=18
            )
            request_ids.append(request.id)
        units = list(session.scalars(select(Unit.id).order_by(Unit.id)))
        coordinator_token = issue_token(settings, secret, coordinator)[0]
        tokens = [issue_token(settings, secret, w)[0] for w in workers]
    engine.dispose()
    return Fixture(url, secret, coordinator_token, tokens, units, request_ids)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (uvicorn's workers), from /proc."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(c) for c in children)
    return total


def connections_per_worker(pid: int, port: int) -> list[int]:
    """Established connections to ``port`` held by each process under ``pid`` (from /proc).

    uvicorn's workers accept from one shared socket, and the kernel does not spread
    keep-alive connections evenly over them: this shows how a run's clients were split.
    """
    established: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
                established.add(fields[9])  # the socket's inode
    counts = []
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            inodes = set()
            for fd in Path(f"/proc/{current}/fd").iterdir():
                with contextlib.suppress(OSError):  # closed since the listing
                    inodes.add(os.readlink(fd).removeprefix("socket:[").removesuffix("]"))
            if held := len(inodes & established):
                counts.append(held)
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
    return sorted(counts, reverse=True)


@contextlib.contextmanager
def server(args: list[str], env: dict[str, str], ready: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        [*args, "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + ready, timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise SystemExit(f"server {args[0]} did not start")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


async def drive(
    base: str,
    clients: int,
    seconds: float,
    step: Callable[[httpx.AsyncClient, int, dict[str, Stats]], Awaitable[None]],
) -> tuple[dict[str, Stats], float]:
    stats: dict[str, Stats] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        deadline = time.monotonic() + seconds
        started = time.monotonic()

        async def loop(i: int) -> None:
            while time.monotonic() < deadline:
                await step(client, i, stats)

        await asyncio.gather(*(loop(i) for i in range(clients)))
        return stats, time.monotonic() - started


async def timed(
    stats: dict[str, Stats], name: str, call: Awaitable[httpx.Response]
) -> httpx.Response:
    start = time.perf_counter()
    response = await call
    stats.setdefault(name, Stats()).add(response.status_code, time.perf_counter() - start)
    return response


def report(label: str, stats: dict[str, Stats], elapsed: float, cpu: float) -> list[str]:
    """One line per endpoint; ``cpu`` is the server's CPU seconds over the phase."""
    lines = []
    answered = sum(len(s.latencies) for s in stats.values())
    for name, s in sorted(stats.items()):
        lat = sorted(s.latencies)
        q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else lat * 99
        fives = sum(n for code, n in s.statuses.items() if code >= 500)
        codes = ",".join(f"{c}:{n}" for c, n in sorted(s.statuses.items()))
        lines.append(
            f"{label:<10} {name:<22} {len(lat) / elapsed:>8.1f}/s  p50 {q[49] * 1000:7.1f} ms"
            f"  p95 {q[94] * 1000:7.1f} ms  p99 {q[98] * 1000:7.1f} ms  5xx {fives}  [{codes}]"
            f"  server CPU {cpu / max(answered, 1) * 1000:.1f} ms/request"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--shelters", type=int, default=300)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--phases",
        default="reads,updates,matches,match-alone,mixed",
        help="comma-separated: reads, updates, matches (all clients match), match-alone (one "
        "client matches, nothing else runs), mixed (70%% reads, 20%% updates, 10%% matches)",
    )
    args = parser.parse_args()
    print(
        f"# {args.engine}, {args.workers} worker(s), {args.clients} clients, "
        f"{args.seconds:.0f} s per phase, {args.shelters} shelters, {os.cpu_count()} cores"
    )
    with database(args.engine) as url:
        fixture = build(url, shelters=args.shelters, clients=args.clients, requests=args.requests)
        env = os.environ | {
            "REFUGE_DATABASE_URL": url,
            "REFUGE_SECRET_KEY": fixture.secret,
            "REFUGE_MATCH_RATE_PER_MINUTE": "1000000",
            "REFUGE_EXPIRY_SWEEP_S": "0",
        }
        lines: list[str] = []
        uvicorn = [
            str(BIN / "python"),
            "-m",
            "uvicorn",
            "--app-dir",
            "scripts",
            "bare:app",
            "--workers",
            str(args.workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]

        def phase(
            label: str, base: str, pid: int, clients: int, step: Callable[..., Awaitable[None]]
        ) -> list[str]:
            before = cpu_seconds(pid)
            spread: list[int] = []
            port = int(base.rsplit(":", 1)[1])
            watch = threading.Timer(
                min(2.0, args.seconds / 2), lambda: spread.extend(connections_per_worker(pid, port))
            )
            watch.start()
            stats, elapsed = asyncio.run(drive(base, clients, args.seconds, step))
            watch.join()
            lines = report(label, stats, elapsed, cpu_seconds(pid) - before)
            return [*lines, f"{'':<10} connections per worker process: {spread}"]

        with server(uvicorn, env, "/bare") as (base, pid):

            async def bare(client: httpx.AsyncClient, i: int, stats: dict[str, Stats]) -> None:
                await timed(stats, "GET /bare (ceiling)", client.get("/bare"))

            lines += phase("ceiling", base, pid, args.clients, bare)
        refuge = [str(BIN / "refuge"), "serve", "--workers", str(args.workers)]
        with server(refuge, env, "/readyz") as (base, pid):
            coordinator = {"Authorization": f"Bearer {fixture.coordinator}"}
            rng = random.Random(3)
            pending = list(fixture.requests)
            rng.shuffle(pending)
            owner = {r: n % len(fixture.caseworkers) for n, r in enumerate(fixture.requests)}

            async def read(client: httpx.AsyncClient, i: int, stats: dict[str, Stats]) -> None:
                await timed(
                    stats,
                    "GET /availability",
                    client.get("/api/v1/availability", params={"limit": 50}, headers=coordinator),
                )

            # Each client edits its own units, as a coordinator does, and keeps the ETag of its
            # last write; it reads a unit only the first time or after a 412.
            known: dict[int, tuple[str, int]] = {}

            async def update(client: httpx.AsyncClient, i: int, stats: dict[str, Stats]) -> None:
                mine = fixture.units[i :: args.clients]
                unit = mine[rng.randrange(len(mine))]
                if unit not in known:
                    current = await client.get(f"/api/v1/units/{unit}", headers=coordinator)
                    known[unit] = (current.headers["etag"], current.json()["out_of_service"])
                etag, out_of_service = known.pop(unit)
                response = await timed(
                    stats,
                    "PATCH /units/{id}",
                    client.patch(
                        f"/api/v1/units/{unit}",
                        json={"out_of_service": 1 - min(1, out_of_service)},
                        headers=coordinator | {"If-Match": etag},
                    ),
                )
                if response.status_code == 200:
                    known[unit] = (response.headers["etag"], response.json()["out_of_service"])

            async def match(client: httpx.AsyncClient, i: int, stats: dict[str, Stats]) -> None:
                if not pending:
                    await asyncio.sleep(0.01)
                    return
                request_id = pending.pop()
                # A request is matched by the caseworker whose organisation made it.
                headers = {"Authorization": f"Bearer {fixture.caseworkers[owner[request_id]]}"}
                await timed(
                    stats,
                    "POST …/match",
                    client.post(f"/api/v1/placement-requests/{request_id}/match", headers=headers),
                )

            async def mixed(client: httpx.AsyncClient, i: int, stats: dict[str, Stats]) -> None:
                roll = rng.random()
                await (read if roll < 0.7 else update if roll < 0.9 else match)(client, i, stats)

            steps = {
                "reads": (read, args.clients),
                "updates": (update, args.clients),
                "matches": (match, args.clients),
                "match-alone": (match, 1),
                "mixed": (mixed, args.clients),
            }
            for label in args.phases.split(","):
                step, clients = steps[label]
                lines += phase(label, base, pid, clients, step)
        engine = make_engine(url)
        problems = overbooked_units(engine)
        engine.dispose()
    print("\n".join(lines))
    print(
        f"overbooked units after the run: {len(problems)}"
        + (f" {problems[:5]}" if problems else "")
    )
    if problems or any("5xx" in line and "5xx 0" not in line for line in lines):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
