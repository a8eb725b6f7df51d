"""The simulator's regular session: coherent 0B trades against 0D books, in Kiwoom's conventions."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from kiwoom_rt import OrderBook, RealtimeSession, Trade, protocol
from kiwoom_rt.messages import RealBatch
from kiwoom_rt.sim import DEFAULT_TOKEN, SimClock, SimServer
from kiwoom_rt.sim.market import RegularMarket, in_regular_session, tick_size

from .helpers import Collector


def typed(type_code: str, values: dict[str, str]) -> Any:
    batch = protocol.decode(json.dumps({"trnm": "REAL", "data": [
        {"type": type_code, "item": "005930", "values": values}]}))
    assert isinstance(batch, RealBatch)
    assert batch.errors == ()
    return batch.events[0]


def direction(raw: str) -> int:
    return 1 if raw.startswith("+") else -1 if raw.startswith("-") else 0


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_trades_happen_at_the_best_prices_of_the_book_shown(seed: int) -> None:
    market = RegularMarket(seed)
    moment = dt.time(10, 0)
    previous_book: OrderBook | None = None
    volume = 0
    prices: list[int] = []
    for _ in range(300):
        book_values = market.book("005930", moment)
        book = typed("0D", book_values)
        # the book is whole and ordered; totals are the sums of its levels
        assert len(book.asks) == len(book.bids) == 10
        assert [lv.price for lv in book.asks] == sorted(lv.price for lv in book.asks)
        assert [lv.price for lv in book.bids] == sorted((lv.price for lv in book.bids), reverse=True)
        assert book.asks[0].price > book.bids[0].price
        assert all(b.price - a.price == tick_size(a.price) for a, b in zip(book.asks, book.asks[1:], strict=False))
        assert book.ask_total == sum(lv.quantity for lv in book.asks)
        assert book.bid_total == sum(lv.quantity for lv in book.bids)
        if previous_book is not None:
            assert book.ask_total_change == book.ask_total - previous_book.ask_total
            assert book.bid_total_change == book.bid_total - previous_book.bid_total
            before = {lv.price: lv.quantity for lv in (*previous_book.asks, *previous_book.bids)}
            for level in (*book.asks, *book.bids):
                assert level.change == level.quantity - before.get(level.price, level.quantity)
        assert (book.expected_price, book.expected_volume) == (None, None)  # blank in continuous trading
        trade_values = market.trade("005930", moment)
        trade = typed("0B", trade_values)
        assert isinstance(trade, Trade)
        if trade.volume > 0:  # buyer-initiated: at the best ask shown
            assert trade.price == book.asks[0].price
            assert trade.volume <= book.asks[0].quantity
        else:
            assert trade.price == book.bids[0].price
            assert -trade.volume <= book.bids[0].quantity
        volume += abs(trade.volume)
        prices.append(trade.price)
        assert trade.cumulative_volume == volume
        assert (trade.open, trade.high, trade.low) == (prices[0], max(prices), min(prices))
        # Kiwoom's signs: a price's sign is its direction against the previous close, like the change's
        close = trade.price - trade.change
        assert direction(trade_values["10"]) == (trade.price > close) - (trade.price < close)
        assert direction(trade_values["11"]) == direction(trade_values["10"])
        assert trade.rate == pytest.approx(round(trade.change * 100 / close, 2))
        # the next book's changes are against the last one sent: send one after the trade
        previous_book = typed("0D", market.book("005930", moment))


def test_same_seed_same_session() -> None:
    a, b = RegularMarket(3), RegularMarket(3)
    moment = dt.time(11, 0)
    assert [a.trade("000660", moment) for _ in range(20)] == [b.trade("000660", moment) for _ in range(20)]


def test_regular_session_hours() -> None:
    assert not in_regular_session(dt.time(8, 59, 59))
    assert in_regular_session(dt.time(9, 0))
    assert in_regular_session(dt.time(15, 29, 59))
    assert not in_regular_session(dt.time(15, 30))


@pytest.mark.parametrize(("clock", "flowing"), [(dt.time(10, 0), {"0B", "0D"}), (dt.time(16, 30), {"0E"})])
def test_the_simulator_streams_what_the_hour_allows(clock: dt.time, flowing: set[str]) -> None:
    with SimServer(rate=400, clock=SimClock(clock, speed=0)) as sim:
        session = RealtimeSession(DEFAULT_TOKEN, url=sim.url)
        got = Collector()
        session.on_real.connect(got)
        try:
            session.start(timeout=10)
            session.subscribe(["005930", "000660"], ["0B", "0D", "0E"]).wait(10)
            got.wait_for(60, timeout=10)
        finally:
            session.close()
    assert {event.type for event in got.events} == flowing
    for event in got.events:
        if isinstance(event, Trade):
            assert event.price is not None
            assert event.volume is not None
        if isinstance(event, OrderBook):
            assert event.ask_total == sum(level.quantity for level in event.asks)
