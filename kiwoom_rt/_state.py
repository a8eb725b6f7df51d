"""Where a session stands: ``SessionState``, the same words for every kind of session. Sans-I/O."""

from __future__ import annotations

import enum

__all__ = ["SessionState"]


class SessionState(enum.StrEnum):
    """Where a session stands, the same words for every kind of session (live, replay, relay).

    A ``str``: ``session.state == "connected"`` holds, and ``str(state)`` is the lower-case name.
    A replay is ``CONNECTED`` while it plays and ``FINISHED`` once every event was delivered.
    """

    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"  # logged in (a replay: playing; a relay consumer: its relay's session is)
    RECONNECTING = "reconnecting"
    FINISHED = "finished"  # a replay that played everything
    GAVE_UP = "gave_up"
    CLOSED = "closed"
