"""Print decoded after-hours order-book totals (type 0E) as they arrive.

    python examples/print_0e.py --duration 10                 # the built-in simulator
    KIWOOM_TOKEN=... python examples/print_0e.py --mock 005930 # Kiwoom's mock server
    KIWOOM_TOKEN=... python examples/print_0e.py --prod 005930 000660_NX

A plain synchronous script: one handler, and Ctrl-C (or --duration) to stop.
"""

from __future__ import annotations

import argparse
import sys
import threading

from _common import add_feed_arguments, feed

from kiwoom_rt import AfterHoursQuote, KiwoomError, RealtimeSession


def show(item: str, event: AfterHoursQuote) -> None:
    print(f"{event.time}  {event.code:>6} {event.exchange}  "
          f"ask {event.ask_total:>9,} ({event.ask_total_change:+,})  "
          f"bid {event.bid_total:>9,} ({event.bid_total_change:+,})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_feed_arguments(parser)
    args = parser.parse_args(argv)
    stop = threading.Event()
    try:
        with feed(args) as (url, token), RealtimeSession(token, url=url) as session:
            session.on_0e.connect(show)
            session.on_error.connect(lambda s, error: print(f"error: {error}", file=sys.stderr))
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
