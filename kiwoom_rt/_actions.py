"""What the sans-I/O cores ask the runtime to do: small frozen classes, one per kind of action.

``SessionCore`` and ``ConditionCore`` return lists of these; the runtime carries them out in
order (``match action: case Send(frame): ...``). Requests the application made are known here by
the id the core gave them: ``Completed`` and ``Failed`` tell the runtime to finish the handle it
keeps under that id. Lifecycle notices (``kiwoom_rt._notices``) are actions too: deliver them.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._notices import Notice
from .errors import KiwoomError

__all__ = [
    "Abort",
    "Action",
    "Completed",
    "Deliver",
    "Echo",
    "Failed",
    "GiveUp",
    "InvalidateToken",
    "MembershipChange",
    "Report",
    "Retry",
    "Send",
    "WatchFailed",
    "WatchMembers",
]


@attrs.frozen
class Send:
    """Send this frame on the current connection."""

    frame: str | bytes


@attrs.frozen
class Echo:
    """Answer a PING (the runtime sends it once the events read before it are delivered)."""

    frame: str | bytes


@attrs.frozen
class Report:
    """Bad input: logged, counted and sent to ``on_error``; the session keeps running."""

    error: KiwoomError


@attrs.frozen
class Abort:
    """End the current connection now (the core has recorded why; ``reason`` says it too)."""

    reason: str = ""


@attrs.frozen
class Retry:
    """Connect again after ``delay`` seconds."""

    delay: float


@attrs.frozen
class GiveUp:
    """Stop for good: fail what waits, end the threads."""

    error: KiwoomError


@attrs.frozen
class InvalidateToken:
    """The server refused the token: ask the token source for a fresh one next time."""


@attrs.frozen
class Completed:
    """Request ``request`` finished well; ``result`` is its answer (a condition list, a search's
    rows; None for REG and REMOVE)."""

    request: int
    result: Any = None


@attrs.frozen
class Failed:
    """Request ``request`` failed (refused, or the session ended first)."""

    request: int
    error: KiwoomError


@attrs.frozen
class WatchMembers:
    """Watch ``seq`` has these members now (its first list, a resync, or a hit)."""

    seq: str
    members: frozenset[str]


@attrs.frozen
class WatchFailed:
    """Watch ``seq`` could not be started (refused, or the session ended first)."""

    seq: str
    error: KiwoomError


@attrs.frozen
class MembershipChange:
    """A stock that entered or left watch ``seq`` while the connection was down (found on resync)."""

    seq: str
    code: str
    entered: bool


@attrs.frozen
class Deliver:
    """Membership changes found on a watch's resync: deliver them as type-02 events."""

    changes: tuple[MembershipChange, ...]


Action = (Send | Echo | Notice | Report | Abort | Retry | GiveUp | InvalidateToken | Completed | Failed
          | WatchMembers | WatchFailed | Deliver)
