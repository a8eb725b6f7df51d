"""The catalogue of realtime types: one row per type code, the one place a type is described.

Every module that needs to know something about a type reads it here and keeps no list of its
own: ``protocol`` (which types REG takes on which socket, which ones count against the item
limit), ``us``, ``_health`` (when a silent subscription is stale), ``markets`` (the phases a type
flows in), ``bars`` (a type's trade fields), the relay and the simulator. A new type is one
class in ``events`` and one row below (h11 keeps its protocol's states the same way: a table,
not knowledge scattered over the code that uses it).

Sans-I/O: data and pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs

from .events import EVENT_TYPES, RealtimeEvent, headline_fields
from .fids import TYPE_NAMES

__all__ = ["ACCOUNT_TYPES", "CONDITION_TYPES", "DEFAULT_STALE_AFTER", "DOMESTIC_TYPES", "TRADE_TYPES",
           "TRADING_PHASES", "TYPES", "US_TYPES", "TypeInfo", "info", "registrable", "stale_after", "trade_fields",
           "type_flows"]

#: The market phases in which orders trade (every phase but ``closed``).
TRADING_PHASES: Final = frozenset({"pre", "regular", "post", "post_single"})
#: A subscription's silence, in seconds, after which it is stale when its row names none.
DEFAULT_STALE_AFTER: Final = 300.0


@attrs.frozen
class TypeInfo:
    """What kiwoom-rt knows of one realtime type.

    - ``socket``: ``"kr"`` (the domestic socket) or ``"us"`` (``/api/us/websocket``);
    - ``registered``: REG takes it (condition hits, 02 and S2, come from a condition search);
    - ``account``: the account's own (orders, fills, balances): it names no market item, so it
      does not count against a socket's item limit, and the simulator pushes it only on request;
    - ``flows_in``: the market phases in which it flows; ``None``: not tied to a phase (the
      account's types, market announcements, VI, condition hits);
    - ``stale_after``: seconds of silence, in a phase where it flows, after which a subscription
      is stale; ``None``: never (it may rightly stay silent all day).
    """

    code: str
    cls: type[RealtimeEvent]
    socket: str
    registered: bool = True
    account: bool = False
    flows_in: frozenset[str] | None = TRADING_PHASES
    stale_after: float | None = DEFAULT_STALE_AFTER

    @property
    def name(self) -> str:
        """Kiwoom's name of the type (``주식체결`` for 0B)."""
        return TYPE_NAMES[self.code]


_AFTER_HOURS: Final = frozenset({"pre", "post", "post_single"})


def _row(code: str, socket: str = "kr", **facts: object) -> TypeInfo:
    return TypeInfo(code, EVENT_TYPES[code], socket, **facts)  # type: ignore[arg-type]


# Seconds of silence before stale: books and quotes change many times a minute on any listed
# stock (60 s); a thinly traded stock can go a minute or two without a trade (0B, FE: 120 s); the
# slower summaries get five minutes, and types that change a few times a day ten. The phases are
# the defaults kiwoom-rt assumes, not Kiwoom's statement: 0E (시간외호가) is the after-hours book.
_ROWS: Final = (
    _row("00", account=True, flows_in=None, stale_after=None),    # 주문체결
    _row("04", account=True, flows_in=None, stale_after=None),    # 잔고
    _row("0A"),                                                   # 주식기세
    _row("0B", stale_after=120.0),                                # 주식체결
    _row("0C", stale_after=60.0),                                 # 주식우선호가
    _row("0D", stale_after=60.0),                                 # 주식호가잔량
    _row("0E", flows_in=_AFTER_HOURS, stale_after=120.0),         # 주식시간외호가
    _row("0F"),                                                   # 주식당일거래원
    _row("0G", stale_after=120.0),                                # ETF NAV
    _row("0H", stale_after=120.0),                                # 주식예상체결
    _row("0I"),                                                   # 국제금환산가격
    _row("0J", stale_after=60.0),                                 # 업종지수
    _row("0U", stale_after=120.0),                                # 업종등락
    _row("0g", stale_after=600.0),                                # 주식종목정보
    _row("0m"),                                                   # ELW 이론가
    _row("0s", flows_in=None, stale_after=None),                  # 장시작시간
    _row("0u"),                                                   # ELW 지표
    _row("0w"),                                                   # 종목프로그램매매
    _row("1h", flows_in=None, stale_after=None),                  # VI발동/해제
    _row("02", registered=False, flows_in=None, stale_after=None),  # 조건검색
    _row("FE", "us", stale_after=120.0),                          # 미국주식 체결
    _row("FT", "us", stale_after=60.0),                           # 미국주식 10호가
    _row("F4", "us", account=True, flows_in=None, stale_after=None),  # 미국주식 주문체결
    _row("F5", "us", account=True, flows_in=None, stale_after=None),  # 미국주식 잔고
    _row("S2", "us", registered=False, flows_in=None, stale_after=None),  # 미국주식 조건검색
)

#: Every realtime type by code.
TYPES: Final[Mapping[str, TypeInfo]] = MappingProxyType({row.code: row for row in _ROWS})
if set(TYPES) != set(EVENT_TYPES):  # one row per class, and one class per row
    raise AssertionError(f"catalogue and event classes differ: {sorted(set(TYPES) ^ set(EVENT_TYPES))}")

#: The types REG takes on the domestic socket (case-sensitive: 0G and 0g differ).
DOMESTIC_TYPES: Final = frozenset(row.code for row in _ROWS if row.socket == "kr" and row.registered)
#: The types REG takes on the US socket.
US_TYPES: Final = frozenset(row.code for row in _ROWS if row.socket == "us" and row.registered)
#: The account's own types: no market item.
ACCOUNT_TYPES: Final = frozenset(row.code for row in _ROWS if row.account)
#: The trade type of each socket: what a ``BarFeed`` reads by default.
TRADE_TYPES: Final = MappingProxyType({"kr": "0B", "us": "FE"})
#: The condition hit types (02 on the domestic socket, S2 on the US one).
CONDITION_TYPES: Final = frozenset(row.code for row in _ROWS if not row.registered)


def info(type_code: str) -> TypeInfo:
    """The row of ``type_code`` (KeyError for an unknown one)."""
    return TYPES[type_code]


def registrable(market: str) -> frozenset[str]:
    """The types REG takes on the ``"kr"`` or ``"us"`` socket."""
    return US_TYPES if market == "us" else DOMESTIC_TYPES


def type_flows(type_code: str, phase_name: str) -> bool:
    """Whether ``type_code`` flows in market phase ``phase_name`` (an unknown type: in the
    trading phases)."""
    row = TYPES.get(type_code)
    phases = TRADING_PHASES if row is None else row.flows_in
    return phases is None or phase_name in phases


def stale_after(type_code: str) -> float | None:
    """Seconds of silence before a subscription of ``type_code`` is stale (None: never)."""
    row = TYPES.get(type_code)
    return DEFAULT_STALE_AFTER if row is None else row.stale_after


def trade_fields(type_code: str) -> tuple[str, str, str] | None:
    """The (time, price, volume) FIDs of a type whose events are trades, else None."""
    fields = {field.attr: field.fid for field in headline_fields(TYPES[type_code].cls)}
    if not {"time", "price", "volume"} <= set(fields):
        return None
    return fields["time"], fields["price"], fields["volume"]
