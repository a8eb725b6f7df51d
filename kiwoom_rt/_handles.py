"""Handles returned by ``subscribe`` and ``unsubscribe``: wait for the server's acks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .errors import KiwoomError, SubscribeError

__all__ = ["PendingRequest", "Subscription"]


class PendingRequest:
    """REG or REMOVE requests in progress. ``wait()`` returns once the server acknowledged all."""

    def __init__(self, kind: str, grp_no: str, items: tuple[str, ...], types: tuple[str, ...]) -> None:
        self.kind = kind
        self.grp_no = grp_no
        self.items = items
        self.types = types
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._outstanding = 0
        self._error: KiwoomError | None = None

    def __repr__(self) -> str:
        state = "done" if self.done else "pending"
        if self._error is not None:
            state = f"failed: {self._error}"
        return (f"<{type(self).__name__} {self.kind} grp_no={self.grp_no} {len(self.items)} items "
                f"types={list(self.types)} {state}>")

    @property
    def done(self) -> bool:
        """True once every request was acknowledged (or one failed)."""
        return self._done.is_set()

    @property
    def error(self) -> KiwoomError | None:
        """The failure, if a request was refused or the session closed first."""
        return self._error

    def wait(self, timeout: float | None = None) -> PendingRequest:
        """Block until acknowledged; raise ``SubscribeError`` if refused, ``TimeoutError`` if late."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.kind} not acknowledged within {timeout} s (it stays queued)")
        if self._error is not None:
            raise self._error
        return self

    # --- used by the session (any thread) ----------------------------------------------------

    def _expect(self, count: int) -> None:
        with self._lock:
            self._outstanding += count
            if self._outstanding <= 0 and self._error is None:
                self._done.set()

    def _reset(self) -> None:
        """The connection carrying our requests ended; new ones will be attached."""
        with self._lock:
            self._outstanding = 0

    def _fail(self, error: KiwoomError) -> None:
        with self._lock:
            if self._error is None and not self._done.is_set():
                self._error = error
                self._done.set()

    def request_done(self, ok: bool, return_code: int | None, return_msg: str) -> None:
        with self._lock:
            if self._done.is_set():
                return
            if not ok:
                self._error = SubscribeError(return_code, return_msg)
                self._done.set()
                return
            self._outstanding -= 1
            if self._outstanding <= 0:
                self._done.set()


class Subscription(PendingRequest):
    """The handle of one ``subscribe`` call. ``cancel()`` unsubscribes what it subscribed."""

    def __init__(self, grp_no: str, items: tuple[str, ...], types: tuple[str, ...],
                 unsubscribe: Callable[..., Any]) -> None:
        super().__init__("REG", grp_no, items, types)
        self._unsubscribe = unsubscribe

    def wait(self, timeout: float | None = None) -> Subscription:
        super().wait(timeout)
        return self

    def cancel(self) -> PendingRequest:
        """Unsubscribe these items and types (sends REMOVE); returns that request's handle."""
        result: PendingRequest = self._unsubscribe(self.items, self.types, grp_no=self.grp_no)
        return result
