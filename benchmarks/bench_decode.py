"""Microseconds per single-entry 0E REAL frame through ``protocol.decode``, JSON parsing included.

    python benchmarks/bench_decode.py [--number 200000] [--repeat 7]

Reports the best of ``--repeat`` runs (the least disturbed by other work on the machine) for the
JSON parser in use (orjson when installed) and for the default install's parser (the standard
library's C scanner), through ``decode`` and through ``decode_into`` (what the session runs).
"""

from __future__ import annotations

import argparse
import json
import timeit

from kiwoom_rt import protocol

FRAME = (
    '{"trnm":"REAL","data":[{"type":"0E","name":"주식시간외호가","item":"005930",'
    '"values":{"21":"165208","131":"43955","132":"+156","135":"0","136":"0"}}]}'
)


def best_us(fn: object, number: int, repeat: int) -> float:
    times = timeit.repeat(fn, number=number, repeat=repeat)  # type: ignore[arg-type]
    return min(times) / number * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    raw = FRAME.encode()
    from kiwoom_rt import _json

    assert protocol.decode(raw).events[0].ask_total == 43955  # type: ignore[union-attr]
    sink: list[object] = []

    def run_decode() -> None:
        protocol.decode(raw, received_at=1.0)

    def run_decode_into() -> None:  # the session's hot path: events go straight to its batch
        protocol.decode_into(raw, sink, received_at=1.0)
        sink.clear()

    parsers = [(_json.PARSER, protocol._loads)]
    if protocol._loads is not _json._stdlib_loads:
        parsers.append(("default install: stdlib C scanner", _json._stdlib_loads))
    rows = []
    saved = protocol._loads, protocol._DECODE_ERRORS
    try:
        for name, loads in parsers:
            protocol._loads = loads
            protocol._DECODE_ERRORS = saved[1] if loads is saved[0] else (ValueError, TypeError, RecursionError)
            rows.append((f"decode ({name})", best_us(run_decode, args.number, args.repeat)))
            rows.append((f"decode_into ({name})", best_us(run_decode_into, args.number, args.repeat)))
            parse_only = best_us(lambda parse=loads: parse(raw), args.number, args.repeat)
            rows.append((f"  of which parsing alone ({name})", parse_only))
    finally:
        protocol._loads, protocol._DECODE_ERRORS = saved
    rows.append(("  json.loads, for comparison", best_us(lambda: json.loads(raw), args.number, args.repeat)))
    print(f"{'what':52s} us/frame")
    for name, us in rows:
        print(f"{name:52s} {us:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
