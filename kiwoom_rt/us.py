"""US stocks (미국주식) on Kiwoom's second socket, ``/api/us/websocket``: items and markets (pure).

A US item is a symbol on an exchange. ``UsItem("NVDA", "NASDAQ")`` names one, and so do the
strings ``"NASDAQ:NVDA"`` and ``"ND:NVDA"``: Kiwoom's exchange codes are ``ND`` (NASDAQ), ``NY``
(NYSE) and ``NA`` (AMEX). Sessions keep US items as their canonical strings (``str(item)``,
``"NASDAQ:NVDA"``), and REG sends them as Kiwoom's published examples do::

    {"jmcode": "NVDA", "stex_tp": "ND"}

Two peer clients send plain strings instead; ``us_item_format="string"`` (a session option) does
that, should the server turn out to want it. Symbols are kept exactly as given: the domestic
rule that drops a market prefix (``A005930`` -> ``005930``) never applies to them.

Nothing here was checked against a live server (docs/protocol.md, "The US socket").
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from ._catalogue import US_TYPES  # (the types REG accepts on the US socket)

__all__ = [
    "EXCHANGE_CODES",
    "EXCHANGE_NAMES",
    "MARKETS",
    "US_ITEM_FORMATS",
    "US_PATH",
    "US_TYPES",
    "UsItem",
    "check_us_items",
    "exchange_name",
    "market_of_url",
    "parse_us_item",
    "to_eastern",
    "us_sender",
    "wire_items",
]

#: Kiwoom's exchange code (``stex_tp``) of each US exchange.
EXCHANGE_CODES: Final = MappingProxyType({"NASDAQ": "ND", "NYSE": "NY", "AMEX": "NA"})
#: The exchange named by each of Kiwoom's codes.
EXCHANGE_NAMES: Final = MappingProxyType({code: name for name, code in EXCHANGE_CODES.items()})
#: The two sockets: ``"kr"`` (domestic, /api/dostk/websocket) and ``"us"`` (/api/us/websocket).
MARKETS: Final = ("kr", "us")
#: How REG sends US items: Kiwoom's objects (the default) or plain ``"NVDA"`` strings.
US_ITEM_FORMATS: Final = ("object", "string")
#: The path of the US socket.
US_PATH: Final = "/api/us/websocket"

#: A US symbol: letters, digits and the class separators seen in US tickers (BRK.B, BF/B, PBR-A).
_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9./-]{0,15}\Z")


def exchange_name(exchange: str) -> str:
    """``"ND"``, ``"nasdaq"`` or ``"NASDAQ"`` -> ``"NASDAQ"``; ValueError for anything else."""
    if not isinstance(exchange, str):
        raise ValueError(f"a US exchange is a string, got {exchange!r}")
    key = exchange.strip().upper()
    name = EXCHANGE_NAMES.get(key, key if key in EXCHANGE_CODES else None)
    if name is None:
        raise ValueError(f"unknown US exchange {exchange!r}: use NASDAQ, NYSE or AMEX (or ND, NY, NA)")
    return name


def _check_symbol(symbol: Any) -> str:
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
        raise ValueError(f"malformed US symbol {symbol!r} (expected e.g. NVDA or BRK.B)")
    if symbol.isdigit():
        raise ValueError(f"{symbol!r} is a domestic code, not a US symbol")
    return symbol.upper()  # Kiwoom's symbols are upper case: "nvda" is NVDA


@attrs.frozen(eq=False, repr=False)
class UsItem:
    """A US stock: its symbol and exchange (``UsItem("NVDA", "NASDAQ")`` or ``UsItem("NVDA", "ND")``).

    ``exchange`` is the name (NASDAQ, NYSE, AMEX) however it was spelled, ``stex_tp`` Kiwoom's
    code (ND, NY, NA), and ``str()`` gives ``"NASDAQ:NVDA"``. Two items are equal when symbol and
    exchange are. The symbol is upper-cased (``"nasdaq:nvda"`` is ``NASDAQ:NVDA``).
    """

    symbol: str = attrs.field(converter=_check_symbol)
    exchange: str = attrs.field(converter=exchange_name)

    @property
    def stex_tp(self) -> str:
        """Kiwoom's code of the exchange: ``ND``, ``NY`` or ``NA``."""
        return EXCHANGE_CODES[self.exchange]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}"

    def __repr__(self) -> str:
        return f"UsItem({self.symbol!r}, {self.exchange!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UsItem):
            return NotImplemented
        return (self.symbol, self.exchange) == (other.symbol, other.exchange)

    def __hash__(self) -> int:
        return hash((self.symbol, self.exchange))


def parse_us_item(item: UsItem | str) -> UsItem:
    """A ``UsItem`` from itself or from ``"NASDAQ:NVDA"`` / ``"ND:NVDA"``.

    ValueError for a bare symbol, a domestic code or an unknown exchange.
    """
    if isinstance(item, UsItem):
        return item
    if not isinstance(item, str):
        raise ValueError(f"a US item is a UsItem or a string like 'NASDAQ:NVDA', got {item!r}")
    exchange, colon, symbol = item.partition(":")
    if not colon:
        if item.isdigit() or item[:6].isdigit():
            raise ValueError(f"{item!r} is a domestic code: a US session takes items like 'NASDAQ:NVDA'")
        raise ValueError(f"US item {item!r} has no exchange: write it as 'NASDAQ:{item}' (or NYSE, AMEX)")
    return UsItem(symbol.strip(), exchange)


def us_sender(item: Any) -> Any:
    """The sender a US event carries for ``item``: its symbol (``"NVDA"``). US events name the
    symbol alone, so a receiver connected with ``sender="NASDAQ:NVDA"``, ``UsItem("NVDA",
    "NASDAQ")``, ``"nasdaq:nvda"`` or ``"nvda"`` hears NVDA's events. ValueError for an item
    that is no US item (a domestic code, an unknown exchange)."""
    if isinstance(item, UsItem):
        return item.symbol
    if not isinstance(item, str):
        return item
    if ":" in item:
        return parse_us_item(item).symbol
    return _check_symbol(item.strip())


def check_us_items(items: Iterable[UsItem | str] | UsItem | str) -> list[str]:
    """US items as their canonical strings (``"NASDAQ:NVDA"``); one item may be given alone.

    Raises ValueError for anything that is not a US item, before anything is sent.
    """
    if isinstance(items, (str, UsItem)):
        items = [items]
    result = [str(parse_us_item(item)) for item in items]
    if not result:
        raise ValueError("at least one item is needed")
    return result


def wire_items(items: Iterable[str], item_format: str = "object") -> list[Any]:
    """Canonical US items as REG/REMOVE send them: ``{"jmcode", "stex_tp"}`` objects, or the
    plain symbols with ``item_format="string"``."""
    if item_format not in US_ITEM_FORMATS:
        raise ValueError(f"us_item_format must be one of {US_ITEM_FORMATS}, got {item_format!r}")
    parsed = [parse_us_item(item) for item in items]
    if item_format == "string":
        return [item.symbol for item in parsed]
    return [{"jmcode": item.symbol, "stex_tp": item.stex_tp} for item in parsed]


def market_of_url(url: str) -> str:
    """``"us"`` when the URL's path ends in ``/api/us/websocket``, else ``"kr"``."""
    return "us" if urlsplit(url).path.rstrip("/").endswith(US_PATH) else "kr"


def _nth_sunday(year: int, month: int, n: int) -> _dt.date:
    first = _dt.date(year, month, 1)
    return first + _dt.timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))


def to_eastern(moment: _dt.datetime) -> _dt.datetime:
    """An aware ``moment`` in US Eastern time (EST, UTC-5; EDT, UTC-4, from the second Sunday of
    March 02:00 to the first Sunday of November 02:00 local, the rule since 2007).

    Pure arithmetic, so it needs no time zone database (Windows has none without ``tzdata``).
    """
    if moment.tzinfo is None:
        raise ValueError("to_eastern needs an aware datetime")
    utc = moment.astimezone(_dt.UTC).replace(tzinfo=None)
    year = utc.year
    # the switches in UTC: 02:00 EST = 07:00 UTC in March, 02:00 EDT = 06:00 UTC in November
    summer_starts = _dt.datetime.combine(_nth_sunday(year, 3, 2), _dt.time(7))
    summer_ends = _dt.datetime.combine(_nth_sunday(year, 11, 1), _dt.time(6))
    summer = summer_starts <= utc < summer_ends
    zone = _EDT if summer else _EST
    return moment.astimezone(zone)


_EST = _dt.timezone(_dt.timedelta(hours=-5), "EST")
_EDT = _dt.timezone(_dt.timedelta(hours=-4), "EDT")
