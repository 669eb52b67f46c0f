"""A real `refuge serve` in a subprocess on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running `refuge serve`: its base URL and its process."""

    base: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as in a crash."""
        self.process.kill()
        self.process.wait(timeout=30)


@contextlib.contextmanager
def serve(
    url: str, log_path: Path, *, workers: int = 1, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Serve the migrated database at ``url``; yields the base URL once /readyz answers."""
    with server(url, log_path, workers=workers, env=env) as running:
        yield running.base


@contextlib.contextmanager
def server(
    url: str, log_path: Path, *, workers: int = 1, env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """Like ``serve``, yielding the ``Server`` (``env`` adds or replaces ``REFUGE_*`` values)."""
    port = free_port()
    environment = (
        os.environ
        | {
            "REFUGE_DATABASE_URL": url,
            "REFUGE_SECRET_KEY": TEST_SECRET,
            "REFUGE_EXPIRY_SWEEP_S": "0",
        }
        | dict(env or {})
    )
    refuge = Path(sys.executable).with_name("refuge")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(refuge), "serve", "--port", str(port), "--workers", str(workers)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                assert process.poll() is None, "refuge serve exited: " + log_path.read_text()
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            else:
                raise AssertionError("refuge serve did not become ready: " + log_path.read_text())
            yield Server(base, process)
        finally:
            process.terminate()  # nothing to do when the test killed it already
            process.wait(timeout=30)
