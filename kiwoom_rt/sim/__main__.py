"""``python -m kiwoom_rt.sim --port 8765``: serve the simulator until Ctrl-C."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading

from .clock import SimClock
from .server import DEFAULT_APPKEY, DEFAULT_SECRETKEY, DEFAULT_TOKEN, SimServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kiwoom_rt.sim", description=__doc__)
    add_arguments(parser)
    return parser


def _clock_time(text: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time of day (HH:MM): {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's options (shared with ``kiwoom-rt sim``)."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--rate", type=float, default=10.0, help="events/s per connection")
    parser.add_argument("--batch", type=int, default=1, help="entries per REAL frame")
    parser.add_argument("--ping-interval", type=float, default=10.0)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated clock speed")
    parser.add_argument("--start", type=_clock_time, default=dt.time(16, 0),
                        help="simulated KST time to start at, HH:MM (default 16:00, after hours; "
                             "10:00 is the regular session, with 0B trades and 0D books)")
    parser.add_argument("--seed", type=int, default=0)


def main(argv: list[str] | None = None) -> int:
    return serve(build_parser().parse_args(argv))


def serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM."""
    server = SimServer(args.host, args.port, rate=args.rate, batch=args.batch, seed=args.seed,
                       ping_interval=args.ping_interval, clock=SimClock(args.start, speed=args.speed))
    try:
        server.start()
    except OSError as exc:
        print(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"simulator on {server.url}  (token {DEFAULT_TOKEN!r}; REST {server.rest_url}, "
          f"appkey {DEFAULT_APPKEY!r} secretkey {DEFAULT_SECRETKEY!r}); Ctrl-C stops", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
