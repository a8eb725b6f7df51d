"""The Kiwoom simulator (extra ``sim``): a realtime WebSocket server on loopback.

    from kiwoom_rt.sim import SimServer
    with SimServer() as sim:
        session = RealtimeSession(SimServer.DEFAULT_TOKEN, url=sim.url)
"""

from .market import KST, AfterHoursMarket, SimClock, in_after_hours
from .server import WS_PATH, SimServer
from .tokens import DEFAULT_APPKEY, DEFAULT_SECRETKEY, DEFAULT_TOKEN

__all__ = [
    "DEFAULT_APPKEY",
    "DEFAULT_SECRETKEY",
    "DEFAULT_TOKEN",
    "KST",
    "WS_PATH",
    "AfterHoursMarket",
    "SimClock",
    "SimServer",
    "in_after_hours",
]
