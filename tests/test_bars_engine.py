"""The pure bar engine (kiwoom_rt._bars), by calling it: boundaries, OHLCV, the buy/sell split,
tick and volume bars, late trades, the complete rules, fill_empty and market-clock finals."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiwoom_rt._bars import KST, Bar, BarEngine, Stamper, TradeReader, bar_spec, parse_interval, trade_timestamp
from kiwoom_rt.us import to_eastern

DAY = dt.datetime(2026, 12, 3, tzinfo=KST)


def at(h: int, m: int, s: int = 0) -> float:
    return (DAY + dt.timedelta(hours=h, minutes=m, seconds=s)).timestamp()


def feed(engine: BarEngine, trades: list[tuple[str, float, float, int]], lag: float = 0.0) -> list[tuple[str, Any]]:
    """Trades as (item, exchange time, price, volume), each received ``lag`` s after its time."""
    out: list[tuple[str, Any]] = []
    for item, ts, price, volume in trades:
        out += engine.trade(item, ts, KST, price, volume, ts + lag)
    return out


def finals(out: list[tuple[str, Any]]) -> list[Bar]:
    return [thing for kind, thing in out if kind == "final"]


# --- intervals and kinds ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [("10s", 10), ("1m", 60), ("5m", 300), ("1h", 3600), ("15min", 900),
                                                ("1 hour", 3600), ("30S", 30), ("1d", 86400)])
def test_intervals(text: str, seconds: int) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "m", "0s", "7m", "1.5m", "-1m", "1w"])
def test_bad_intervals_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="interval"):
        parse_interval(text)


def test_one_kind_of_bar_at_a_time() -> None:
    assert bar_spec() == bar_spec("1m")
    assert bar_spec(ticks=5).kind == "ticks"
    assert bar_spec(volume=100).kind == "volume"
    with pytest.raises(ValueError, match="one kind of bar"):
        bar_spec("1m", ticks=5)
    with pytest.raises(ValueError, match="one kind of bar"):
        bar_spec(ticks=5, volume=10)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="positive int"):
            bar_spec(ticks=bad)  # type: ignore[arg-type]


# --- time bars ----------------------------------------------------------------------------------------

def test_boundaries_are_half_open_and_aligned_to_the_clock() -> None:
    engine = BarEngine(bar_spec("1m"))
    out = feed(engine, [("A", at(9, 0, 0), 100, 1), ("A", at(9, 0, 59), 101, 1), ("A", at(9, 1, 0), 102, 1)])
    [bar] = finals(out)
    assert (bar.start, bar.end) == (DAY.replace(hour=9), DAY.replace(hour=9, minute=1))
    assert bar.trades == 2
    assert bar.close == 101
    assert bar.start.utcoffset() == dt.timedelta(hours=9)
    current = engine.current("A", at(9, 1, 0))
    assert current is not None
    assert current.start == DAY.replace(hour=9, minute=1)
    assert current.open == 102
    assert not current.final
    five = BarEngine(bar_spec("5m"))
    feed(five, [("A", at(9, 7, 30), 1, 1)])
    assert five.current("A", at(9, 7, 30)).start == DAY.replace(hour=9, minute=5)  # type: ignore[union-attr]


def test_ohlcv_buy_sell_split_amount_and_vwap() -> None:
    engine = BarEngine(bar_spec("1m"))
    trades = [("A", at(9, 0, 1), 100.0, 10), ("A", at(9, 0, 2), 105.0, -4), ("A", at(9, 0, 3), 95.0, 6),
              ("A", at(9, 0, 4), 99.0, 0), ("A", at(9, 1, 0), 1.0, 1)]
    [bar] = finals(feed(engine, trades))
    assert (bar.open, bar.high, bar.low, bar.close) == (100.0, 105.0, 95.0, 99.0)
    assert bar.volume == 20
    assert (bar.buy_volume, bar.sell_volume) == (16, 4)  # a trade with no sign is in neither
    assert bar.amount == 100 * 10 + 105 * 4 + 95 * 6
    assert bar.vwap == pytest.approx(bar.amount / 20)
    assert bar.trades == 4
    assert bar.final


def test_items_have_their_own_bars_on_one_clock() -> None:
    engine = BarEngine(bar_spec("1m"))
    out = feed(engine, [("A", at(9, 0, 1), 1, 1), ("B", at(9, 0, 2), 2, 2), ("A", at(9, 1, 1), 3, 3)])
    assert [(bar.item, bar.close) for bar in finals(out)] == [("A", 1)]
    # B never trades again: the market clock (A's trades) passes its end + grace
    out = feed(engine, [("A", at(9, 1, 2), 4, 1)])
    assert [(bar.item, bar.close, bar.final) for bar in finals(out)] == [("B", 2, True)]


def test_market_clock_finals_come_after_the_grace() -> None:
    engine = BarEngine(bar_spec("1m"), grace=2.0)
    feed(engine, [("A", at(9, 0, 50), 1, 1)], lag=0.25)
    received = at(9, 0, 50) + 0.25
    assert engine.advance(received + 11.0) == []  # clock 09:01:01: within the grace
    assert engine.advance(received + 11.9) == []
    [(kind, bar)] = engine.advance(received + 12.0)  # 09:01:02
    assert kind == "final"
    assert bar.end == DAY.replace(hour=9, minute=1)
    assert engine.advance(received + 100) == []  # once only
    assert engine.clock(received) == at(9, 2, 30)  # never going back


def test_a_late_trade_is_counted_and_never_changes_a_final_bar() -> None:
    engine = BarEngine(bar_spec("1m"))
    out = feed(engine, [("A", at(9, 0, 10), 100, 1), ("A", at(9, 1, 5), 101, 1), ("A", at(9, 0, 59), 50, 7)])
    [bar] = finals(out)
    late = [thing for kind, thing in out if kind == "late"]
    assert len(late) == 1
    assert late[0].price == 50
    assert late[0].bar_start == DAY.replace(hour=9)
    assert bar.low == 100  # untouched
    assert engine.late == 1
    # a late trade for a bar finished by the clock alone, for an item with no bar open
    engine.advance(at(9, 3, 0))
    out = feed(engine, [("A", at(9, 1, 30), 1, 1)])
    assert [kind for kind, _ in out] == ["late"]
    assert engine.late == 2


def test_trades_out_of_order_within_an_open_bar_are_not_late() -> None:
    engine = BarEngine(bar_spec("1m"))
    out = feed(engine, [("A", at(9, 0, 30), 100, 1), ("A", at(9, 0, 10), 90, 1)])
    assert [kind for kind, _ in out] == ["update", "update"]
    assert engine.late == 0


# --- tick and volume bars ------------------------------------------------------------------------------

def test_tick_bars_finish_at_the_nth_trade() -> None:
    engine = BarEngine(bar_spec(ticks=3))
    out = feed(engine, [("A", at(9, 0, s), 100 + s, 1) for s in range(7)])
    bars = finals(out)
    assert [bar.trades for bar in bars] == [3, 3]
    assert bars[0].start == DAY.replace(hour=9)
    assert bars[0].end == DAY.replace(hour=9, second=3)  # the last trade's time + 1 s
    assert (bars[1].open, bars[1].close) == (103, 105)
    assert engine.current("A", at(9, 0, 6)).trades == 1  # type: ignore[union-attr]
    assert engine.advance(at(10, 0)) == []  # the clock never finishes a tick bar


def test_a_trade_that_overflows_a_volume_bar_stays_whole_in_the_bar_it_filled() -> None:
    engine = BarEngine(bar_spec(volume=100))
    out = feed(engine, [("A", at(9, 0, 1), 10, 60), ("A", at(9, 0, 2), 11, -70), ("A", at(9, 0, 3), 12, 5)])
    [bar] = finals(out)
    assert bar.volume == 130  # the excess 30 did not start the next bar
    assert (bar.buy_volume, bar.sell_volume) == (60, 70)
    assert engine.current("A", at(9, 0, 3)).volume == 5  # type: ignore[union-attr]


def test_tick_bars_have_no_late_trades() -> None:
    engine = BarEngine(bar_spec(ticks=2))
    out = feed(engine, [("A", at(9, 0, 5), 1, 1), ("A", at(9, 0, 6), 1, 1), ("A", at(9, 0, 5), 1, 1)])
    assert "late" not in [kind for kind, _ in out]


# --- complete -------------------------------------------------------------------------------------------

def test_the_first_bar_is_incomplete_unless_the_clock_was_known_at_its_start() -> None:
    engine = BarEngine(bar_spec("1m"))
    out = feed(engine, [("A", at(9, 0, 20), 1, 1), ("B", at(9, 0, 40), 1, 1), ("A", at(9, 1, 0), 1, 1),
                        ("B", at(9, 1, 30), 1, 1), ("C", at(9, 1, 45), 1, 1), ("A", at(9, 2, 0), 1, 1),
                        ("B", at(9, 2, 0), 1, 1), ("C", at(9, 2, 0), 1, 1)])
    assert {(bar.item, bar.start.minute): bar.complete for bar in finals(out)} == {
        ("A", 0): False, ("B", 0): False,  # the feed started inside 09:00
        ("A", 1): True, ("B", 1): True, ("C", 1): True,  # C's first bar, but the clock was known at 09:01
    }
    exact = BarEngine(bar_spec("1m"))
    [bar] = finals(feed(exact, [("A", at(9, 0, 0), 1, 1), ("A", at(9, 1, 0), 1, 1)]))
    assert bar.complete  # the first trade exactly at the start: watched from the start


def test_a_disconnect_marks_every_bar_open_across_it_and_never_cuts_one() -> None:
    engine = BarEngine(bar_spec("1m"))
    feed(engine, [("A", at(9, 0, 0), 1, 1), ("A", at(9, 1, 0), 1, 1), ("B", at(9, 1, 5), 1, 1)])
    engine.outage_began(at(9, 1, 20))
    engine.outage_ended(at(9, 1, 40))
    out = feed(engine, [("A", at(9, 1, 50), 2, 1), ("C", at(9, 1, 55), 3, 1), ("A", at(9, 2, 0), 1, 1),
                        ("B", at(9, 2, 1), 1, 1), ("C", at(9, 2, 1), 1, 1), ("A", at(9, 3, 0), 1, 1)])
    got = {(bar.item, bar.start.minute): bar for bar in finals(out)}
    assert got["A", 1].trades == 2  # the trades before and after the outage: one bar
    assert not got["A", 1].complete
    assert not got["B", 1].complete
    assert not got["C", 1].complete  # opened after the outage, but its interval spans it
    assert got["A", 2].complete  # the next bars are complete again


def test_a_bar_open_while_down_is_incomplete_even_before_the_reconnect() -> None:
    engine = BarEngine(bar_spec("1m"))
    feed(engine, [("A", at(9, 0, 0), 1, 1)])
    engine.outage_began(at(9, 0, 30))
    current = engine.current("A", at(9, 0, 31))
    assert current is not None
    assert not current.complete


def test_dropped_events_mark_the_bars_open_then() -> None:
    engine = BarEngine(bar_spec("1m"))
    feed(engine, [("A", at(9, 0, 0), 1, 1), ("A", at(9, 1, 0), 1, 1), ("B", at(9, 1, 1), 1, 1)])
    engine.dropped(at(9, 1, 30))
    out = feed(engine, [("A", at(9, 2, 0), 1, 1), ("B", at(9, 2, 0), 1, 1), ("A", at(9, 3, 0), 1, 1)])
    assert {(bar.item, bar.start.minute): bar.complete for bar in finals(out)} == {
        ("A", 1): False, ("B", 1): False, ("A", 2): True}


def test_finish_delivers_the_last_bars_and_marks_one_cut_short() -> None:
    engine = BarEngine(bar_spec("1m"))
    feed(engine, [("A", at(9, 0, 0), 1, 1), ("B", at(9, 0, 0), 1, 1), ("A", at(9, 1, 0), 2, 1)])
    out = engine.finish(at(9, 1, 10))
    assert {(bar.item, bar.start.minute): bar.complete for bar in finals(out)} == {("B", 0): True, ("A", 1): False}


# --- fill_empty ------------------------------------------------------------------------------------------

def test_fill_empty_emits_flat_bars_between_trades() -> None:
    engine = BarEngine(bar_spec("1m"), fill_empty=True)
    out = feed(engine, [("A", at(9, 0, 0), 100, 5), ("A", at(9, 3, 10), 110, 1)])
    bars = finals(out)
    assert [bar.start.minute for bar in bars] == [0, 1, 2]
    flat = bars[1]
    assert (flat.open, flat.high, flat.low, flat.close, flat.volume, flat.trades) == (100, 100, 100, 100, 0, 0)
    assert flat.vwap is None
    assert flat.complete
    plain = BarEngine(bar_spec("1m"))
    assert len(finals(feed(plain, [("A", at(9, 0, 0), 100, 5), ("A", at(9, 3, 10), 110, 1)]))) == 1


# --- times ---------------------------------------------------------------------------------------------------

def test_domestic_times_take_the_date_closest_to_receipt() -> None:
    received = dt.datetime(2026, 12, 4, 0, 0, 3, tzinfo=KST).timestamp()  # just after midnight
    ts, zone = trade_timestamp(dt.time(23, 59, 58), received)
    assert dt.datetime.fromtimestamp(ts, zone) == dt.datetime(2026, 12, 3, 23, 59, 58, tzinfo=KST)
    stamp = Stamper("kr")
    assert stamp(dt.time(23, 59, 58), received) == (ts, zone)
    assert stamp(dt.time(9, 0), at(9, 0, 1)) == (at(9, 0), KST)


def test_us_times_are_eastern_with_daylight_saving() -> None:
    summer = dt.datetime(2026, 7, 1, 13, 30, 1, tzinfo=dt.UTC).timestamp()  # 09:30:01 EDT
    ts, zone = trade_timestamp(dt.time(9, 30), summer, "us")
    local = dt.datetime.fromtimestamp(ts, zone)
    assert (local.hour, local.minute, local.utcoffset()) == (9, 30, dt.timedelta(hours=-4))
    winter = dt.datetime(2026, 12, 3, 14, 30, 1, tzinfo=dt.UTC).timestamp()  # 09:30:01 EST
    ts, zone = Stamper("us")(dt.time(9, 30), winter)
    assert dt.datetime.fromtimestamp(ts, zone).utcoffset() == dt.timedelta(hours=-5)
    ts, zone = trade_timestamp(dt.time(9, 30), winter, "us", dt.date(2026, 12, 2))  # the trade's own date
    assert dt.datetime.fromtimestamp(ts, zone) == to_eastern(dt.datetime(2026, 12, 2, 14, 30, tzinfo=dt.UTC))


# --- properties ------------------------------------------------------------------------------------------------

trade_lists = st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 600), st.integers(1, 1000),
                                 st.integers(-500, 500)), max_size=80)


@pytest.mark.parametrize("kind", [{"interval": "10s"}, {"interval": "1m"}, {"ticks": 3}, {"volume": 250}])
@settings(max_examples=60, deadline=None)
@given(trades=trade_lists)
def test_every_trade_is_in_exactly_one_bar_or_counted_late(kind: dict[str, Any],
                                                            trades: list[tuple[str, int, int, int]]) -> None:
    engine = BarEngine(bar_spec(**kind), fill_empty="interval" in kind)
    out: list[tuple[str, Any]] = []
    for index, (item, offset, price, volume) in enumerate(trades):
        out += engine.trade(item, at(9, 0) + offset, KST, float(price), volume, at(9, 0) + offset)
        # (counted by the bars, open and final; an untrusted first trade far from the next is disowned)
        assert engine.trades + engine.late + engine.implausible == index + 1
    out += engine.finish(at(9, 0) + 10_000)
    bars = finals(out)
    late = [thing for kind_, thing in out if kind_ in ("late", "implausible")]
    assert sum(bar.trades for bar in bars) + len(late) == len(trades)
    assert engine.trades == sum(bar.trades for bar in bars)
    for item in "ABC":
        traded = sum(abs(v) for i, _, _, v in trades if i == item) - sum(abs(t.volume) for t in late if t.item == item)
        assert sum(bar.volume for bar in bars if bar.item == item) == traded
    for bar in bars:
        assert bar.low <= min(bar.open, bar.close)
        assert bar.high >= max(bar.open, bar.close)
        assert bar.buy_volume + bar.sell_volume <= bar.volume
        assert bar.start < bar.end
    if "interval" in kind:  # time bars of one item never overlap
        for item in "ABC":
            mine = sorted((bar.start, bar.end) for bar in bars if bar.item == item)
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(mine))


@settings(max_examples=40, deadline=None)
@given(trades=trade_lists)
def test_the_same_trades_give_the_same_bars(trades: list[tuple[str, int, int, int]]) -> None:
    def run() -> list[Bar]:
        engine = BarEngine(bar_spec("10s"))
        out: list[tuple[str, Any]] = []
        for item, offset, price, volume in trades:
            out += engine.trade(item, at(9, 0) + offset, KST, float(price), volume, at(9, 0) + offset + 0.1)
        return finals(out + engine.finish(at(9, 0) + 10_000))
    assert run() == run()


read_batches = st.lists(st.lists(st.tuples(st.sampled_from("ABC"),  # (times repeat, as a second's trades do)
                                           st.one_of(st.integers(0, 600), st.sampled_from([0, 9, 10, 59, 60, 61])),
                                           st.integers(1, 1000),
                                           st.integers(-500, 500)), min_size=1, max_size=8),
                        max_size=30)


def decoded(batch: list[tuple[str, int, int, int]], received: float, bad: set[int]) -> list[Any]:
    """0B events (and a 0D between, when there are several: a read of one trade is read on its own
    path) as the intake decodes them; ``bad`` indexes get an unusable time."""
    from kiwoom_rt import protocol

    entries: list[dict[str, Any]] = []
    for index, (item, offset, price, volume) in enumerate(batch):
        moment = dt.datetime.fromtimestamp(at(9, 0) + offset, KST)
        entries.append({"type": "0B", "name": "", "item": item,
                        "values": {"20": "99xx99" if index in bad else moment.strftime("%H%M%S"),
                                   "10": f"{'-' if price % 3 == 0 else '+'}{price}",
                                   "15": f"{'+' if volume >= 0 else ''}{volume}"}})
        if index == 0 and len(batch) > 1:
            entries.append({"type": "0D", "name": "", "item": item, "values": {"21": moment.strftime("%H%M%S")}})
    events: list[Any] = []
    protocol.decode_frames([json.dumps({"trnm": "REAL", "data": entries})], events, received_at=received)
    return events


@pytest.mark.parametrize("kind", [{"interval": "10s"}, {"interval": "1m"}, {"ticks": 3}])
@pytest.mark.parametrize("updates", [False, True])
@settings(max_examples=60, deadline=None)
@given(batches=read_batches, lags=st.lists(st.floats(0, 30), min_size=30, max_size=30),
       bad=st.sets(st.integers(0, 7), max_size=2))
def test_the_readers_inlined_path_gives_what_add_gives_trade_by_trade(
        kind: dict[str, Any], updates: bool, batches: list[list[tuple[str, int, int, int]]], lags: list[float],
        bad: set[int]) -> None:
    """``TradeReader.place`` places most trades itself; it is only a faster way to ``add``'s outcome
    (unusable trades, other types, an outage and late trades among them)."""
    one, many = BarEngine(bar_spec(**kind), updates=updates), BarEngine(bar_spec(**kind), updates=updates)
    reader = TradeReader(many, "kr", {"0B"}, None)
    stamp = Stamper()
    out_one: list[tuple[str, Any]] = []
    out_many: list[tuple[str, Any]] = []
    received = at(9, 0)
    for index, batch in enumerate(batches):
        received += lags[index]
        for position, (item, offset, price, volume) in enumerate(batch):
            if position in bad:
                one.dropped(received)
                continue
            ts, zone = stamp(dt.datetime.fromtimestamp(at(9, 0) + offset, KST).time(), received)
            one.add(item, ts, zone, price, volume, received, out_one)
        reader.place(decoded(batch, received, bad), out_many)
        if index == len(batches) // 2:  # an outage in the middle: the inlined path must hand over
            for engine in (one, many):
                engine.outage_began(received)
                engine.outage_ended(received)
    out_one += one.finish(received + 1000)
    out_many += many.finish(received + 1000)
    assert out_many == out_one
    assert (many.trades, many.late) == (one.trades, one.late)
    assert one.trades == sum(bar.trades for bar in finals(out_one))  # (every bar is final after finish)
    assert reader.unusable == sum(len(bad & set(range(len(batch)))) for batch in batches)


@pytest.mark.parametrize("updates", [False, True])
def test_reads_of_one_trade_give_what_add_gives(updates: bool) -> None:
    """A quiet market's reads hold one frame each, and take a path of their own: the same bars,
    the unusable trade counted and marking its bar, the receive time kept for the clock."""
    reader = TradeReader(BarEngine(bar_spec("1m"), updates=updates), "kr", {"0B"}, None)
    one = BarEngine(bar_spec("1m"), updates=updates)
    out_one: list[tuple[str, Any]] = []
    out_many: list[tuple[str, Any]] = []
    trades = [("A", 10, 100, 5), ("B", 20, 50, -3), ("A", 70, 101, 2), ("A", 80, 102, 1), ("B", 95, 51, 4),
              ("A", 130, 99, -7), ("B", 140, 52, 1), ("A", 190, 98, 3)]
    stamp = Stamper()
    for index, trade in enumerate(trades):
        received = at(9, 0) + trade[1] + 0.1
        unusable = index == 3  # (A at 09:01:20: its bar missed a trade)
        reader.place(decoded([trade], received, {0} if unusable else set()), out_many)
        assert reader.last_received == received
        if unusable:
            one.dropped(received)
            continue
        ts, zone = stamp(dt.datetime.fromtimestamp(at(9, 0) + trade[1], KST).time(), received)
        one.add(trade[0], ts, zone, float(trade[2]), trade[3], received, out_one)
    out_one += one.finish(at(9, 5))
    out_many += reader.engine.finish(at(9, 5))
    assert out_many == out_one
    assert reader.unusable == 1
    complete = {(bar.item, bar.start.minute): bar.complete for bar in finals(out_many)}
    assert complete == {("A", 0): False, ("B", 0): False, ("A", 1): False, ("B", 1): False,  # (the drop)
                        ("A", 2): True, ("B", 2): True, ("A", 3): True}


@settings(max_examples=100, deadline=None)
@given(trades=st.lists(st.tuples(st.integers(0, 119), st.one_of(st.integers(1, 10**6), st.floats(0.01, 1e4)),
                                 st.integers(-10**4, 10**4)), min_size=1, max_size=40))
def test_a_bars_figures_are_those_of_its_trades(trades: list[tuple[int, float, int]]) -> None:
    """Against a plain reading of the rules: OHLC, the split by sign, the amount summed in trade
    order, and the count, for ints and floats alike."""
    engine = BarEngine(bar_spec("1m"), updates=False)
    out: list[tuple[str, Any]] = []
    ordered = sorted(trades, key=lambda trade: trade[0])  # (in time order: none is late)
    for offset, price, volume in ordered:
        engine.add("A", at(9, 0) + offset, KST, price, volume, at(9, 0) + offset, out)
    out += engine.finish(at(9, 0) + 1000)
    bars = finals(out)
    for minute in (0, 1):
        mine = [(price, volume) for offset, price, volume in ordered if offset // 60 == minute]
        found = [bar for bar in bars if bar.start == dt.datetime.fromtimestamp(at(9, minute), KST)]
        if not mine:
            assert not found
            continue
        (bar,) = found
        prices = [price for price, _ in mine]
        amount = 0.0
        for price, volume in mine:
            amount += price * abs(volume)
        assert (bar.open, bar.high, bar.low, bar.close) == (prices[0], max(prices), min(prices), prices[-1])
        assert bar.buy_volume == sum(v for _, v in mine if v > 0)
        assert bar.sell_volume == -sum(v for _, v in mine if v < 0)
        assert bar.volume == sum(abs(v) for _, v in mine)
        assert bar.amount == amount
        assert type(bar.amount) is float
        assert bar.trades == len(mine)


def test_an_engine_bar_is_an_ordinary_frozen_bar() -> None:
    """Bars are built on a twin class and given Bar's class: nothing of that may show."""
    import attrs

    engine = BarEngine(bar_spec("1m"), updates=False)
    out = engine.trade("A", at(9, 0, 5), KST, 100.0, 7, at(9, 0, 5))
    out += engine.trade("A", at(9, 1, 5), KST, 101.0, -3, at(9, 1, 5))
    (kind, bar), = out
    assert kind == "final"
    assert type(bar) is Bar
    expected = Bar("A", dt.datetime.fromtimestamp(at(9, 0), KST), dt.datetime.fromtimestamp(at(9, 1), KST),
                   100.0, 100.0, 100.0, 100.0, 7, 7, 0, 700.0, 1, False, True)
    assert bar == expected
    assert hash(bar) == hash(expected)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        bar.close = 1.0  # type: ignore[misc]
    assert attrs.evolve(bar, close=99.0).close == 99.0
    assert attrs.asdict(bar) == attrs.asdict(expected)


# --- faults: outlier times, unusable prices, gaps (issue 37) --------------------------------------------

def test_one_items_outlier_time_never_closes_another_items_bars() -> None:
    """One 035420 trade stamped 15:00:00 during 09:00:2x: 005930's and 000660's trades of
    09:00:25-27 still land in their bars, none of them late."""
    engine = BarEngine(bar_spec("1m"))
    reader = TradeReader(engine, "kr", {"0B"}, None)
    out: list[tuple[str, Any]] = []
    for second in range(20, 28):
        batch = [("005930", second, 70000 + second, 10), ("000660", second, 180000 + second, 5)]
        if second == 24:
            batch.append(("035420", 6 * 3600, 200000, 1))  # 15:00:00
        reader.place(decoded(batch, at(9, 0, second) + 0.05, set()), out)
    assert engine.late == 0
    assert engine.implausible == 1
    [odd] = [thing for kind, thing in out if kind == "implausible"]
    assert odd.item == "035420"
    assert odd.time.hour == 15
    assert engine.clock(at(9, 0, 28)) < at(9, 1)  # the outlier never moved the clock
    out += engine.finish(at(9, 1, 30))
    bars = {bar.item: bar for bar in finals(out)}
    assert bars["005930"].trades == bars["000660"].trades == 8
    assert not bars["005930"].complete  # it was open when a trade was refused


@pytest.mark.parametrize("fast", [True, False], ids=["reader", "add"])
def test_an_outlier_first_trade_is_disowned_by_the_next(fast: bool) -> None:
    """The feed's very first trade is 035420 stamped 15:00:00 during 09:00:2x. Alone it proves
    nothing: the next trade, impossibly far from it, shows it was the outlier. It is refused as
    implausible, and 005930's and 000660's trades all land in their bars, none late."""
    engine = BarEngine(bar_spec("10s"))
    reader = TradeReader(engine, "kr", {"0B"}, None)
    out: list[tuple[str, Any]] = []
    trades = [("035420", 6 * 3600, 200000, 1)] + [
        (item, second, 70000 + second, 10) for second in range(20, 38) for item in ("005930", "000660")]
    for item, second, price, volume in trades:
        received = at(9, 0, 20) + (second - 20 if second < 3600 else 0) + 0.05
        if fast:
            reader.place(decoded([(item, second, price, volume)], received, set()), out)
        else:
            out += engine.trade(item, at(9, 0, second), KST, float(price), volume, received)
    out += engine.finish(at(9, 1, 30))
    assert engine.late == 0
    assert engine.implausible == 1
    [odd] = [thing for kind, thing in out if kind == "implausible"]
    assert (odd.item, odd.time.hour) == ("035420", 15)
    bars = finals(out)
    assert {bar.item for bar in bars} == {"005930", "000660"}
    assert sum(bar.trades for bar in bars) == 36
    assert [(bar.start.second, bar.complete) for bar in bars if bar.item == "005930"] == [(20, True), (30, True)]


def test_a_us_trade_without_its_local_time_is_placed_by_its_kst_time() -> None:
    """FE without FID 51020: FID 20 is KST, converted to Eastern, never read as Eastern."""
    from kiwoom_rt import protocol

    received = dt.datetime(2026, 12, 3, 10, 30, 5, tzinfo=dt.UTC).timestamp()  # 05:30:05 Eastern, 19:30 KST
    entries = [{"type": "FE", "name": "", "item": "NVDA",
                "values": {"20": "193000", "10": "+180.25", "15": "+10", "22": "20261203"}},
               {"type": "FE", "name": "", "item": "NVDA",
                "values": {"20": "193002", "51020": "053002", "10": "+180.50", "15": "+5", "22": "20261203"}}]
    events: list[Any] = []
    protocol.decode_frames([json.dumps({"trnm": "REAL", "data": entries})], events, received_at=received)
    engine = BarEngine(bar_spec("1m"))
    reader = TradeReader(engine, "us", {"FE"}, None)
    out: list[tuple[str, Any]] = []
    reader.place(events, out)
    assert engine.implausible == 0
    bar = engine.current("NVDA", received)
    assert bar is not None
    assert bar.trades == 2  # both in the 05:30 Eastern bar
    assert (bar.start.hour, bar.start.minute) == (5, 30)
    assert bar.start.utcoffset() == dt.timedelta(hours=-5)


def test_a_zero_price_is_unusable_and_never_a_bars_low() -> None:
    engine = BarEngine(bar_spec("1m"))
    reader = TradeReader(engine, "kr", {"0B"}, None)
    out: list[tuple[str, Any]] = []
    for offset, price in ((5, 100), (6, 0), (7, 101)):
        reader.place(decoded([("A", offset, price, 1)], at(9, 0, offset), set()), out)  # (0 is sent as "-0")
    out += engine.finish(at(9, 2))
    [bar] = finals(out)
    assert (bar.low, bar.trades, bar.complete) == (100, 2, False)
    assert reader.unusable == 1


outlier_streams = st.lists(
    st.tuples(st.sampled_from(["A", "B"]), st.integers(0, 300), st.integers(1, 1000), st.integers(-50, 50),
              st.sampled_from(["normal"] * 6 + ["outlier", "duplicate", "gap", "unusable"])),
    max_size=60)


@pytest.mark.parametrize("interval", ["10s", "1m"])
@settings(max_examples=60, deadline=None)
@given(stream=outlier_streams, outlier_first=st.booleans())
def test_no_trade_is_lost_to_another_items_times_and_every_bar_over_a_gap_is_incomplete(
        interval: str, stream: list[tuple[str, int, int, int, str]], outlier_first: bool) -> None:
    """Random trades in time order (items A and B, receive time = exchange time), with C's
    outlier times hours ahead, duplicates, gaps and unusable trades among them: every A and B
    trade is in a bar (none late, none lost), and every bar open across a gap or an unusable
    trade is incomplete."""
    # the feed starts with a usable trade, or with C's outlier and then one (it is disowned)
    first = [("C", 0, 100, 1, "outlier")] if outlier_first else []
    stream = [*first, ("A", 0, 100, 1, "normal"), *sorted(stream, key=lambda t: t[1])]
    engine = BarEngine(bar_spec(interval))
    reader = TradeReader(engine, "kr", {"0B"}, None)
    out: list[tuple[str, Any]] = []
    holes: list[float] = []  # market times at which something was lost
    placed = 0
    for item, offset, price, volume, what in stream:
        received = at(9, 0, 0) + offset + 0.1
        if what == "gap":
            engine.dropped(received)
            holes.append(at(9, 0, 0) + offset)
            continue
        if what == "outlier":
            reader.place(decoded([("C", offset + 5 * 3600, price, volume)], received, set()), out)
            if engine.implausible:
                holes.append(at(9, 0, 0) + offset)
            continue
        if what == "unusable":
            reader.place(decoded([(item, offset, price, volume)], received, {0}), out)
            holes.append(at(9, 0, 0) + offset)
            continue
        batch = [(item, offset, price, volume)] * (2 if what == "duplicate" else 1)
        reader.place(decoded(batch, received, set()), out)
        placed += len(batch)
    out += engine.finish(at(9, 0, 0) + 10_000)
    bars = [bar for bar in finals(out) if bar.item != "C"]
    assert engine.late == 0
    assert sum(bar.trades for bar in bars) == placed - sum(
        1 for kind, thing in out if kind == "implausible" and thing.item != "C")
    for bar in bars:
        if any(bar.start.timestamp() <= hole < bar.end.timestamp() for hole in holes):
            assert not bar.complete, (bar, holes)


def test_an_outage_ends_with_the_first_trade_back_whatever_came_in_between() -> None:
    """Found by the relay-kill test: the relay went silent (an outage opens), came back, then
    reported a gap (a mark after the open outage); the first trade back closed the gap's mark
    instead of the outage, which stayed open, and every later bar was incomplete."""
    engine = BarEngine(bar_spec("10s"))
    out: list[tuple[str, Any]] = []
    for second in range(0, 15):
        out += engine.trade("A", at(9, 0, second), KST, 100.0, 1, at(9, 0, second))
    engine.outage_began(at(9, 0, 15))
    engine.outage_ended(at(9, 0, 18))
    engine.missed(at(9, 0, 14), at(9, 0, 17))
    engine.dropped(at(9, 0, 18))
    for second in range(30, 65):
        out += engine.trade("A", at(9, 0, second), KST, 100.0, 1, at(9, 0, second))
    bars = {bar.start.second + 60 * bar.start.minute: bar for bar in finals(out)}
    assert bars[0].complete
    assert not bars[10].complete
    assert not bars[30].complete  # the first trade back tells when the feed was back
    assert bars[40].complete
    assert bars[50].complete
