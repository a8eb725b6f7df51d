"""Typed realtime events: ``AfterHoursQuote`` for type 0E and ``RealEvent`` for every other type.

Both are frozen, slotted attrs classes. ``values`` is a read-only mapping of the raw FID strings
as received, so nothing a receiver does can change what another receiver sees.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

from .fids import FIELDS, TYPE_NAMES
from .values import (
    Price,
    is_blank,
    parse_hhmmss,
    parse_price,
    parse_rate,
    parse_signed_int,
)

__all__ = [
    "FIELD_NAMES",
    "TYPE_NAMES",
    "AfterHoursQuote",
    "RealEvent",
    "fid_for",
    "split_item",
]

#: {type: {fid: Korean name}} for every published realtime type.
FIELD_NAMES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {t: MappingProxyType({fid: name for fid, name, _ in fields}) for t, fields in FIELDS.items()}
)


def _names_to_fids() -> dict[str, dict[str, tuple[str, ...]]]:
    table: dict[str, dict[str, tuple[str, ...]]] = {}
    for type_code, fields in FIELDS.items():
        by_name: dict[str, tuple[str, ...]] = {}
        for fid, name, _ in fields:
            by_name[name] = (*by_name.get(name, ()), fid)
        table[type_code] = by_name
    return table


_FIDS_BY_NAME = _names_to_fids()


def fid_for(type_code: str, key: str) -> str:
    """The FID that ``key`` names in ``type_code``: a FID itself, or the Korean field name.

    Raises KeyError for an unknown name, and for a name two FIDs share (use the FID then).
    """
    fields = FIELD_NAMES.get(type_code)
    if fields is None or key in fields or key.isdigit():  # a FID, published or not
        return key
    fids = _FIDS_BY_NAME[type_code].get(key)
    if fids is None:
        raise KeyError(f"type {type_code} has no field {key!r}")
    if len(fids) > 1:
        raise KeyError(f"field name {key!r} of type {type_code} is ambiguous: use one of {fids}")
    return fids[0]


_SUFFIX_EXCHANGES = {"_NX": "NXT", "_AL": "SOR"}
_ITEM_CACHE: dict[str, tuple[str, str]] = {}
_ITEM_CACHE_LIMIT = 100_000


def split_item(item: str) -> tuple[str, str]:
    """``"000660_NX"`` -> ``("000660", "NXT")``; ``"_AL"`` -> SOR; no suffix -> KRX; ``""`` -> ("", "")."""
    cached = _ITEM_CACHE.get(item)
    if cached is not None:
        return cached
    if not item:
        result = ("", "")
    else:
        exchange = _SUFFIX_EXCHANGES.get(item[-3:])
        result = (item[:-3], exchange) if exchange else (item, "KRX")
    if len(_ITEM_CACHE) >= _ITEM_CACHE_LIMIT:
        _ITEM_CACHE.clear()
    _ITEM_CACHE[item] = result
    return result


@attrs.frozen(slots=True, repr=False)
class AfterHoursQuote:
    """Type 0E 주식시간외호가: after-hours total ask and bid quantities of one item.

    ``ask_total`` is FID 131 (시간외매도호가총잔량), ``ask_total_change`` FID 132 (signed change since
    the previous update), ``bid_total`` FID 135, ``bid_total_change`` FID 136. ``time`` is the quote
    time (FID 21, KST). ``received_at`` is ``time.time()`` when the frame arrived.
    """

    type: ClassVar[str] = "0E"
    name: ClassVar[str] = TYPE_NAMES["0E"]

    item: str
    code: str
    exchange: str
    time: _dt.time
    ask_total: int
    ask_total_change: int
    bid_total: int
    bid_total_change: int
    values: Mapping[str, str] = attrs.field(eq=False)
    received_at: float = attrs.field(eq=False)

    def __repr__(self) -> str:
        return (
            f"AfterHoursQuote(item={self.item!r}, time={self.time.isoformat()}, "
            f"ask_total={self.ask_total} ({self.ask_total_change:+d}), "
            f"bid_total={self.bid_total} ({self.bid_total_change:+d}))"
        )


@attrs.frozen(slots=True, repr=False)
class RealEvent:
    """One realtime entry of any type other than 0E, with lookup by FID or Korean field name.

    ``event["10"]`` and ``event["현재가"]`` give the raw string; ``event.price("현재가")``,
    ``event.quantity(...)``, ``event.rate(...)`` and ``event.hhmmss(...)`` parse it, returning
    ``None`` for a blank or absent value and raising ValueError for one that cannot be parsed.
    """

    type: str
    name: str
    item: str
    code: str
    exchange: str
    values: Mapping[str, str] = attrs.field(eq=False)
    received_at: float = attrs.field(eq=False)

    def __repr__(self) -> str:
        return f"RealEvent(type={self.type!r}, name={self.name!r}, item={self.item!r}, {len(self.values)} values)"

    @property
    def fields(self) -> Mapping[str, str]:
        """{fid: Korean name} of this event's type (empty for a type with no published table)."""
        return FIELD_NAMES.get(self.type, MappingProxyType({}))

    def __getitem__(self, key: str) -> str:
        """The raw value of a FID or Korean field name. KeyError if the frame did not carry it."""
        return self.values[fid_for(self.type, key)]

    def __contains__(self, key: object) -> bool:
        try:
            return isinstance(key, str) and fid_for(self.type, key) in self.values
        except KeyError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The raw value, or ``default`` when the frame did not carry it."""
        return self.values.get(fid_for(self.type, key), default)

    def named(self) -> dict[str, str]:
        """{Korean name or FID: raw value}: handy for printing."""
        names = self.fields
        return {names.get(fid, fid): value for fid, value in self.values.items()}

    def _present(self, key: str) -> str | None:
        raw = self.values.get(fid_for(self.type, key))
        return None if is_blank(raw) else raw

    def price(self, key: str) -> Price | None:
        """A price with its direction sign: ``"-20800"`` -> Price(20800, -1)."""
        raw = self._present(key)
        return None if raw is None else parse_price(raw)

    def quantity(self, key: str) -> int | None:
        """A signed integer: ``"+82"`` -> 82, ``"-1057122"`` -> -1057122."""
        raw = self._present(key)
        return None if raw is None else parse_signed_int(raw)

    def rate(self, key: str) -> float | None:
        """A signed rate or percentage: ``"-0.24"`` -> -0.24."""
        raw = self._present(key)
        return None if raw is None else parse_rate(raw)

    def hhmmss(self, key: str) -> _dt.time | None:
        """An HHmmss time: ``"165208"`` -> ``datetime.time(16, 52, 8)``."""
        raw = self._present(key)
        return None if raw is None else parse_hhmmss(raw)


def fast_constructor(cls: type[Any]) -> Any:
    """A positional constructor for a frozen slotted attrs class that skips ``__init__``.

    attrs' frozen ``__init__`` goes through ``object.__setattr__`` once per field (1.3 us for the
    ten fields of AfterHoursQuote on the reference machine); writing the slots through their
    descriptors builds the identical, equally frozen object in half the time. Only for decoded
    values that are already checked: it runs no validators or converters.
    """
    names = [field.name for field in attrs.fields(cls)]
    # Unrolled like attrs' and dataclasses' own generated __init__ (a loop costs 50% more).
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def build({', '.join(names)}):", "    obj = _new(_cls)"]
    for index, name in enumerate(names):
        namespace[f"_set{index}"] = getattr(cls, name).__set__
        lines.append(f"    _set{index}(obj, {name})")
    lines.append("    return obj")
    exec("\n".join(lines), namespace)  # names are attrs field names: identifiers, no user input
    build = namespace["build"]
    build.__doc__ = f"Build {cls.__name__}({', '.join(names)}) without running __init__."
    return build
