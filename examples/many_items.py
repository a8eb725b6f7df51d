"""Subscribe 2,000 items and watch the event rate and the dispatch queue depth, once a second.

    python examples/many_items.py --duration 10              # simulator, 20,000 events/s
    KIWOOM_TOKEN=... python examples/many_items.py --mock 005930 000660 ...

2,000 items go out as 20 REG requests of 100, one at a time. The receiver below does a little work
per event, as a strategy would; the line shows whether it keeps up (queue depth, dropped).

Kiwoom does not publish how many items one socket may hold (one connector documents 200), so a
session refuses more than ``max_items`` (200 by default) before sending anything. On the
simulator this example lifts the limit on both sides to show the load; against Kiwoom it keeps it.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from _common import add_feed_arguments, feed

from kiwoom_rt import AfterHoursQuote, KiwoomError, RealtimeSession


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_feed_arguments(parser, rate=20_000.0, items=[])
    parser.add_argument("--count", type=int, default=2000, help="items to generate when none are given")
    args = parser.parse_args(argv)
    items = args.items or [f"{100000 + i:06d}" for i in range(args.count)]
    imbalance: dict[str, int] = {}
    stop = threading.Event()

    def on_quote(item: str, event: AfterHoursQuote) -> None:
        imbalance[item] = event.bid_total - event.ask_total

    try:
        simulated = not (args.mock or args.prod)
        limit = {"max_items": None} if simulated else {}
        with feed(args, **limit) as (url, token), RealtimeSession(token, url=url, **limit) as session:
            session.on_0e.connect(on_quote)
            session.on_gave_up.connect(lambda s, error: stop.set())
            started = time.monotonic()
            session.subscribe(items).wait(60)
            print(f"{len(items):,} items subscribed in {time.monotonic() - started:.2f} s "
                  f"({-(-len(items) // session.connection.chunk_size)} REG requests)", flush=True)
            deadline = None if args.duration is None else time.monotonic() + args.duration
            last_total, last_time = 0, time.monotonic()
            while not stop.wait(1.0):
                stats = session.stats()
                now = time.monotonic()
                rate = (stats["events_total"] - last_total) / (now - last_time)
                last_total, last_time = stats["events_total"], now
                print(f"{rate:10,.0f} events/s  queue depth {stats['queue_depth']:6,}  dropped {stats['dropped']:,}  "
                      f"items seen {len(imbalance):,}  {stats['state']}", flush=True)
                if deadline is not None and now >= deadline:
                    break
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    except (KiwoomError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
