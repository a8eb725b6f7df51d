"""Condition search (조건검색) results and handles: ``Condition``, ``ConditionHit``, ``ConditionWatch``.

Conditions are written in Kiwoom's HTS (영웅문4; 영웅문Global for US stocks) and addressed by their
sequence number ``seq``.
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
from .us import EXCHANGE_NAMES
from .values import is_blank, parse_abs_int, parse_abs_number, parse_rate, parse_signed_int

# and ConditionWatch, on first use
__all__ = ["Condition", "ConditionHit", "member_code", "parse_conditions", "parse_hit"]


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
    """One row of a one-shot condition search (CNSRREQ with search_type 0; GCNSRREQ on the US socket).

    ``code`` has no market prefix (``A005930`` -> ``005930``); a US symbol is kept as sent, with
    its ``exchange`` (NASDAQ, NYSE, AMEX) when the row names one (None on the domestic socket).
    ``price``, ``open``, ``high`` and ``low`` are absolute (ints in won, floats in dollars);
    ``change`` and ``rate`` are signed (FID 25's sign code applies when the number itself is
    unsigned); ``volume`` is the cumulative volume. ``values`` is the raw row.
    """

    code: str
    name: str
    price: float | None
    change: float | None
    rate: float | None
    volume: int | None
    open: float | None
    high: float | None
    low: float | None
    values: Mapping[str, Any] = attrs.field(eq=False, repr=False)
    exchange: str | None = None


_DOWN_SIGNS = frozenset({"4", "5"})  # 전일대비기호: 4 lower limit, 5 down


def _optional(raw: Any, parse: Callable[[str], Any]) -> Any:
    if is_blank(raw):
        return None
    return parse(raw)


def member_code(row: Any, market: str = "kr") -> str:
    """The code of a realtime search's member row (``{"jmcode": ...}``, or FID 9001): a domestic
    code without its market prefix, a US symbol as sent. ValueError when the row has none."""
    code = row.get("jmcode", row.get("9001")) if isinstance(row, Mapping) else None
    if not isinstance(code, str) or not code.strip():
        raise ValueError(f"a member row has no code: {row!r}")
    return code.strip() if market == "us" else strip_market_prefix(code.strip())


def parse_hit(row: Mapping[str, Any], market: str = "kr") -> ConditionHit:
    """A one-shot search row as a hit; raises ValueError when a value is unusable.

    ``market="us"``: prices are decimals, the symbol is kept as sent and ``stex_tp`` (or
    ``stexTp``) names the exchange.
    """
    if not isinstance(row, Mapping):
        raise ValueError(f"a search row is not an object: {row!r}")
    code = row.get("9001", row.get("jmcode"))
    if not isinstance(code, str) or not code.strip():
        raise ValueError(f"a search row has no code: {row!r}")
    us = market == "us"
    price = parse_abs_number if us else parse_abs_int
    change = _optional(row.get("11"), parse_rate if us else parse_signed_int)
    rate = _optional(row.get("12"), parse_rate)
    if str(row.get("25", "")).strip() in _DOWN_SIGNS:
        change = -abs(change) if change is not None else None
        rate = -abs(rate) if rate is not None else None
    name = row.get("302")
    exchange = None
    if us:
        stex = row.get("stex_tp", row.get("stexTp"))
        exchange = EXCHANGE_NAMES.get(stex.strip().upper()) if isinstance(stex, str) else None
    return ConditionHit(code.strip() if us else strip_market_prefix(code.strip()),
                        name.strip() if isinstance(name, str) else "",
                        _optional(row.get("10"), price), change, rate,
                        _optional(row.get("13"), parse_signed_int), _optional(row.get("16"), price),
                        _optional(row.get("17"), price), _optional(row.get("18"), price),
                        MappingProxyType(dict(row)), exchange)


def __getattr__(name: str) -> Any:
    """``ConditionWatch`` lives with the other handles (``kiwoom_rt._handles``); this path keeps
    working without making this pure module import them."""
    if name == "ConditionWatch":
        from ._handles import ConditionWatch

        return ConditionWatch
    raise AttributeError(f"module 'kiwoom_rt.conditions' has no attribute {name!r}")
