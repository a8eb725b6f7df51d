"""kiwoom-rt: the Kiwoom Securities realtime WebSocket feed for ordinary synchronous Python.

Public API::

    from kiwoom_rt import RealtimeSession
    with RealtimeSession(token) as session:
        session.on_0e.connect(lambda item, event: print(event))
        session.subscribe(["005930"], ["0E"]).wait(5)

``QtDispatcher`` and ``TkDispatcher`` are imported on first use, so ``import kiwoom_rt`` never
imports Qt or Tk.
"""

from typing import TYPE_CHECKING, Any

from ._core import SessionState
from ._handles import PendingRequest, Subscription
from ._signals import SessionSignal
from ._stats import SessionStats
from ._version import __version__
from .backoff import ReconnectPolicy
from .errors import (
    AuthError,
    ConnectError,
    DecodeError,
    FrameTooLargeError,
    KiwoomError,
    LoginError,
    ProtocolError,
    ReceiverError,
    RecordingError,
    SessionClosedError,
    SubscribeError,
)
from .events import AfterHoursQuote, RealEvent
from .queued import QueueDispatcher
from .recording import Recorder, ReplaySession
from .session import MOCK_URL, PRODUCTION_URL, RealtimeSession
from .values import Price

if TYPE_CHECKING:
    from .qt import QtDispatcher
    from .tk import TkDispatcher

__all__ = [
    "MOCK_URL",
    "PRODUCTION_URL",
    "AfterHoursQuote",
    "AuthError",
    "ConnectError",
    "DecodeError",
    "FrameTooLargeError",
    "KiwoomError",
    "LoginError",
    "PendingRequest",
    "Price",
    "ProtocolError",
    "QtDispatcher",
    "QueueDispatcher",
    "RealEvent",
    "RealtimeSession",
    "ReceiverError",
    "ReconnectPolicy",
    "Recorder",
    "RecordingError",
    "ReplaySession",
    "SessionClosedError",
    "SessionSignal",
    "SessionState",
    "SessionStats",
    "SubscribeError",
    "Subscription",
    "TkDispatcher",
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
