"""Decode cost per single-entry REAL frame, and the typing budgets of issue 10.

    python benchmarks/bench_decode.py [--number 20000] [--repeat 7]

For each of 0E (after-hours totals), 0B (trades) and 0D (ten-level books) it decodes a realistic
stream of 2,000 varied frames from the simulator's markets (five items; prices, quantities and
times move as in a session, so caches see what they would see live) through
``protocol.decode_into``, the session's hot path. The *typing cost* is that time minus the JSON
parse of the same frames; the budgets are ratios of it to 0E's: 0B at most 1.5x, 0D at most 2x.

Rows are given for the default install's parser (the standard library's C scanner) and for orjson
(the ``fast`` extra) when installed. Best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import timeit
from collections.abc import Callable

from kiwoom_rt import _json, protocol
from kiwoom_rt.sim.market import AfterHoursMarket, RegularMarket

ITEMS = ["005930", "000660", "035420", "035720", "005380"]
BUDGETS = {"0E": 1.0, "0B": 1.5, "0D": 2.0}


def stream(type_code: str, count: int = 2_000) -> list[bytes]:
    """``count`` frames of one type, as the simulator would send them across a session."""
    after, regular = AfterHoursMarket(7), RegularMarket(7)
    start = dt.datetime(2026, 11, 24, 10, 0)
    frames = []
    for index in range(count):
        item = ITEMS[index % len(ITEMS)]
        moment = start + dt.timedelta(seconds=index // 10)
        values = (after.quote(item, moment) if type_code == "0E"
                  else regular.trade(item, moment) if type_code == "0B" else regular.book(item, moment))
        frames.append(json.dumps({"trnm": "REAL", "data": [
            {"type": type_code, "name": protocol.TYPE_NAMES[type_code], "item": item, "values": values}]},
            ensure_ascii=False).encode())
    return frames


def per_frame_us(fn: Callable[[], object], frames: int, number: int, repeat: int) -> float:
    times = timeit.repeat(fn, number=max(1, number // frames), repeat=repeat)
    return min(times) / (max(1, number // frames) * frames) * 1e6


def measure(frames: list[bytes], loads: Callable[[bytes], object], number: int, repeat: int) -> tuple[float, float]:
    """(decode_into us/frame, JSON parse alone us/frame) for ``frames``."""
    sink: list[object] = []

    def run_decode() -> None:
        for raw in frames:
            protocol.decode_into(raw, sink, received_at=1.0)
            sink.clear()

    def run_parse() -> None:
        for raw in frames:
            loads(raw)

    return (per_frame_us(run_decode, len(frames), number, repeat),
            per_frame_us(run_parse, len(frames), number, repeat))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="frames per timing run")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    streams = {type_code: stream(type_code) for type_code in BUDGETS}
    for type_code, frames in streams.items():  # every frame decodes cleanly
        for raw in frames[:50]:
            message = protocol.decode(raw)
            assert not message.errors, message  # type: ignore[union-attr]
            assert message.events[0].type == type_code  # type: ignore[union-attr]

    parsers: list[tuple[str, Callable[[bytes], object], tuple[type[BaseException], ...]]] = [
        ("stdlib json (default install)", _json._stdlib_loads, (ValueError, TypeError, RecursionError))]
    if protocol._loads is not _json._stdlib_loads:
        parsers.append((f"{_json.PARSER} ([fast])", protocol._loads, protocol._DECODE_ERRORS))
    saved = protocol._loads, protocol._DECODE_ERRORS
    print(f"{'parser':32s} {'type':4s} {'decode us':>9s} {'parse us':>9s} {'typing us':>9s} {'x 0E':>6s} "
          f"{'budget':>6s}")
    failed = False
    try:
        for name, loads, errors in parsers:
            protocol._loads, protocol._DECODE_ERRORS = loads, errors
            base = 0.0
            for type_code, frames in streams.items():
                decode_us, parse_us = measure(frames, loads, args.number, args.repeat)
                typing_us = decode_us - parse_us
                base = base or typing_us
                ratio = typing_us / base
                ok = ratio <= BUDGETS[type_code]
                failed |= not ok
                print(f"{name:32s} {type_code:4s} {decode_us:9.2f} {parse_us:9.2f} {typing_us:9.2f} "
                      f"{ratio:6.2f} {'<= ' + str(BUDGETS[type_code]):>6s}{'' if ok else '  OVER'}")
    finally:
        protocol._loads, protocol._DECODE_ERRORS = saved
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
