"""Print decoded after-hours order-book totals (type 0E) as they arrive.

    python examples/print_0e.py --duration 10                 # the built-in simulator
    KIWOOM_TOKEN=... python examples/print_0e.py --mock 005930 # Kiwoom's mock server
    KIWOOM_TOKEN=... python examples/print_0e.py --prod 005930 000660_NX

A plain synchronous script: one handler, and Ctrl-C (or --duration) to stop.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Iterator

from kiwoom_rt import MOCK_URL, PRODUCTION_URL, AfterHoursQuote, KiwoomError, RealtimeSession

DEFAULT_ITEMS = ["005930", "000660", "035420", "035720", "005380"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("items", nargs="*", default=DEFAULT_ITEMS, help="item codes (default: five large caps)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--mock", action="store_true", help="Kiwoom's mock server (token in KIWOOM_TOKEN)")
    where.add_argument("--prod", action="store_true", help="Kiwoom's production server (token in KIWOOM_TOKEN)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--rate", type=float, default=10.0, help="simulator events per second")
    return parser.parse_args(argv)


@contextlib.contextmanager
def feed(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """(url, token): the simulator's, or Kiwoom's with the token from the environment."""
    if args.mock or args.prod:
        token = os.environ.get("KIWOOM_TOKEN", "")
        if not token:
            raise SystemExit("set KIWOOM_TOKEN to your access token for --mock/--prod")
        yield (MOCK_URL if args.mock else PRODUCTION_URL), token
        return
    from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

    with SimServer(rate=args.rate) as sim:
        yield sim.url, DEFAULT_TOKEN


def show(item: str, event: AfterHoursQuote) -> None:
    print(f"{event.time}  {event.code:>6} {event.exchange}  "
          f"ask {event.ask_total:>9,} ({event.ask_total_change:+,})  "
          f"bid {event.bid_total:>9,} ({event.bid_total_change:+,})", flush=True)


def report_error(session: RealtimeSession, error: Exception) -> None:
    print(f"error: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    try:
        with feed(args) as (url, token), RealtimeSession(token, url=url) as session:
            session.on_0e.connect(show)
            session.on_error.connect(report_error)
            session.on_gave_up.connect(lambda s, error: (print(f"gave up: {error}", file=sys.stderr), stop.set()))
            session.subscribe(args.items).wait(10)
            print(f"subscribed to {len(args.items)} items on {url}; Ctrl-C stops", file=sys.stderr)
            stop.wait(args.duration)
            print(f"{session.stats()['events'].get('0E', 0)} events", file=sys.stderr)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    except (KiwoomError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0




if __name__ == "__main__":
    raise SystemExit(main())
