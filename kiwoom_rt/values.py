"""Parsing of Kiwoom realtime value strings (pure functions).

Kiwoom sends every value as a string. Prices carry ``+``/``-`` as their direction against the
previous close (the price itself is the absolute value); changes of quantities keep their sign;
zero is unsigned; leading spaces and blank values (``" "``, ``""``) occur and mean "missing".
"""

from __future__ import annotations

import datetime as _dt
from typing import NamedTuple

__all__ = [
    "TIME_CACHE",
    "Price",
    "is_blank",
    "parse_abs_int",
    "parse_abs_number",
    "parse_hhmmss",
    "parse_positive_number",
    "parse_positive_price",
    "parse_price",
    "parse_rate",
    "parse_signed_int",
    "parse_text",
    "parse_unsigned_int",
    "parse_yyyymmdd",
]


class Price(NamedTuple):
    """A price with its direction against the previous close (+1 up, -1 down, 0 unchanged)."""

    value: float
    direction: int


def is_blank(raw: object) -> bool:
    """True for a missing or blank value (``None``, ``""``, ``"  "``); False for anything else."""
    return raw is None or (type(raw) is str and not raw.strip())


def _strict_int(raw: str) -> int:
    if type(raw) is not str:
        raise ValueError(f"not a string: {raw!r}")
    # int() accepts "1_000" and non-ASCII digits; Kiwoom sends neither, so refuse them.
    if "_" in raw or not raw.isascii():
        raise ValueError(f"not a plain integer: {raw!r}")
    return int(raw)  # int() itself strips surrounding whitespace and accepts one sign


def canonical_int(raw: object) -> int | None:
    """The value of a canonical integer text: at most one sign, then ASCII digits (``"+60700"``,
    ``"-50"``, ``"0"``); None for anything else (blank, spaces, decimals, other digits). The
    quick road for hot readers, which take anything it refuses to the strict parsers above (it
    accepts nothing they refuse, and reads what it accepts as they do)."""
    if type(raw) is not str:
        return None
    first = raw[:1]
    digits = raw[1:] if first == "+" or first == "-" else raw
    if not (digits.isdigit() and digits.isascii()):
        return None
    value = int(digits)
    return -value if first == "-" else value


def parse_signed_int(raw: str) -> int:
    """``"+156"`` -> 156, ``"-20"`` -> -20, ``" 0"`` -> 0. Blank raises ValueError."""
    return _strict_int(raw)


def parse_unsigned_int(raw: str) -> int:
    """A quantity that cannot be negative (``"43955"``). A leading ``+`` is tolerated."""
    value = _strict_int(raw)
    if value < 0:
        raise ValueError(f"negative value where none is possible: {raw!r}")
    return value


def parse_abs_int(raw: str) -> int:
    """A price without its direction sign: ``"-20800"`` -> 20800."""
    return abs(_strict_int(raw))


def parse_abs_number(raw: str) -> float:
    """An index value or NAV without its direction sign: ``"-1762.61"`` -> 1762.61."""
    return abs(parse_rate(raw))


def parse_text(raw: str) -> str:
    """A text value with surrounding spaces removed."""
    if type(raw) is not str:
        raise ValueError(f"not a string: {raw!r}")
    return raw.strip()


def parse_rate(raw: str) -> float:
    """A signed percentage such as ``"-0.24"`` -> -0.24."""
    if type(raw) is not str:
        raise ValueError(f"not a string: {raw!r}")
    text = raw.strip()
    if not text or "_" in text or not text.isascii() or text.lower().lstrip("+-") in _NON_FINITE:
        raise ValueError(f"not a rate: {raw!r}")
    value = float(text)
    if value - value != 0.0:  # overflowing text ("1e400") reads as infinite
        raise ValueError(f"not a finite number: {raw!r}")
    return value


def parse_positive_price(raw: str) -> int:
    """A traded price without its direction sign, which must be positive: ``"-20800"`` -> 20800;
    ``"0"`` is refused (no trade happens at zero; an empty book level is read elsewhere)."""
    value = parse_abs_int(raw)
    if value == 0:
        raise ValueError(f"a price of zero: {raw!r}")
    return value


def parse_positive_number(raw: str) -> float:
    """``parse_positive_price`` for decimal prices (US stocks, index values): positive and finite."""
    value = parse_abs_number(raw)
    if value == 0:
        raise ValueError(f"a price of zero: {raw!r}")
    return value


_NON_FINITE = frozenset({"inf", "infinity", "nan"})


def parse_price(raw: str) -> Price:
    """``"-20800"`` -> Price(20800, -1); ``"+2520.58"`` -> Price(2520.58, 1); ``"0"`` -> (0, 0)."""
    if type(raw) is not str:
        raise ValueError(f"not a string: {raw!r}")
    text = raw.strip()
    direction = 0
    if text[:1] == "+":
        direction, text = 1, text[1:]
    elif text[:1] == "-":
        direction, text = -1, text[1:]
    if not text or not (text[0].isdigit() and text.isascii()) or "_" in text:
        raise ValueError(f"not a price: {raw!r}")
    value: float = int(text) if text.isdigit() else parse_rate(text)
    return Price(value, direction)


#: Parsed HHmmss times by their text (at most 86,400 canonical keys): shared with the event readers.
TIME_CACHE: dict[str, _dt.time] = {}


def parse_hhmmss(raw: str) -> _dt.time:
    """``"165208"`` -> ``datetime.time(16, 52, 8)``. Cached: at most 86,400 distinct values."""
    if type(raw) is not str:
        raise ValueError(f"not a string: {raw!r}")
    cached = TIME_CACHE.get(raw)
    if cached is not None:
        return cached
    text = raw.strip()
    if len(text) != 6 or not (text.isdigit() and text.isascii()):
        raise ValueError(f"not an HHmmss time: {raw!r}")
    value = _dt.time(int(text[0:2]), int(text[2:4]), int(text[4:6]))  # ValueError if out of range
    if raw == text:  # cache only canonical keys so the cache stays bounded
        TIME_CACHE[raw] = value
    return value


def parse_yyyymmdd(raw: str) -> _dt.date:
    """``"20260630"`` -> ``datetime.date(2026, 6, 30)``."""
    if type(raw) is not str:
        raise ValueError(f"not a string: {raw!r}")
    text = raw.strip()
    if len(text) != 8 or not (text.isdigit() and text.isascii()):
        raise ValueError(f"not a YYYYMMDD date: {raw!r}")
    return _dt.date(int(text[0:4]), int(text[4:6]), int(text[6:8]))  # ValueError if out of range
