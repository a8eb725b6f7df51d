"""Follow a condition search live: stream trades (0B) of every stock while it is in the condition.

    python examples/condition_alerts.py --duration 20            # the built-in simulator
    KIWOOM_TOKEN=... python examples/condition_alerts.py --mock --seq 4

The watch's initial members are subscribed at once; each entry subscribes the stock, each exit
unsubscribes it. After a reconnect the session restores the watch and the subscriptions, and the
stocks that entered or left during the outage arrive as events with ``resync=True``.
"""

from __future__ import annotations

import argparse
import sys
import threading

from _common import add_feed_arguments, feed

from kiwoom_rt import ConditionEvent, KiwoomError, RealtimeSession, Trade


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_feed_arguments(parser, rate=20.0, items=[])
    parser.add_argument("--seq", default="4", help="the condition's seq (see: kiwoom-rt conditions)")
    parser.add_argument("--churn", type=float, default=1.0, help="simulator: entries and exits per second")
    parser.set_defaults(regular=True)
    args = parser.parse_args(argv)
    stop = threading.Event()
    try:
        with feed(args) as (url, token), RealtimeSession(token, url=url) as session:
            subscriptions = {}

            def follow(code: str) -> None:
                if code not in subscriptions:
                    subscriptions[code] = session.subscribe(code, "0B", grp_no="5")

            def on_condition(seq: str, event: ConditionEvent) -> None:
                if event.entered:
                    print(f"{event.time}  + {event.code} entered condition {seq}; following its trades", flush=True)
                    follow(event.code)
                else:
                    print(f"{event.time}  - {event.code} left condition {seq}", flush=True)
                    subscription = subscriptions.pop(event.code, None)
                    if subscription is not None:
                        subscription.cancel()

            def on_trade(item: str, event: Trade) -> None:
                print(f"{event.time}    {event.code} {event.price:>9,} ({event.rate:+.2f}%) vol {event.volume:+,}",
                      flush=True)

            session.on_condition.connect(on_condition, sender=args.seq)
            session.signal("0B").connect(on_trade)
            session.on_gave_up.connect(lambda s, error: (print(f"gave up: {error}", file=sys.stderr), stop.set()))
            watch = session.watch_condition(args.seq).wait(10)
            print(f"condition {args.seq}: {len(watch.members)} members", file=sys.stderr)
            for code in sorted(watch.members):
                follow(code)
            stop.wait(args.duration)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    except (KiwoomError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
