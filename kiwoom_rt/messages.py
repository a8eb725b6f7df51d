"""The messages ``protocol.decode`` turns server frames into: small immutable classes."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from .errors import DecodeError
from .events import RealtimeEvent

__all__ = ["Ack", "ConditionReply", "LoginReply", "Message", "Ping", "RealBatch", "SystemNotice", "Unknown"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@attrs.frozen(slots=True)
class LoginReply:
    """The server's answer to LOGIN. ``return_code`` 0 means success; ``extra`` holds other keys."""

    return_code: int
    return_msg: str
    extra: Mapping[str, Any] = _EMPTY

    @property
    def ok(self) -> bool:
        return self.return_code == 0


@attrs.frozen(slots=True)
class Ping:
    """A server heartbeat. Send ``raw`` back unchanged (``protocol.echo_ping``)."""

    raw: str | bytes


@attrs.frozen(slots=True)
class Ack:
    """The answer to one REG or REMOVE (acks do not say which request: pair them in order)."""

    trnm: str
    return_code: int
    return_msg: str

    @property
    def ok(self) -> bool:
        return self.return_code == 0


@attrs.frozen(slots=True)
class SystemNotice:
    """A SYSTEM message, e.g. R10001 (same app key connected elsewhere), R10002, R10004."""

    code: str
    message: str


@attrs.frozen(slots=True)
class RealBatch:
    """The entries of one REAL frame: decoded events in order, plus one DecodeError per bad entry.

    An entry whose values are partly unusable is in ``events`` (those fields None) *and* has its
    DecodeError in ``errors``; an entry that is not an entry at all (no type, item or values) is
    only in ``errors``.
    """

    events: tuple[RealtimeEvent, ...]
    errors: tuple[DecodeError, ...] = ()


@attrs.frozen(slots=True)
class ConditionReply:
    """The answer to CNSRLST, CNSRREQ or CNSRCLR (condition search).

    ``trnm`` names the request answered, by its domestic name: the US socket's replies
    (GCNSRLST or GCNSRLT, GCNSRREQ, GCNSRCLR) read as CNSRLST, CNSRREQ and CNSRCLR.

    ``seq`` is stripped (replies pad it with spaces; CNSRLST has none). ``data`` is the reply's
    ``data`` list as sent: ``[seq, name]`` pairs for CNSRLST, row objects for a one-shot search,
    ``{"jmcode": ...}`` objects for a realtime one. ``more`` is ``cont_yn == "Y"``.
    """

    trnm: str
    seq: str
    return_code: int
    return_msg: str
    data: tuple[Any, ...] = ()
    more: bool = False
    next_key: str = ""

    @property
    def ok(self) -> bool:
        return self.return_code == 0


@attrs.frozen(slots=True)
class Unknown:
    """A well-formed frame with a ``trnm`` this library does not know (a new server message)."""

    trnm: str
    raw: Mapping[str, Any]


Message = LoginReply | Ping | Ack | SystemNotice | RealBatch | ConditionReply | Unknown
