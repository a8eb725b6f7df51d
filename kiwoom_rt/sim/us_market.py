"""The simulated US market (pure): a seeded universe, FE trades against a coherent FT book, the US
sessions in Eastern time, and F4/F5 order and fill values.

Value conventions follow Kiwoom's published US examples (``us_realtime_spec.json``): prices are
decimal strings with four places and a direction sign against the previous close
(``"+198.5000"``); a book's zero change is ``" 0"``; order and fill prices are zero-padded
(``"0000198.4200"``). What no source gives is made up here and said to be: the codes of FE FID 290
(장구분) other than the example's ``4`` (sent before the open), and which clock FE FID 20 follows
(the simulator sends KST there and Eastern time in FID 51020).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs

from ..us import EXCHANGE_CODES, to_eastern
from .spec_examples import EXAMPLE_VALUES

__all__ = [
    "US_SESSIONS",
    "US_UNIVERSE",
    "UsMarket",
    "UsOrders",
    "us_phase",
]

#: The simulator's US listings: symbol -> exchange.
US_UNIVERSE: Final[Mapping[str, str]] = MappingProxyType({
    "AAPL": "NASDAQ", "NVDA": "NASDAQ", "MSFT": "NASDAQ", "TSLA": "NASDAQ", "AMZN": "NASDAQ",
    "META": "NASDAQ", "GOOGL": "NASDAQ", "COIN": "NASDAQ",
    "KO": "NYSE", "JPM": "NYSE", "BRK.B": "NYSE", "XOM": "NYSE", "DIS": "NYSE",
    "SPY": "AMEX", "GLD": "AMEX", "IWM": "AMEX",
})

#: The US sessions in Eastern time: pre-market, regular, after-hours (the extended hours US
#: brokers quote; Kiwoom's own day-market product is not simulated).
US_SESSIONS: Final = (
    ("pre", dt.time(4, 0), dt.time(9, 30)),
    ("regular", dt.time(9, 30), dt.time(16, 0)),
    ("post", dt.time(16, 0), dt.time(20, 0)),
)
#: FE FID 290 as the simulator sends it: ``4`` is the published example's value (stamped before
#: the open); the others are the simulator's own.
SESSION_CODES: Final = MappingProxyType({"pre": "4", "regular": "1", "post": "5"})


def us_phase(moment: dt.datetime) -> str | None:
    """``"pre"``, ``"regular"`` or ``"post"`` at an aware ``moment`` (None: closed or a weekend;
    US holidays are not simulated)."""
    eastern = to_eastern(moment)
    if eastern.weekday() >= 5:
        return None
    clock = eastern.time().replace(tzinfo=None)
    for name, start, end in US_SESSIONS:
        if start <= clock < end:
            return name
    return None


def price_text(value: float, reference: float) -> str:
    """``"+198.5000"``: four places, signed by direction against the previous close."""
    sign = "+" if value > reference else "-" if value < reference else ""
    return f"{sign}{value:.4f}"


def change_text(value: float, places: int = 4) -> str:
    """A signed change: ``"+3.5300"``, ``"-0.0100"``, zero unsigned."""
    return f"{value:+.{places}f}" if round(value, places) else f"{0:.{places}f}"


def quantity_change(value: int) -> str:
    """A book quantity's change as FT sends it: ``"+20"``, ``"-5"``, and ``" 0"``."""
    return f"{value:+d}" if value else " 0"


def padded(value: float) -> str:
    """An order price as F4/F5 send it: ``"0000198.4200"``."""
    return f"{value:012.4f}"


@attrs.define
class _UsStock:
    close: float  # previous close, the reference of every sign
    last: float
    tick: float = 0.01
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    volume: int = 0
    amount: float = 0.0
    previous_volume: int = 1  # yesterday's volume (FID 30)
    buys: int = 0  # buyer-initiated volume today, for the strength (FID 228)
    sells: int = 0
    asks: list[list[float]] = attrs.Factory(list)  # [price, quantity], best first
    bids: list[list[float]] = attrs.Factory(list)
    quoted: dict[float, int] = attrs.Factory(dict)
    sent_totals: tuple[int, int] | None = None


class UsMarket:
    """Seeded US stocks: each FE trade happens at the current FT best ask or bid and takes
    quantity off it; books keep ten levels a side one cent apart. Same seed, same sequence."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._stocks: dict[str, _UsStock] = {}
        self._rngs: dict[str, random.Random] = {}

    @staticmethod
    def exchange_of(symbol: str) -> str:
        """The symbol's exchange in the simulated universe (NASDAQ for any other symbol)."""
        return US_UNIVERSE.get(symbol, "NASDAQ")

    def stex_tp(self, symbol: str) -> str:
        return EXCHANGE_CODES[self.exchange_of(symbol)]

    def _rng(self, symbol: str) -> random.Random:
        rng = self._rngs.get(symbol)
        if rng is None:
            rng = self._rngs[symbol] = random.Random(f"us:{self.seed}:{symbol}")
        return rng

    def stock(self, symbol: str) -> _UsStock:
        stock = self._stocks.get(symbol)
        if stock is None:
            rng = self._rng(symbol)
            close = round(rng.uniform(20.0, 600.0), 2)
            stock = self._stocks[symbol] = _UsStock(close=close, last=close,
                                                    previous_volume=rng.randint(1_000_000, 90_000_000))
            self._refill(stock, rng)
        return stock

    @staticmethod
    def _refill(stock: _UsStock, rng: random.Random) -> None:
        if not stock.asks:
            best_bid = stock.bids[0][0] if stock.bids else stock.last
            stock.asks = [[round(best_bid + stock.tick, 2), rng.randint(1, 300)]]
        if not stock.bids:
            stock.bids = [[round(stock.asks[0][0] - stock.tick, 2), rng.randint(1, 300)]]
        while len(stock.asks) < 10:
            stock.asks.append([round(stock.asks[-1][0] + stock.tick, 2), rng.randint(1, 300)])
        while len(stock.bids) < 10 and stock.bids[-1][0] - stock.tick > 0:
            stock.bids.append([round(stock.bids[-1][0] - stock.tick, 2), rng.randint(1, 300)])

    def trade(self, symbol: str, now: dt.datetime) -> dict[str, str]:
        """The next FE values of ``symbol`` at the aware KST ``now``."""
        stock = self.stock(symbol)
        rng = self._rng(symbol)
        buy = rng.random() < 0.5
        side = stock.asks if buy else stock.bids
        level = side[0]
        quantity = min(int(level[1]), rng.choice((1, 1, 2, 5, 10, 15, 50, 100)))
        price = level[0]
        level[1] -= quantity
        if level[1] <= 0:
            side.pop(0)
        self._refill(stock, rng)
        stock.last = price
        if not stock.open:
            stock.open = stock.high = stock.low = price
        stock.high, stock.low = max(stock.high, price), min(stock.low, price)
        stock.volume += quantity
        stock.amount += quantity * price
        if buy:
            stock.buys += quantity
        else:
            stock.sells += quantity
        change = price - stock.close
        eastern = to_eastern(now)
        phase = us_phase(now) or "post"
        close = stock.close
        values = dict(EXAMPLE_VALUES["FE"])
        values.update({
            "10": price_text(price, close), "11": change_text(change), "12": change_text(change * 100 / close, 2),
            "13": str(stock.volume), "14": f"{stock.amount:.6f}", "15": f"+{quantity}" if buy else f"-{quantity}",
            "16": price_text(stock.open, close), "17": price_text(stock.high, close),
            "18": price_text(stock.low, close), "20": now.strftime("%H%M%S"), "22": eastern.strftime("%Y%m%d"),
            "25": "2" if change > 0 else "5" if change < 0 else "3",
            "27": price_text(stock.asks[0][0], close), "28": price_text(stock.bids[0][0], close),
            "30": change_text(stock.volume * 100 / stock.previous_volume, 2),
            "228": f"{min(stock.buys * 100 / max(stock.sells, 1), 500.0):.2f}",
            "290": SESSION_CODES[phase], "51020": eastern.strftime("%H%M%S"),
        })
        return values

    def book(self, symbol: str, now: dt.datetime) -> dict[str, str]:
        """The next FT values of ``symbol``: its book after some orders arrived or left."""
        stock = self.stock(symbol)
        rng = self._rng(symbol)
        for _ in range(rng.randint(1, 3)):
            side = stock.asks if rng.random() < 0.5 else stock.bids
            level = side[rng.randrange(len(side))]
            level[1] = max(1, int(level[1]) + rng.choice((-1, 1)) * rng.randint(1, 30))
        self._refill(stock, rng)
        ask_total = sum(int(quantity) for _, quantity in stock.asks)
        bid_total = sum(int(quantity) for _, quantity in stock.bids)
        previous_ask, previous_bid = stock.sent_totals or (ask_total, bid_total)
        stock.sent_totals = (ask_total, bid_total)
        values = {"21": now.strftime("%H%M%S")}
        quoted: dict[float, int] = {}
        for fids, side in (((41, 61, 81), stock.asks), ((51, 71, 91), stock.bids)):
            for index in range(10):
                price_fid, quantity_fid, change_fid = (str(f + index) for f in fids)
                if index < len(side):
                    price, quantity = side[index][0], int(side[index][1])
                    values[price_fid] = price_text(price, stock.close)
                    values[quantity_fid] = str(quantity)
                    values[change_fid] = quantity_change(quantity - stock.quoted.get(price, quantity))
                    quoted[price] = quantity
                else:
                    values[price_fid] = values[quantity_fid] = values[change_fid] = ""
        stock.quoted = quoted
        values.update({"121": str(ask_total), "122": quantity_change(ask_total - previous_ask),
                       "125": str(bid_total), "126": quantity_change(bid_total - previous_bid)})
        return values

    def condition_row(self, symbol: str) -> dict[str, str]:
        """A one-shot US condition search row (usa20281's keys)."""
        stock = self.stock(symbol)
        change = stock.last - stock.close
        return {"9001": symbol, "302": symbol, "10": price_text(stock.last, stock.close),
                "25": "2" if change > 0 else "5" if change < 0 else "3", "11": change_text(change),
                "12": change_text(change * 100 / stock.close, 2), "13": str(stock.volume),
                "16": price_text(stock.open or stock.close, stock.close),
                "17": price_text(stock.high or stock.close, stock.close),
                "18": price_text(stock.low or stock.close, stock.close), "318": "", "stex_tp": self.stex_tp(symbol)}


def order_values(*, account: str, order_no: str, symbol: str, side: str, quantity: int, price: float,
                 status: str, now: dt.datetime, original_order_no: str = "000000000",
                 order_kind: str = "10") -> dict[str, str]:
    """F4 values of an order event, in the published example's format."""
    values = dict(EXAMPLE_VALUES["F4"])
    values.update({
        "9201": account, "9203": order_no, "9001": symbol, "302": symbol, "905": order_kind,
        "907": "02" if side == "buy" else "01", "904": original_order_no, "900": str(quantity),
        "901": padded(price), "913": status, "908": now.strftime("%H%M%S"),
        "50072": "매수" if side == "buy" else "매도",
    })
    return values


def fill_values(*, account: str, order_no: str, symbol: str, side: str, quantity: int, price: float,
                filled: int, fill_price: float, fill_no: str, holding: int, average_price: float,
                now: dt.datetime) -> dict[str, str]:
    """F5 values of a fill (or an acceptance, with nothing ``filled``)."""
    values = dict(EXAMPLE_VALUES["F5"])
    pnl = (fill_price - average_price) * filled if side == "sell" and filled else 0.0
    values.update({
        "9201": account, "9203": order_no, "9001": symbol, "302": symbol,
        "907": "02" if side == "buy" else "01", "900": str(quantity), "901": padded(price),
        "902": str(quantity - filled), "909": fill_no if filled else "000000000",
        "910": padded(fill_price) if filled else "000000000000", "911": str(filled),
        "913": ("체결완료" if filled == quantity else "부분체결") if filled else "접수",
        "930": str(holding), "931": padded(average_price), "908": now.strftime("%H%M%S"),
        "8018": f"{pnl:.4f}", "8019": f"{pnl * 100 / (average_price * filled) if pnl else 0.0:.4f}",
        "50072": "매수" if side == "buy" else "매도",
    })
    return values


@attrs.define
class _Holding:
    quantity: int = 0
    average_price: float = 0.0


class UsOrders:
    """The simulated US account: orders get numbers, fills move holdings and their average price.

    ``place`` returns the pushes an order causes, in order: F4 (주문전송), F5 (접수, nothing filled)
    and, when it fills, F5 with the fill. Pure: the server sends them.
    """

    def __init__(self, account: str = "8985024710") -> None:
        self.account = account
        self._next_order = 0
        self._next_fill = 0
        self.holdings: dict[str, _Holding] = {}

    def place(self, symbol: str, side: str, quantity: int, price: float, now: dt.datetime, *,
              fill: bool = True) -> tuple[str, list[tuple[str, dict[str, str]]]]:
        """(order number, [(type, values), ...]) for one limit order that fills at once or rests."""
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        if quantity < 1 or price <= 0:
            raise ValueError("an order needs a quantity >= 1 and a price > 0")
        self._next_order += 1
        order_no = f"{self._next_order:09d}"
        holding = self.holdings.setdefault(symbol, _Holding())
        def fill_push(filled: int, fill_no: str) -> tuple[str, dict[str, str]]:
            return "F5", fill_values(account=self.account, order_no=order_no, symbol=symbol, side=side,
                                     quantity=quantity, price=price, filled=filled,
                                     fill_price=price if filled else 0.0, fill_no=fill_no,
                                     holding=holding.quantity, average_price=holding.average_price, now=now)

        pushes = [("F4", order_values(account=self.account, order_no=order_no, symbol=symbol, side=side,
                                      quantity=quantity, price=price, status="주문전송", now=now)),
                  fill_push(0, "")]
        if fill:
            if side == "buy":
                cost = holding.average_price * holding.quantity + price * quantity
                holding.quantity += quantity
                holding.average_price = round(cost / holding.quantity, 4)
            else:
                holding.quantity -= quantity
            self._next_fill += 1
            pushes.append(fill_push(quantity, f"{self._next_fill:09d}"))
        return order_no, pushes
