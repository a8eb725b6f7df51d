"""Headline fields of the event classes: their kinds, how each is parsed, and lazy typing.

A class in ``events`` declares each typed field with ``fid_field(fid, kind)``. That declaration
is what its lazy reader parses by (a decoded event parses a field the first time it is read, then
keeps it), and what the careful full typing (``careful_values``) parses by: the values are the
same either way. The parsers themselves are in ``values``. Sans-I/O.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import attrs

from ._names import FIELD_NAMES, split_item
from .errors import DecodeError
from .values import (
    TIME_CACHE,
    parse_abs_int,
    parse_abs_number,
    parse_hhmmss,
    parse_positive_number,
    parse_positive_price,
    parse_rate,
    parse_signed_int,
    parse_text,
    parse_unsigned_int,
    parse_yyyymmdd,
)

if TYPE_CHECKING:
    from .events import RealtimeEvent

__all__ = ["DATE", "DURATION", "ENTERED", "INT", "LAST", "LAST_NUMBER", "NUMBER", "PARSERS", "PRICE", "RATE", "SIDE",
           "TEXT", "TIME", "UINT", "HeadlineField", "ItemPart", "careful_values", "fid_field", "headline_fields",
           "read_lazily"]

logger = logging.getLogger("kiwoom_rt.events")

# ---------------------------------------------------------------------------------------------
# Field declarations
# ---------------------------------------------------------------------------------------------

#: How a headline field is parsed. Each kind names a strict parser: the lazy field readers, the
#: careful full typing (``careful_values``) and the generic ``*_of`` methods all use them.
PRICE: Final = "price"  # absolute int: "-20800" -> 20800
NUMBER: Final = "number"  # absolute float (index values, NAV): "-1762.61" -> 1762.61
#: A traded or current price (FID 10): as PRICE or NUMBER, and positive (zero is unusable there;
#: a zero book level means an empty level and is read by the book's own reader).
LAST: Final = "last"  # positive absolute int
LAST_NUMBER: Final = "last_number"  # positive absolute finite float
INT: Final = "int"  # signed int: "-50" -> -50, "+82" -> 82
UINT: Final = "uint"  # int that cannot be negative (totals)
RATE: Final = "rate"  # signed float: "-0.24" -> -0.24
TIME: Final = "time"  # HHmmss -> datetime.time
TEXT: Final = "text"  # stripped string
ENTERED: Final = "entered"  # condition search: I -> True, D -> False
DURATION: Final = "duration"  # HHmmss remaining -> datetime.timedelta
DATE: Final = "date"  # YYYYMMDD -> datetime.date
SIDE: Final = "side"  # US orders: "01"/"1" -> "sell", "02"/"2" -> "buy"


def _parse_entered(raw: str) -> bool:
    text = raw.strip()
    if text == "I":
        return True
    if text == "D":
        return False
    raise ValueError(f"not I or D: {raw!r}")


_SIDES: Final = MappingProxyType({"01": "sell", "1": "sell", "02": "buy", "2": "buy"})


def _parse_side(raw: str) -> str:
    side = _SIDES.get(raw.strip())
    if side is None:
        raise ValueError(f"not a side code (01 sell, 02 buy): {raw!r}")
    return side


def _parse_duration(raw: str) -> _dt.timedelta:
    clock = parse_hhmmss(raw)
    return _dt.timedelta(hours=clock.hour, minutes=clock.minute, seconds=clock.second)


#: The strict parser of each kind: takes a non-blank string, raises ValueError when unusable.
PARSERS: Final[Mapping[str, Any]] = MappingProxyType({
    PRICE: parse_abs_int,
    NUMBER: parse_abs_number,
    LAST: parse_positive_price,
    LAST_NUMBER: parse_positive_number,
    INT: parse_signed_int,
    UINT: parse_unsigned_int,
    RATE: parse_rate,
    TIME: parse_hhmmss,
    TEXT: parse_text,
    ENTERED: _parse_entered,
    DURATION: _parse_duration,
    DATE: parse_yyyymmdd,
    SIDE: _parse_side,
})


def fid_field(fid: str, kind: str, *, often_blank: bool = False) -> Any:
    """Declare a headline field: its FID and kind. ``often_blank`` fields test for blanks inline."""
    return attrs.field(metadata={"fid": fid, "kind": kind, "often_blank": often_blank})


class HeadlineField(NamedTuple):
    """One typed field of an event class, as declared."""

    attr: str
    fid: str
    kind: str
    often_blank: bool


_HEADLINES: dict[type, tuple[HeadlineField, ...]] = {}


def headline_fields(cls: type[RealtimeEvent]) -> tuple[HeadlineField, ...]:
    """The typed fields of an event class, in declaration order (empty for ``RealEvent``)."""
    fields = _HEADLINES.get(cls)
    if fields is None:
        fields = _HEADLINES[cls] = tuple(
            HeadlineField(f.name, f.metadata["fid"], f.metadata["kind"], f.metadata["often_blank"])
            for f in attrs.fields(cls) if "fid" in f.metadata
        )
    return fields


# ---------------------------------------------------------------------------------------------
# Lazy typing
# ---------------------------------------------------------------------------------------------

def _blank_or(parse: Any) -> Any:
    """``parse`` with blanks read as None (what every headline field does)."""
    def parse_field(raw: str) -> Any:
        if type(raw) is str and not raw.strip():
            return None
        return parse(raw)
    return parse_field


#: Prices recur all day (an item trades at a few hundred distinct prices), so parsed prices are
#: cached by their raw text; only canonical integer text gets in, and the cache stays bounded.
_PRICE_CACHE: dict[str, int] = {}
_PRICE_CACHE_LIMIT: Final = 65_536


def _cached_reader(parse: Any, cache: dict[str, Any]) -> Any:
    """``parse`` with blanks read as None, and what it accepts kept in ``cache`` by its text
    (bounded); ``_LazyCached`` looks there first, so this runs for a text not seen yet."""
    def read(raw: str) -> Any:
        value = cache.get(raw) if type(raw) is str else None
        if value is None:
            if type(raw) is str and not raw.strip():
                return None
            value = parse(raw)
            if len(cache) >= _PRICE_CACHE_LIMIT:
                cache.clear()
            cache[raw] = value
        return value
    return read


#: Decimal prices (US stocks, index values) recur the same way: cached by their text likewise.
_NUMBER_CACHE: dict[str, float] = {}
#: Traded prices, by their text: only positive values get in (their own caches, so a zero read
#: through a PRICE field is never found here).
_LAST_CACHE: dict[str, int] = {}
_LAST_NUMBER_CACHE: dict[str, float] = {}


def _lazy_time(raw: str) -> _dt.time | None:
    value = TIME_CACHE.get(raw) if type(raw) is str else None
    if value is None:
        if type(raw) is str and not raw.strip():
            return None
        value = parse_hhmmss(raw)
    return value


#: The lazy reader of each kind: the strict parser with blanks read as None (prices and times
#: through their caches). Raises ValueError or TypeError when a value is unusable.
_LAZY_PARSERS: Final[Mapping[str, Any]] = MappingProxyType({
    **{kind: _blank_or(parse) for kind, parse in PARSERS.items()},
    PRICE: _cached_reader(parse_abs_int, _PRICE_CACHE),
    NUMBER: _cached_reader(parse_abs_number, _NUMBER_CACHE),
    LAST: _cached_reader(parse_positive_price, _LAST_CACHE),
    LAST_NUMBER: _cached_reader(parse_positive_number, _LAST_NUMBER_CACHE),
    TIME: _lazy_time,
})


class _LazyField:
    """A headline field of a decoded event: parsed from ``values`` on first read, then kept in the
    instance's ``__dict__``, where later reads find it without calling this descriptor again.

    A non-data descriptor, so attrs' own ``__init__`` (explicit construction) stores the value
    in the instance as usual and this is never called for such an event.
    """

    __slots__ = ("attr", "fid", "parse")

    def __init__(self, attr: str, fid: str, kind: str) -> None:
        self.attr = attr
        self.fid = fid
        self.parse = _LAZY_PARSERS[kind]

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        state = obj.__dict__
        raw = state["values"].get(self.fid)
        if raw is None:
            value = None
        else:
            try:
                value = self.parse(raw)
            except (ValueError, TypeError, AttributeError):
                return _settle(obj)[self.attr]
        state[self.attr] = value
        return value


class _LazyInteger(_LazyField):
    """An INT or UINT field: ASCII text without ``_`` that ``int`` reads as a number of at least
    ``least`` (0 for a UINT) is read inline, as ``_strict_int`` and ``parse_unsigned_int`` read
    it (one call, not the parser's chain of three); anything else (blank, a negative total,
    refused text, another type) takes ``_LazyField``'s path."""

    __slots__ = ("least",)

    def __init__(self, attr: str, fid: str, kind: str) -> None:
        super().__init__(attr, fid, kind)
        self.least = 0 if kind == UINT else -math.inf

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        state = obj.__dict__
        try:
            raw = state["values"][self.fid]
            if raw.isascii() and "_" not in raw:  # (AttributeError: not a string)
                value = int(raw)  # (ValueError: blank, or not an integer)
                if value >= self.least:
                    state[self.attr] = value
                    return value
        except (KeyError, AttributeError, TypeError, ValueError):  # (missing, not a string, not an integer)
            pass
        return _LazyField.__get__(self, obj, owner)


class _LazyRate(_LazyField):
    """A RATE field: ASCII text without ``_`` that ``float`` reads as a finite number is read
    inline (as ``parse_rate`` reads it); anything else takes ``_LazyField``'s path.

    Kept apart from ``_LazyInteger`` on purpose: one class for both, with the conversion held in
    a slot and a finiteness test for every number, made three integer reads of an event 7% dearer
    (13.4k to 14.3k instructions, callgrind), and integer fields are most of what receivers read.
    """

    __slots__ = ()

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        state = obj.__dict__
        try:
            raw = state["values"][self.fid]
            if raw.isascii() and "_" not in raw:
                value = float(raw)
                if value - value == 0.0:  # finite ("inf", "nan" and their kin are refused there)
                    state[self.attr] = value
                    return value
        except (KeyError, AttributeError, TypeError, ValueError):  # (missing, not a string, not a number)
            pass
        return _LazyField.__get__(self, obj, owner)


class _LazyCached(_LazyField):
    """A PRICE, NUMBER, LAST or TIME field: a text already parsed is found in its kind's cache
    inline; a new one takes ``_LazyField``'s path, which parses it strictly and caches it."""

    __slots__ = ("cache",)

    def __init__(self, attr: str, fid: str, kind: str, cache: dict[str, Any]) -> None:
        super().__init__(attr, fid, kind)
        self.cache = cache

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        state = obj.__dict__
        try:  # (the caches hold strings only: any other value, like a missing one, is not found)
            value = self.cache.get(state["values"][self.fid])
        except (KeyError, TypeError):  # (missing, or unhashable)
            value = None
        if value is None:
            return _LazyField.__get__(self, obj, owner)
        state[self.attr] = value
        return value


def _lazy_reader(attr: str, fid: str, kind: str) -> _LazyField:
    """The lazy reader of one headline field: the quick one of its kind, or the general one."""
    if kind in (INT, UINT):
        return _LazyInteger(attr, fid, kind)
    if kind == RATE:
        return _LazyRate(attr, fid, kind)
    caches: dict[str, dict[str, Any]] = {PRICE: _PRICE_CACHE, NUMBER: _NUMBER_CACHE, TIME: TIME_CACHE,
                                         LAST: _LAST_CACHE, LAST_NUMBER: _LAST_NUMBER_CACHE}
    cache = caches.get(kind)
    if cache is not None:
        return _LazyCached(attr, fid, kind, cache)
    return _LazyField(attr, fid, kind)


class ItemPart:
    """``code`` or ``exchange`` of a decoded event, split from ``item`` on first read."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        state = obj.__dict__
        parts = state["code"], state["exchange"] = split_item(state["item"])
        return parts[self.index]


def careful_values(cls: type[RealtimeEvent], values: Mapping[str, Any]) -> tuple[list[Any], list[str]]:
    """Every headline field of ``cls`` from ``values``, in declaration order, by the strict rules:
    blank or missing is None; unusable is None plus a problem (returned as text, one per FID)."""
    names = FIELD_NAMES.get(cls.type, {})
    problems: list[str] = []
    parsed: list[Any] = []
    for field in headline_fields(cls):
        raw = values.get(field.fid)
        if raw is None:
            parsed.append(None)
        elif type(raw) is not str:
            problems.append(f"FID {field.fid} ({names.get(field.fid, field.attr)}) is "
                            f"{type(raw).__name__}, not a string")
            parsed.append(None)
        elif not raw.strip():
            parsed.append(None)
        else:
            try:
                parsed.append(PARSERS[field.kind](raw))
            except ValueError as exc:
                problems.append(f"FID {field.fid} ({names.get(field.fid, field.attr)}): {exc}")
                parsed.append(None)
    return parsed, problems


def _settle(event: RealtimeEvent) -> dict[str, Any]:
    """Judge every headline field of a decoded event at once (one of them was unusable): keep all
    of them in the instance and report the entry's problems once. Returns the instance's dict."""
    cls = type(event)
    state: dict[str, Any] = event.__dict__
    parsed, problems = careful_values(cls, state["values"])
    for field, value in zip(headline_fields(cls), parsed, strict=True):
        state[field.attr] = value
    if problems:
        entry = {"type": cls.type, "item": state["item"], "values": dict(state["values"])}
        error = DecodeError(f"{cls.type} entry has unusable values: " + "; ".join(problems), entry,
                            type=cls.type, item=state["item"])
        report = state.pop("_report", None)
        if report is not None:
            report(error)
        else:
            logger.warning("%s", error)
    return state


def read_lazily(cls: type[RealtimeEvent]) -> None:
    """Make each headline field of ``cls`` lazy for decoded instances. The classes are
    ``attrs.frozen`` without slots, so a decoded event keeps its fields in ``__dict__``."""
    for field in headline_fields(cls):
        setattr(cls, field.attr, _lazy_reader(field.attr, field.fid, field.kind))
