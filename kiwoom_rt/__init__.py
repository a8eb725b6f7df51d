"""kiwoom-rt: the Kiwoom Securities realtime WebSocket feed for ordinary synchronous Python.

Public API::

    from kiwoom_rt import RealtimeSession
    with RealtimeSession(token) as session:
        session.on_0e.connect(lambda item, event: print(event))
        session.signal("0B").connect(lambda item, event: print(event.price, event.volume))
        session.subscribe(["005930"], ["0E", "0B"]).wait(5)

Every realtime type arrives as its own typed class (``Trade`` for 0B, ``OrderBook`` for 0D, ...;
``EVENT_TYPES`` maps each type code to its class), all sharing ``RealtimeEvent``. US stocks come
from their own socket (``US_PRODUCTION_URL``): ``UsTrade`` (FE), ``UsOrderBook`` (FT), ``UsOrder``
(F4), ``UsFill`` (F5), items as ``UsItem`` or ``"NASDAQ:NVDA"``. ``Session`` is
what every kind of session offers: live (``RealtimeSession``), replayed (``ReplaySession``) or
relayed (``kiwoom_rt.relay.RelaySession``).

``QtDispatcher`` and ``TkDispatcher`` are imported on first use, so ``import kiwoom_rt`` never
imports Qt or Tk.
"""

from typing import TYPE_CHECKING, Any

from ._handles import ConditionWatch, PendingRequest, Subscription
from ._health import NEVER_STALE, STALE_AFTER, Health, SubscriptionHealth
from ._signals import SessionSignal
from ._state import SessionState
from ._stats import SessionStats
from ._surface import Session
from ._version import __version__
from .backoff import ReconnectPolicy
from .conditions import Condition, ConditionHit
from .errors import (
    AuthError,
    ConditionError,
    ConnectError,
    DecodeError,
    FrameTooLargeError,
    ImplausibleTradeError,
    KiwoomError,
    LateTradeError,
    LoginError,
    ProtocolError,
    ReceiverError,
    RecordingError,
    SessionClosedError,
    SubscribeError,
    SymbolLimitError,
)
from .events import (
    EVENT_TYPES,
    AfterHoursQuote,
    Balance,
    BestQuote,
    BookLevel,
    BrokerLevel,
    Brokers,
    ConditionEvent,
    ElwIndicator,
    ElwTheoretical,
    EtfNav,
    ExpectedTrade,
    GoldPrice,
    IndicativePrice,
    MarketSession,
    OrderBook,
    OrderExecution,
    ProgramTrading,
    RealEvent,
    RealtimeEvent,
    SectorBreadth,
    SectorIndex,
    StockInfo,
    Trade,
    UsConditionEvent,
    UsFill,
    UsOrder,
    UsOrderBook,
    UsTrade,
    VolatilityInterruption,
)
from .options import ConnectionOptions, DeliveryOptions, HealthOptions
from .queued import QueueDispatcher
from .recording import Recorder
from .replay import ReplaySession
from .session import MOCK_URL, PRODUCTION_URL, US_MOCK_URL, US_PRODUCTION_URL, RealtimeSession
from .us import UsItem
from .values import Price

if TYPE_CHECKING:
    from .qt import QtDispatcher
    from .tk import TkDispatcher

__all__ = [
    "EVENT_TYPES",
    "MOCK_URL",
    "NEVER_STALE",
    "PRODUCTION_URL",
    "STALE_AFTER",
    "US_MOCK_URL",
    "US_PRODUCTION_URL",
    "AfterHoursQuote",
    "AuthError",
    "Balance",
    "BestQuote",
    "BookLevel",
    "BrokerLevel",
    "Brokers",
    "Condition",
    "ConditionError",
    "ConditionEvent",
    "ConditionHit",
    "ConditionWatch",
    "ConnectError",
    "ConnectionOptions",
    "DecodeError",
    "DeliveryOptions",
    "ElwIndicator",
    "ElwTheoretical",
    "EtfNav",
    "ExpectedTrade",
    "FrameTooLargeError",
    "GoldPrice",
    "Health",
    "HealthOptions",
    "ImplausibleTradeError",
    "IndicativePrice",
    "KiwoomError",
    "LateTradeError",
    "LoginError",
    "MarketSession",
    "OrderBook",
    "OrderExecution",
    "PendingRequest",
    "Price",
    "ProgramTrading",
    "ProtocolError",
    "QtDispatcher",
    "QueueDispatcher",
    "RealEvent",
    "RealtimeEvent",
    "RealtimeSession",
    "ReceiverError",
    "ReconnectPolicy",
    "Recorder",
    "RecordingError",
    "ReplaySession",
    "SectorBreadth",
    "SectorIndex",
    "Session",
    "SessionClosedError",
    "SessionSignal",
    "SessionState",
    "SessionStats",
    "StockInfo",
    "SubscribeError",
    "Subscription",
    "SubscriptionHealth",
    "SymbolLimitError",
    "TkDispatcher",
    "Trade",
    "UsConditionEvent",
    "UsFill",
    "UsItem",
    "UsOrder",
    "UsOrderBook",
    "UsTrade",
    "VolatilityInterruption",
    "__version__",
]

_LAZY = {"QtDispatcher": "qt", "TkDispatcher": "tk"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kiwoom_rt' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
