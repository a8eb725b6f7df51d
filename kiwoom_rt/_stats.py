"""``SessionStats``: a typed snapshot of a session's counters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["SessionStats"]


@attrs.frozen(kw_only=True)
class SessionStats:
    """What ``session.stats()`` returns. Counters are cumulative over the session's life,
    across reconnects. ``stats["frames"]`` works too, for code written against the old dict."""

    state: str
    #: WebSocket messages received (every kind, every connection)
    frames: int = 0
    #: REAL frames among them
    real_frames: int = 0
    #: events decoded, per realtime type
    events: Mapping[str, int] = attrs.field(factory=dict)
    events_total: int = 0
    #: frames or entries that could not be used (each one also reached ``on_error``)
    decode_errors: int = 0
    #: REG/REMOVE requests the server never acknowledged (each ended its connection)
    ack_timeouts: int = 0
    #: events dropped under ``overflow="drop_oldest"`` (0 under the default "block")
    dropped: int = 0
    #: events waiting for a receiver
    queue_depth: int = 0
    pings_echoed: int = 0
    connections: int = 0
    logins: int = 0
    reconnects: int = 0
    #: times a receiver ran so long that the standby thread took over reading
    handovers: int = 0
    #: socket reads that returned data, and the bytes they returned (frames / reads is the
    #: number of frames one read carries: the more, the fewer GIL hand-offs per frame)
    reads: int = 0
    bytes_read: int = 0
    #: REG/REMOVE requests queued or in flight
    pending_requests: int = 0
    #: seconds since the last frame of the current connection (None when not connected)
    last_frame_age: float | None = None
    #: its wall-clock time (``time.time()``)
    last_frame_time: float | None = None
    #: events a conflating (GUI) dispatcher superseded by a newer one of the same (type, item)
    conflated: int = 0
    #: wanted (item, type) subscriptions; those stale at the last health check, and REGs re-sent
    #: for stale ones
    subscriptions: int = 0
    stale: int = 0
    resubscriptions: int = 0

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in attrs.fields_dict(type(self))
