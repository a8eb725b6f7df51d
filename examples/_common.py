"""What every example shares: where the feed comes from, and the command-line options for it.

By default an example runs on the built-in simulator with no credentials. ``--mock`` and
``--prod`` use Kiwoom's servers with the access token in ``KIWOOM_TOKEN``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from typing import Any

from kiwoom_rt import MOCK_URL, PRODUCTION_URL, US_MOCK_URL, US_PRODUCTION_URL, AfterHoursQuote

COLUMNS = ["Code", "Market", "Ask total", "Ask change", "Bid total", "Bid change", "Quote time"]
CHANGE_COLUMNS = (3, 5)  # coloured: up red, down blue (the Korean convention)


def signed(value: int) -> str:
    """Kiwoom's convention: changes carry their sign, zero is unsigned."""
    return f"{value:+,}" if value else "0"


def board_row(event: AfterHoursQuote) -> list[str]:
    """The texts of one board row, in COLUMNS order."""
    return [event.code, event.exchange, f"{event.ask_total:,}", signed(event.ask_total_change),
            f"{event.bid_total:,}", signed(event.bid_total_change), event.time.isoformat()]


def direction(event: AfterHoursQuote, column: int) -> int:
    """+1, -1 or 0: which way the change shown in a CHANGE_COLUMNS column went."""
    change = event.ask_total_change if column == 3 else event.bid_total_change
    return (change > 0) - (change < 0)


DEFAULT_ITEMS = ["005930", "000660", "035420", "035720", "005380", "051910", "006400", "000270"]


def add_feed_arguments(parser: argparse.ArgumentParser, *, rate: float = 10.0,
                       items: list[str] | None = None) -> None:
    parser.add_argument("items", nargs="*", default=items if items is not None else DEFAULT_ITEMS,
                        help="item codes (KRX 005930, NXT 005930_NX, SOR 005930_AL)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--mock", action="store_true", help="Kiwoom's mock server (token in KIWOOM_TOKEN)")
    where.add_argument("--prod", action="store_true", help="Kiwoom's production server (token in KIWOOM_TOKEN)")
    parser.add_argument("--duration", type=float, default=None, help="stop by itself after this many seconds")
    parser.add_argument("--rate", type=float, default=rate, help="simulator: events per second")


@contextlib.contextmanager
def feed(args: argparse.Namespace, **sim_options: Any) -> Iterator[tuple[str, str]]:
    """Yield (url, token): Kiwoom's with the token from the environment, or the simulator's
    (``SimServer(**sim_options)``).

    ``args.us`` (an example of US stocks): the US socket, and on the simulator a clock in the US
    regular session."""
    us = getattr(args, "us", False)
    if args.mock or args.prod:
        token = os.environ.get("KIWOOM_TOKEN", "").strip()
        if not token:
            raise SystemExit("set KIWOOM_TOKEN to your access token for --mock/--prod")
        if us:
            yield (US_MOCK_URL if args.mock else US_PRODUCTION_URL), token
        else:
            yield (MOCK_URL if args.mock else PRODUCTION_URL), token
        return
    import datetime as dt

    from kiwoom_rt.sim import DEFAULT_TOKEN, SimClock, SimServer, us_clock

    # --regular: the simulator's clock starts in the regular session (trades and books flow)
    speed = getattr(args, "clock_speed", 1.0)  # (candles.py runs the market faster)
    clock = us_clock() if us else SimClock(dt.time(10, 0), speed) if getattr(args, "regular", False) else None
    with SimServer(rate=args.rate, clock=clock, condition_churn=getattr(args, "churn", 0.5), **sim_options) as sim:
        yield (sim.us_url if us else sim.url), DEFAULT_TOKEN
