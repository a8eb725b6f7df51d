"""The simulator's clock: a simulated KST time, fixed, real-time or accelerated (runtime side:
it reads the wall clock)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from .market import KST

__all__ = ["SimClock"]


class SimClock:
    """A simulated KST clock: fixed, real-time, or accelerated by ``speed``.

    ``SimClock(dt.time(16, 0))`` starts at 16:00:00 today and runs at real speed;
    ``speed=60`` runs a minute per second; ``speed=0`` stands still (use ``set`` to move it).
    """

    def __init__(
        self,
        start: dt.time | dt.datetime = dt.time(16, 0),
        speed: float = 1.0,
        *,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._wall = wall
        self.speed = speed
        self.set(start)

    def set(self, moment: dt.time | dt.datetime) -> None:
        """Jump to ``moment`` (a time today in KST, or a full datetime)."""
        if isinstance(moment, dt.time):
            moment = dt.datetime.combine(dt.datetime.now(KST).date(), moment, tzinfo=KST)
        elif moment.tzinfo is None:
            moment = moment.replace(tzinfo=KST)
        self._origin = moment
        self._origin_wall = self._wall()

    def now(self) -> dt.datetime:
        elapsed = (self._wall() - self._origin_wall) * self.speed
        return self._origin + dt.timedelta(seconds=elapsed)
