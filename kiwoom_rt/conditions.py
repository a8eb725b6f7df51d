"""Condition search (조건검색) results and handles: ``Condition``, ``ConditionHit``, ``ConditionWatch``.

Conditions are written in Kiwoom's HTS (영웅문4) and addressed by their sequence number ``seq``.
``Condition`` and ``ConditionHit`` are what the session's condition search returns, and the
parsers here read them from replies (pure). ``ConditionWatch``, the realtime handle, is the
session's (``kiwoom_rt._handles``) and is found here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from .events import strip_market_prefix
from .values import is_blank, parse_abs_int, parse_rate, parse_signed_int

__all__ = ["Condition", "ConditionHit", "parse_conditions", "parse_hit"]  # and ConditionWatch, on first use


@attrs.frozen(slots=True)
class Condition:
    """One condition of the user's list (CNSRLST): its ``seq`` and ``name``, as strings."""

    seq: str
    name: str


def parse_conditions(data: Iterable[Any]) -> list[Condition]:
    """CNSRLST's ``data`` (``[[seq, name], ...]``) as conditions; unusable rows raise ValueError."""
    result = []
    for row in data:
        if not isinstance(row, (list, tuple)) or len(row) < 2:
            raise ValueError(f"a condition list row is not [seq, name]: {row!r}")
        result.append(Condition(str(row[0]).strip(), str(row[1]).strip()))
    return result


@attrs.frozen(slots=True)
class ConditionHit:
    """One row of a one-shot condition search (CNSRREQ with search_type 0).

    ``code`` has no market prefix (``A005930`` -> ``005930``); ``price``, ``open``, ``high`` and
    ``low`` are absolute; ``change`` and ``rate`` are signed (FID 25's sign code applies when the
    number itself is unsigned); ``volume`` is the cumulative volume. ``values`` is the raw row.
    """

    code: str
    name: str
    price: int | None
    change: int | None
    rate: float | None
    volume: int | None
    open: int | None
    high: int | None
    low: int | None
    values: Mapping[str, Any] = attrs.field(eq=False, repr=False)


_DOWN_SIGNS = frozenset({"4", "5"})  # 전일대비기호: 4 lower limit, 5 down


def _optional(raw: Any, parse: Callable[[str], Any]) -> Any:
    if is_blank(raw):
        return None
    return parse(raw)


def parse_hit(row: Mapping[str, Any]) -> ConditionHit:
    """A one-shot search row as a hit; raises ValueError when a value is unusable."""
    if not isinstance(row, Mapping):
        raise ValueError(f"a search row is not an object: {row!r}")
    code = row.get("9001", row.get("jmcode"))
    if not isinstance(code, str) or not code.strip():
        raise ValueError(f"a search row has no code: {row!r}")
    change = _optional(row.get("11"), parse_signed_int)
    rate = _optional(row.get("12"), parse_rate)
    if str(row.get("25", "")).strip() in _DOWN_SIGNS:
        change = -abs(change) if change is not None else None
        rate = -abs(rate) if rate is not None else None
    name = row.get("302")
    return ConditionHit(strip_market_prefix(code.strip()), name.strip() if isinstance(name, str) else "",
                        _optional(row.get("10"), parse_abs_int), change, rate,
                        _optional(row.get("13"), parse_signed_int), _optional(row.get("16"), parse_abs_int),
                        _optional(row.get("17"), parse_abs_int), _optional(row.get("18"), parse_abs_int),
                        MappingProxyType(dict(row)))


def __getattr__(name: str) -> Any:
    """``ConditionWatch`` lives with the other handles (``kiwoom_rt._handles``); this path keeps
    working without making this pure module import them."""
    if name == "ConditionWatch":
        from ._handles import ConditionWatch

        return ConditionWatch
    raise AttributeError(f"module 'kiwoom_rt.conditions' has no attribute {name!r}")
