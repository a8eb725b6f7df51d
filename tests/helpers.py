"""Test helpers: collecting receivers and waiting on conditions with timeouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Collector:
    """A receiver that records calls and lets a test wait for a count."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []
        self.threads: list[threading.Thread] = []
        self._cond = threading.Condition()

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        with self._cond:
            self.calls.append((sender, kwargs))
            self.threads.append(threading.current_thread())
            self._cond.notify_all()

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[tuple[Any, dict[str, Any]]]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.calls) >= count, timeout):
                raise AssertionError(f"expected {count} calls within {timeout} s, got {len(self.calls)}")
            return list(self.calls)

    @property
    def events(self) -> list[Any]:
        with self._cond:
            return [kwargs.get("event") for _, kwargs in self.calls]

    def kwargs(self, key: str) -> list[Any]:
        with self._cond:
            return [kwargs.get(key) for _, kwargs in self.calls]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, message: str = "") -> None:
    """Poll ``predicate`` (every 5 ms) until true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        pause.wait(0.005)
