"""Shared fixtures: the simulator on an ephemeral loopback port, and leak checks."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

# websocket-client >= 1.9 applies proxy variables to loopback too; keep tests off any proxy.
for _name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(_name, None)
os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost,::1"


@pytest.fixture
def sim() -> Iterator[SimServer]:  # noqa: F821
    from kiwoom_rt.sim import SimServer

    with SimServer(ping_interval=10.0) as server:
        yield server


@pytest.fixture
def no_thread_leak() -> Iterator[None]:
    """Fail the test if it leaves a thread behind."""
    before = set(threading.enumerate())
    yield
    deadline = threading.Event()
    for _ in range(50):
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra:
            return
        deadline.wait(0.1)
    raise AssertionError(f"threads left running: {extra}")
