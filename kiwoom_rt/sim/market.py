"""The simulated market: a seeded after-hours order book and Korean session timing (pure).

Nothing here touches sockets or threads; the server asks it for values at a simulated time.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import attrs

from .spec_examples import EXAMPLE_VALUES

KST = dt.timezone(dt.timedelta(hours=9), "KST")

#: When type 0E flows: 장전 시간외 종가, then 장후 시간외 종가 and 시간외 단일가 (docs/protocol.md, "Values").
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


#: The regular session (정규장), when 0B trades and 0D books flow.
REGULAR_SESSION: tuple[dt.time, dt.time] = (dt.time(9, 0), dt.time(15, 30))


def in_regular_session(moment: dt.time) -> bool:
    """True while 0B and 0D flow (09:00-15:30 KST)."""
    return REGULAR_SESSION[0] <= moment < REGULAR_SESSION[1]


def tick_size(price: int) -> int:
    """The KRX price step for stocks at ``price`` (2023 schedule)."""
    for limit, step in ((2_000, 1), (5_000, 5), (20_000, 10), (50_000, 50), (200_000, 100), (500_000, 500)):
        if price < limit:
            return step
    return 1_000


def directed(price: int, reference: int) -> str:
    """A price with Kiwoom's direction sign against the previous close: ``+60100``, ``-59900``, ``60000``."""
    if price > reference:
        return f"+{price}"
    if price < reference:
        return f"-{price}"
    return str(price)


def rate_text(change: int, reference: int) -> str:
    """A signed percentage with two decimals: ``+0.17``, ``-1.50``, ``0.00``."""
    if not change:
        return "0.00"
    return f"{change * 100 / reference:+.2f}"


#: 0B's 전일대비기호 (FID 25): 2 up, 3 unchanged, 5 down (1 and 4 are the limits).
def _sign_code(change: int) -> str:
    return "2" if change > 0 else "5" if change < 0 else "3"


@attrs.define
class _Stock:
    close: int  # previous close: the reference for every sign
    last: int
    open: int = 0
    high: int = 0
    low: int = 0
    volume: int = 0  # cumulative
    amount: int = 0  # cumulative, won
    asks: list[list[int]] = attrs.Factory(list)  # [price, quantity], best first
    bids: list[list[int]] = attrs.Factory(list)
    quoted: dict[int, int] = attrs.Factory(dict)  # price -> quantity in the last 0D sent
    ask_total: int = 0
    bid_total: int = 0
    sent_totals: tuple[int, int] | None = None  # (ask, bid) totals in the last 0D sent


class RegularMarket:
    """A seeded, coherent regular session per item: 0D order books and the 0B trades against them.

    Every trade happens at the current best ask (buyer-initiated, volume ``+n``) or best bid
    (seller-initiated, ``-n``) and takes quantity off that level; ``open``, ``high``, ``low`` and
    the cumulative volume follow the trades. A book's totals are the sums of its ten levels, and
    each level's change (FIDs 81-100) is its difference from the previous book sent. Prices carry
    Kiwoom's direction sign against the previous close. Same seed, same sequence.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._stocks: dict[str, _Stock] = {}
        self._rngs: dict[str, random.Random] = {}

    def _rng(self, item: str) -> random.Random:
        rng = self._rngs.get(item)
        if rng is None:
            rng = self._rngs[item] = random.Random(f"regular:{self.seed}:{item}")
        return rng

    def stock(self, item: str) -> _Stock:
        stock = self._stocks.get(item)
        if stock is None:
            rng = self._rng(item)
            # previous closes spread as the market's are (log-uniform, 1,000 to 800,000 won), so
            # that items rarely share a price and a cache keyed by price text is not flattered
            close = int(1_000 * 800 ** rng.random())
            close -= close % tick_size(close)
            stock = self._stocks[item] = _Stock(close=close, last=close)
            self._refill(stock, rng)
        return stock

    def _refill(self, stock: _Stock, rng: random.Random) -> None:
        """Keep ten levels a side, one tick apart, around the last price."""
        step = tick_size(stock.last)
        if not stock.asks or not stock.bids:
            best_ask = stock.asks[0][0] if stock.asks else stock.last + step
            best_bid = stock.bids[0][0] if stock.bids else best_ask - step
            if not stock.asks:
                stock.asks = [[best_bid + step, rng.randint(1, 50) * 10]]
            if not stock.bids:
                stock.bids = [[stock.asks[0][0] - step, rng.randint(1, 50) * 10]]
        while len(stock.asks) < 10:
            price = stock.asks[-1][0]
            stock.asks.append([price + tick_size(price), rng.randint(1, 300) * 10])
        while len(stock.bids) < 10:
            price = stock.bids[-1][0]
            below = price - tick_size(price - 1)
            if below <= 0:
                break
            stock.bids.append([below, rng.randint(1, 300) * 10])
        stock.ask_total = sum(quantity for _, quantity in stock.asks)
        stock.bid_total = sum(quantity for _, quantity in stock.bids)

    def trade(self, item: str, moment: dt.datetime | dt.time) -> dict[str, str]:
        """The next 0B values of ``item``: one trade against its current book."""
        stock = self.stock(item)
        rng = self._rng(item)
        buy = rng.random() < 0.5
        side = stock.asks if buy else stock.bids
        level = side[0]
        quantity = min(level[1], rng.choice((1, 1, 2, 5, 10, 20, 50, 100, 300)))
        price = level[0]
        level[1] -= quantity
        if level[1] == 0:
            side.pop(0)
        self._refill(stock, rng)
        stock.last = price
        if not stock.open:
            stock.open = stock.high = stock.low = price
        stock.high = max(stock.high, price)
        stock.low = min(stock.low, price)
        stock.volume += quantity
        stock.amount += quantity * price
        change = price - stock.close
        close = stock.close
        values = dict(EXAMPLE_VALUES["0B"])
        values.update({
            "20": hhmmss(moment), "10": directed(price, close), "11": signed(change),
            "12": rate_text(change, close), "27": directed(stock.asks[0][0], close),
            "28": directed(stock.bids[0][0], close), "15": f"+{quantity}" if buy else f"-{quantity}",
            "13": str(stock.volume), "14": str(stock.amount // 1_000_000),
            "16": directed(stock.open, close), "17": directed(stock.high, close),
            "18": directed(stock.low, close), "25": _sign_code(change), "290": "2",
        })
        return values

    def book(self, item: str, moment: dt.datetime | dt.time) -> dict[str, str]:
        """The next 0D values of ``item``: its book after some orders arrived or left."""
        stock = self.stock(item)
        rng = self._rng(item)
        for _ in range(rng.randint(1, 3)):
            side = stock.asks if rng.random() < 0.5 else stock.bids
            level = side[rng.randrange(len(side))]
            level[1] = max(10, level[1] + rng.choice((-1, 1)) * rng.randint(1, 30) * 10)
        self._refill(stock, rng)
        previous_ask, previous_bid = stock.sent_totals or (stock.ask_total, stock.bid_total)
        stock.sent_totals = (stock.ask_total, stock.bid_total)
        close = stock.close
        values = dict(EXAMPLE_VALUES["0D"])
        values["21"] = hhmmss(moment)
        quoted: dict[int, int] = {}
        for fids, side in (((41, 61, 81), stock.asks), ((51, 71, 91), stock.bids)):
            for index in range(10):
                price_fid, quantity_fid, change_fid = (str(f + index) for f in fids)
                if index < len(side):
                    price, quantity = side[index]
                    values[price_fid] = directed(price, close)
                    values[quantity_fid] = str(quantity)
                    values[change_fid] = signed(quantity - stock.quoted.get(price, quantity))
                    quoted[price] = quantity
                else:  # an empty level: Kiwoom sends it blank
                    values[price_fid] = values[quantity_fid] = values[change_fid] = ""
        stock.quoted = quoted
        values.update({
            "121": str(stock.ask_total), "122": signed(stock.ask_total - previous_ask),
            "125": str(stock.bid_total), "126": signed(stock.bid_total - previous_bid),
            "128": signed(stock.bid_total - stock.ask_total),
            "138": signed(stock.ask_total - stock.bid_total),
            "23": "", "24": "",  # no expected trade during continuous trading
            "13": str(stock.volume),
        })
        return values
