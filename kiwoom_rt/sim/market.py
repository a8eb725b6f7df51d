"""The simulated market: a seeded after-hours order book and Korean session timing (pure).

Nothing here touches sockets or threads; the server asks it for values at a simulated time.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterator

import attrs

from .spec_examples import EXAMPLE_VALUES

KST = dt.timezone(dt.timedelta(hours=9), "KST")

#: When type 0E flows: 장전 시간외 종가, then 장후 시간외 종가 and 시간외 단일가 (PROTOCOL.md).
AFTER_HOURS_WINDOWS: tuple[tuple[dt.time, dt.time], ...] = (
    (dt.time(8, 30), dt.time(8, 40)),
    (dt.time(15, 40), dt.time(18, 0)),
)

#: 0s notices (FID 215) sent when the simulated clock crosses each boundary.
SESSION_BOUNDARIES: tuple[tuple[dt.time, tuple[str, ...]], ...] = (
    (dt.time(15, 40), ("a",)),       # 시간외 종가매매 시작
    (dt.time(16, 0), ("b", "c")),    # 시간외 종가매매 종료, 시간외 단일가 시작
    (dt.time(18, 0), ("d", "9")),    # 시간외 단일가 종료, 전체장마감
)


def in_after_hours(moment: dt.time) -> bool:
    """True while 0E flows."""
    return any(start <= moment < end for start, end in AFTER_HOURS_WINDOWS)


def hhmmss(moment: dt.datetime | dt.time) -> str:
    return f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"


def signed(value: int) -> str:
    """Kiwoom's change format: ``+156``, ``-20``, zero unsigned."""
    return f"{value:+d}" if value else "0"


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


@attrs.define
class _Book:
    ask_total: int
    bid_total: int


class AfterHoursMarket:
    """Seeded after-hours order-book totals per item.

    Each ``quote`` moves the item's totals and returns FID values whose change fields (132, 136)
    are exactly the difference from that item's previous quote. Same seed, same sequence.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._books: dict[str, _Book] = {}
        self._rngs: dict[str, random.Random] = {}

    def _rng(self, item: str) -> random.Random:
        rng = self._rngs.get(item)
        if rng is None:
            rng = self._rngs[item] = random.Random(f"{self.seed}:{item}")
        return rng

    def book(self, item: str) -> tuple[int, int]:
        """(ask_total, bid_total) as last quoted (or the opening book)."""
        book = self._book(item)
        return book.ask_total, book.bid_total

    def _book(self, item: str) -> _Book:
        book = self._books.get(item)
        if book is None:
            rng = self._rng(item)
            book = self._books[item] = _Book(rng.randint(1_000, 300_000), rng.randint(1_000, 300_000))
        return book

    def quote(self, item: str, moment: dt.datetime | dt.time) -> dict[str, str]:
        """The next 0E values of ``item`` at ``moment``."""
        book = self._book(item)
        rng = self._rng(item)
        ask_change = self._move(rng, book.ask_total)
        bid_change = self._move(rng, book.bid_total)
        book.ask_total += ask_change
        book.bid_total += bid_change
        return {"21": hhmmss(moment), "131": str(book.ask_total), "132": signed(ask_change),
                "135": str(book.bid_total), "136": signed(bid_change)}

    @staticmethod
    def _move(rng: random.Random, total: int) -> int:
        roll = rng.random()
        if roll < 0.3:
            return 0
        size = rng.choice((1, 5, 10, 50, 100, 500, 1_000, 5_000))
        change = size * rng.randint(1, 9)
        if roll < 0.65:
            return -min(change, total // 2)  # a book thins out but never empties
        return change

    def other(self, type_code: str, item: str, moment: dt.datetime | dt.time) -> dict[str, str]:
        """Plausible values of any other type: its published example, with the time moved on."""
        values = dict(EXAMPLE_VALUES.get(type_code, {}))
        for fid in ("20", "21"):
            if fid in values and len(values[fid]) == 6:
                values[fid] = hhmmss(moment)
        return values


def session_notices(previous: dt.datetime, now: dt.datetime) -> Iterator[tuple[dt.time, str]]:
    """The 0s notices (boundary, FID 215 code) due between two clock readings, in order."""
    if now <= previous:
        return
    day = previous.date()
    while day <= now.date():
        for boundary, codes in SESSION_BOUNDARIES:
            at = dt.datetime.combine(day, boundary, tzinfo=previous.tzinfo)
            if previous < at <= now:
                for code in codes:
                    yield boundary, code
        day += dt.timedelta(days=1)
