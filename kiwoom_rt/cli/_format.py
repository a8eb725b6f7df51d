"""Formatting events and numbers for the terminal, and printing them."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from .._bars import Bar
from ..events import (
    AfterHoursQuote,
    OrderBook,
    RealEvent,
    RealtimeEvent,
    Trade,
    UsOrderBook,
    UsTrade,
    headline_fields,
)

__all__ = ["clock", "format_json", "format_line", "json_value", "number", "printer", "show_value", "signed"]


def _decimal(value: float, sign: str = "") -> str:
    """A dollar amount: two decimals, up to four when they matter (``0.1234``)."""
    text = f"{value:{sign},.4f}"
    return text[:-2] if text.endswith("00") else text


def signed(value: float | None) -> str:
    if value is None:
        return "-"
    if not value:
        return "0"
    return _decimal(value, "+") if isinstance(value, float) else f"{value:+,}"


def number(value: float | None) -> str:
    if value is None:
        return "-"
    return _decimal(value) if isinstance(value, float) else f"{value:,}"


def clock(value: dt.time | None) -> str:
    return "--:--:--" if value is None else value.isoformat()


def show_value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dt.time, dt.date)):
        return value.isoformat()
    return str(value)


def format_line(event: RealtimeEvent) -> str:
    """One readable line per event: its typed fields (raw values for a type without a class)."""
    if isinstance(event, AfterHoursQuote):
        return (f"{clock(event.time)}  {event.code:>6} {event.exchange}  ask {number(event.ask_total):>10} "
                f"({signed(event.ask_total_change)})  bid {number(event.bid_total):>10} "
                f"({signed(event.bid_total_change)})")
    if isinstance(event, RealEvent):
        fields = " ".join(f"{name}={value}" for name, value in event.named().items() if str(value).strip())
        return f"{event.type} {event.name} {event.item}  {fields}"
    when = getattr(event, "time", None)
    head = f"{clock(when if isinstance(when, dt.time) else None)}  {event.code:>6} {event.exchange}  {event.type}"
    if isinstance(event, (Trade, UsTrade)):
        return (f"{head} trade {number(event.price):>9} {signed(event.change):>8} ({show_value(event.rate)}%)  "
                f"vol {signed(event.volume):>7}  cum {number(event.cumulative_volume)}  "
                f"ask {number(event.best_ask)} bid {number(event.best_bid)}")
    if isinstance(event, (OrderBook, UsOrderBook)):
        ask = event.asks[0] if event.asks else None
        bid = event.bids[0] if event.bids else None
        best = (f"ask {number(ask.price) if ask else '-'} x {number(ask.quantity) if ask else '-'}  "
                f"bid {number(bid.price) if bid else '-'} x {number(bid.quantity) if bid else '-'}")
        return (f"{head} book  {best}  totals ask {number(event.ask_total)} ({signed(event.ask_total_change)}) "
                f"bid {number(event.bid_total)} ({signed(event.bid_total_change)})  "
                f"{len(event.asks)}/{len(event.bids)} levels")
    fields = " ".join(f"{field.attr}={show_value(getattr(event, field.attr))}"
                      for field in headline_fields(type(event)) if field.attr != "time")
    return f"{head} {type(event).__name__}  {fields}"


def json_value(value: object) -> object:
    if isinstance(value, (dt.time, dt.date)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def format_json(event: RealtimeEvent) -> str:
    """One JSON object per event: the raw values plus the typed fields."""
    record: dict[str, Any] = {"type": event.type, "name": event.name, "item": event.item, "code": event.code,
                              "exchange": event.exchange, "received_at": event.received_at,
                              "values": dict(event.values)}
    for field in headline_fields(type(event)):
        record[field.attr] = json_value(getattr(event, field.attr))
    if isinstance(event, (OrderBook, UsOrderBook)):
        record["asks"] = [list(level) for level in event.asks]
        record["bids"] = [list(level) for level in event.bids]
    return json.dumps(record, ensure_ascii=False)


def printer(as_json: bool, stop: threading.Event | None = None) -> Callable[..., None]:
    """A receiver printing each event as a line (or JSON)."""
    emit = _line_writer(format_json if as_json else format_line, stop)

    def show(item: str, event: RealtimeEvent) -> None:
        emit(event)

    return show


def _line_writer(fmt: Callable[[Any], str], stop: threading.Event | None) -> Callable[[Any], None]:
    """Print ``fmt(thing)`` as one line; when the reader went away (``| head``), stop quietly."""
    def emit(thing: Any) -> None:
        try:
            print(fmt(thing), flush=True)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            if stop is not None:
                stop.set()

    return emit


def format_bar(bar: Bar) -> str:
    """One line per finished bar."""
    flag = "" if bar.complete else "  (incomplete)"
    return (f"{bar.start:%H:%M:%S}-{bar.end:%H:%M:%S} {bar.item:<10} O {number(bar.open)} H {number(bar.high)} "
            f"L {number(bar.low)} C {number(bar.close)} V {bar.volume:,} (buy {bar.buy_volume:,} / sell "
            f"{bar.sell_volume:,}) trades {bar.trades}{flag}")


def format_bar_json(bar: Bar) -> str:
    fields = {name: getattr(bar, name) for name in ("item", "start", "end", "open", "high", "low", "close", "volume",
                                                    "buy_volume", "sell_volume", "amount", "vwap", "trades",
                                                    "complete", "final")}
    return json.dumps({key: value.isoformat() if isinstance(value, dt.datetime) else value
                       for key, value in fields.items()}, ensure_ascii=False)


def bar_printer(as_json: bool, stop: threading.Event | None = None) -> Callable[..., None]:
    """A ``BarFeed.on_bar`` receiver printing each finished bar as a line (or JSON)."""
    emit = _line_writer(format_bar_json if as_json else format_bar, stop)

    def show(item: str, bar: Bar) -> None:
        emit(bar)

    return show
