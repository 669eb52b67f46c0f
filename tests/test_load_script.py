"""The load script's own helpers (the script itself is a benchmark, run by hand)."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from pathlib import Path
from types import ModuleType

import pytest


def load_script() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "scripts" / "load.py"
    spec = importlib.util.spec_from_file_location("refuge_load_script", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_connections_are_counted_on_the_process_that_accepted_them() -> None:
    count = load_script().connections_per_worker
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        assert count(os.getpid(), port) == []
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        accepted = [listener.accept()[0] for _ in clients]
        try:
            # Only the accepted ends have the server's port as their own.
            assert count(os.getpid(), port) == [3]
        finally:
            for end in clients + accepted:
                end.close()
