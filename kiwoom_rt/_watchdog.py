"""The health watchdog of one session (runtime): the thread and clocks behind ``session.health()``,
``on_stale``/``on_fresh`` and ``resubscribe_stale``; the judgement is ``_health.HealthCore``'s.

It observes the session's delivery queue (``session.observe``): for every batch the reading thread
queues, it notes the time against each event's item in a dict per type, with C-level calls and
no Python loop per event (a batch of several types takes a short loop per event).
A thread of its own asks the core every ``interval`` seconds, posts the transitions to the
session's ``on_stale``/``on_fresh`` and hands re-subscriptions to the session.
0s (장시작시간) events, when the application subscribes them, feed a ``markets.PhaseBook`` so that
announced phases override the built-in table.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import logging
import operator
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from ._health import Fresh, Health, HealthCore, Resubscribe, Stale
from ._notices import Notice
from .markets import PhaseBook

__all__ = ["Inputs", "Watchdog"]

logger = logging.getLogger("kiwoom_rt")

Pair = tuple[str, str]
_ITEM = operator.attrgetter("item")


#: (state, connected, wanted pairs, confirmed pairs, seconds since the last frame)
Inputs = tuple[str, bool, Collection[Pair], Collection[Pair], float | None]


class Watchdog:
    """Tracks the last event of every (item, type) and judges staleness every ``interval`` s.

    ``inputs()`` reads the session's side; ``resubscribe(pairs)`` sends REG again;
    ``report(transition)`` delivers ``on_stale``/``on_fresh``.
    """

    def __init__(self, core: HealthCore, *, inputs: Callable[[], Inputs],
                 resubscribe: Callable[[Sequence[Pair]], None], report: Callable[[Stale | Fresh], None],
                 interval: float = 1.0, clock: Callable[[], _dt.datetime] | None = None) -> None:
        if interval <= 0:
            raise ValueError("health_interval must be > 0")
        self.core = core
        self.inputs = inputs
        self.resubscribe = resubscribe
        self.report = report
        self.interval = interval
        self.clock = clock
        self.phases = PhaseBook()
        # type -> {item as the events carry it: time.monotonic() of its last event}, written by
        # the reading thread: keyed by type, then item, a batch costs no key tuple per event
        self._seen_by_type: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stale_count = 0

    # --- the reading thread (QueueObserver) ------------------------------------------------------

    def queued_events(self, events: Sequence[Any]) -> None:
        now = time.monotonic()
        kinds: set[Any] = set(map(type, events))
        seen_by_type = self._seen_by_type
        if len(kinds) == 1:  # the usual batch: one type; no key tuple per event
            kind: str = next(iter(kinds)).type
            seen = seen_by_type.get(kind)
            if seen is None:
                seen = seen_by_type[kind] = {}
            seen.update(zip(map(_ITEM, events), itertools.repeat(now), strict=False))
            return
        for event in events:  # several types (trades and books together)
            seen = seen_by_type.get(event.type)
            if seen is None:
                seen = seen_by_type[event.type] = {}
            seen[event.item] = now

    @property
    def last(self) -> dict[str, dict[str, float]]:
        """A copy of {type: {item as the events carry it: time.monotonic() of its last event}}
        (C-level copies: the reading thread writes the originals)."""
        return {kind: seen.copy() for kind, seen in self._seen_by_type.copy().items()}

    def queued_notice(self, notice: Notice) -> None:
        pass

    # --- 0s announcements (a receiver of signal("0s")) ------------------------------------------

    def announced(self, item: Any, event: Any = None, **_: Any) -> None:
        if event is None:
            return
        at = (self.clock() if self.clock is not None
              else _dt.datetime.fromtimestamp(getattr(event, "received_at", None) or time.time(), _dt.UTC))
        with self._lock:
            self.phases.announce(event.values.get("215"), at)

    # --- judging ---------------------------------------------------------------------------------

    def _moment(self) -> _dt.datetime:
        return self.clock() if self.clock is not None else _dt.datetime.now(_dt.UTC)

    def check(self, snapshot: bool = True) -> Health | None:
        """Judge now: deliver the transitions, re-subscribe what is due, return the snapshot
        (None with ``snapshot=False``, the periodic check's way: no rows built)."""
        state, connected, wanted, confirmed, frame_age = self.inputs()
        with self._lock:
            moment = self._moment()
            phases: dict[str, str] = {}

            def phase(exchange: str) -> str:
                if exchange not in phases:
                    phases[exchange] = self.phases.phase(exchange, moment)
                return phases[exchange]

            health, outputs = self.core.check(time.monotonic(), time.time(), connected=connected, wanted=wanted,
                                              confirmed=confirmed, last=self.last, phase=phase, state=state,
                                              last_frame_age=frame_age, moment=moment, snapshot=snapshot)
            self._stale_count = len(self.core.stale)
        again: list[Pair] = []
        for output in outputs:
            if isinstance(output, Resubscribe):
                again.append((output.item, output.type))
            else:
                if isinstance(output, Stale):
                    logger.warning("%s %s has been silent for %.0f s while its market trades (stale)",
                                   output.item or "(any item)", output.type, output.age)
                else:
                    logger.info("%s %s flows again", output.item or "(any item)", output.type)
                self.report(output)
        if again:
            logger.info("re-sending REG for %d stale subscription(s): %s", len(again),
                        ", ".join(f"{item} {kind}" for item, kind in again[:10]))
            self.resubscribe(again)
        return health

    def snapshot(self) -> Health:
        health = self.check()
        assert health is not None
        return health

    @property
    def resubscriptions(self) -> int:
        return self.core.resubscriptions

    def stale_count(self) -> int:
        return self._stale_count

    # --- the thread --------------------------------------------------------------------------

    def prepare(self, exchanges: Sequence[str]) -> None:
        """Read each exchange's phase once, on the calling thread: with the ``calendar`` extra this
        loads the holiday calendars (pandas: a second or two, holding the GIL) at ``start()``
        rather than in the middle of the flow."""
        moment = self._moment()
        for exchange in exchanges:
            self.phases.phase(exchange, moment)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="kiwoom-rt-health", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check(snapshot=False)
            except Exception:  # a bug here must not end health checks silently, nor the session
                logger.exception("the health check failed")
