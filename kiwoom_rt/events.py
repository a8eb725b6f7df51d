"""Typed realtime events: one frozen class per Kiwoom realtime type, all sharing ``RealtimeEvent``.

Every event carries what every type has:

* ``type`` (``"0B"``), ``name`` (``"주식체결"``), ``item`` as sent (``"005930_NX"``), ``code``
  (``"005930"``) and ``exchange`` (``KRX``, ``NXT`` or ``SOR``, from the item's suffix);
* ``values``: the raw strings as received, read-only, so nothing a receiver does can change what
  another receiver sees;
* ``received_at``: ``time.time()`` when the frame arrived;
* lookup by FID or Korean field name (``event["10"]``, ``event["현재가"]``, ``event.get(...)``) and
  generic parsers for any field (``price_of``, ``quantity_of``, ``rate_of``, ``time_of``).

Each class adds typed *headline* fields with names a trader knows (``Trade.price``,
``OrderBook.asks``). The parsing rules are the same for every type:

* a price is the absolute value: its ``+``/``-`` direction sign is dropped (the sign lives in the
  change fields, which stay signed);
* rates and index values are floats; times are ``datetime.time`` in KST;
* a blank (``""``, ``" "``) or missing value is ``None``;
* an unparsable value is ``None`` too: the entry is still delivered, and the problem is reported
  once per entry through the session's ``on_error``.

A decoded event is typed lazily: the decoder only wraps the entry's values, and each headline
field is parsed the first time it is read, then kept in the instance (``code`` and ``exchange``
too). A receiver that reads two fields pays for two, and one that reads ``values`` pays for none.
The first read of a field whose value is unusable judges every field of the entry at once, and
reports the problems then, in one ``DecodeError`` per entry. The values a field gives are the same
either way; an event built with its constructor holds every field from the start.

Field tables (FID, Korean name) come from ``kiwoom_rt.fids``, generated from Kiwoom's published
spec; a headline field declares its FID and kind with ``fid_field`` (``kiwoom_rt._fields``, with
the lazy readers and the careful full typing, ``careful_values``, that parse by it).

Long because it holds one class per published realtime type (26), each a list of declared
fields: the catalogue (``_catalogue``) names them, and splitting them would scatter it.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Final, NamedTuple

import attrs

from ._fields import (
    DATE,
    DURATION,
    ENTERED,
    INT,
    LAST,
    LAST_NUMBER,
    NUMBER,
    PARSERS,
    PRICE,
    RATE,
    SIDE,
    TEXT,
    TIME,
    UINT,
    ItemPart,
    careful_values,
    fid_field,
    headline_fields,
    read_lazily,
)
from ._names import FIELD_NAMES, fid_for, split_item, strip_market_prefix
from .fids import TYPE_NAMES
from .values import is_blank, parse_abs_int, parse_abs_number, parse_signed_int

__all__ = [
    "EVENT_TYPES",
    "FIELD_NAMES",
    "LAST",
    "TYPE_NAMES",
    "US_EVENT_TYPES",
    "AfterHoursQuote",
    "Balance",
    "BestQuote",
    "BookLevel",
    "BrokerLevel",
    "Brokers",
    "ConditionEvent",
    "ElwIndicator",
    "ElwTheoretical",
    "EtfNav",
    "ExpectedTrade",
    "GoldPrice",
    "IndicativePrice",
    "MarketSession",
    "OrderBook",
    "OrderExecution",
    "ProgramTrading",
    "RealEvent",
    "RealtimeEvent",
    "SectorBreadth",
    "SectorIndex",
    "StockInfo",
    "Trade",
    "UsConditionEvent",
    "UsFill",
    "UsOrder",
    "UsOrderBook",
    "UsOrderFields",
    "UsTrade",
    "VolatilityInterruption",
    "careful_values",
    "fid_for",
    "headline_fields",
    "item_parts",
    "split_item",
    "strip_market_prefix",
]

logger = logging.getLogger("kiwoom_rt.events")

# ---------------------------------------------------------------------------------------------
# The base
# ---------------------------------------------------------------------------------------------

@attrs.frozen(slots=False, repr=False)
class RealtimeEvent:
    """What every realtime event has. Subclasses add typed headline fields.

    Equality compares the class, the item and every value received (``received_at`` is not
    compared), so a replayed event equals the live one.
    """

    type: ClassVar[str] = ""
    name: ClassVar[str] = ""

    item: str
    code: str
    exchange: str | None  # None only on the US socket, when nothing said which exchange
    values: Mapping[str, str] = attrs.field(hash=False)
    received_at: float = attrs.field(eq=False)

    def __getstate__(self) -> dict[str, Any]:
        """Every field, typed (a decoded event is typed in full first): for pickle and copy."""
        return {field.name: getattr(self, field.name) for field in attrs.fields(type(self))}

    def __repr__(self) -> str:
        parts = [f"item={self.item!r}"]
        for field in headline_fields(type(self)):
            value = getattr(self, field.attr)
            shown = value.isoformat() if isinstance(value, (_dt.time, _dt.date)) else repr(value)
            parts.append(f"{field.attr}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"

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
        """The raw value of a FID or Korean field name, or ``default`` when the frame lacks it."""
        return self.values.get(fid_for(self.type, key), default)

    def named(self) -> dict[str, str]:
        """{Korean name or FID: raw value}: handy for printing."""
        names = self.fields
        return {names.get(fid, fid): value for fid, value in self.values.items()}

    def _parsed(self, key: str, kind: str) -> Any:
        raw = self.values.get(fid_for(self.type, key))
        return None if is_blank(raw) else PARSERS[kind](raw)

    def price_of(self, key: str) -> int | float | None:
        """A price without its direction sign: ``"-20800"`` -> 20800, ``"+2520.58"`` -> 2520.58.

        ``None`` for a blank or absent value; ValueError for one that cannot be parsed.
        """
        raw = self.values.get(fid_for(self.type, key))
        if raw is None or is_blank(raw):
            return None
        return parse_abs_number(raw) if isinstance(raw, str) and "." in raw else parse_abs_int(raw)

    def quantity_of(self, key: str) -> int | None:
        """A signed integer: ``"+82"`` -> 82, ``"-1057122"`` -> -1057122 (None when blank)."""
        value: int | None = self._parsed(key, INT)
        return value

    def rate_of(self, key: str) -> float | None:
        """A signed rate or percentage: ``"-0.24"`` -> -0.24 (None when blank)."""
        value: float | None = self._parsed(key, RATE)
        return value

    def time_of(self, key: str) -> _dt.time | None:
        """An HHmmss time in KST: ``"165208"`` -> ``datetime.time(16, 52, 8)`` (None when blank)."""
        value: _dt.time | None = self._parsed(key, TIME)
        return value


RealtimeEvent.code = ItemPart(0)  # type: ignore[assignment]  # decoded events split item on first read
RealtimeEvent.exchange = ItemPart(1)  # type: ignore[assignment]


@attrs.frozen(slots=False, repr=False)
class RealEvent(RealtimeEvent):
    """An entry of a type this library has no class for (not in Kiwoom's published tables).

    Only the raw values: read them with ``event["10"]`` or the ``*_of`` parsers.
    """

    type: str  # type: ignore[misc]  # per instance here: the type the server named
    name: str  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"RealEvent(type={self.type!r}, name={self.name!r}, item={self.item!r}, {len(self.values)} values)"


# ---------------------------------------------------------------------------------------------
# One class per published type
# ---------------------------------------------------------------------------------------------

@attrs.frozen(slots=False, repr=False)
class OrderExecution(RealtimeEvent):
    """Type 00 주문체결: one of your orders was accepted, filled, amended, cancelled or refused.

    ``status`` is Kiwoom's text (접수, 체결, 확인, 취소, 거부); ``side`` is FID 907 as sent
    (``"1"`` sell, ``"2"`` buy); ``order_kind`` FID 905 (e.g. ``+매수``). Fill fields are None
    until something fills.
    """

    type: ClassVar[str] = "00"
    name: ClassVar[str] = TYPE_NAMES["00"]

    account: str | None = fid_field("9201", TEXT)
    order_no: str | None = fid_field("9203", TEXT)
    original_order_no: str | None = fid_field("904", TEXT)
    stock_name: str | None = fid_field("302", TEXT)
    status: str | None = fid_field("913", TEXT)
    order_kind: str | None = fid_field("905", TEXT)
    trade_kind: str | None = fid_field("906", TEXT)
    side: str | None = fid_field("907", TEXT)
    time: _dt.time | None = fid_field("908", TIME)
    order_quantity: int | None = fid_field("900", UINT)
    order_price: int | None = fid_field("901", PRICE)
    unfilled_quantity: int | None = fid_field("902", UINT)
    filled_amount: int | None = fid_field("903", UINT)
    fill_no: str | None = fid_field("909", TEXT, often_blank=True)
    fill_price: int | None = fid_field("910", PRICE, often_blank=True)
    fill_quantity: int | None = fid_field("911", UINT, often_blank=True)
    unit_fill_price: int | None = fid_field("914", PRICE, often_blank=True)
    unit_fill_quantity: int | None = fid_field("915", UINT, often_blank=True)
    price: int | None = fid_field("10", LAST)
    best_ask: int | None = fid_field("27", PRICE)
    best_bid: int | None = fid_field("28", PRICE)
    fee: int | None = fid_field("938", INT)
    tax: int | None = fid_field("939", INT)
    reject_reason: str | None = fid_field("919", TEXT)


@attrs.frozen(slots=False, repr=False)
class Balance(RealtimeEvent):
    """Type 04 잔고: a holding of your account changed."""

    type: ClassVar[str] = "04"
    name: ClassVar[str] = TYPE_NAMES["04"]

    account: str | None = fid_field("9201", TEXT)
    stock_name: str | None = fid_field("302", TEXT)
    price: int | None = fid_field("10", LAST)
    quantity: int | None = fid_field("930", INT)
    average_price: int | None = fid_field("931", PRICE)
    purchase_amount: int | None = fid_field("932", INT)
    orderable_quantity: int | None = fid_field("933", INT)
    today_net_bought: int | None = fid_field("945", INT)
    side: str | None = fid_field("946", TEXT)
    best_ask: int | None = fid_field("27", PRICE)
    best_bid: int | None = fid_field("28", PRICE)
    base_price: int | None = fid_field("307", PRICE)
    profit_rate: float | None = fid_field("8019", RATE)
    realized_pnl: int | None = fid_field("990", INT)
    realized_rate: float | None = fid_field("991", RATE)


@attrs.frozen(slots=False, repr=False)
class IndicativePrice(RealtimeEvent):
    """Type 0A 주식기세: an indicative price while no trade happens (no time is sent)."""

    type: ClassVar[str] = "0A"
    name: ClassVar[str] = TYPE_NAMES["0A"]

    price: int | None = fid_field("10", LAST)
    change: int | None = fid_field("11", INT)
    rate: float | None = fid_field("12", RATE)
    best_ask: int | None = fid_field("27", PRICE)
    best_bid: int | None = fid_field("28", PRICE)
    cumulative_volume: int | None = fid_field("13", UINT)
    open: int | None = fid_field("16", PRICE)
    high: int | None = fid_field("17", PRICE)
    low: int | None = fid_field("18", PRICE)


@attrs.frozen(slots=False, repr=False)
class Trade(RealtimeEvent):
    """Type 0B 주식체결: one trade.

    ``price``, ``open``, ``high``, ``low``, ``best_ask`` and ``best_bid`` are absolute;
    ``change`` (since the previous close) and ``rate`` (percent) are signed. ``volume`` is signed
    as Kiwoom sends it: + buyer-initiated, − seller-initiated.
    """

    type: ClassVar[str] = "0B"
    name: ClassVar[str] = TYPE_NAMES["0B"]

    time: _dt.time | None = fid_field("20", TIME)
    price: int | None = fid_field("10", LAST)
    change: int | None = fid_field("11", INT)
    rate: float | None = fid_field("12", RATE)
    volume: int | None = fid_field("15", INT)
    cumulative_volume: int | None = fid_field("13", UINT)
    open: int | None = fid_field("16", PRICE)
    high: int | None = fid_field("17", PRICE)
    low: int | None = fid_field("18", PRICE)
    best_ask: int | None = fid_field("27", PRICE)
    best_bid: int | None = fid_field("28", PRICE)


@attrs.frozen(slots=False, repr=False)
class BestQuote(RealtimeEvent):
    """Type 0C 주식우선호가: the best ask and bid prices."""

    type: ClassVar[str] = "0C"
    name: ClassVar[str] = TYPE_NAMES["0C"]

    best_ask: int | None = fid_field("27", PRICE)
    best_bid: int | None = fid_field("28", PRICE)


class BookLevel(NamedTuple):
    """One price level of an order book: absolute price, resting quantity, signed change.

    The price is an int on the domestic socket (won) and a float on the US socket (dollars).
    """

    price: float
    quantity: int
    change: int


#: (price FIDs, quantity FIDs, change FIDs) of the ten ask and ten bid levels of 0D, best first.
ASK_FIDS: Final = (
    tuple(str(f) for f in range(41, 51)), tuple(str(f) for f in range(61, 71)),
    tuple(str(f) for f in range(81, 91)),
)
BID_FIDS: Final = (
    tuple(str(f) for f in range(51, 61)), tuple(str(f) for f in range(71, 81)),
    tuple(str(f) for f in range(91, 101)),
)


def book_side(values: Mapping[str, str], fids: tuple[tuple[str, ...], ...],
              parse_price: Any = parse_abs_int) -> tuple[BookLevel, ...]:
    """The levels of one side of a 0D (or FT) book that have a price, best first.

    A blank or zero price is an empty level: skipped, and the levels after it are kept. A blank
    quantity or change is 0. A level with an unusable value is skipped and logged (decoding has
    already delivered the entry by then, so this is the only place left to say so).
    """
    levels = []
    get = values.get
    for price_fid, quantity_fid, change_fid in zip(*fids, strict=True):
        raw_price = get(price_fid)
        if is_blank(raw_price):
            continue
        try:
            price = parse_price(raw_price)
            if price == 0:
                continue
            raw_quantity, raw_change = get(quantity_fid), get(change_fid)
            quantity = 0 if is_blank(raw_quantity) else parse_signed_int(raw_quantity)  # type: ignore[arg-type]
            change = 0 if is_blank(raw_change) else parse_signed_int(raw_change)  # type: ignore[arg-type]
        except ValueError as exc:
            logger.warning("book level %s/%s/%s skipped: %s", price_fid, quantity_fid, change_fid, exc)
            continue
        levels.append(BookLevel(price, quantity, change))
    return tuple(levels)


@attrs.frozen(slots=False, repr=False)
class OrderBook(RealtimeEvent):
    """Type 0D 주식호가잔량: the ten-level order book.

    ``asks`` and ``bids`` hold the levels that have a price, best first. They are parsed on first
    use and cached (the type has 163 fields, and decoding stays cheap for receivers that read only
    the totals); a level with an unusable value is skipped there and logged on the
    ``kiwoom_rt.events`` logger, since decoding has already reported on the entry. Totals are
    unsigned; their changes are signed.
    ``expected_price`` and ``expected_volume`` (예상체결가/수량, FIDs 23 and 24) are None when blank.
    """

    type: ClassVar[str] = "0D"
    name: ClassVar[str] = TYPE_NAMES["0D"]

    time: _dt.time | None = fid_field("21", TIME)
    ask_total: int | None = fid_field("121", UINT)
    ask_total_change: int | None = fid_field("122", INT)
    bid_total: int | None = fid_field("125", UINT)
    bid_total_change: int | None = fid_field("126", INT)
    expected_price: int | None = fid_field("23", PRICE, often_blank=True)
    expected_volume: int | None = fid_field("24", INT, often_blank=True)

    @property
    def asks(self) -> tuple[BookLevel, ...]:
        """Ask (sell) levels with a price, lowest first."""
        state = self.__dict__
        levels: tuple[BookLevel, ...] | None = state.get("_asks")
        if levels is None:
            levels = state["_asks"] = book_side(self.values, ASK_FIDS)
        return levels

    @property
    def bids(self) -> tuple[BookLevel, ...]:
        """Bid (buy) levels with a price, highest first."""
        state = self.__dict__
        levels: tuple[BookLevel, ...] | None = state.get("_bids")
        if levels is None:
            levels = state["_bids"] = book_side(self.values, BID_FIDS)
        return levels


@attrs.frozen(slots=False, repr=False)
class AfterHoursQuote(RealtimeEvent):
    """Type 0E 주식시간외호가: after-hours total ask and bid quantities of one item.

    ``ask_total`` is FID 131 (시간외매도호가총잔량), ``ask_total_change`` FID 132 (signed change since
    the previous update), ``bid_total`` FID 135, ``bid_total_change`` FID 136. ``time`` is the quote
    time (FID 21, KST).
    """

    type: ClassVar[str] = "0E"
    name: ClassVar[str] = TYPE_NAMES["0E"]

    time: _dt.time | None = fid_field("21", TIME)
    ask_total: int | None = fid_field("131", UINT)
    ask_total_change: int | None = fid_field("132", INT)
    bid_total: int | None = fid_field("135", UINT)
    bid_total_change: int | None = fid_field("136", INT)


class BrokerLevel(NamedTuple):
    """One of the five brokers on a side of 0F: name, member code, quantity, signed change."""

    broker: str | None
    broker_code: str | None
    quantity: int | None
    change: int | None


_SELL_BROKER_FIDS = tuple((str(141 + i), str(146 + i), str(161 + i), str(166 + i)) for i in range(5))
_BUY_BROKER_FIDS = tuple((str(151 + i), str(156 + i), str(171 + i), str(176 + i)) for i in range(5))


def _broker_side(event: RealtimeEvent, fids: tuple[tuple[str, str, str, str], ...]) -> tuple[BrokerLevel, ...]:
    levels = []
    for name_fid, code_fid, quantity_fid, change_fid in fids:
        name = event.get(name_fid)
        code = event.get(code_fid)
        try:
            quantity = event.quantity_of(quantity_fid)
            change = event.quantity_of(change_fid)
        except ValueError as exc:
            logger.warning("0F broker %s skipped: %s", code_fid, exc)
            continue
        name, code = _stripped(name), _stripped(code)
        if code is None and quantity is None:
            continue
        levels.append(BrokerLevel(name, code, quantity, change))
    return tuple(levels)


def _stripped(raw: object) -> str | None:
    """A text value stripped, or None when blank, absent or not text."""
    return raw.strip() or None if isinstance(raw, str) else None


@attrs.frozen(slots=False, repr=False)
class Brokers(RealtimeEvent):
    """Type 0F 주식당일거래원: today's top five sell-side and buy-side brokers of an item.

    ``sellers`` and ``buyers`` are parsed on first use; the foreign estimates are eager.
    """

    type: ClassVar[str] = "0F"
    name: ClassVar[str] = TYPE_NAMES["0F"]

    foreign_sell: int | None = fid_field("261", INT)
    foreign_buy: int | None = fid_field("263", INT)
    foreign_net: int | None = fid_field("267", INT)

    @property
    def sellers(self) -> tuple[BrokerLevel, ...]:
        """The top sell-side brokers (name, code, quantity, change), largest first."""
        return _broker_side(self, _SELL_BROKER_FIDS)

    @property
    def buyers(self) -> tuple[BrokerLevel, ...]:
        """The top buy-side brokers, largest first."""
        return _broker_side(self, _BUY_BROKER_FIDS)


@attrs.frozen(slots=False, repr=False)
class EtfNav(RealtimeEvent):
    """Type 0G ETF NAV: the net asset value of an ETF against its market price."""

    type: ClassVar[str] = "0G"
    name: ClassVar[str] = TYPE_NAMES["0G"]

    time: _dt.time | None = fid_field("20", TIME)
    nav: float | None = fid_field("36", NUMBER)
    nav_change: float | None = fid_field("37", RATE)
    nav_rate: float | None = fid_field("38", RATE)
    tracking_error: float | None = fid_field("39", RATE)
    price: int | None = fid_field("10", LAST)
    change: int | None = fid_field("11", INT)
    rate: float | None = fid_field("12", RATE)
    cumulative_volume: int | None = fid_field("13", UINT)
    nav_index_gap: float | None = fid_field("265", RATE)
    nav_price_gap: float | None = fid_field("266", RATE)


@attrs.frozen(slots=False, repr=False)
class ExpectedTrade(RealtimeEvent):
    """Type 0H 주식예상체결: the expected trade of an auction (before the open and close)."""

    type: ClassVar[str] = "0H"
    name: ClassVar[str] = TYPE_NAMES["0H"]

    time: _dt.time | None = fid_field("20", TIME)
    price: int | None = fid_field("10", LAST)
    change: int | None = fid_field("11", INT)
    rate: float | None = fid_field("12", RATE)
    volume: int | None = fid_field("15", INT)
    cumulative_volume: int | None = fid_field("13", UINT)


@attrs.frozen(slots=False, repr=False)
class GoldPrice(RealtimeEvent):
    """Type 0I 국제금환산가격: the international gold price converted to won."""

    type: ClassVar[str] = "0I"
    name: ClassVar[str] = TYPE_NAMES["0I"]

    price: int | None = fid_field("10", LAST)
    change: int | None = fid_field("11", INT)
    rate: float | None = fid_field("12", RATE)


@attrs.frozen(slots=False, repr=False)
class SectorIndex(RealtimeEvent):
    """Type 0J 업종지수: a sector or market index (KOSPI is item ``001``). Index values are floats."""

    type: ClassVar[str] = "0J"
    name: ClassVar[str] = TYPE_NAMES["0J"]

    time: _dt.time | None = fid_field("20", TIME)
    price: float | None = fid_field("10", LAST_NUMBER)
    change: float | None = fid_field("11", RATE)
    rate: float | None = fid_field("12", RATE)
    volume: int | None = fid_field("15", INT)
    cumulative_volume: int | None = fid_field("13", UINT)
    cumulative_amount: int | None = fid_field("14", UINT)
    open: float | None = fid_field("16", NUMBER)
    high: float | None = fid_field("17", NUMBER)
    low: float | None = fid_field("18", NUMBER)


@attrs.frozen(slots=False, repr=False)
class SectorBreadth(RealtimeEvent):
    """Type 0U 업종등락: how many stocks of a sector are up, down or unchanged."""

    type: ClassVar[str] = "0U"
    name: ClassVar[str] = TYPE_NAMES["0U"]

    time: _dt.time | None = fid_field("20", TIME)
    advancing: int | None = fid_field("252", UINT)
    upper_limit: int | None = fid_field("251", UINT)
    unchanged: int | None = fid_field("253", UINT)
    declining: int | None = fid_field("255", UINT)
    lower_limit: int | None = fid_field("254", UINT)
    traded: int | None = fid_field("256", UINT)
    price: float | None = fid_field("10", LAST_NUMBER)
    change: float | None = fid_field("11", RATE)
    rate: float | None = fid_field("12", RATE)
    cumulative_volume: int | None = fid_field("13", UINT)
    cumulative_amount: int | None = fid_field("14", UINT)


@attrs.frozen(slots=False, repr=False)
class StockInfo(RealtimeEvent):
    """Type 0g 주식종목정보: an item's limits, base price and VI extension state."""

    type: ClassVar[str] = "0g"
    name: ClassVar[str] = TYPE_NAMES["0g"]

    upper_limit: int | None = fid_field("305", PRICE)
    lower_limit: int | None = fid_field("306", PRICE)
    base_price: int | None = fid_field("307", PRICE)
    extension: str | None = fid_field("297", TEXT, often_blank=True)


@attrs.frozen(slots=False, repr=False)
class ElwTheoretical(RealtimeEvent):
    """Type 0m ELW 이론가: an ELW's theoretical price and Greeks."""

    type: ClassVar[str] = "0m"
    name: ClassVar[str] = TYPE_NAMES["0m"]

    time: _dt.time | None = fid_field("20", TIME)
    price: int | None = fid_field("10", LAST)
    theoretical_price: int | None = fid_field("670", PRICE)
    implied_volatility: float | None = fid_field("671", RATE)
    delta: float | None = fid_field("672", RATE)
    gamma: float | None = fid_field("673", RATE)
    theta: float | None = fid_field("674", RATE)
    vega: float | None = fid_field("675", RATE)
    rho: float | None = fid_field("676", RATE)
    lp_implied_volatility: float | None = fid_field("706", RATE)


@attrs.frozen(slots=False, repr=False)
class MarketSession(RealtimeEvent):
    """Type 0s 장시작시간: a market phase starts or ends.

    ``phase`` is FID 215 as sent, e.g. ``a``/``b`` 시간외 종가 start/end, ``c``/``d`` 시간외 단일가
    start/end, ``9`` day closed. ``remaining`` is the time left until the announced start.
    """

    type: ClassVar[str] = "0s"
    name: ClassVar[str] = TYPE_NAMES["0s"]

    phase: str | None = fid_field("215", TEXT)
    time: _dt.time | None = fid_field("20", TIME)
    remaining: _dt.timedelta | None = fid_field("214", DURATION)


@attrs.frozen(slots=False, repr=False)
class ElwIndicator(RealtimeEvent):
    """Type 0u ELW 지표: an ELW's parity, premium, gearing, break-even and capital support."""

    type: ClassVar[str] = "0u"
    name: ClassVar[str] = TYPE_NAMES["0u"]

    time: _dt.time | None = fid_field("20", TIME)
    parity: float | None = fid_field("666", RATE)
    premium: float | None = fid_field("1211", RATE)
    gearing: float | None = fid_field("667", RATE)
    break_even_rate: float | None = fid_field("668", RATE)
    capital_support: float | None = fid_field("669", RATE)


@attrs.frozen(slots=False, repr=False)
class ProgramTrading(RealtimeEvent):
    """Type 0w 종목프로그램매매: program trading in one item (amounts as Kiwoom sends them)."""

    type: ClassVar[str] = "0w"
    name: ClassVar[str] = TYPE_NAMES["0w"]

    time: _dt.time | None = fid_field("20", TIME)
    price: int | None = fid_field("10", LAST)
    change: int | None = fid_field("11", INT)
    rate: float | None = fid_field("12", RATE)
    cumulative_volume: int | None = fid_field("13", UINT)
    sell_quantity: int | None = fid_field("202", INT)
    sell_amount: int | None = fid_field("204", INT)
    buy_quantity: int | None = fid_field("206", INT)
    buy_amount: int | None = fid_field("208", INT)
    net_quantity: int | None = fid_field("210", INT)
    net_quantity_change: int | None = fid_field("211", INT)
    net_amount: int | None = fid_field("212", INT)
    net_amount_change: int | None = fid_field("213", INT)


@attrs.frozen(slots=False, repr=False)
class VolatilityInterruption(RealtimeEvent):
    """Type 1h VI발동/해제: a volatility interruption was triggered or released.

    ``vi_kind`` (FID 9068) and ``direction`` (9069) are Kiwoom's codes as sent; ``vi_type``
    (1225) is its text (정적, 동적, ...).
    """

    type: ClassVar[str] = "1h"
    name: ClassVar[str] = TYPE_NAMES["1h"]

    stock_name: str | None = fid_field("302", TEXT)
    vi_kind: str | None = fid_field("9068", TEXT)
    vi_type: str | None = fid_field("1225", TEXT)
    direction: str | None = fid_field("9069", TEXT)
    trigger_price: int | None = fid_field("1221", PRICE)
    trigger_rate: float | None = fid_field("1489", RATE)
    trigger_time: _dt.time | None = fid_field("1223", TIME)
    release_time: _dt.time | None = fid_field("1224", TIME, often_blank=True)
    static_base_price: int | None = fid_field("1236", PRICE)
    dynamic_base_price: int | None = fid_field("1237", PRICE)
    static_gap_rate: float | None = fid_field("1238", RATE)
    dynamic_gap_rate: float | None = fid_field("1239", RATE)
    count: int | None = fid_field("1490", UINT)
    cumulative_volume: int | None = fid_field("13", UINT)
    cumulative_amount: int | None = fid_field("14", UINT)


@attrs.frozen(slots=False, repr=False)
class ConditionEvent(RealtimeEvent):
    """Type 02 조건검색: a stock entered (``entered`` True) or left a watched condition ``seq``.

    ``resync`` is True for the differences the session found itself when it restored a watch
    after a reconnect (a stock may have left the condition during the outage).
    """

    type: ClassVar[str] = "02"
    name: ClassVar[str] = TYPE_NAMES["02"]

    seq: str | None = fid_field("841", TEXT)
    entered: bool | None = fid_field("843", ENTERED)
    time: _dt.time | None = fid_field("20", TIME)
    #: True for a change found when a watch was restored after a reconnect (not pushed by Kiwoom).
    resync: bool = attrs.field(default=False, init=False, eq=False)


ConditionEvent.resync = False  # what a decoded hit (no __init__ ran) reads


# ---------------------------------------------------------------------------------------------
# The US socket (/api/us/websocket)
# ---------------------------------------------------------------------------------------------

class _UsItemPart(ItemPart):
    """``code`` or ``exchange`` of a US event: the symbol as pushed (never stripped) and, when
    the decoder found none (no ``stexTp``, no subscription), no exchange."""

    __slots__ = ()

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        state = obj.__dict__
        state.setdefault("code", state["item"])
        state.setdefault("exchange", None)
        return state["code"] if self.index == 0 else state["exchange"]


@attrs.frozen(slots=False, repr=False)
class UsTrade(RealtimeEvent):
    """Type FE 미국주식 실시간 체결가: one US trade.

    ``item`` and ``code`` are the symbol as pushed (``"NVDA"``); ``exchange`` is ``NASDAQ``,
    ``NYSE`` or ``AMEX``. Prices are floats in USD: ``price``, ``open``, ``high``, ``low``,
    ``best_ask`` and ``best_bid`` absolute, ``change`` and ``rate`` signed. ``volume`` keeps the
    sign as sent. ``time`` is FID 20 and ``local_time`` FID 51020 (현지 체결시간); Kiwoom does not
    say which clock FID 20 follows (its example has the same value in both). ``session_code``
    (FID 290, 장구분) is the raw code: its meanings are not published.
    """

    type: ClassVar[str] = "FE"
    name: ClassVar[str] = TYPE_NAMES["FE"]

    time: _dt.time | None = fid_field("20", TIME)
    local_time: _dt.time | None = fid_field("51020", TIME)
    trade_date: _dt.date | None = fid_field("22", DATE)
    price: float | None = fid_field("10", LAST_NUMBER)
    change: float | None = fid_field("11", RATE)
    rate: float | None = fid_field("12", RATE)
    volume: int | None = fid_field("15", INT)
    cumulative_volume: int | None = fid_field("13", UINT)
    cumulative_amount: float | None = fid_field("14", NUMBER)
    open: float | None = fid_field("16", NUMBER)
    high: float | None = fid_field("17", NUMBER)
    low: float | None = fid_field("18", NUMBER)
    best_ask: float | None = fid_field("27", NUMBER)
    best_bid: float | None = fid_field("28", NUMBER)
    strength: float | None = fid_field("228", RATE)
    session_code: str | None = fid_field("290", TEXT)


@attrs.frozen(slots=False, repr=False)
class UsOrderBook(RealtimeEvent):
    """Type FT 미국주식 10호가: the ten-level US book, in the FID layout of domestic 0D.

    ``asks`` and ``bids`` hold the levels that have a price, best first (``BookLevel`` with a
    float price), parsed on first use and cached as for ``OrderBook``. Totals are unsigned,
    their changes signed.
    """

    type: ClassVar[str] = "FT"
    name: ClassVar[str] = TYPE_NAMES["FT"]

    time: _dt.time | None = fid_field("21", TIME)
    ask_total: int | None = fid_field("121", UINT)
    ask_total_change: int | None = fid_field("122", INT)
    bid_total: int | None = fid_field("125", UINT)
    bid_total_change: int | None = fid_field("126", INT)

    @property
    def asks(self) -> tuple[BookLevel, ...]:
        """Ask (sell) levels with a price, lowest first."""
        state = self.__dict__
        levels: tuple[BookLevel, ...] | None = state.get("_asks")
        if levels is None:
            levels = state["_asks"] = book_side(self.values, ASK_FIDS, parse_abs_number)
        return levels

    @property
    def bids(self) -> tuple[BookLevel, ...]:
        """Bid (buy) levels with a price, highest first."""
        state = self.__dict__
        levels: tuple[BookLevel, ...] | None = state.get("_bids")
        if levels is None:
            levels = state["_bids"] = book_side(self.values, BID_FIDS, parse_abs_number)
        return levels


@attrs.frozen(slots=False, repr=False)
class UsOrderFields(RealtimeEvent):
    """The fields a US order (F4) and its fill (F5) share. ``side`` is ``"buy"`` or ``"sell"``
    (FID 907: 01 sell, 02 buy); ``order_kind`` is FID 905 as sent (10 new, 11 amend, 12
    cancel); ``status`` is Kiwoom's text (주문전송, ...). Prices are floats in ``currency`` (FID
    8043, ``USD``); Kiwoom zero-pads them (``"0000198.4200"``). Not a type of its own."""

    account: str | None = fid_field("9201", TEXT)
    order_no: str | None = fid_field("9203", TEXT)
    original_order_no: str | None = fid_field("904", TEXT)
    symbol: str | None = fid_field("9001", TEXT)
    stock_name: str | None = fid_field("302", TEXT)
    side: str | None = fid_field("907", SIDE)
    order_kind: str | None = fid_field("905", TEXT)
    quantity: int | None = fid_field("900", UINT)
    price: float | None = fid_field("901", NUMBER)
    status: str | None = fid_field("913", TEXT)
    time: _dt.time | None = fid_field("908", TIME)
    currency: str | None = fid_field("8043", TEXT)


@attrs.frozen(slots=False, repr=False)
class UsOrder(UsOrderFields):
    """Type F4 미국주식 실시간 주문 확인: one of your US orders was sent, amended or cancelled.

    The fields of ``UsOrderFields``, then ``trade_kind`` (FID 906) and ``stop_price`` (50810).
    """

    type: ClassVar[str] = "F4"
    name: ClassVar[str] = TYPE_NAMES["F4"]

    trade_kind: str | None = fid_field("906", TEXT)
    stop_price: float | None = fid_field("50810", NUMBER)


@attrs.frozen(slots=False, repr=False)
class UsFill(UsOrderFields):
    """Type F5 미국주식 실시간 체결: a US order's fill, and the holding and P&L after it.

    The fields of ``UsOrderFields``, then the fill's. ``fill_price`` and ``fill_quantity`` are
    zero (or None) until something fills; ``holding_quantity`` and ``average_price`` are the
    position after this event; ``pnl`` (FID 8018) and ``pnl_rate`` (8019) are signed.
    """

    type: ClassVar[str] = "F5"
    name: ClassVar[str] = TYPE_NAMES["F5"]

    fill_no: str | None = fid_field("909", TEXT, often_blank=True)
    fill_price: float | None = fid_field("910", NUMBER, often_blank=True)
    fill_quantity: int | None = fid_field("911", UINT, often_blank=True)
    unfilled_quantity: int | None = fid_field("902", UINT)
    holding_quantity: int | None = fid_field("930", INT)
    average_price: float | None = fid_field("931", NUMBER)
    pnl: float | None = fid_field("8018", RATE)
    pnl_rate: float | None = fid_field("8019", RATE)


@attrs.frozen(slots=False, repr=False)
class UsConditionEvent(ConditionEvent):
    """Type S2 (US 조건검색): a US stock entered or left a watched condition ``seq``.

    A ``ConditionEvent`` (same fields, same ``on_condition`` signal) whose ``code`` is the symbol
    as pushed. A US session reads hits pushed as ``02`` as this type too.
    """

    type: ClassVar[str] = "S2"
    name: ClassVar[str] = TYPE_NAMES["S2"]


#: The event classes of the US socket, by type code.
US_EVENT_TYPES: Final[Mapping[str, type[RealtimeEvent]]] = MappingProxyType({
    cls.type: cls for cls in (UsTrade, UsOrderBook, UsOrder, UsFill, UsConditionEvent)
})

for _cls in US_EVENT_TYPES.values():
    _cls.code = _UsItemPart(0)  # type: ignore[assignment]
    _cls.exchange = _UsItemPart(1)  # type: ignore[assignment]


def item_parts(cls: type[RealtimeEvent], item: str) -> tuple[str, str | None]:
    """(code, exchange) of an item of ``cls``: split by the domestic rules (``split_item``), or
    for a US type the symbol as it is and no exchange (the caller knows it, if anyone does)."""
    if cls.type in US_EVENT_TYPES:
        return item, None
    return split_item(item)



#: {type code: event class} for every published realtime type.
_DOMESTIC_CLASSES: tuple[type[RealtimeEvent], ...] = (
    OrderExecution, Balance, IndicativePrice, Trade, BestQuote, OrderBook, AfterHoursQuote,
    Brokers, EtfNav, ExpectedTrade, GoldPrice, SectorIndex, SectorBreadth, StockInfo,
    ElwTheoretical, MarketSession, ElwIndicator, ProgramTrading, VolatilityInterruption,
    ConditionEvent,
)
EVENT_TYPES: Final[Mapping[str, type[RealtimeEvent]]] = MappingProxyType({
    cls.type: cls for cls in (*_DOMESTIC_CLASSES, *US_EVENT_TYPES.values())
})


for _cls in EVENT_TYPES.values():
    read_lazily(_cls)


def fast_constructor(cls: type[Any]) -> Any:
    """A positional constructor for a frozen slotted attrs class that skips ``__init__``.

    attrs' frozen ``__init__`` goes through ``object.__setattr__`` once per field (1.3 us for the
    ten fields of AfterHoursQuote on the reference machine); writing the slots through their
    descriptors builds the identical, equally frozen object in half the time. Only for decoded
    values that are already checked: it runs no validators or converters. Fields with
    ``init=False`` take their default (which must be a plain value, not a factory).
    """
    names = [field.name for field in attrs.fields(cls) if field.init]
    fixed = [(field.name, field.default) for field in attrs.fields(cls) if not field.init]
    # Unrolled like attrs' and dataclasses' own generated __init__ (a loop costs 50% more).
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def build({', '.join(names)}):", "    obj = _new(_cls)"]
    for index, name in enumerate(names):
        namespace[f"_set{index}"] = getattr(cls, name).__set__
        lines.append(f"    _set{index}(obj, {name})")
    for index, (name, default) in enumerate(fixed):
        namespace[f"_fixed_set{index}"] = getattr(cls, name).__set__
        namespace[f"_fixed{index}"] = default
        lines.append(f"    _fixed_set{index}(obj, _fixed{index})")
    lines.append("    return obj")
    exec("\n".join(lines), namespace)  # names are attrs field names: identifiers, no user input
    build = namespace["build"]
    build.__doc__ = f"Build {cls.__name__}({', '.join(names)}) without running __init__."
    return build
