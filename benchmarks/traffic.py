"""What the benchmark servers send: realistic REAL frames of several shapes, pre-encoded.

    from traffic import SHAPES, frames
    payloads = frames("0e-x5", 100_000)       # JSON payloads (bytes), seeded: the same every run

Shapes (``SHAPES``):

- ``0e-legacy``: the project's original benchmark: one subscribed item, frames cycling through 100
  items, values that barely vary (FID 132 always ``+156``, FID 21 always ``165208``). Kept so that
  old figures can be compared; it flatters every parse cache.
- ``0e-x1``: one 0E entry per frame, items drawn at random from 2,000, totals from 0 to 5,000,000,
  signed changes, times spread over the two hours of 시간외 단일가.
- ``0e-x5``: the same values, five entries per frame, as Kiwoom batches entries under load.
- ``mixed``: half 0B trades, half 0D ten-level books (about 3 KB a frame) from the simulator's
  regular-session market over 2,000 items, times spread over the session.

Every entry carries FID 9999, a 16-digit placeholder that paced servers overwrite with the send
time in microseconds since the epoch (``stamp``), so receivers can measure latency.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator

#: The placeholder every entry carries in FID 9999 (16 digits, overwritten by paced servers).
STAMP_PLACEHOLDER = b"0000000000000000"
STAMP_WIDTH = len(STAMP_PLACEHOLDER)

SHAPES = {
    "0e-legacy": "0E, 1 entry/frame, 1 item subscribed, near-constant values (the old benchmark)",
    "0e-x1": "0E, 1 entry/frame, 2,000 items, varied values",
    "0e-x5": "0E, 5 entries/frame, 2,000 items, varied values",
    "mixed": "0B trades + 0D books (about 3 KB), 1 entry/frame, 2,000 items",
}
#: The realtime types each shape carries, and how many items a client subscribes.
SHAPE_TYPES = {"0e-legacy": ("0E",), "0e-x1": ("0E",), "0e-x5": ("0E",), "mixed": ("0B", "0D")}
SHAPE_ITEMS = {"0e-legacy": 1, "0e-x1": 2000, "0e-x5": 2000, "mixed": 2000}
ENTRIES_PER_FRAME = {"0e-legacy": 1, "0e-x1": 1, "0e-x5": 5, "mixed": 1}

NAMES = {"0E": "주식시간외호가", "0B": "주식체결", "0D": "주식호가잔량"}


def items(count: int) -> list[str]:
    """The item codes a client subscribes (``000001`` ... for ``count`` items)."""
    return [f"{index + 1:06d}" for index in range(count)]


def _entry(type_code: str, item: str, values: dict[str, str]) -> dict[str, object]:
    return {"type": type_code, "name": NAMES[type_code], "item": item,
            "values": {**values, "9999": STAMP_PLACEHOLDER.decode()}}


def _frame(entries: list[dict[str, object]]) -> bytes:
    return json.dumps({"trnm": "REAL", "data": entries}, ensure_ascii=False, separators=(",", ":")).encode()


def _signed(value: int) -> str:
    return f"{value:+d}" if value else "0"


def _legacy(count: int) -> Iterator[bytes]:
    for index in range(count):
        values = {"21": "165208", "131": str(40000 + index % 997), "132": "+156",
                  "135": str(1000 + index % 89), "136": "-3"}
        yield _frame([_entry("0E", f"{index % 100:06d}", values)])


def _varied_0e(rng: random.Random, codes: list[str]) -> dict[str, object]:
    seconds = rng.randrange(2 * 3600)  # 16:00:00 to 17:59:59
    moment = f"{16 + seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
    values = {"21": moment, "131": str(rng.randint(0, 5_000_000)),
              "132": _signed(rng.choice((0, 1, -1)) * rng.randint(1, 50_000)),
              "135": str(rng.randint(0, 5_000_000)),
              "136": _signed(rng.choice((0, 1, -1)) * rng.randint(1, 50_000))}
    return _entry("0E", rng.choice(codes), values)


def _varied(count: int, per_frame: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    codes = items(2000)
    for _ in range(count):
        yield _frame([_varied_0e(rng, codes) for _ in range(per_frame)])


def _mixed(count: int, seed: int) -> Iterator[bytes]:
    from kiwoom_rt.sim.market import RegularMarket

    rng = random.Random(seed)
    market = RegularMarket(seed)
    codes = items(2000)
    start = dt.datetime(2026, 12, 3, 9, 0)
    for index in range(count):
        item = rng.choice(codes)
        moment = start + dt.timedelta(seconds=index * 23_400 // max(count, 1))  # across 09:00-15:30
        if index % 2:
            yield _frame([_entry("0D", item, market.book(item, moment))])
        else:
            yield _frame([_entry("0B", item, market.trade(item, moment))])


def frames(shape: str, count: int, seed: int = 1) -> list[bytes]:
    """``count`` REAL frame payloads of ``shape`` (seeded: the same list every call)."""
    if shape == "0e-legacy":
        return list(_legacy(count))
    if shape in ("0e-x1", "0e-x5"):
        return list(_varied(count, ENTRIES_PER_FRAME[shape], seed))
    if shape == "mixed":
        return list(_mixed(count, seed))
    raise ValueError(f"unknown shape {shape!r}; choose from {sorted(SHAPES)}")


def stamp_offsets(payload: bytes) -> list[int]:
    """Where the FID 9999 placeholders of a payload start."""
    offsets, start = [], 0
    needle = b'"9999":"' + STAMP_PLACEHOLDER
    while True:
        found = payload.find(needle, start)
        if found < 0:
            return offsets
        offsets.append(found + len(needle) - STAMP_WIDTH)
        start = found + 1


def stamp(payload: bytes, offsets: list[int], micros: int) -> bytes:
    """``payload`` with every placeholder set to ``micros`` (zero-padded to 16 digits)."""
    text = f"{micros:016d}".encode()
    buffer = bytearray(payload)
    for offset in offsets:
        buffer[offset:offset + STAMP_WIDTH] = text
    return bytes(buffer)
