"""Names in realtime entries: each type's field names (Korean) and FIDs, and items.

``FIELD_NAMES`` and ``fid_for`` look fields up by FID or Korean name; ``split_item`` and
``strip_market_prefix`` read an item (``"000660_NX"``, ``"A005930"``). Sans-I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .fids import FIELDS

__all__ = ["FIELD_NAMES", "fid_for", "split_item", "strip_market_prefix"]

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
_MARKET_PREFIXES = frozenset("AJQ")  # A stock, J ELW, Q ETN (condition search codes)
_ITEM_CACHE: dict[str, tuple[str, str]] = {}
_ITEM_CACHE_LIMIT = 100_000


def strip_market_prefix(code: str) -> str:
    """``"A005930"`` -> ``"005930"`` (condition search prefixes A, J and Q); others unchanged."""
    if len(code) == 7 and code[0] in _MARKET_PREFIXES and code[1:].isalnum():
        return code[1:]
    return code


def split_item(item: str) -> tuple[str, str]:
    """``"000660_NX"`` -> ``("000660", "NXT")``; ``"_AL"`` -> SOR; no suffix -> KRX; ``""`` -> ("", "").

    A one-letter market prefix (``A005930``) is dropped from the code.
    """
    cached = _ITEM_CACHE.get(item)
    if cached is not None:
        return cached
    if not item:
        result = ("", "")
    else:
        exchange = _SUFFIX_EXCHANGES.get(item[-3:])
        code, exchange = (item[:-3], exchange) if exchange else (item, "KRX")
        result = (strip_market_prefix(code), exchange)
    if len(_ITEM_CACHE) >= _ITEM_CACHE_LIMIT:
        _ITEM_CACHE.clear()
    _ITEM_CACHE[item] = result
    return result
