"""The handles the application waits on, one Future-like base for all of them (runtime).

A handle is **done** once it finished well (``error`` is None), **failed** (``error`` holds why:
refused, or the session ended first) or was **cancelled** (``cancelled``; a cancelled handle is
done and has no error). ``wait(timeout)`` blocks until done and raises the error, or
``TimeoutError`` if late.

The sans-I/O cores know requests by id and say when one is finished; the session keeps the
handles and finishes them with ``set_result`` / ``set_error`` / ``set_cancelled``, from any
thread (the first of them wins).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import KiwoomError

__all__ = ["ConditionRequest", "ConditionWatch", "Pending", "PendingRequest", "Subscription"]

T = TypeVar("T")


class Pending(Generic[T]):
    """Something the session will finish: done, failed or cancelled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._result: Any = None
        self._error: KiwoomError | None = None
        self._cancelled = False

    @property
    def done(self) -> bool:
        """True once finished, failed or cancelled."""
        return self._done.is_set()

    @property
    def error(self) -> KiwoomError | None:
        """Why it failed (None while pending, after success, or when cancelled)."""
        return self._error

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def _late(self, timeout: float | None) -> TimeoutError:
        return TimeoutError(f"{self!r}: not done within {timeout} s")

    def _wait(self, timeout: float | None) -> Any:
        if not self._done.wait(timeout):
            raise self._late(timeout)
        if self._error is not None:
            raise self._error
        return self._result

    # --- the session's side (any thread) -----------------------------------------------------

    def set_result(self, result: Any = None) -> bool:
        """Finish well; False if it was done already."""
        with self._lock:
            if self._done.is_set():
                return False
            self._result = result
            self._done.set()
            return True

    def set_error(self, error: KiwoomError) -> bool:
        """Fail with ``error``; False if it was done already."""
        with self._lock:
            if self._done.is_set():
                return False
            self._error = error
            self._done.set()
            return True

    def set_cancelled(self) -> bool:
        """Mark cancelled (done, no error); False if it was done already."""
        with self._lock:
            if self._done.is_set():
                return False
            self._cancelled = True
            self._done.set()
            return True

    def _state(self) -> str:
        if not self.done:
            return "pending"
        if self._cancelled:
            return "cancelled"
        return "done" if self._error is None else f"failed: {self._error}"


class PendingRequest(Pending[None]):
    """REG or REMOVE requests in progress. ``wait()`` returns once the server acknowledged all
    (``SubscribeError`` if one was refused)."""

    def __init__(self, kind: str, grp_no: str, items: tuple[str, ...], types: tuple[str, ...]) -> None:
        super().__init__()
        self.kind = kind
        self.grp_no = grp_no
        self.items = items
        self.types = types

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.kind} grp_no={self.grp_no} {len(self.items)} items "
                f"types={list(self.types)} {self._state()}>")

    def _late(self, timeout: float | None) -> TimeoutError:
        return TimeoutError(f"{self.kind} not acknowledged within {timeout} s (it stays queued)")

    def wait(self, timeout: float | None = None) -> PendingRequest:
        """Block until acknowledged; raise ``SubscribeError`` if refused, ``TimeoutError`` if late."""
        self._wait(timeout)
        return self


class Subscription(PendingRequest):
    """The handle of one ``subscribe`` call. ``cancel()`` unsubscribes what it subscribed."""

    def __init__(self, grp_no: str, items: tuple[str, ...], types: tuple[str, ...],
                 unsubscribe: Callable[..., PendingRequest]) -> None:
        super().__init__("REG", grp_no, items, types)
        self._unsubscribe = unsubscribe

    def wait(self, timeout: float | None = None) -> Subscription:
        super().wait(timeout)
        return self

    def cancel(self) -> PendingRequest:
        """Unsubscribe these items and types (sends REMOVE); returns that request's handle."""
        self.set_cancelled()  # if still waiting for its acks: it is cancelled, not failed
        return self._unsubscribe(self.items, self.types, grp_no=self.grp_no)


class ConditionRequest(Pending[T]):
    """A one-shot condition request in progress (the list, or a search): ``wait()`` gives its
    result, or raises ``ConditionError`` (refused), ``ConnectError`` (the connection dropped
    first), ``TimeoutError`` (late)."""

    def __init__(self, trnm: str, seq: str = "") -> None:
        super().__init__()
        self.trnm = trnm
        self.seq = seq

    def __repr__(self) -> str:
        what = f"{self.trnm} seq {self.seq}" if self.seq else self.trnm
        return f"<ConditionRequest {what} {self._state()}>"

    def _late(self, timeout: float | None) -> TimeoutError:
        what = f"{self.trnm} seq {self.seq}" if self.seq else self.trnm
        return TimeoutError(f"{what}: no reply within {timeout} s")

    def wait(self, timeout: float | None = None) -> T:
        result: T = self._wait(timeout)
        return result


class ConditionWatch(Pending["ConditionWatch"]):
    """A realtime condition search: the current members of condition ``seq``.

    ``wait(timeout)`` returns once the initial member list arrived (raising ``ConditionError`` if
    the server refused, ``TimeoutError`` if late). ``members`` is a frozen snapshot of codes, safe
    to read from any thread: the initial list, then updated by every entry and exit. ``cancel()``
    sends CNSRCLR; a cancelled watch is never restored.
    """

    def __init__(self, seq: str, cancel: Callable[[str], None]) -> None:
        super().__init__()
        self.seq = seq
        self._cancel = cancel
        self._members: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"<ConditionWatch seq={self.seq} {self._state()} {len(self._members)} members>"

    def _late(self, timeout: float | None) -> TimeoutError:
        return TimeoutError(f"condition {self.seq}: no member list within {timeout} s (still requested)")

    @property
    def members(self) -> frozenset[str]:
        """The codes currently in the condition (no market prefix)."""
        return self._members

    @property
    def ready(self) -> bool:
        """True once the initial member list arrived (or the request failed)."""
        return self.done

    def wait(self, timeout: float | None = None) -> ConditionWatch:
        """Block until the initial member list arrived."""
        self._wait(timeout)
        return self

    def cancel(self) -> None:
        """Stop the realtime search (CNSRCLR) and forget the watch."""
        if not self._cancelled:
            self._cancelled = True
            self._done.set()
            self._cancel(self.seq)

    # --- the session's side -------------------------------------------------------------------

    def set_members(self, members: frozenset[str]) -> None:
        """The watch's members now (the first call also finishes the wait)."""
        self._members = members
        self.set_result(self)
