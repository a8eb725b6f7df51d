"""Live bars (실시간 분봉): candles built from a session's trades, honest about what they missed.

::

    from kiwoom_rt.bars import BarFeed
    feed = BarFeed(session, "1m")                 # or ticks=100, or volume=10_000
    feed.on_bar.connect(lambda item, bar: print(bar))      # each finished bar, once
    feed.on_update.connect(lambda item, bar: ...)          # the bar in progress, after a trade

``BarFeed`` works on any ``kiwoom_rt.Session``: live, a ``ReplaySession`` or a relay's
``RelaySession``. It subscribes nothing: it reads the trades the session delivers (0B on the
domestic socket, FE on the US one; ``types=`` to choose), of every item or of ``items=``.

The rules:

- **Time is the exchange's.** A trade belongs to the bar holding its exchange time (0B's FID 20,
  in KST, on the date that puts it closest to when it was received; FE's 현지 체결시간, FID
  51020, in US Eastern time on the trade's own date, FID 22), never to when it arrived.
- **One market clock per feed**: the latest exchange time seen on any of its items, advanced by
  the time since that trade was received (in a replay, the recording's receive times). A trade
  stamped more than ``tolerance`` (300 s) ahead of that clock is unusable: it never moves the
  clock, so one item's wrong time never closes another item's bars. The feed's first trade sets
  the clock but proves nothing alone: if a later trade is stamped more than ``tolerance`` behind
  it before any trade agreed with it, the first one was the outlier and is refused the same way.
  A US trade without its local time (FID 51020) is placed by its KST time (FID 20), converted,
  never read as Eastern. A time bar
  is final when a trade of the same item at or after its end arrives, or when the market clock
  passes its end + ``grace`` (2 s), so an item that stops trading still gets its last bar. A live
  or relay feed looks at the clock twice a second; a replay's clock moves with its trades.
- **A late trade** (for a bar already final) is counted (``feed.late``) and reported through the
  session's ``on_error`` as a ``LateTradeError``, once per trade; a final bar never changes.
- **Complete means watched throughout.** ``bar.complete`` is False for the first bar after the
  feed starts (unless its start is at or after the first exchange time the feed saw), for any bar
  open while the connection was down, for any bar open when a frame was lost (a frame that
  could not be decoded, one too large, an unusable trade, a relay gap), for any bar open while a
  relay was silent, stopped or restarting (a relay consumer's clock never runs past what it has
  heard, so no bar is finished while the relay is quiet), and for a bar cut short when the
  session ends. A disconnect never splits or merges bars: the trades of one interval are one bar.
- The feed sees every event before the session's dispatcher: a GUI's conflation or
  ``overflow="drop_oldest"`` never costs it a trade. Its bars then go through the dispatcher, so
  Qt and Tk receivers run on the GUI thread; final bars are never dropped, and with a conflating
  dispatcher the updates are conflated too (the latest per item per delivery).
- **Tick and volume bars** (``ticks=N``, ``volume=N``) finish at their N-th trade or share. A
  trade that takes a volume bar past N stays whole in the bar it filled (its excess does not
  start the next bar), so every trade is in exactly one bar and the volumes add up. Their
  ``start`` is the first trade's time and ``end`` the last trade's plus one second.
- ``fill_empty=True`` emits flat bars (open = high = low = close = the previous close, volume 0)
  for the empty intervals between two trades of an item; nothing is filled after its last trade.
- The same trades in the same order give the same bars, live, replayed at any speed, or through
  a relay.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final, NamedTuple

from ._bars import Bar, BarEngine, BarSpec, LateTrade, Output, TradeReader, bar_spec, parse_interval
from ._catalogue import TRADE_TYPES, TYPES, trade_fields
from ._intake import Intake
from ._notices import Disconnected, ErrorReport, LoggedIn, Notice, Posted, RelayStatus
from ._signals import SessionSignal
from ._state import SessionState
from ._surface import Session
from .errors import FrameTooLargeError, ImplausibleTradeError, KiwoomError, LateTradeError, ProtocolError
from .recording import read_header, read_recording, recording_exchanges, recording_market
from .us import parse_us_item

__all__ = ["Bar", "BarFeed", "BarSpec", "LateTrade", "LostFrame", "bar_spec", "build_bars", "parse_interval",
           "recording_bars"]

logger = logging.getLogger("kiwoom_rt")

_ENDED: Final = frozenset({SessionState.CLOSED, SessionState.GAVE_UP, SessionState.FINISHED})
#: How often a live feed looks at the market clock for bars that are due.
CHECK_INTERVAL: Final = 0.5
#: How far past the last thing a relay consumer heard the clock may run (the relay's heartbeat
#: comes every second).
HEARD_SLACK: Final = 1.5


def _trade_type(type_code: str) -> str:
    row = TYPES.get(type_code)
    if row is None:
        raise ValueError(f"unknown realtime type {type_code!r}")
    if trade_fields(type_code) is None:
        raise ValueError(f"type {type_code} ({row.cls.__name__}) has no trade time, price and volume")
    return type_code


def _types(market: str, types: Iterable[str] | str | None) -> frozenset[str]:
    if types is None:
        types = (TRADE_TYPES[market],)
    elif isinstance(types, str):
        types = (types,)
    found = frozenset(_trade_type(code) for code in types)
    if not found:
        raise ValueError("at least one trade type is needed")
    return found


def _items(market: str, items: Iterable[str] | str | None) -> frozenset[str] | None:
    if items is None:
        return None
    if isinstance(items, str):
        items = (items,)
    return frozenset(parse_us_item(item).symbol if market == "us" else str(item) for item in items)


def build_bars(events: Iterable[Any], interval: str | None = None, *, ticks: int | None = None,
               volume: int | None = None, types: Iterable[str] | str | None = None,
               items: Iterable[str] | str | None = None, market: str = "kr", grace: float = 2.0,
               fill_empty: bool = False, late: list[LateTrade] | None = None) -> Iterator[Bar]:
    """The final bars of a stream of events, in the order a ``BarFeed`` would deliver them; at
    the end, the bars still open are delivered too (a time bar the data ends inside is
    incomplete). A ``LostFrame`` in the stream marks the bars open then as incomplete, as a lost
    frame does live (``recording_bars`` puts them in). Late trades are added to ``late``."""
    spec = bar_spec(interval, ticks=ticks, volume=volume)
    if fill_empty and spec.kind != "time":
        raise ValueError("fill_empty applies to time bars only")
    engine = BarEngine(spec, grace=grace, fill_empty=fill_empty, updates=False)
    trades = TradeReader(engine, market, _types(market, types), _items(market, items))
    out: list[Output] = []
    batch: list[Any] = []
    for event in events:
        if type(event) is LostFrame:  # the bars open now may have missed trades
            trades.place(batch, out)
            batch.clear()
            engine.dropped(event.received_at)
            continue
        batch.append(event)
        if len(batch) >= 512:
            trades.place(batch, out)
            batch.clear()
            yield from _finals(out, late)
    trades.place(batch, out)
    if trades.last_received is not None:
        out += engine.finish(trades.last_received)
    yield from _finals(out, late)


class LostFrame(NamedTuple):
    """In a stream given to ``build_bars``: a frame received at ``received_at`` was lost
    (undecodable, too large), and it may have held trades."""

    received_at: float


def recording_bars(recording: str | os.PathLike[str], interval: str | None = None, *, ticks: int | None = None,
                   volume: int | None = None, types: Iterable[str] | str | None = None,
                   items: Iterable[str] | str | None = None, grace: float = 2.0, fill_empty: bool = False,
                   errors: list[BaseException] | None = None, late: list[LateTrade] | None = None) -> Iterator[Bar]:
    """``build_bars`` over a recording, decoded by the intake every session uses: the bars a live
    ``BarFeed`` gave while it was recorded (a frame that could not be decoded marks the bars open
    then, as it did live). Problems with frames are added to ``errors`` when given."""
    header = read_header(recording)
    market = recording_market(header)
    found: list[BaseException] = errors if errors is not None else []

    def stream() -> Iterator[Any]:
        decoded: list[Any] = []
        lost: list[float] = []
        at = 0.0

        def report(error: KiwoomError) -> None:
            found.append(error)
            if isinstance(error, (ProtocolError, FrameTooLargeError)):
                lost.append(at)

        intake = Intake(emit=decoded.extend, report=report, us=recording_exchanges(header))
        for received_at, frame in read_recording(recording):
            at = received_at
            intake.decode((frame,), received_at)
            yield from decoded
            decoded.clear()
            for when in lost:
                yield LostFrame(when)
            lost.clear()

    return build_bars(stream(), interval, ticks=ticks, volume=volume, types=types, items=items, market=market,
                      grace=grace, fill_empty=fill_empty, late=late)


def _finals(out: list[Output], late: list[LateTrade] | None) -> Iterator[Bar]:
    for kind, thing in out:
        if kind == "final":
            yield thing
        elif kind == "late" and late is not None:
            late.append(thing)
    out.clear()


class BarFeed:
    """Bars of one kind built from ``session``'s trades; see the module docstring.

    - ``interval``: ``"10s"``, ``"1m"`` (the default when neither ``ticks`` nor ``volume`` is
      given), ``"5m"``, ``"1h"``; or ``ticks=N`` trades, or ``volume=N`` shares (one kind only);
    - ``types``: the trade types read (default 0B, or FE on a US session); ``items``: only these
      items (default: every item that trades);
    - ``grace``: seconds of market clock after a bar's end before it is final without a trade;
    - ``fill_empty``: flat bars for empty intervals between trades;
    - ``conflate_updates``: deliver only the latest update per item per delivery (default: when
      the session's dispatcher conflates);
    - ``timer``: look at the market clock on a thread of its own (default: on, except for a
      ``ReplaySession``, whose clock is its recording's);
    - ``tolerance``: a trade stamped more than this many seconds ahead of the market clock is
      unusable (left out, reported as ``ImplausibleTradeError``, its bar incomplete), so one
      wrong time never closes every item's bars.

    Signals (receivers called as ``receiver(item, bar=...)`` through the session's dispatcher):
    ``on_bar`` once per final bar, ``on_update`` with the bar in progress after a trade changed it.
    """

    def __init__(self, session: Session, interval: str | None = None, *, ticks: int | None = None,
                 volume: int | None = None, types: Iterable[str] | str | None = None,
                 items: Iterable[str] | str | None = None, grace: float = 2.0, fill_empty: bool = False,
                 conflate_updates: bool | None = None, timer: bool | None = None,
                 tolerance: float = 300.0) -> None:
        self.spec = bar_spec(interval, ticks=ticks, volume=volume)
        if fill_empty and self.spec.kind != "time":
            raise ValueError("fill_empty applies to time bars only")
        self.session = session
        self.market = session.market
        self.types = _types(self.market, types)
        self.items = _items(self.market, items)
        self.on_bar = session.feature_signal("BarFeed.on_bar", ("bar",))
        self.on_update = session.feature_signal("BarFeed.on_update", ("bar",))
        self.conflate_updates = session.conflates if conflate_updates is None else conflate_updates
        self._engine = BarEngine(self.spec, grace=grace, fill_empty=fill_empty, tolerance=tolerance)
        self._trades = TradeReader(self._engine, self.market, self.types, self.items)
        # reentrant: reading a trade's typed field may report a bad value, and that notice comes back here
        self._lock = threading.RLock()
        self._closed = False
        self._pending: dict[str, Bar] = {}  # conflated updates not yet delivered
        self._flush = session.feature_signal("BarFeed.flush", ())
        self._flush.connect(self._deliver_updates)
        self._flush_posted = False
        # final bars and late-trade errors, posted as one notice per run of them (a thin market
        # finishes hundreds of bars at once: a notice each cost more than the bars)
        self._run = session.feature_signal("BarFeed.run", ("outputs",))
        self._run.connect(self._deliver_run)
        if timer is None:
            timer = bool(getattr(session, "live", True))  # (a capability: a replay's clock is its recording's)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop_observing = session.observe(self)
        if timer:
            self._thread = threading.Thread(target=self._run_timer, name="kiwoom-rt bars", daemon=True)
            self._thread.start()

    def __repr__(self) -> str:
        return (f"<BarFeed {self.spec} of {'/'.join(sorted(self.types))} "
                f"{'closed' if self._closed else 'running'} late={self.late}>")

    # --- what the feed tells ----------------------------------------------------------------------

    @property
    def late(self) -> int:
        """Trades that came for a bar already final (each reported through ``on_error``)."""
        return self._engine.late

    @property
    def unusable(self) -> int:
        """Trades left out because their time, price or volume was unusable (their bars are
        marked incomplete; the bad value itself reached ``on_error`` when it was read)."""
        return self._trades.unusable

    @property
    def closed(self) -> bool:
        return self._closed

    def current(self, item: str) -> Bar | None:
        """The bar in progress of ``item`` (``final=False``), or None."""
        key = parse_us_item(item).symbol if self.market == "us" else str(item)  # US events name the symbol
        with self._lock:
            return self._engine.current(key, self._now())

    def close(self) -> None:
        """Stop: no more bars (the bars in progress are not delivered). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._pending.clear()
        self._stop_observing()
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)

    def __enter__(self) -> BarFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- observing the session (on the thread that queued the events) --------------------------

    def _now(self) -> float:
        last = self._trades.last_received
        if self._thread is None and last is not None:
            return last  # a replay's clock is its recording's
        return time.time()

    def queued_events(self, events: Sequence[Any]) -> None:
        out: list[Output] = []
        with self._lock:
            if self._closed:
                return
            self._engine.updates = self.on_update.has_receivers
            self._trades.place(events, out)
            if out:
                self._emit(out, wake=False)

    def queued_notice(self, notice: Notice) -> None:
        kind = type(notice)
        if kind is Posted:
            return
        with self._lock:
            if self._closed:
                return
            now = self._now()
            if kind is Disconnected:
                if notice.will_retry:  # type: ignore[attr-defined]
                    self._engine.outage_began(now)
                else:  # the session ended: the last bars, then nothing more
                    self._emit(self._engine.finish(now), wake=False)
                    self._closed = True
            elif kind is LoggedIn:
                self._engine.outage_ended(now)
            elif kind is ErrorReport and isinstance(notice.error, (ProtocolError, FrameTooLargeError)):  # type: ignore[attr-defined]
                self._engine.dropped(now)  # a frame was lost: it may have held trades
            elif kind is RelayStatus:
                self._relay_status(notice.kind, notice.detail, now)  # type: ignore[attr-defined]
        if self._closed:
            self._stop_observing()
            self._stop.set()

    def _relay_status(self, kind: str, detail: Any, now: float) -> None:
        """A relay's state, as a live session's connection: silent is down (since it was last
        heard), back or restarted is up again, and a gap marks the span it names (lock held)."""
        engine = self._engine
        if kind == "relay_silent":
            seconds = detail.get("seconds") if isinstance(detail, dict) else None
            engine.outage_began(now - float(seconds) if isinstance(seconds, (int, float)) else now)
        elif kind in ("relay_back", "relay_started", "relay_stopped"):
            if kind == "relay_stopped":
                engine.outage_began(now)
            else:
                engine.outage_ended(now)
        elif kind == "gap":  # a RelayGap (read by its fields: bars never import the relay)
            since, until = getattr(detail, "since", None), getattr(detail, "until", None)
            if isinstance(since, (int, float)) and isinstance(until, (int, float)):
                engine.missed(float(since), float(until))
            engine.dropped(now)

    # --- delivering (lock held) --------------------------------------------------------------------

    def _emit(self, outputs: list[Output], *, wake: bool) -> None:
        """``outputs`` to the dispatcher, in order: final bars and late-trade errors in runs (one
        notice each run), updates as the feed delivers them."""
        post = self.session.post
        run: list[tuple[SessionSignal, Any, dict[str, Any]]] = []
        for kind, thing in outputs:
            if kind == "final":
                self._pending.pop(thing.item, None)
                run.append((self.on_bar, thing.item, {"bar": thing}))
            elif kind == "update":
                if run:  # (what came before goes first)
                    post(self._run, None, wake=wake, outputs=run)
                    run = []
                if self.conflate_updates:
                    self._pending[thing.item] = thing
                    if not self._flush_posted:
                        self._flush_posted = True
                        post(self._flush, None, wake=wake)
                else:
                    post(self.on_update, thing.item, wake=wake, bar=thing)
            elif kind == "implausible":
                odd: LateTrade = thing
                refused = ImplausibleTradeError(
                    f"trade of {odd.item} stamped {odd.time:%H:%M:%S}, impossibly far from the feed's market "
                    f"clock: left out as unusable (its bar is marked incomplete)", odd)
                logger.warning("%s", refused)
                run.append((self.session.on_error, self.session, {"error": refused}))
            else:  # a late trade
                trade: LateTrade = thing
                error = LateTradeError(f"late trade of {trade.item} at {trade.time:%H:%M:%S} for the bar of "
                                       f"{trade.bar_start:%H:%M:%S}, already final: left out", trade)
                logger.warning("%s", error)
                run.append((self.session.on_error, self.session, {"error": error}))
        if run:
            post(self._run, None, wake=wake, outputs=run)

    @staticmethod
    def _deliver_run(_sender: Any, outputs: list[tuple[SessionSignal, Any, dict[str, Any]]]) -> None:
        """A run of final bars and late-trade errors, on the delivering thread, in order."""
        for signal, sender, values in outputs:
            signal.deliver(sender, **values)

    def _deliver_updates(self, _sender: Any) -> None:
        """The conflated updates, on the delivering thread."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._flush_posted = False
        for item, bar in pending.items():
            self.on_update.deliver(item, bar=bar)

    # --- the clock, on the feed's own thread ---------------------------------------------------------

    def _heard_now(self) -> float:
        """Now, for the clock, but never past what the session has heard (plus a heartbeat): a
        relay that went quiet finishes no bar until it is heard again or says what it lost."""
        now = time.time()
        heard_until = getattr(self.session, "heard_until", None)  # (a capability, not a class)
        heard = heard_until() if callable(heard_until) else None
        if isinstance(heard, float) and heard + HEARD_SLACK < now:
            return heard + HEARD_SLACK
        return now

    def _run_timer(self) -> None:
        while not self._stop.wait(CHECK_INTERVAL):
            if self.session.state in _ENDED:  # closing the session stops the feed
                self.close()
                return
            try:
                with self._lock:
                    if self._closed:
                        return
                    out = self._engine.advance(self._heard_now())
                    if out:
                        self._emit(out, wake=False)  # queued in order under the lock ...
                if out:  # ... and delivered outside it (a receiver may ask for current())
                    self.session.post(self._flush, None)
            except Exception as exc:  # a bug of ours must not end the clock: logged and reported
                logger.exception("bar feed clock failed")
                self.session.post(self.session.on_error, self.session, error=exc)
