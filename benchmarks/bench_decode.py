"""Microseconds per single-entry 0E REAL frame through ``protocol.decode``, JSON parsing included.

    python benchmarks/bench_decode.py [--number 200000] [--repeat 7]

Reports the best of ``--repeat`` runs (the least disturbed by other work on the machine) for the
JSON parser in use (orjson when installed, else the standard library) and, when orjson is
installed, for the standard library too. Target: <= 4 us per frame on the 2-core reference machine.
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

    parser_name = _json.PARSER

    def run() -> None:
        protocol.decode(raw, received_at=1.0)

    assert protocol.decode(raw).events[0].ask_total == 43955  # type: ignore[union-attr]
    rows = [(f"decode (bytes frame, {parser_name})", best_us(run, args.number, args.repeat))]
    if protocol._loads is not json.loads:
        saved = protocol._loads, protocol._DECODE_ERRORS
        protocol._loads, protocol._DECODE_ERRORS = json.loads, (ValueError, TypeError, RecursionError)
        try:
            rows.append(("decode (bytes frame, stdlib json)", best_us(run, args.number, args.repeat)))
        finally:
            protocol._loads, protocol._DECODE_ERRORS = saved
    rows.append(("  of which json.loads alone", best_us(lambda: json.loads(raw), args.number, args.repeat)))
    print(f"{'what':40s} us/frame")
    for name, us in rows:
        print(f"{name:40s} {us:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
