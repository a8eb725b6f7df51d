"""Per-session blinker signals that are safe for a trading app.

blinker's defaults are wrong for us (PITFALLS.md): ``connect`` holds receivers weakly, so a lambda
or closure is dropped silently; ``send`` stops at the first receiver that raises; nothing is
locked, so connecting while another thread sends can raise ``RuntimeError``; and ``send`` costs
about 1 us per receiver. ``SessionSignal`` keeps blinker's API (``connect``, ``disconnect``,
``connected_to``, ``receivers_for``, senders) and changes exactly those four things.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import blinker
from blinker._utilities import make_id
from blinker.base import ANY_ID

__all__ = ["ErrorReporter", "SessionSignal"]

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("kiwoom_rt")

#: Called with (signal, receiver, exception) when a receiver raises.
ErrorReporter = Callable[["SessionSignal", Any, BaseException], None]


def _log_receiver_error(signal: SessionSignal, receiver: Any, error: BaseException) -> None:
    logger.error("receiver %r of %s raised", receiver, signal.name, exc_info=error)


class SessionSignal(blinker.Signal):
    """A blinker signal that holds receivers strongly by default and isolates each call.

    ``connect(receiver, sender=ANY, weak=False)``: the receiver stays connected until you
    disconnect it (pass ``weak=True`` for blinker's weak behaviour). Data signals send the item
    code as sender, so ``connect(handler, sender="005930")`` hears one item only.
    """

    def __init__(self, name: str, doc: str | None = None) -> None:
        super().__init__(doc)
        self.name = name
        self._lock = threading.RLock()
        self._version = 0
        self._cache: dict[Any, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
        self._cache_version = self._cache_size = -1
        self.report_error: ErrorReporter = _log_receiver_error

    def __repr__(self) -> str:
        return f"<SessionSignal {self.name} ({len(self.receivers)} receivers)>"

    def connect(self, receiver: F, sender: Any = blinker.ANY, weak: bool = False) -> F:
        """Call ``receiver(sender, **kwargs)`` on every send (from ``sender`` only, if given)."""
        with self._lock:
            result = super().connect(receiver, sender, weak)
            self._version += 1
            return result

    def disconnect(self, receiver: Callable[..., Any], sender: Any = blinker.ANY) -> None:
        """Stop calling ``receiver`` (for ``sender`` only, if given)."""
        with self._lock:
            super().disconnect(receiver, sender)
            self._version += 1

    def _receivers_snapshot(self, sender: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """(strong receivers, weak references) for ``sender``, cached until connections change."""
        if self._version != self._cache_version or len(self.receivers) != self._cache_size:
            with self._lock:  # a dead weak receiver also changes the size of receivers
                self._cache = {}
                self._cache_version, self._cache_size = self._version, len(self.receivers)
        found = self._cache.get(sender)
        if found is None:
            with self._lock:
                stored = self._stored_receivers_for(sender)
                found = (tuple(r for r in stored if not isinstance(r, weakref.ref)),
                         tuple(r for r in stored if isinstance(r, weakref.ref)))
                if len(self._cache) > 100_000:  # senders are item codes: bounded in practice
                    self._cache.clear()
                self._cache[sender] = found
        return found

    def _stored_receivers_for(self, sender: Any) -> list[Any]:
        ids = set(self._by_sender[ANY_ID])
        if sender is not blinker.ANY:
            sender_id = make_id(sender)
            if sender_id in self._by_sender:
                ids |= self._by_sender[sender_id]
        return [self.receivers[i] for i in ids if i in self.receivers]

    def deliver_event(self, sender: Any, event: Any) -> None:
        """``receiver(sender, event=event)`` for every receiver, isolated (the per-event hot path)."""
        strong, weak = self._receivers_snapshot(sender)
        for receiver in strong:
            try:
                receiver(sender, event=event)
            except Exception as exc:  # isolate: one bad receiver never stops the others
                self.report_error(self, receiver, exc)
        for ref in weak:
            receiver = ref()
            if receiver is not None:
                try:
                    receiver(sender, event=event)
                except Exception as exc:
                    self.report_error(self, receiver, exc)

    def deliver(self, sender: Any, /, **kwargs: Any) -> int:
        """Call every receiver for ``sender``; a raising receiver is reported, the rest still run.

        Returns the number of receivers called. Use this, not ``send``, from library code.
        """
        called = 0
        strong, weak = self._receivers_snapshot(sender)
        for receiver in (*strong, *(ref() for ref in weak)):
            if receiver is None:
                continue
            called += 1
            try:
                receiver(sender, **kwargs)
            except Exception as exc:  # isolate: one bad receiver never stops the others
                self.report_error(self, receiver, exc)
        return called

    def send(self, sender: Any = None, /, *, _async_wrapper: Any = None, **kwargs: Any) -> list[tuple[Any, Any]]:
        """blinker's ``send``, made isolating and thread-safe; returns [(receiver, result)]."""
        results: list[tuple[Any, Any]] = []
        strong, weak = self._receivers_snapshot(sender)
        for receiver in (*strong, *(ref() for ref in weak)):
            if receiver is None:
                continue
            try:
                results.append((receiver, receiver(sender, **kwargs)))
            except Exception as exc:
                self.report_error(self, receiver, exc)
                results.append((receiver, exc))
        return results
