"""Lifecycle and error notices: small frozen classes, one per signal (sans-I/O).

A session's core decides that something happened (it logged in, the connection ended, a frame
was bad); it says so with one of these. They wait in the delivery queue among the events, in
arrival order, and reach the signal named by ``signal`` as ``receiver(session, **notice.kwargs())``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

__all__ = [
    "NOTICES",
    "Connected",
    "Disconnected",
    "ErrorReport",
    "GaveUp",
    "LoggedIn",
    "Notice",
    "Overflow",
    "Posted",
    "Reconnecting",
    "RelayStatus",
    "SystemMessage",
]


@attrs.frozen
class Notice:
    """The base: ``signal`` names the session signal that carries it."""

    signal: ClassVar[str] = ""

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments its receivers get (its fields, by name)."""
        return attrs.asdict(self, recurse=False)


@attrs.frozen
class Connected(Notice):
    """The WebSocket handshake succeeded (LOGIN follows)."""

    signal: ClassVar[str] = "on_connected"


@attrs.frozen
class LoggedIn(Notice):
    """The server accepted LOGIN; ``extra`` holds the reply's other keys (``sor_yn`` ...)."""

    signal: ClassVar[str] = "on_login"
    extra: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Disconnected(Notice):
    """A connection ended: close ``code`` (or a Kiwoom code), ``reason``, and whether a reconnect follows."""

    signal: ClassVar[str] = "on_disconnected"
    code: int | str | None
    reason: str
    will_retry: bool


@attrs.frozen
class Reconnecting(Notice):
    """Reconnect attempt ``attempt`` begins after ``delay`` seconds."""

    signal: ClassVar[str] = "on_reconnecting"
    attempt: int
    delay: float


@attrs.frozen
class GaveUp(Notice):
    """The session stopped for good; ``error`` says why."""

    signal: ClassVar[str] = "on_gave_up"
    error: BaseException


@attrs.frozen
class SystemMessage(Notice):
    """A SYSTEM message from Kiwoom (R10001, R10002, R10004 ...)."""

    signal: ClassVar[str] = "on_system"
    code: str
    message: str


@attrs.frozen
class ErrorReport(Notice):
    """Bad input, or a receiver that raised: the session keeps running."""

    signal: ClassVar[str] = "on_error"
    error: BaseException


@attrs.frozen
class Overflow(Notice):
    """``dropped`` events went under ``overflow="drop_oldest"``."""

    signal: ClassVar[str] = "on_overflow"
    dropped: int


@attrs.frozen
class RelayStatus(Notice):
    """A relay consumer's view of the relay (``RELAY_KINDS``), with details: a dict, or a
    ``RelayGap`` for a gap."""

    signal: ClassVar[str] = "on_relay"
    kind: str
    detail: Any = attrs.field(factory=dict)


@attrs.frozen
class Posted(Notice):
    """A call of a feature's own signal (``session.post``), delivered in order with the events:
    ``target``'s receivers get ``(sender, **values)``."""

    target: Any
    sender: Any
    values: Mapping[str, Any]

    def kwargs(self) -> dict[str, Any]:
        return dict(self.values)


#: {signal name: notice class} for the lifecycle signals every session has.
NOTICES: Mapping[str, type[Notice]] = {cls.signal: cls for cls in (
    Connected, LoggedIn, Disconnected, Reconnecting, GaveUp, SystemMessage, ErrorReport, Overflow)}
