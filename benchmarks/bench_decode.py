"""Decode cost per single-entry REAL frame, and the typing budgets of issues 10 and 20.

    python benchmarks/bench_decode.py [--number 20000] [--repeat 7]

For each of 0E (after-hours totals), 0B (trades), 0D (ten-level books) and the US socket's FE
(trades) and FT (ten-level books) it decodes a realistic stream of 2,000 varied frames from the
simulator's markets (five items; prices, quantities and times move as in a session, so caches
see what they would see live; US frames carry ``stexTp`` and are decoded as a US session does)
through ``protocol.decode_frames``, the sessions' hot path.

The *typing cost* is that time minus the decoder's own JSON step on the same frames (with the
standard library: the known Korean type name dropped, then the C scanner; with orjson: its
``loads``). Events are typed lazily,
so this is what every event costs (the ``lazy`` column). The ``full`` column adds reading every
headline field once (and a book's levels): what a receiver that reads everything pays. The
budgets are ratios of the lazy typing cost to 0E's: 0B and FE at most 1.5x, 0D and FT at most 2x.

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
from kiwoom_rt.events import EVENT_TYPES, headline_fields
from kiwoom_rt.fids import WIRE_NAMES
from kiwoom_rt.sim.market import KST, AfterHoursMarket, RegularMarket
from kiwoom_rt.sim.us_market import UsMarket

ITEMS = ["005930", "000660", "035420", "035720", "005380"]
US_ITEMS = ["NVDA", "AAPL", "KO", "SPY", "TSLA"]
BUDGETS = {"0E": 1.0, "0B": 1.5, "0D": 2.0, "FE": 1.5, "FT": 2.0}
US_TYPES = ("FE", "FT")


def stream(type_code: str, count: int = 2_000) -> list[bytes]:
    """``count`` frames of one type, as the simulator would send them across a session."""
    after, regular, us = AfterHoursMarket(7), RegularMarket(7), UsMarket(7)
    start = dt.datetime(2026, 11, 24, 10, 0)
    us_start = dt.datetime(2026, 11, 25, 0, 30, tzinfo=KST)  # 10:30 in New York
    frames = []
    for index in range(count):
        moment = start + dt.timedelta(seconds=index // 10)
        if type_code in US_TYPES:
            symbol = US_ITEMS[index % len(US_ITEMS)]
            at = us_start + dt.timedelta(seconds=index // 10)
            values = us.trade(symbol, at) if type_code == "FE" else us.book(symbol, at)
            entry = {"type": type_code, "name": WIRE_NAMES[type_code], "item": symbol,
                     "stexTp": us.stex_tp(symbol), "values": values}
        else:
            item = ITEMS[index % len(ITEMS)]
            values = (after.quote(item, moment) if type_code == "0E"
                      else regular.trade(item, moment) if type_code == "0B" else regular.book(item, moment))
            entry = {"type": type_code, "name": protocol.TYPE_NAMES[type_code], "item": item, "values": values}
        frames.append(json.dumps({"trnm": "REAL", "data": [entry]}, ensure_ascii=False).encode())
    return frames


def json_step(loads: Callable[[bytes], object]) -> Callable[[bytes], object]:
    """The decoder's JSON step alone, as ``protocol.decode_frames`` takes it: with the standard
    library, a known type's Korean name is dropped and the C scanner called directly (so the
    typing cost is measured against what the decoder itself parses); with orjson, ``loads``."""
    if loads is not _json._stdlib_loads or _json.SCANNER is None:
        return loads
    scan, known = _json.SCANNER, protocol._KNOWN_NAMES

    def parse(frame: bytes) -> object:
        at = frame.find(b'"name":"')
        if at >= 0:
            named = frame[at:frame.find(b'"', at + 8) + 2]
            if named in known:
                frame = frame.replace(named, b"")
        return scan(frame.decode("utf-8"), 0)

    return parse


def measure(frames: list[bytes], type_code: str, loads: Callable[[bytes], object], number: int,
            repeat: int) -> tuple[float, float, float]:
    """(decode us/frame, decode and read every field us/frame, JSON step alone us/frame).

    The three are timed in turns, ``repeat`` rounds of about ``number`` frames each, and the best
    round of each is kept: a slow moment of the machine then spoils one round of each, not one
    of the three numbers."""
    sink: list[object] = []
    us = {} if type_code in US_TYPES else None  # decoded as a session of that socket does
    fields = [field.attr for field in headline_fields(EVENT_TYPES[type_code])]
    if type_code in ("0D", "FT"):
        fields += ["asks", "bids"]
    decode_frames = protocol.decode_frames
    parse = json_step(loads)

    def run_decode() -> None:
        for raw in frames:
            decode_frames((raw,), sink, received_at=1.0, us=us)
            sink.clear()

    def run_full() -> None:
        for raw in frames:
            decode_frames((raw,), sink, received_at=1.0, us=us)
            event = sink[0]
            for name in fields:
                getattr(event, name)
            sink.clear()

    def run_parse() -> None:
        for raw in frames:
            parse(raw)

    loops = max(1, number // len(frames))
    best = [float("inf")] * 3
    for _ in range(repeat):
        for index, run in enumerate((run_decode, run_full, run_parse)):
            seconds = timeit.timeit(run, number=loops)
            best[index] = min(best[index], seconds / (loops * len(frames)) * 1e6)
    return best[0], best[1], best[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="frames per timing run")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    streams = {type_code: stream(type_code) for type_code in BUDGETS}
    for type_code, frames in streams.items():  # every frame decodes cleanly
        for raw in frames[:50]:
            events: list[object] = []
            _, found = protocol.decode_frames((raw,), events, us={} if type_code in US_TYPES else None)
            assert found is None, found
            assert len(events) == 1
            assert events[0].type == type_code  # type: ignore[attr-defined]

    parsers: list[tuple[str, Callable[[bytes], object], tuple[type[BaseException], ...]]] = [
        ("stdlib json (default install)", _json._stdlib_loads, (ValueError, TypeError, RecursionError))]
    if protocol._loads is not _json._stdlib_loads:
        parsers.append((f"{_json.PARSER} ([fast])", protocol._loads, protocol._DECODE_ERRORS))
    saved = protocol._loads, protocol._DECODE_ERRORS
    print(f"{'parser':32s} {'type':4s} {'decode us':>9s} {'parse us':>9s} {'lazy us':>9s} {'x 0E':>6s} "
          f"{'budget':>6s}  {'full us':>9s} {'x 0E':>6s}")
    failed = False
    try:
        for name, loads, errors in parsers:
            protocol._loads, protocol._DECODE_ERRORS = loads, errors
            base = full_base = 0.0
            for type_code, frames in streams.items():
                decode_us, full_us, parse_us = measure(frames, type_code, loads, args.number, args.repeat)
                typing_us, full_typing_us = decode_us - parse_us, full_us - parse_us
                base = base or typing_us
                full_base = full_base or full_typing_us
                ratio = typing_us / base
                ok = ratio <= BUDGETS[type_code]
                failed |= not ok
                print(f"{name:32s} {type_code:4s} {decode_us:9.2f} {parse_us:9.2f} {typing_us:9.2f} "
                      f"{ratio:6.2f} {'<= ' + str(BUDGETS[type_code]):>6s}  {full_typing_us:9.2f} "
                      f"{full_typing_us / full_base:6.2f}{'' if ok else '  OVER'}")
    finally:
        protocol._loads, protocol._DECODE_ERRORS = saved
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
