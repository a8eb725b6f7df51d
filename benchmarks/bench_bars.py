"""What bars cost per trade, on top of decoding the trade (issue 21: at most 25% of 0B's decode).

    python benchmarks/bench_bars.py [--trades 20000] [--items 50 500] [--repeat 7] [--per-read 10]

A realistic 0B stream from the simulator's regular market: ``--items`` items drawn at random
(50, a liquid market where an item trades about 50 times a minute; 500, a thin one, about 5),
prices and quantities moving as in a session, exchange times advancing through the morning
(about 40 trades a second over the whole market), one entry per frame. Each round decodes the
frames afresh through ``protocol.decode_frames`` (the sessions' hot path; events are typed
lazily, so the fields bars read are parsed on the bars' account), then hands the events to what
a ``BarFeed`` runs on the reading thread (``kiwoom_rt._bars.TradeReader`` and the ``BarEngine``).

Columns, in µs per trade, best of ``--repeat``: decoding alone; decoding plus 1-minute bars with
no ``on_update`` receiver (the bar is updated, final bars are made); the same through a whole
``BarFeed`` (its lock and checks per read, final bars posted to the session's delivery queue);
the reader with an ``on_update`` receiver (a ``Bar`` snapshot per trade); and 10-tick bars. The
ratio is the bars' cost over the decode's; the budget's verdict takes the worse of the reader
and the feed. Rows for the default install's parser and for orjson when installed.
"""

from __future__ import annotations

import sys

if "--stdlib" in sys.argv:  # as the default install runs: orjson cannot be imported
    sys.modules["orjson"] = None  # type: ignore[assignment]

import argparse
import datetime as dt
import json
import random
import time
from collections.abc import Callable
from typing import Any

from kiwoom_rt import _json, protocol
from kiwoom_rt._bars import BarEngine, TradeReader, bar_spec
from kiwoom_rt.sim.market import RegularMarket

BUDGET = 0.25


def stream(count: int, items: int, seed: int = 7) -> tuple[list[bytes], list[float]]:
    """``count`` one-entry 0B frames and the times they were received."""
    rng = random.Random(seed)
    market = RegularMarket(seed)
    codes = [f"{100000 + 37 * n:06d}" for n in range(items)]
    start = dt.datetime(2026, 11, 24, 9, 0, 5)
    received0 = start.replace(tzinfo=dt.timezone(dt.timedelta(hours=9))).timestamp()
    frames, received = [], []
    for index in range(count):
        offset = index / 40.0  # ~40 trades a second across the market
        moment = start + dt.timedelta(seconds=offset)
        item = rng.choice(codes)
        entry = {"type": "0B", "name": protocol.TYPE_NAMES["0B"], "item": item, "values": market.trade(item, moment)}
        frames.append(json.dumps({"trnm": "REAL", "data": [entry]}, ensure_ascii=False).encode())
        received.append(received0 + offset + 0.003)
    return frames, received


def run(frames: list[bytes], received: list[float], bars: Callable[[], Any] | None,
        per_read: int = 10) -> float:
    """Seconds to decode every frame (and feed the bars, when given: a ``TradeReader``, or a
    ``BarFeed`` whose session takes the events' place), ``per_read`` frames at a time with one
    receive time, as the socket hands them over. A ``BarFeed``'s final bars are delivered after
    each read, as a running session delivers what a read queued (to ``on_bar``, with no receiver
    connected)."""
    trades = bars() if bars is not None else None
    # (TradeReader.place since issue 38; older checkouts, measured with --before, call it take)
    place = None if trades is None else getattr(trades, "place", None) or getattr(trades, "take", None)
    feed = getattr(trades, "queued_events", None)  # (a BarFeed: what a session calls per read)
    drain = getattr(trades, "drain", None)  # (what its session delivers after a read)
    out: list[Any] = []
    decode = protocol.decode_frames
    started = time.perf_counter()
    for index in range(0, len(frames), per_read):
        events: list[Any] = []
        decode(frames[index:index + per_read], events, received_at=received[index])
        if feed is not None:
            feed(events)
            if drain is not None:
                drain()  # (final bars posted by this read, if any)
        elif place is not None:
            place(events, out)
            out.clear()
    elapsed = time.perf_counter() - started
    if feed is not None:
        trades.close()
    return elapsed


class _Feed:
    """A ``BarFeed`` of 1-minute bars on a session that is never started (its URL is loopback and
    never dialled): the events are handed to ``queued_events`` as the session's intake hands
    them over, and final bars are posted to the session's delivery queue, a ``QueueDispatcher``
    whose notices ``run`` delivers after each read that posted any (a running session delivers
    after every read, on its reading thread by default)."""

    def __init__(self) -> None:
        from kiwoom_rt import QueueDispatcher, RealtimeSession
        from kiwoom_rt.bars import BarFeed

        dispatcher = QueueDispatcher()
        self.session = RealtimeSession("bench-token-never-sent-000000000000",
                                       url="ws://127.0.0.1:9/api/dostk/websocket", dispatcher=dispatcher)
        self.feed = BarFeed(self.session, "1m", timer=False)
        self.queued_events = self.feed.queued_events
        self._queue = dispatcher.queue
        self._drain = dispatcher.drain

    def drain(self) -> None:
        """Deliver what the feed posted, as the session's delivery after a read would (the
        session delivers every read's events anyway: only the feed's notices are its cost)."""
        if len(self._queue):
            self._drain()

    def close(self) -> None:
        self.feed.close()
        self.session.close()


def bar_feed() -> Any:
    return _Feed()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=20_000)
    parser.add_argument("--items", type=int, nargs="+", default=[50, 500],
                        help="items in the market (50: liquid, ~50 trades a minute each; 500: thin, ~5)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--per-read", type=int, default=10,
                        help="frames per read (10: a busy socket; 1: a quiet market, a read per frame)")
    parser.add_argument("--stdlib", action="store_true", help="block orjson: the default install's row only")
    args = parser.parse_args()

    def feed(spec: str | None, ticks: int | None = None, updates: bool = False) -> Callable[[], TradeReader]:
        def make() -> TradeReader:
            engine = BarEngine(bar_spec(spec, ticks=ticks), updates=updates)
            return TradeReader(engine, "kr", frozenset({"0B"}), None)
        return make

    parsers: list[tuple[str, Callable[[bytes], object], tuple[type[BaseException], ...]]] = [
        ("default install (standard library json)" if protocol._loads is _json._stdlib_loads
         else f"{_json.PARSER} (`[fast]`)", protocol._loads, protocol._DECODE_ERRORS)]
    saved = protocol._loads, protocol._DECODE_ERRORS
    cases = [("1m bars", feed("1m")), ("1m bars through a BarFeed", bar_feed),
             ("1m bars + on_update", feed("1m", updates=True)), ("10-tick bars", feed(None, ticks=10))]
    default_failed = False
    if not args.stdlib:
        print(f"{args.trades:,} one-entry 0B frames, {args.per_read} a read, best of {args.repeat}; "
              "µs per trade\n")
        print("| parser | items | decode | " + " | ".join(f"{name} (+cost, x decode)" for name, _ in cases) + " |")
        print("|---|---|---|" + "---|" * len(cases), flush=True)
        if protocol._loads is not _json._stdlib_loads:  # the default install's row, in a process of its own
            import subprocess

            command = [sys.executable, __file__, "--stdlib", "--trades", str(args.trades), "--items",
                       *map(str, args.items), "--repeat", str(args.repeat), "--per-read", str(args.per_read)]
            default_failed = subprocess.run(command, check=False).returncode != 0
    worst = 0.0
    for (label, loads, errors), items in ((parser_, count) for parser_ in parsers for count in args.items):
        frames, received = stream(args.trades, items)
        protocol._loads, protocol._DECODE_ERRORS = loads, errors
        try:
            rounds: dict[str, list[float]] = {"decode": []}
            for name, _ in cases:
                rounds[name] = []
            for _ in range(args.repeat):  # interleaved, so a noisy moment hurts every column alike
                rounds["decode"].append(run(frames, received, None, args.per_read))
                for name, make in cases:
                    rounds[name].append(run(frames, received, make, args.per_read))
        finally:
            protocol._loads, protocol._DECODE_ERRORS = saved
        base = min(rounds["decode"]) / args.trades * 1e6
        cells = []
        for name, _ in cases:
            total = min(rounds[name]) / args.trades * 1e6
            ratio = (total - base) / base
            if name.startswith("1m bars") and "on_update" not in name:  # (the budget: the reader and the feed)
                worst = max(worst, ratio)
            cells.append(f"{total:.2f} (+{total - base:.2f}, {ratio:.2f}x)")
        print(f"| {label} | {items} | {base:.2f} | " + " | ".join(cells) + " |", flush=True)
    if args.stdlib:
        return 0 if worst <= BUDGET else 1
    if protocol._loads is _json._stdlib_loads:  # (orjson is not installed: only the default row)
        default_failed = False
    verdict = "within" if worst <= BUDGET else "OVER"
    print(f"\nbars on top of decoding (1m, no update receiver, the reader and a whole BarFeed): {worst:.2f}x "
          "the decode with this parser; "
          f"budget {BUDGET:.2f}x: {verdict}")
    if default_failed:
        print(f"the default install's row is over the {BUDGET:.2f}x budget")
    return 0 if worst <= BUDGET and not default_failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
