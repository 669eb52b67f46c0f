"""A real `refuge serve` in a subprocess on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(url: str, log_path: Path, *, workers: int = 1) -> Iterator[str]:
    """Serve the migrated database at ``url``; yields the base URL once /readyz answers."""
    port = free_port()
    env = os.environ | {
        "REFUGE_DATABASE_URL": url,
        "REFUGE_SECRET_KEY": TEST_SECRET,
        "REFUGE_EXPIRY_SWEEP_S": "0",
    }
    refuge = Path(sys.executable).with_name("refuge")
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(refuge), "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            else:
                raise AssertionError("refuge serve did not become ready: " + log_path.read_text())
            yield base
        finally:
            server.terminate()
            server.wait(timeout=30)
