"""Condition search decisions, sans-I/O: pairing, paging, pacing, watches and their resync.

Nothing here touches a socket, a thread or a clock; ``now`` is passed in, and the application's
requests are known by the ids ``SessionCore`` gives them. The runtime calls:

- ``list_conditions(request)``, ``search(seq, request)``, ``watch(seq)``, ``cancel(seq)``;
- ``connection_ready()`` after every login, ``connection_lost()`` when a connection ends;
- ``on_reply(reply)`` for every ``ConditionReply``, ``on_hit(event)`` for every type-02 (or S2)
  event;
- ``poll(now)`` for the frames due now (requests are paced), and ``next_send_at()`` for when to ask.

They return actions (``kiwoom_rt._actions``): ``Completed``/``Failed`` for a request,
``WatchMembers``/``WatchFailed`` for a watch, ``MembershipChange`` found on a resync, ``Report``.

Rules (docs/protocol.md, "Condition search"); the US socket follows them with its own spelling
(``market="us"``: GCNSRLST, GCNSRREQ, GCNSRCLR; symbols kept as sent, decimal prices):

- replies pair with requests by ``trnm`` plus the stripped ``seq``: one request per key is in
  flight at a time (so one CNSRLST), the others wait in order;
- on every connection CNSRLST goes first, and no CNSRREQ leaves before its reply: the server
  accepts a realtime search only after the list was requested on that connection;
- after a (re)login every live watch is requested again; the fresh member list replaces the old
  one, and the difference is returned as ``MembershipChange``s to signal (``resync=True``);
- at most ``rate`` requests per second leave (Kiwoom's limit is unpublished; 5/s is what one
  client library enforces); requests wait, none is dropped.
"""

from __future__ import annotations

from collections import deque
from types import MappingProxyType
from typing import Any

import attrs

from . import protocol
from ._actions import Completed, Failed, MembershipChange, Report, WatchFailed, WatchMembers
from .conditions import member_code, parse_conditions, parse_hit
from .errors import ConditionError, ConnectError, KiwoomError, ProtocolError
from .events import ConditionEvent, UsConditionEvent
from .messages import ConditionReply

__all__ = ["ConditionCore", "apply_hit", "resync_event"]

Output = Completed | Failed | WatchMembers | WatchFailed | MembershipChange | Report


def resync_event(change: MembershipChange, received_at: float, market: str = "kr") -> ConditionEvent:
    """The ``ConditionEvent`` (``resync=True``) that signals a change found on a watch's resync
    (a ``UsConditionEvent`` on the US socket, whose exchange a member list does not always give)."""
    values = MappingProxyType({"841": change.seq, "9001": change.code, "843": "I" if change.entered else "D"})
    cls, exchange = (UsConditionEvent, None) if market == "us" else (ConditionEvent, "KRX")
    event = cls(change.code, change.code, exchange, values, received_at, change.seq, change.entered, None)
    object.__setattr__(event, "resync", True)  # not an __init__ field: found by us, not pushed by Kiwoom
    return event


def apply_hit(members: frozenset[str], event: ConditionEvent) -> frozenset[str] | None:
    """A watch's members after a type-02 push, or None when it changes nothing (the one rule,
    for live sessions and relay consumers alike)."""
    code, entered = event.code, event.entered
    if not code or entered is None:
        return None
    if entered:
        return None if code in members else members | {code}
    return members - {code} if code in members else None


@attrs.define
class _Outgoing:
    trnm: str
    seq: str = ""
    realtime: bool = False
    asked_by: list[int] = attrs.Factory(list)  # request ids waiting for the result
    rows: list[Any] = attrs.Factory(list)  # pages collected so far (one-shot search)
    next_key: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.trnm, self.seq

    def frame(self, market: str) -> str:
        if self.trnm == "CNSRLST":
            return protocol.cnsrlst(market)
        if self.trnm == "CNSRCLR":
            return protocol.cnsrclr(self.seq, market)
        return protocol.cnsrreq(self.seq, realtime=self.realtime, next_key=self.next_key, market=market)

    def finished(self, result: Any) -> list[Output]:
        return [Completed(request, result) for request in self.asked_by]

    def failed(self, error: KiwoomError) -> list[Output]:
        return [Failed(request, error) for request in self.asked_by]


@attrs.define
class _Watch:
    members: frozenset[str] = frozenset()
    ready: bool = False  # the first member list arrived


class ConditionCore:
    """Condition search state of one session (not thread-safe: the runtime holds its lock)."""

    def __init__(self, *, rate: float = 5.0, market: str = "kr") -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 requests per second")
        self.rate = rate
        self.market = market  # "us": G-prefixed requests, US symbols and decimal prices
        self._queue: deque[_Outgoing] = deque()
        self._in_flight: dict[tuple[str, str], _Outgoing] = {}
        self._sent_at: deque[float] = deque()
        self._ready = False  # logged in on the current connection
        self._listed = False  # CNSRLST answered on the current connection
        self._watches: dict[str, _Watch] = {}
        self._resync: set[str] = set()  # watches whose next member list is a resync
        self.requests_sent = 0

    @property
    def watched(self) -> frozenset[str]:
        """The seqs watched now."""
        return frozenset(self._watches)

    def members(self, seq: str) -> frozenset[str]:
        watch = self._watches.get(seq)
        return watch.members if watch is not None else frozenset()

    # --- the application's requests ----------------------------------------------------------

    def list_conditions(self, request: int) -> None:
        for outgoing in (*self._queue, *self._in_flight.values()):  # one CNSRLST serves everyone
            if outgoing.trnm == "CNSRLST":
                outgoing.asked_by.append(request)
                return
        self._queue.append(_Outgoing("CNSRLST", asked_by=[request]))

    def search(self, seq: str, request: int) -> None:
        self._queue.append(_Outgoing("CNSRREQ", protocol.check_seq(seq), asked_by=[request]))

    def watch(self, seq: str) -> bool:
        """Watch ``seq``, requested at once (or at login); False if it was watched already."""
        seq = protocol.check_seq(seq)
        if seq in self._watches:
            return False
        self._watches[seq] = _Watch()
        self._queue.append(_Outgoing("CNSRREQ", seq, realtime=True))
        return True

    def cancel(self, seq: str) -> None:
        """Forget watch ``seq`` for good and send CNSRCLR (if it was ever requested)."""
        if self._watches.pop(seq, None) is None:
            return
        self._resync.discard(seq)
        queued = [o for o in self._queue if o.trnm == "CNSRREQ" and o.realtime and o.seq == seq]
        for outgoing in queued:
            self._queue.remove(outgoing)
        if not queued:  # the server has the search (or has it in flight): stop it there
            self._queue.append(_Outgoing("CNSRCLR", seq))

    # --- connections --------------------------------------------------------------------------

    def connection_ready(self) -> None:
        """Logged in: CNSRLST first, then every live watch again."""
        self._ready = True
        self._listed = False
        listed = [o for o in self._queue if o.trnm == "CNSRLST"]
        if listed:  # the user's CNSRLST goes first
            self._queue.remove(listed[0])
            self._queue.appendleft(listed[0])
        queued = {o.seq for o in self._queue if o.trnm == "CNSRREQ" and o.realtime}
        for seq, watch in self._watches.items():
            if seq not in queued:
                self._queue.append(_Outgoing("CNSRREQ", seq, realtime=True))
                if watch.ready:
                    self._resync.add(seq)

    def connection_lost(self) -> list[Output]:
        """The connection ended: in-flight one-shots fail; watches are requested again at login."""
        self._ready = self._listed = False
        outputs: list[Output] = []
        for outgoing in self._in_flight.values():
            outputs += outgoing.failed(ConnectError(f"connection lost while waiting for the {outgoing.trnm} reply"))
        self._in_flight.clear()
        # CNSRCLR of a dropped connection is moot: the server forgot the realtime search with it
        self._queue = deque(o for o in self._queue if o.trnm != "CNSRCLR")
        return outputs

    def close(self, error: KiwoomError) -> list[Output]:
        """The session ended: every waiting request and unstarted watch fails with ``error``."""
        outputs: list[Output] = []
        for outgoing in (*self._queue, *self._in_flight.values()):
            outputs += outgoing.failed(error)
        outputs += [WatchFailed(seq, error) for seq, watch in self._watches.items() if not watch.ready]
        self._queue.clear()
        self._in_flight.clear()
        return outputs

    # --- sending ------------------------------------------------------------------------------

    def _window_full(self, now: float) -> bool:
        while self._sent_at and now - self._sent_at[0] >= 1.0:
            self._sent_at.popleft()
        return len(self._sent_at) >= self.rate

    def next_send_at(self) -> float | None:
        """When requests held back by the pacing may leave (None: none is held back).

        Requests that may leave at once are sent by the call that made them due, so only a full
        window leaves something waiting for a deadline."""
        if not self._ready or not self._queue or len(self._sent_at) < self.rate:
            return None
        return self._sent_at[0] + 1.0

    def _sendable(self) -> list[_Outgoing]:
        if not self._listed:
            return [o for o in self._queue if o.trnm == "CNSRLST" and o.key not in self._in_flight][:1]
        return [o for o in self._queue if o.key not in self._in_flight]

    def poll(self, now: float) -> list[str]:
        """The frames to send now, paced, in order (CNSRLST first on each connection, when needed)."""
        frames: list[str] = []
        if not self._ready:
            return frames
        if (not self._listed and self._queue and ("CNSRLST", "") not in self._in_flight
                and not any(o.trnm == "CNSRLST" for o in self._queue)):
            self._queue.appendleft(_Outgoing("CNSRLST"))
        while not self._window_full(now):
            sendable = self._sendable()
            if not sendable:
                break
            outgoing = sendable[0]
            self._queue.remove(outgoing)
            self._in_flight[outgoing.key] = outgoing
            self._sent_at.append(now)
            self.requests_sent += 1
            frames.append(outgoing.frame(self.market))
        return frames

    # --- replies ------------------------------------------------------------------------------

    def on_reply(self, reply: ConditionReply) -> list[Output]:
        """Pair a reply with its request; returns what became of it."""
        outgoing = self._in_flight.pop((reply.trnm, reply.seq), None)
        if outgoing is None:
            return [Report(ProtocolError(f"{reply.trnm} reply for seq {reply.seq!r} with no request in flight",
                                         repr(reply)))]
        if not reply.ok:
            return self._refused(outgoing, reply)
        try:
            if outgoing.trnm == "CNSRLST":
                self._listed = True
                return outgoing.finished(parse_conditions(reply.data))
            if outgoing.trnm == "CNSRCLR":
                return []
            if outgoing.realtime:
                return self._members(outgoing.seq, reply)
            outgoing.rows += reply.data
            if reply.more and reply.next_key:
                outgoing.next_key = reply.next_key
                self._queue.appendleft(outgoing)  # the next page before anything else
                return []
            hits = [parse_hit(row, self.market) for row in outgoing.rows]
        except ValueError as exc:
            error = ProtocolError(f"{reply.trnm} reply has unusable data ({exc})", repr(reply))
            return [*outgoing.failed(error), Report(error)]
        return outgoing.finished(hits)

    def _refused(self, outgoing: _Outgoing, reply: ConditionReply) -> list[Output]:
        error = ConditionError(reply.return_code, reply.return_msg, trnm=reply.trnm, seq=reply.seq)
        outputs = outgoing.failed(error)
        if outgoing.trnm == "CNSRLST":
            self._listed = True  # refused, but asked: let the other requests go and be judged
        watch = self._watches.get(outgoing.seq) if outgoing.realtime else None
        if watch is None:
            return outputs
        if watch.ready:  # a refused resync: keep the watch and its members, report it
            return [*outputs, Report(error)]
        del self._watches[outgoing.seq]  # a refused first request: the watch fails
        return [*outputs, WatchFailed(outgoing.seq, error)]

    def _members(self, seq: str, reply: ConditionReply) -> list[Output]:
        watch = self._watches.get(seq)
        if watch is None:  # cancelled meanwhile
            return []
        members = frozenset(member_code(row, self.market) for row in reply.data)
        outputs: list[Output] = []
        if seq in self._resync:
            self._resync.discard(seq)
            before = watch.members
            outputs += [MembershipChange(seq, code, False) for code in sorted(before - members)]
            outputs += [MembershipChange(seq, code, True) for code in sorted(members - before)]
        watch.members, watch.ready = members, True
        return [WatchMembers(seq, members), *outputs]

    def on_hit(self, event: ConditionEvent) -> list[Output]:
        """A type-02 push: update the watch of its seq (a hit nobody watches changes nothing)."""
        watch = self._watches.get(event.seq or "")
        if watch is None or not watch.ready:
            return []
        members = apply_hit(watch.members, event)
        if members is None:
            return []
        watch.members = members
        return [WatchMembers(event.seq or "", members)]
