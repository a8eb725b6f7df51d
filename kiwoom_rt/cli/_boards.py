"""The refreshing boards of ``kiwoom-rt demo`` (ANSI escapes, when stdout is a terminal)."""

from __future__ import annotations

import sys

from .._surface import Session
from ..events import AfterHoursQuote, OrderBook, RealtimeEvent, Trade, UsOrderBook, UsTrade
from ._format import clock, number, signed

__all__ = ["AfterHoursBoard", "Board", "RegularBoard", "UsBoard"]


class Board:
    """A refreshing board drawn with ANSI escapes (when stdout is a terminal)."""

    UP, DOWN, RESET = "\x1b[31m", "\x1b[34m", "\x1b[0m"  # Korean convention: up red, down blue
    TITLE = ""

    def __init__(self, items: list[str]) -> None:
        self.items = items

    def update(self, item: str, event: RealtimeEvent) -> None:
        raise NotImplementedError

    def lines(self) -> list[str]:
        raise NotImplementedError

    def _colored(self, text: str, value: float | None) -> str:
        color = self.UP if value and value > 0 else self.DOWN if value and value < 0 else ""
        return f"{color}{text}{self.RESET}" if color else text

    def _change(self, value: float | None, width: int) -> str:
        return self._colored(f"{signed(value):>{width}}", value)

    def draw(self, session: Session, final: bool = False) -> None:
        stats = session.stats()
        lines = [f"kiwoom-rt demo: {self.TITLE} from the built-in simulator   Ctrl-C stops", "", *self.lines(),
                 "", f"{session.state} · {stats['events_total']:,} events · {stats['reconnects']} reconnects"]
        out = ("" if final else "\x1b[H\x1b[2J") + "\n".join(lines) + "\n"
        sys.stdout.write(out)
        sys.stdout.flush()


class AfterHoursBoard(Board):
    """The after-hours board: total ask and bid quantities per item (0E)."""

    TITLE = "after-hours order book (0E)"

    def __init__(self, items: list[str]) -> None:
        super().__init__(items)
        self.latest: dict[str, AfterHoursQuote] = {}

    def update(self, item: str, event: RealtimeEvent) -> None:
        if isinstance(event, AfterHoursQuote):
            self.latest[item] = event

    def lines(self) -> list[str]:
        lines = [f"{'code':<10}{'ask total':>12}{'change':>10}{'bid total':>12}{'change':>10}{'time':>10}"]
        for item in self.items:
            event = self.latest.get(item)
            if event is None:
                lines.append(f"{item:<10}{'-':>12}")
                continue
            ask = f"{number(event.ask_total):>12}{self._change(event.ask_total_change, 10)}"
            bid = f"{number(event.bid_total):>12}{self._change(event.bid_total_change, 10)}"
            lines.append(f"{item:<10}{ask}{bid}{clock(event.time):>10}")
        return lines


class RegularBoard(Board):
    """The regular-session board: last trade per item (0B) and the first item's ten-level book (0D)."""

    TITLE = "trades (0B) and the order book (0D)"

    def __init__(self, items: list[str]) -> None:
        super().__init__(items)
        self.trades: dict[str, Trade | UsTrade] = {}
        self.books: dict[str, OrderBook | UsOrderBook] = {}

    def update(self, item: str, event: RealtimeEvent) -> None:
        if isinstance(event, (Trade, UsTrade)):
            self.trades[item] = event
        elif isinstance(event, (OrderBook, UsOrderBook)):
            self.books[item] = event

    def lines(self) -> list[str]:
        lines = [f"{'code':<10}{'price':>10}{'change':>10}{'rate':>8}{'volume':>9}{'cum volume':>13}{'time':>10}"]
        for item in self.items:
            trade = self.trades.get(item)
            if trade is None:
                lines.append(f"{item:<10}{'-':>10}")
                continue
            rate = "-" if trade.rate is None else f"{trade.rate:+.2f}%"
            lines.append(f"{item:<10}{number(trade.price):>10}{self._change(trade.change, 10)}"
                         f"{self._colored(f'{rate:>8}', trade.rate)}{self._change(trade.volume, 9)}"
                         f"{number(trade.cumulative_volume):>13}{clock(trade.time):>10}")
        book = self.books.get(self.items[0])
        lines += ["", f"order book of {self.items[0]}"]
        if book is None:
            return [*lines, "  (waiting)"]
        for level in reversed(book.asks):
            lines.append(f"{number(level.quantity):>12}{self._change(level.change, 9)}  {number(level.price):>10}")
        for level in book.bids:
            lines.append(f"{'':>21}  {number(level.price):>10}  {number(level.quantity):>12}"
                         f"{self._change(level.change, 9)}")
        lines.append(f"{'ask total ' + number(book.ask_total):>21}  {'':>10}  bid total {number(book.bid_total)}")
        return lines


class UsBoard(RegularBoard):
    """The US board: last trade per symbol (FE) and the first symbol's ten-level book (FT)."""

    TITLE = "US trades (FE) and the order book (FT)"
