"""The Kiwoom simulator (extra ``sim``): a realtime WebSocket server on loopback.

    from kiwoom_rt.sim import SimServer
    with SimServer() as sim:
        session = RealtimeSession(DEFAULT_TOKEN, url=sim.url)

The clock decides what flows: ``SimServer(clock=SimClock(datetime.time(10, 0)))`` is the regular
session (0B trades against 0D books), the default 16:00 is after hours (0E).

The US socket is at ``sim.us_url``; ``SimServer(clock=us_clock())`` opens the US regular session
(FE trades against FT books), and ``sim.us_order(...)`` pushes F4/F5.
"""

from .clock import SimClock
from .market import KST, AfterHoursMarket, RegularMarket, in_after_hours, in_regular_session
from .server import US_WS_PATH, WS_PATH, SimServer, us_clock
from .tokens import DEFAULT_APPKEY, DEFAULT_SECRETKEY, DEFAULT_TOKEN

__all__ = [
    "DEFAULT_APPKEY",
    "DEFAULT_SECRETKEY",
    "DEFAULT_TOKEN",
    "KST",
    "US_WS_PATH",
    "WS_PATH",
    "AfterHoursMarket",
    "RegularMarket",
    "SimClock",
    "SimServer",
    "in_after_hours",
    "in_regular_session",
    "us_clock",
]
