"""kiwoom-rt: the Kiwoom Securities realtime WebSocket feed for ordinary synchronous Python.

Public API::

    from kiwoom_rt import RealtimeSession
    with RealtimeSession(token) as session:
        session.on_0e.connect(lambda item, event: print(event))
        session.subscribe(["005930"], ["0E"]).wait(5)
"""

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
from .session import MOCK_URL, PRODUCTION_URL, RealtimeSession
from .subscription import PendingRequest, Subscription
from .values import Price

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
    "RealEvent",
    "RealtimeSession",
    "ReceiverError",
    "ReconnectPolicy",
    "RecordingError",
    "SessionClosedError",
    "SubscribeError",
    "Subscription",
    "__version__",
]
