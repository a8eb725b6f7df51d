"""Bars from trades: the pure engine behind ``kiwoom_rt.bars`` (sans-I/O).

``BarEngine`` takes trades (item, exchange time, price, signed volume, receive time) and the
feed's view of the connection (outages, drops), and returns what happened: bars updated, bars
finished, late trades. Nothing here reads a clock, starts a thread or touches a session: the
receive times come in with the calls, so the same trades in the same order give the same bars,
live, replayed at any speed or through a relay.

Times inside are epoch seconds (floats); a ``Bar`` carries aware datetimes in its exchange's
zone. The rules are ``kiwoom_rt.bars``'s (see its docstring); this module carries them out.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

from ._fields import LAST, headline_fields
from .events import EVENT_TYPES
from .us import to_eastern
from .values import canonical_int

__all__ = [
    "KST",
    "Bar",
    "BarEngine",
    "BarSpec",
    "LateTrade",
    "Stamper",
    "TradeReader",
    "bar_spec",
    "parse_interval",
    "trade_timestamp",
]

KST: Final = _dt.timezone(_dt.timedelta(hours=9), "KST")
_INF: Final = float("inf")
_NAN: Final = float("nan")
#: Reads of at most this many events go through ``TradeReader._one`` (measured: with two, the
#: loop's setup already costs less than a second ``add``).
_SHORT: Final = 1
#: Entries per cache (raw texts, bar times) before it starts again.
_CACHE_LIMIT: Final = 65_536

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL = re.compile(r"\s*(\d+)\s*(s|m|h|d|sec|min|hour|day)s?\s*\Z", re.IGNORECASE)


@attrs.frozen(repr=False, weakref_slot=False)
class Bar:
    """One bar of one item: the trades of ``[start, end)``.

    For time bars, ``start`` and ``end`` are the interval's bounds, aware datetimes in the
    exchange's zone (KST for domestic items; US Eastern for US ones). For tick and volume bars
    they are the first trade's time and the last trade's time plus one second (the exchange
    stamps whole seconds), so ``end`` is still exclusive.

    ``volume`` counts shares whatever the sign; ``buy_volume`` and ``sell_volume`` split it by
    the sign Kiwoom gives each trade (+ buyer-initiated, - seller-initiated; a trade with no sign
    is in neither). ``amount`` is the sum of price x shares and ``vwap`` is ``amount / volume``
    (None for a bar with no volume). ``complete`` is True only when the feed watched the whole
    bar (see ``kiwoom_rt.bars``); ``final`` is False for an update of the bar in progress.
    """

    item: str
    start: _dt.datetime
    end: _dt.datetime
    open: float
    high: float
    low: float
    close: float
    volume: int
    buy_volume: int
    sell_volume: int
    amount: float
    trades: int
    complete: bool
    final: bool

    @property
    def vwap(self) -> float | None:
        """The volume-weighted average price, or None when the bar has no volume."""
        return self.amount / self.volume if self.volume else None

    def __repr__(self) -> str:
        flags = ("final" if self.final else "open") + ("" if self.complete else ", incomplete")
        return (f"Bar({self.item!r} {self.start:%Y-%m-%d %H:%M:%S}-{self.end:%H:%M:%S}{self.start:%z} "
                f"O={self.open:g} H={self.high:g} L={self.low:g} C={self.close:g} V={self.volume} "
                f"trades={self.trades}, {flags})")


class _BarBuilder:
    """``Bar``'s slots without its frozen ``__setattr__``: ``_Open.bar`` fills one with plain
    slot stores, then gives it ``Bar``'s class (the layouts are the same: the same slots, no
    ``__dict__``, no ``__weakref__``). The result is an ordinary, equally frozen ``Bar``
    (``test_an_engine_bar_is_an_ordinary_frozen_bar``).

    What it buys: a ``Bar`` is made for every trade while an ``on_update`` receiver listens (a
    live chart), not only once a bar. Measured with callgrind (``bench_bars_ir.py updates 50
    --stdlib`` minus ``decode``, 20,000 trades): 16.8k instructions a trade for the bars and
    their snapshots this way, 25.1k with ``events.fast_constructor(Bar)`` (attrs' own
    ``__init__`` is slower still: 1.4 us against 0.54 us a bar). With the default install's
    decode (101.8k a trade) that is 6.5% of the whole per-trade cost, more with ``[fast]``."""

    __slots__ = vars(Bar)["__slots__"]  # the same names, in the same order (typed as Bar's fields)


_NO_TEXT: Final = object()  # equal to no raw value


class _Unusable(Exception):
    """A trade's time, price or volume is blank, missing or unusable (``TradeReader._learn``)."""


@attrs.frozen
class LateTrade:
    """A trade for a bar that was already final: counted and reported, never applied."""

    item: str
    time: _dt.datetime
    price: float
    volume: int
    bar_start: _dt.datetime


@attrs.frozen
class BarSpec:
    """What makes a bar: ``kind`` is ``"time"`` (``size`` seconds), ``"ticks"`` (``size`` trades)
    or ``"volume"`` (``size`` shares)."""

    kind: str
    size: int

    def __str__(self) -> str:
        if self.kind == "time":
            for unit, seconds in (("h", 3600), ("m", 60)):
                if self.size % seconds == 0:
                    return f"{self.size // seconds}{unit}"
            return f"{self.size}s"
        return f"{self.size} {self.kind}"


def parse_interval(interval: str) -> int:
    """``"10s"``, ``"1m"``, ``"5m"``, ``"1h"`` (also ``"5min"``, ``"1 hour"``) in seconds.

    A time bar must divide a day evenly, so that every day's bars start at the same times.
    """
    if not isinstance(interval, str):
        raise TypeError(f"interval must be a string like '1m', got {type(interval).__name__}")
    match = _INTERVAL.match(interval)
    if match is None:
        raise ValueError(f"malformed interval {interval!r}: use e.g. '10s', '1m', '5m' or '1h'")
    seconds = int(match.group(1)) * _UNITS[match.group(2)[0].lower()]
    if seconds <= 0 or 86400 % seconds:
        raise ValueError(f"interval {interval!r} must be positive and divide a day evenly")
    return seconds


def bar_spec(interval: str | None = None, *, ticks: int | None = None, volume: int | None = None) -> BarSpec:
    """The one kind of bar asked for; ``"1m"`` time bars when nothing is."""
    asked = [name for name, value in (("interval", interval), ("ticks", ticks), ("volume", volume))
             if value is not None]
    if len(asked) > 1:
        raise ValueError(f"ask for one kind of bar, not {' and '.join(asked)}")
    for name, value in (("ticks", ticks), ("volume", volume)):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
            return BarSpec(name, value)
    return BarSpec("time", parse_interval("1m" if interval is None else interval))


def _closest(midnight: float, seconds_of_day: int, received_at: float) -> float:
    """The local midnight (``midnight``, or the day before or after) that puts ``seconds_of_day``
    closest to ``received_at``: an exchange time late in the day received just after midnight
    belongs to the day before (and the other way round)."""
    gap = midnight + seconds_of_day - received_at
    if gap > 43200:
        return midnight - 86400
    if gap < -43200:
        return midnight + 86400
    return midnight


def _day_start(received_at: float, seconds_of_day: int, zone: _dt.tzinfo) -> float:
    """The epoch of the local midnight that puts ``seconds_of_day`` closest to ``received_at``."""
    local = _dt.datetime.fromtimestamp(received_at, zone)
    return _closest(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp(), seconds_of_day,
                    received_at)


def trade_timestamp(clock: _dt.time, received_at: float, market: str = "kr",
                    trade_date: _dt.date | None = None) -> tuple[float, _dt.tzinfo]:
    """A trade's exchange time as epoch seconds, and the zone its bars are shown in.

    Kiwoom stamps trades with a clock time only. Domestic times are KST; the date is the one
    that puts the time closest to ``received_at``. US times (FE's 현지 체결시간) are US Eastern,
    with the trade's own date when it has one (FE's FID 22), else the Eastern date of receipt.
    """
    seconds = clock.hour * 3600 + clock.minute * 60 + clock.second
    if market == "us":
        zone = to_eastern(_dt.datetime.fromtimestamp(received_at, _dt.UTC)).tzinfo
        assert zone is not None
        if trade_date is not None:
            midnight = _dt.datetime.combine(trade_date, _dt.time(), zone)
            # the date's own offset (a trade on the morning after a switch)
            zone = to_eastern(midnight + _dt.timedelta(hours=12)).tzinfo
            assert zone is not None
            return _dt.datetime.combine(trade_date, _dt.time(), zone).timestamp() + seconds, zone
        return _day_start(received_at, seconds, zone) + seconds, zone
    return _day_start(received_at, seconds, KST) + seconds, KST


class Stamper:
    """``trade_timestamp`` for a stream of trades, with the day's midnight kept between calls
    (the same answers, without a datetime per trade)."""

    __slots__ = ("_bucket", "_midnight", "_zone", "market")

    def __init__(self, market: str = "kr") -> None:
        self.market = market
        self._bucket = -1
        self._midnight = 0.0
        self._zone: _dt.tzinfo = KST

    def __call__(self, clock: _dt.time, received_at: float,
                 trade_date: _dt.date | None = None) -> tuple[float, _dt.tzinfo]:
        if self.market == "us" and trade_date is not None:
            return trade_timestamp(clock, received_at, "us", trade_date)
        return self.at(clock.hour * 3600 + clock.minute * 60 + clock.second, received_at)

    def _rebase(self, bucket: int, received_at: float) -> None:
        """The local midnight of ``received_at`` (found again every ten minutes)."""
        self._bucket = bucket
        zone: _dt.tzinfo = KST
        if self.market == "us":
            found = to_eastern(_dt.datetime.fromtimestamp(received_at, _dt.UTC)).tzinfo
            assert found is not None
            zone = found
        self._zone = zone
        local = _dt.datetime.fromtimestamp(received_at, zone)
        self._midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def base(self, received_at: float) -> tuple[float, _dt.tzinfo]:
        """The local midnight of ``received_at``'s day (as kept) and the zone: ``at`` is
        ``_closest(midnight, seconds, received_at) + seconds``."""
        bucket = int(received_at // 600)
        if bucket != self._bucket:
            self._rebase(bucket, received_at)
        return self._midnight, self._zone

    def at(self, seconds: int, received_at: float) -> tuple[float, _dt.tzinfo]:
        """As calling it, with the time of day in seconds (no US trade date)."""
        bucket = int(received_at // 600)
        if bucket != self._bucket:
            self._rebase(bucket, received_at)
        return _closest(self._midnight, seconds, received_at) + seconds, self._zone


class _Open:
    """The bar in progress of one item (mutable; snapshots are ``Bar``s). Its figures are kept
    as a trade at a time adds them: ``Bar.amount`` is summed in trade order, exactly (an int)
    while the prices are ints, as domestic ones are."""

    __slots__ = ("amount", "buy", "close", "end", "high", "last", "low", "moments", "open", "sell", "start",
                 "trades", "zone")

    start: float
    end: float  # exclusive; for tick/volume bars, the last trade's time + 1 s
    last: float
    open: float
    high: float
    low: float
    close: float
    buy: int  # shares bought (a trade's volume > 0) and sold (< 0): the bar's volume is their sum
    sell: int
    trades: int
    amount: float  # (an int until a price is a float)
    zone: _dt.tzinfo
    moments: dict[float, _dt.datetime]  # bar bounds as datetimes in ``zone`` (shared: ``_MOMENTS``)

    def add(self, ts: float, price: float, volume: int) -> None:
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        self.close = price
        if volume > 0:
            self.buy += volume
        elif volume < 0:
            self.sell -= volume
        self.amount += price * (volume if volume >= 0 else -volume)
        self.trades += 1
        if ts > self.last:
            self.last = ts

    def bar(self, item: str, complete: bool, final: bool, kind: str) -> Bar:
        moments = self.moments
        at = self.start
        start = moments.get(at)
        if start is None:
            start = _moment(moments, at, self.zone)
        at = self.end if kind == "time" else self.last + 1
        end = moments.get(at)
        if end is None:
            end = _moment(moments, at, self.zone)
        bar: Any = _BarBuilder()  # (its slots are Bar's: attributes typed there)
        bar.item = item
        bar.start = start
        bar.end = end
        bar.open = self.open
        bar.high = self.high
        bar.low = self.low
        bar.close = self.close
        bar.volume = self.buy + self.sell
        bar.buy_volume = self.buy
        bar.sell_volume = self.sell
        bar.amount = self.amount + 0.0  # (a float: it is summed as an int while prices are ints)
        bar.trades = self.trades
        bar.complete = complete
        bar.final = final
        bar.__class__ = Bar
        return bar  # type: ignore[no-any-return]


def _new_open(start: float, end: float, price: float, zone: _dt.tzinfo) -> _Open:
    """A bar opened at ``price``: built with slot stores (an ``__init__`` with arguments costs
    three times as much, and one opens for most trades of a thin market)."""
    bar = _Open()
    bar.start = bar.last = start
    bar.end = end
    bar.open = bar.high = bar.low = bar.close = price
    bar.buy = bar.sell = bar.trades = 0
    bar.amount = 0
    bar.zone = zone
    moments = _MOMENTS.get(zone)
    if moments is None:
        if len(_MOMENTS) >= 64:
            _MOMENTS.clear()
        moments = _MOMENTS[zone] = {}
    bar.moments = moments
    return bar


def _moment(moments: dict[float, _dt.datetime], at: float, zone: _dt.tzinfo) -> _dt.datetime:
    """``at`` (epoch seconds) as a datetime in ``zone``, kept in ``moments`` (``zone``'s)."""
    if len(moments) >= _CACHE_LIMIT:
        moments.clear()
    moment = moments[at] = _dt.datetime.fromtimestamp(at, zone)
    return moment


#: Bar bounds as datetimes, by zone and epoch seconds: many items' bars share them (every 09:01
#: bar starts at 09:01), and a float key costs a third of a (seconds, zone) one.
_MOMENTS: dict[_dt.tzinfo, dict[float, _dt.datetime]] = {}


#: What ``BarEngine`` returns, in order: ``("update", bar)``, ``("final", bar)``, ``("late", LateTrade)``.
Output = tuple[str, Any]


class BarEngine:
    """Bars of one ``BarSpec`` for many items, on one market clock (see the module docstring).

    - ``trade(...)``: one trade; returns the outputs it caused;
    - ``advance(received_at)``: the clock moved with no trade (a timer); finishes what is due;
    - ``outage_began/outage_ended(received_at)``, ``dropped(received_at)``: what the feed knows
      of the connection; every bar they touch is incomplete;
    - ``finish(received_at)``: the end of the data: every open bar is final now.

    ``updates=False`` skips the update snapshots (nobody listens to them).
    """

    def __init__(self, spec: BarSpec, *, grace: float = 2.0, fill_empty: bool = False,
                 updates: bool = True, tolerance: float = 300.0) -> None:
        if grace < 0:
            raise ValueError("grace must be >= 0")
        if not tolerance > 0:
            raise ValueError("tolerance must be > 0")
        #: a trade stamped more than this many seconds ahead of the market clock is unusable: one
        #: item's wrong time never moves the clock that closes every item's bars
        self.tolerance = float(tolerance)
        self.implausible = 0  # trades refused for that
        self.spec = spec
        self.grace = float(grace)
        self.fill_empty = fill_empty
        self.updates = updates
        self.late = 0  # trades for a bar that was already final
        self._done = 0  # trades in the bars made final (``trades`` adds the open bars')
        self._open: dict[str, _Open] = {}
        self._closed_until: dict[str, float] = {}  # item -> end of its last final bar
        self._last_close: dict[str, tuple[float, _dt.tzinfo]] = {}  # for fill_empty
        self._mark: tuple[float, float] | None = None  # (latest exchange time, when it was received)
        self._clock = float("-inf")  # the market clock, never going back
        self._origin: float | None = None  # the market clock when it became known
        # The first trade sets the clock, but alone it proves nothing: until a later trade lands
        # within ``tolerance`` of it, a trade impossibly far behind it shows that the first was
        # the outlier, which is then disowned (it would otherwise make every later trade late).
        # (Tick and volume bars count trades as they come: their clock closes nothing.)
        self._trusted = spec.kind != "time"
        self._first: tuple[str, float, _dt.tzinfo, float, int] | None = None
        self._outages: list[list[float]] = []  # [start, end] on the market clock; end inf while down
        self._down = False
        self._reopening = False  # back from an outage, waiting for the first trade to end it
        self._outage: list[float] | None = None  # that outage, open (other marks may come after it)
        self._soonest = _INF  # the earliest end among open time bars
        self._timed = spec.kind == "time"
        self._size = spec.size
        self._zone: _dt.tzinfo | None = None  # the zone of the last trade, and its UTC offset in seconds
        self._offset = 0.0

    @property
    def trades(self) -> int:
        """Trades placed in a bar so far (counted by the bars: no count per trade)."""
        return self._done + sum(bar.trades for bar in self._open.values())

    # --- the market clock -------------------------------------------------------------------------

    def clock(self, received_at: float) -> float:
        """The market clock at ``received_at``: the latest exchange time seen, plus the time
        since that trade was received (never going back). ``-inf`` before the first trade."""
        mark = self._mark
        if mark is not None:
            now = mark[0] + max(0.0, received_at - mark[1])
            if now > self._clock:
                self._clock = now
        return self._clock

    # --- what the feed knows of the connection ----------------------------------------------------

    def at(self, received_at: float) -> float:
        """The market time at ``received_at`` as the last mark tells it (may be before the clock:
        an outage found out late began then)."""
        mark = self._mark
        if mark is None:
            return self._clock
        return mark[0] + max(0.0, received_at - mark[1])

    def outage_began(self, received_at: float) -> None:
        """The connection went down (or the feed stopped hearing) at ``received_at``: the bars
        open from then on are incomplete."""
        if self._reopening:  # down again before anything flowed: the same outage goes on
            self._reopening = False
            self._down = True
        elif not self._down:
            self._down = True
            self._outage = [min(self.at(received_at), self.clock(received_at)), float("inf")]
            self._outages.append(self._outage)

    def missed(self, since: float, until: float) -> None:
        """Nothing was heard between the receive times ``since`` and ``until`` (a relay that was
        down): every bar open in that span is incomplete."""
        self._outages.append([self.at(since), max(self.at(until), self.clock(until))])

    def outage_ended(self, received_at: float) -> None:
        """The connection is back. The outage ends with the first trade after this: until the
        subscriptions are restored nothing flows, and only a trade tells the market's time."""
        if self._down:
            self._down = False
            self._reopening = True

    def dropped(self, received_at: float) -> None:
        """Events were lost here: every bar open now (and any that opens before this moment) is
        incomplete."""
        now = self.clock(received_at)
        self._outages.append([now, now])

    def _complete(self, start: float, until: float) -> bool:
        """True when the feed watched ``[start, until]`` throughout."""
        origin = self._origin
        if origin is None or start < origin:
            return False
        for began, ended in self._outages:  # noqa: SIM110  (usually none: a loop, not all() over a generator)
            if began <= until and ended >= start:
                return False
        return True

    def _prune(self) -> None:
        if len(self._outages) > 32:
            oldest = min((bar.start for bar in self._open.values()), default=self._clock)
            self._outages = [o for o in self._outages if o[1] >= oldest]

    # --- trades ----------------------------------------------------------------------------------

    def trade(self, item: str, ts: float, zone: _dt.tzinfo, price: float, volume: int,
              received_at: float) -> list[Output]:
        """One trade of ``item`` at exchange time ``ts`` (epoch seconds; ``zone`` for display);
        returns what it caused."""
        out: list[Output] = []
        self.add(item, ts, zone, price, volume, received_at, out)
        return out

    def add(self, item: str, ts: float, zone: _dt.tzinfo, price: float, volume: int, received_at: float,
            out: list[Output]) -> None:
        """``trade`` for the hot path: what the trade caused is appended to ``out``."""
        # the market clock (as ``clock``, inlined: this runs once per trade)
        mark = self._mark
        if mark is not None and not self._trusted:
            behind = self.clock(received_at) - ts
            if behind > self.tolerance:  # the first trade was stamped impossibly far ahead
                self._disown_first(received_at, out)
                mark = None
            elif behind >= -self.tolerance:
                self._trusted = True  # a second trade agrees with the first
            # (one impossibly far ahead is refused below, as ever: an outlier ahead is what would
            # close everyone's bars)
        if mark is None:
            mark = self._mark = (ts, received_at)
            self._origin = ts
            self._first = (item, ts, zone, price, volume)
        elif ts > mark[0]:
            elapsed = received_at - mark[1]
            if ts > max(self._clock, mark[0] + (elapsed if elapsed > 0 else 0.0)) + self.tolerance:
                self._implausible(item, ts, zone, price, volume, received_at, out)
                return
            mark = self._mark = (ts, received_at)
        elapsed = received_at - mark[1]
        now = mark[0] + elapsed if elapsed > 0 else mark[0]
        if now > self._clock:
            self._clock = now
        else:
            now = self._clock
        if self._reopening:
            self._reopening = False
            if self._outage is not None:  # (not the last mark: a gap or a lost frame may have come since)
                self._outage[1] = max(now, ts)
                self._outage = None
        current = self._open.get(item)
        if self._timed:
            if current is None or zone is not self._zone or not current.start <= ts < current.end:
                size = self._size
                if zone is self._zone:
                    offset = self._offset
                else:
                    offset = zone.utcoffset(None).total_seconds()  # type: ignore[union-attr]
                    self._zone, self._offset = zone, offset
                start = ts - (ts + offset) % size
                if current is None or start != current.start:
                    if current is not None:
                        if ts < current.start:
                            self._late(item, ts, zone, price, volume, out)
                            return
                        self._finalize(item, current, now, out)
                    if start < self._closed_until.get(item, -_INF):
                        self._late(item, ts, zone, price, volume, out)
                        return
                    if self.fill_empty:
                        self._fill(item, start, now, out)
                    current = self._open[item] = _new_open(start, start + size, price, zone)
                    if current.end < self._soonest:
                        self._soonest = current.end
            # the bar's arithmetic (as ``_Open.add``, inlined; a time bar needs no ``last``)
            if price > current.high:
                current.high = price
            elif price < current.low:
                current.low = price
            current.close = price
            if volume > 0:
                current.buy += volume
                current.amount += price * volume
            elif volume < 0:
                current.sell -= volume
                current.amount -= price * volume
            current.trades += 1
            if self.updates:
                out.append(("update", current.bar(item, self._complete(current.start, now), False, "time")))
            if now - self.grace >= self._soonest:
                self._due(now, out)
            return
        # tick and volume bars count trades as they come: no trade is late for them
        spec = self.spec
        if current is None:
            current = self._open[item] = _new_open(ts, ts + 1, price, zone)
        elif ts < current.start:
            current.start = ts
        current.add(ts, price, volume)
        if ts + 1 > current.end:
            current.end = ts + 1
        if (current.trades if spec.kind == "ticks" else current.buy + current.sell) >= spec.size:
            self._finalize(item, current, now, out)  # a trade that overflows a volume bar stays whole in it
        elif self.updates:
            out.append(("update", current.bar(item, self._complete(current.start, now), False, spec.kind)))

    def resume(self, mark_ts: float, mark_rx: float, clock: float) -> None:
        """Take back the state ``TradeReader.place`` kept in local variables: the mark and the
        market clock."""
        self._mark = (mark_ts, mark_rx)
        self._clock = clock

    def roll(self, item: str, bar: _Open, start: float, price: float, now: float, out: list[Output]) -> None:
        """``item``'s time bar ``bar`` is final at ``now`` (a trade of its next bar came), and
        ``bar`` becomes that next bar, opened at ``price``: ``_finalize`` and ``_new_open`` in one,
        for the inlined path (the caller keeps the order of the open bars)."""
        began = bar.start
        self._closed_until[item] = bar.end
        self._done += bar.trades
        out.append(("final", bar.bar(item, self._complete(began, now if now > began else began), True, "time")))
        if len(self._outages) > 32:
            self._prune()
        bar.start = start
        bar.end = start + self._size
        bar.open = bar.high = bar.low = bar.close = price
        bar.buy = bar.sell = bar.trades = 0
        bar.amount = 0

    def _disown_first(self, received_at: float, out: list[Output]) -> None:
        """The first trade set the clock and a later one is impossibly far behind it: the first
        was the outlier. Its bar goes, it is reported as implausible, and the clock starts again
        from the next trade (while untrusted, the first trade is the only one placed)."""
        assert self._first is not None
        item, ts, zone, price, volume = self._first
        self._mark, self._clock, self._origin, self._first = None, float("-inf"), None, None
        bar = self._open.get(item)
        if bar is None or not bar.start <= ts < bar.end:  # a timer made its bar final already: it stays
            self._closed_until.pop(item, None)
            return
        del self._open[item]
        self._last_close.pop(item, None)
        self._soonest = min((bar.end for bar in self._open.values()), default=_INF)
        self.implausible += 1
        moment = _dt.datetime.fromtimestamp(ts, zone)
        out.append(("implausible", LateTrade(item, moment, price, volume, moment)))

    def _implausible(self, item: str, ts: float, zone: _dt.tzinfo, price: float, volume: int, received_at: float,
                     out: list[Output]) -> None:
        """A trade impossibly far ahead of the clock: left out, and the bars open now are incomplete."""
        self.implausible += 1
        self.dropped(received_at)
        moment = _dt.datetime.fromtimestamp(ts, zone)
        out.append(("implausible", LateTrade(item, moment, price, volume, moment)))

    def _late(self, item: str, ts: float, zone: _dt.tzinfo, price: float, volume: int, out: list[Output]) -> None:
        self.late += 1
        bar_start = ts - (ts + zone.utcoffset(None).total_seconds()) % self.spec.size  # type: ignore[union-attr]
        out.append(("late", LateTrade(item, _dt.datetime.fromtimestamp(ts, zone), price, volume,
                                      _dt.datetime.fromtimestamp(bar_start, zone))))

    def _finalize(self, item: str, bar: _Open, now: float, out: list[Output]) -> None:
        del self._open[item]
        self._done += bar.trades
        self._closed_until[item] = bar.end if self.spec.kind == "time" else bar.last + 1
        if self.fill_empty:
            self._last_close[item] = (bar.close, bar.zone)
        out.append(("final", bar.bar(item, self._complete(bar.start, max(now, bar.start)), True, self.spec.kind)))
        if len(self._outages) > 32:
            self._prune()

    def _fill(self, item: str, start: float, now: float, out: list[Output]) -> None:
        """Flat bars for the empty intervals between the item's last final bar and ``start``."""
        last = self._last_close.get(item)
        until = self._closed_until.get(item)
        if last is None or until is None:
            return
        price, zone = last
        size = self.spec.size
        at = until
        while at < start:
            flat = _new_open(at, at + size, price, zone)
            out.append(("final", flat.bar(item, self._complete(at, now), True, "time")))
            at += size
        self._closed_until[item] = start

    def _due(self, now: float, out: list[Output]) -> None:
        """Finish every time bar whose end + grace the clock has passed."""
        limit = now - self.grace
        if limit < self._soonest:  # (most trades: nothing is due, and no bar is looked at)
            return
        open_ = self._open
        due = [item for item, bar in open_.items() if bar.end <= limit]
        if self.fill_empty:
            for item in due:
                self._finalize(item, open_[item], now, out)
        else:  # (``_finalize`` for time bars, in one loop: a thin market finishes most bars here)
            closed = self._closed_until
            complete = self._complete
            outages = self._outages
            origin = _INF if self._origin is None else self._origin
            done = self._done
            for item in due:
                bar = open_.pop(item)
                closed[item] = bar.end
                done += bar.trades
                began = bar.start
                watched = complete(began, now if now > began else began) if outages else began >= origin
                out.append(("final", bar.bar(item, watched, True, "time")))
            self._done = done
            if len(self._outages) > 32:
                self._prune()
        self._soonest = min((bar.end for bar in self._open.values()), default=float("inf"))

    def advance(self, received_at: float) -> list[Output]:
        """The clock at ``received_at``, with no trade: time bars that are due become final."""
        out: list[Output] = []
        now = self.clock(received_at)
        if self.spec.kind == "time" and self._open:
            self._due(now, out)
        return out

    def finish(self, received_at: float) -> list[Output]:
        """The end of the data: every open bar becomes final now. A time bar whose end the clock
        has not reached is incomplete (trades of its interval may still have been coming)."""
        out: list[Output] = []
        now = self.clock(received_at)
        for item in list(self._open):
            bar = self._open[item]
            if self.spec.kind == "time" and now < bar.end:
                self._outages.append([now, now])  # cut short: not watched to its end
            self._finalize(item, bar, now, out)
        return out

    def current(self, item: str, received_at: float) -> Bar | None:
        """The bar in progress of ``item`` (``final=False``), or None."""
        bar = self._open.get(item)
        if bar is None:
            return None
        return bar.bar(item, self._complete(bar.start, self.clock(received_at)), False, self.spec.kind)


class TradeReader:
    """Trades out of typed events, into a ``BarEngine``: what ``BarFeed`` (live) and
    ``build_bars`` (a recording) share, so both build bars with the same code.

    The hot path reads a trade's time, price and volume from its raw values through caches keyed
    by the raw text (a session repeats the same times, prices and sizes all day); a text seen for
    the first time goes through the event's typed fields, which parse it strictly and report an
    unusable value, and only what they accept enters a cache. US trades always take the typed
    fields (their date and Eastern time need them).
    """

    def __init__(self, engine: BarEngine, market: str, types: Iterable[str], items: Iterable[str] | None) -> None:
        self.engine = engine
        self.types = frozenset(types)
        self.items = None if items is None else frozenset(items)
        self.us = market == "us"
        self.stamp = Stamper(market)
        self.unusable = 0  # trades left out: their time, price or volume was unusable
        self.last_received: float | None = None
        fids = {}
        quick: dict[tuple[str, str], bool] = {}  # (fid, name) -> read by canonical_int, abs() or not
        for code in self.types:
            fields = {field.attr: field for field in headline_fields(EVENT_TYPES[code])}
            fids[code] = (fields["time"].fid, fields["price"].fid, fields["volume"].fid)
            if fields["price"].kind == LAST:  # (a domestic price: the strict reading is abs(int), not zero)
                quick[(fields["price"].fid, "price")] = True
            if fields["volume"].kind == "int":
                quick[(fields["volume"].fid, "volume")] = False
        self._by_type = fids  # by type code
        self._fids: dict[type, tuple[str, str, str] | None] = {}  # by event class, filled as classes come
        self._quick = quick
        self._seconds: dict[str, int] = {}
        self._prices: dict[str, float] = {}
        self._volumes: dict[str, int] = {}

    def place(self, events: Sequence[Any], out: list[Output]) -> None:
        """The trades among ``events``, in order; what they caused is appended to ``out``.

        This is ``BarEngine.add`` for each trade, with the common cases of a 1-minute-style
        feed inlined (the hot path: one loop reads a trade and places it, with the engine's
        state in local variables): a time bar that goes on, or an item's trade that finishes its
        bar and starts the next, with nothing due, no update receiver and no ``fill_empty``.
        Anything else (a bar that opens late or is due, a late trade, an outage ending) goes
        through ``add`` with the state written back first. A read of one event goes through
        ``_one`` (the loop's setup would cost more than the trade). Tests compare both with
        ``add`` trade by trade.

        Within one receive time the market clock only moves for the first trade, or when a
        trade's exchange time passes the mark (``add`` finds the same time since the mark for
        every other trade), so only then is it worked out, and only then can a bar become due.
        """
        if self.us:
            for event in events:
                if self._wanted(event):
                    self.last_received = event.received_at
                    self._typed(event, out)
            return
        if len(events) <= _SHORT:  # a read of one frame (a quiet market): nothing to set up
            for event in events:
                self._one(event, out)
            return
        fid_map = self._fids
        items = self.items
        base = self.stamp.base
        seconds, prices, volumes = self._seconds, self._prices, self._volumes
        prices_get = prices.get
        learn = self._learn
        engine = self.engine
        add = engine.add
        # the engine's state, as local variables while ``fast`` (written back before ``add``); they
        # are loaded for each receive time (``batch_at``), before any is read
        batchable = engine._timed and not engine.updates and not engine.fill_empty
        open_ = engine._open
        open_get = open_.get
        closed_get = engine._closed_until.get
        size, grace = engine._size, engine.grace
        fast = False
        batch_at: float | None = None  # the receive time the locals are for (None: load them again)
        received_at = None
        last_class: type | None = None  # the class of the last trade, whose FIDs are these:
        mark_ts = mark_rx = clock = 0.0
        for event in events:
            if type(event) is not last_class:
                fids = fid_map.get(type(event), False)
                if fids is False:  # a class not met yet: a trade type of ours, or not
                    fids = fid_map[type(event)] = self._fids_of(event)
                if fids is None:
                    continue
                last_class = type(event)
                time_fid, price_fid, volume_fid = fids  # type: ignore[misc]
            item = event.item
            if items is not None and item not in items:
                continue
            received_at = event.received_at
            if received_at != batch_at:
                if fast:
                    engine.resume(mark_ts, mark_rx, clock)
                batch_at = received_at
                last_time = _NO_TEXT
                midnight, zone = base(received_at)
                mark = engine._mark
                fast = (batchable and mark is not None and engine._trusted and not engine._reopening
                        and zone is engine._zone)
                if fast:
                    mark_ts, mark_rx = mark  # type: ignore[misc]
                    clock, soonest, offset = engine._clock, engine._soonest, engine._offset
                    # the clock as ``add`` finds it for a trade that does not move the mark, until one does
                    elapsed = received_at - mark_rx
                    waiting = mark_ts + elapsed if elapsed > 0 else mark_ts
                    stale = waiting > clock
                    due = clock - grace >= soonest
            values = event.values
            # each value by its raw text; a text not seen yet (or missing) goes to the typed field,
            # and an unusable one raises ``_Unusable`` there (no check per trade)
            try:
                try:
                    raw = values[time_fid]
                except KeyError:
                    raw = None
                if raw != last_time:  # a time not the last trade's: its exchange time, and the clock
                    try:
                        secs = seconds[raw]
                    except (KeyError, TypeError):
                        secs = learn(event, time_fid, "time", seconds)
                    last_time = raw
                    ts = midnight + secs  # (``_closest``, inlined)
                    if not -43200 <= ts - received_at <= 43200:
                        ts += -86400 if ts - received_at > 43200 else 86400
                    if fast and ts > mark_ts and ts > (clock if clock > waiting else waiting) + engine.tolerance:
                        # impossibly far ahead: ``add`` refuses it (the state handed back first)
                        engine.resume(mark_ts, mark_rx, clock)
                        fast, batch_at = False, None
                    if fast:
                        if ts > mark_ts:
                            mark_ts, mark_rx = ts, received_at
                            stale = False
                            if ts > clock:
                                clock = ts
                                due = clock - grace >= soonest
                        elif stale:
                            stale = False
                            clock = waiting
                            due = clock - grace >= soonest
                        # the bar of this time (NaN while a bar is due: no open bar is in it)
                        bar_start = _NAN if due else ts - (ts + offset) % size
                try:  # (a thin market shows a new price text in one trade of four: no KeyError for it)
                    price = prices_get(values[price_fid])
                except (KeyError, TypeError):
                    price = None
                if price is None:
                    price = learn(event, price_fid, "price", prices)
                try:
                    volume = volumes[values[volume_fid]]
                except (KeyError, TypeError):
                    volume = learn(event, volume_fid, "volume", volumes)
            except _Unusable:
                if fast:
                    engine.resume(mark_ts, mark_rx, clock)
                    fast, batch_at = False, None
                self.unusable += 1
                last_time = _NO_TEXT  # (the time may be this trade's unusable one)
                engine.dropped(received_at)  # its bar missed a trade
                continue
            if not fast:
                add(item, ts, zone, price, volume, received_at, out)
                if batchable:
                    batch_at = None  # (the fast path may apply from the next trade)
                continue
            current = open_get(item)
            if current is None or current.start != bar_start:  # (a trade of its open bar goes on)
                start = bar_start
                if (due or (ts < current.end if current is not None
                            else start + size <= clock - grace or start < closed_get(item, -_INF))):
                    # a bar opens late, a trade is late, or a bar is due: the full rules
                    engine.resume(mark_ts, mark_rx, clock)
                    fast, batch_at = False, None
                    add(item, ts, zone, price, volume, received_at, out)
                    continue
                if current is None:  # the item's next bar opens (as ``add`` does)
                    current = open_[item] = _new_open(start, start + size, price, zone)
                    if current.end < soonest:
                        soonest = engine._soonest = current.end
                else:
                    # the item's bar ends here: it becomes final, and the same _Open starts the
                    # next (``_finalize`` and a new ``_Open``, inlined; the soonest end kept is
                    # only ever earlier than the true one, which makes ``_due`` look and fix it).
                    # It moves to the end of the open bars, as a new one would: bars due together
                    # are finished in the order they opened, whatever the reads were.
                    del open_[item]
                    open_[item] = current
                    engine.roll(item, current, start, price, clock, out)  # (its slots are reset there)
            # the bar's arithmetic, as ``add``'s (inlined: a call per trade would cost more than it)
            if price > current.high:
                current.high = price
            elif price < current.low:
                current.low = price
            current.close = price
            if volume > 0:
                current.buy += volume
                current.amount += price * volume
            elif volume < 0:
                current.sell -= volume
                current.amount -= price * volume
            current.trades += 1
        if fast:
            engine.resume(mark_ts, mark_rx, clock)
        if received_at is not None:
            self.last_received = received_at

    def _one(self, event: Any, out: list[Output]) -> None:
        """``place`` for one event, read as the loop reads it and placed by ``BarEngine.add``:
        cheaper than the loop's setup when a read holds one trade (a quiet market)."""
        fids = self._fids.get(type(event), False)
        if fids is False:
            fids = self._fids[type(event)] = self._fids_of(event)
        if fids is None:
            return
        item = event.item
        if self.items is not None and item not in self.items:
            return
        received_at = self.last_received = event.received_at
        time_fid, price_fid, volume_fid = fids  # type: ignore[misc]
        values = event.values
        try:
            try:
                secs = self._seconds[values[time_fid]]
            except (KeyError, TypeError):
                secs = self._learn(event, time_fid, "time", self._seconds)
            try:  # (a new price text is common: no KeyError for it)
                price = self._prices.get(values[price_fid])
            except (KeyError, TypeError):
                price = None
            if price is None:
                price = self._learn(event, price_fid, "price", self._prices)
            try:
                volume = self._volumes[values[volume_fid]]
            except (KeyError, TypeError):
                volume = self._learn(event, volume_fid, "volume", self._volumes)
        except _Unusable:
            self.unusable += 1
            self.engine.dropped(received_at)  # its bar missed a trade
            return
        ts, zone = self.stamp.at(secs, received_at)
        self.engine.add(item, ts, zone, price, volume, received_at, out)

    def _fids_of(self, event: Any) -> tuple[str, str, str] | None:
        """The (time, price, volume) FIDs of an event's class when it is a trade type read here."""
        return self._by_type.get(getattr(event, "type", None))  # type: ignore[arg-type]

    def _wanted(self, event: Any) -> bool:
        return getattr(event, "type", None) in self._by_type and (self.items is None or event.item in self.items)

    def _learn(self, event: Any, fid: str, name: str, cache: dict[str, Any]) -> Any:
        """One value through the event's typed field (strict; a bad value is reported there),
        remembered by its raw text when usable. Raises ``_Unusable`` when blank, missing or
        unusable.

        A canonical integer text (most are) is read by ``values.canonical_int``, which reads it as
        the typed field would, without the event's lazy-field machinery: a thin market shows a
        new price text in one trade of four."""
        raw = event.values.get(fid)
        absolute = self._quick.get((fid, name))
        if absolute is not None:
            number = canonical_int(raw)
            # (a zero price is unusable: the typed field says so)
            if number is not None and (number != 0 or not absolute):
                if absolute and number < 0:
                    number = -number
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[raw] = number
                return number
        value = getattr(event, name)
        if value is None:
            raise _Unusable
        if name == "time":
            value = value.hour * 3600 + value.minute * 60 + value.second
        if type(raw) is str:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[raw] = value
        return value

    def _typed(self, event: Any, out: list[Output]) -> None:
        """A US trade: its Eastern time and date need the typed fields."""
        received_at = event.received_at
        us = self.us
        local = event.local_time if us else None
        clock = local or event.time
        price = event.price
        volume = event.volume
        if clock is None or price is None or volume is None:
            self.unusable += 1
            self.engine.dropped(received_at)  # its bar missed a trade
            return
        if us and local is None:
            # FID 20 is KST: converted to Eastern through its own date, never read as Eastern
            kst, _ = trade_timestamp(clock, received_at, "kr")
            ts = kst
            zone = to_eastern(_dt.datetime.fromtimestamp(kst, _dt.UTC)).tzinfo or KST
        else:
            ts, zone = self.stamp(clock, received_at, event.trade_date if us else None)
        self.engine.add(event.item, ts, zone, price, volume, received_at, out)
