"""Condition search decisions, sans-I/O: pairing, paging, pacing, watches and their resync.

Nothing here touches a socket, a thread or a clock; ``now`` is passed in. The runtime calls:

- ``list_conditions``, ``search``, ``watch``, ``cancel``: the application's requests;
- ``connection_ready(now)`` after every login, ``connection_lost()`` when a connection ends;
- ``on_reply(reply, now)`` for every ``ConditionReply``, ``on_hit(event)`` for every type-02 event;
- ``poll(now)`` for the frames due now (requests are paced), and ``next_send_at()`` for when to ask.

Rules (docs/protocol.md, "Condition search"):

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

import threading
from collections import deque
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import attrs

from . import protocol
from .conditions import ConditionWatch, parse_conditions, parse_hit
from .errors import ConditionError, ConnectError, KiwoomError, ProtocolError
from .events import ConditionEvent, strip_market_prefix
from .messages import ConditionReply

__all__ = ["ConditionCore", "ConditionRequest", "MembershipChange", "resync_event"]


class ConditionRequest:
    """A one-shot request (the list, or a search) in progress: ``wait()`` gives its result."""

    def __init__(self, trnm: str, seq: str = "") -> None:
        self.trnm = trnm
        self.seq = seq
        self._done = threading.Event()
        self._result: Any = None
        self._error: KiwoomError | None = None

    def wait(self, timeout: float | None = None) -> Any:
        if not self._done.wait(timeout):
            what = f"{self.trnm} seq {self.seq}" if self.seq else self.trnm
            raise TimeoutError(f"{what}: no reply within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def _finish(self, result: Any) -> None:
        self._result = result
        self._done.set()

    def _fail(self, error: KiwoomError) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()


@attrs.frozen
class MembershipChange:
    """A stock that entered or left watch ``seq`` while the connection was down (found on resync)."""

    seq: str
    code: str
    entered: bool


def resync_event(change: MembershipChange, received_at: float) -> ConditionEvent:
    """The ``ConditionEvent`` (``resync=True``) that signals a change found on a watch's resync."""
    values = MappingProxyType({"841": change.seq, "9001": change.code, "843": "I" if change.entered else "D"})
    event = ConditionEvent(change.code, change.code, "KRX", values, received_at, change.seq, change.entered, None)
    object.__setattr__(event, "resync", True)
    return event


@attrs.define
class _Outgoing:
    trnm: str
    seq: str = ""
    realtime: bool = False
    handles: list[ConditionRequest] = attrs.Factory(list)
    rows: list[Any] = attrs.Factory(list)  # pages collected so far (one-shot search)
    next_key: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.trnm, self.seq

    def frame(self) -> str:
        if self.trnm == "CNSRLST":
            return protocol.cnsrlst()
        if self.trnm == "CNSRCLR":
            return protocol.cnsrclr(self.seq)
        return protocol.cnsrreq(self.seq, realtime=self.realtime, next_key=self.next_key)


Output = MembershipChange | KiwoomError  # resync changes to signal; problems to report


class ConditionCore:
    """Condition search state of one session (not thread-safe: the runtime holds its lock)."""

    def __init__(self, *, rate: float = 5.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 requests per second")
        self.rate = rate
        self._queue: deque[_Outgoing] = deque()
        self._in_flight: dict[tuple[str, str], _Outgoing] = {}
        self._sent_at: deque[float] = deque()
        self._ready = False  # logged in on the current connection
        self._listed = False  # CNSRLST answered on the current connection
        self.watches: dict[str, ConditionWatch] = {}
        self._resync: set[str] = set()  # watches whose next member list is a resync
        self.requests_sent = 0

    # --- the application's requests ----------------------------------------------------------

    def list_conditions(self) -> ConditionRequest:
        handle = ConditionRequest("CNSRLST")
        for outgoing in (*self._queue, *self._in_flight.values()):  # one CNSRLST serves everyone
            if outgoing.trnm == "CNSRLST":
                outgoing.handles.append(handle)
                return handle
        self._queue.append(_Outgoing("CNSRLST", handles=[handle]))
        return handle

    def search(self, seq: str) -> ConditionRequest:
        seq = protocol.check_seq(seq)
        handle = ConditionRequest("CNSRREQ", seq)
        self._queue.append(_Outgoing("CNSRREQ", seq, handles=[handle]))
        return handle

    def watch(self, seq: str, cancel: Callable[[str], None]) -> ConditionWatch:
        """The watch of ``seq``: the existing one, or a new one requested at once (or at login)."""
        seq = protocol.check_seq(seq)
        existing = self.watches.get(seq)
        if existing is not None:
            return existing
        watch = self.watches[seq] = ConditionWatch(seq, cancel)
        self._queue.append(_Outgoing("CNSRREQ", seq, realtime=True))
        return watch

    def cancel(self, seq: str) -> None:
        """Forget watch ``seq`` for good and send CNSRCLR (if it was ever requested)."""
        watch = self.watches.pop(seq, None)
        if watch is None:
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
        for seq, watch in self.watches.items():
            if seq not in queued:
                self._queue.append(_Outgoing("CNSRREQ", seq, realtime=True))
                if watch.ready:
                    self._resync.add(seq)

    def connection_lost(self) -> None:
        """The connection ended: in-flight one-shots fail; watches are requested again at login."""
        self._ready = self._listed = False
        for outgoing in self._in_flight.values():
            error = ConnectError(f"connection lost while waiting for the {outgoing.trnm} reply")
            for handle in outgoing.handles:
                handle._fail(error)
        self._in_flight.clear()
        # CNSRCLR of a dropped connection is moot: the server forgot the realtime search with it
        self._queue = deque(o for o in self._queue if o.trnm != "CNSRCLR")

    def close(self, error: KiwoomError) -> None:
        """The session ended: every waiting request fails with ``error``."""
        for outgoing in (*self._queue, *self._in_flight.values()):
            for handle in outgoing.handles:
                handle._fail(error)
        for watch in self.watches.values():
            if not watch.ready:
                watch._fail(error)
        self._queue.clear()
        self._in_flight.clear()

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
            frames.append(outgoing.frame())
        return frames

    # --- replies ------------------------------------------------------------------------------

    def on_reply(self, reply: ConditionReply) -> list[Output]:
        """Pair a reply with its request; returns resync changes and problems to report."""
        outgoing = self._in_flight.pop((reply.trnm, reply.seq), None)
        if outgoing is None:
            return [ProtocolError(f"{reply.trnm} reply for seq {reply.seq!r} with no request in flight",
                                  repr(reply))]
        if not reply.ok:
            return self._refused(outgoing, reply)
        try:
            if outgoing.trnm == "CNSRLST":
                self._listed = True
                result: Any = parse_conditions(reply.data)
                for handle in outgoing.handles:
                    handle._finish(result)
                return []
            if outgoing.trnm == "CNSRCLR":
                return []
            if outgoing.realtime:
                return self._members(outgoing.seq, reply)
            outgoing.rows += reply.data
            if reply.more and reply.next_key:
                outgoing.next_key = reply.next_key
                self._queue.appendleft(outgoing)  # the next page before anything else
                return []
            hits = [parse_hit(row) for row in outgoing.rows]
        except ValueError as exc:
            error = ProtocolError(f"{reply.trnm} reply has unusable data ({exc})", repr(reply))
            for handle in outgoing.handles:
                handle._fail(error)
            return [error]
        for handle in outgoing.handles:
            handle._finish(hits)
        return []

    def _refused(self, outgoing: _Outgoing, reply: ConditionReply) -> list[Output]:
        error = ConditionError(reply.return_code, reply.return_msg, trnm=reply.trnm, seq=reply.seq)
        for handle in outgoing.handles:
            handle._fail(error)
        if outgoing.trnm == "CNSRLST":
            self._listed = True  # refused, but asked: let the other requests go and be judged
        watch = self.watches.get(outgoing.seq) if outgoing.realtime else None
        if watch is None:
            return []
        if watch.ready:  # a refused resync: keep the watch and its members, report it
            return [error]
        del self.watches[outgoing.seq]  # a refused first request: the watch fails
        watch._fail(error)
        return []

    def _members(self, seq: str, reply: ConditionReply) -> list[Output]:
        watch = self.watches.get(seq)
        if watch is None:  # cancelled meanwhile
            return []
        codes = set()
        for row in reply.data:
            code = row.get("jmcode", row.get("9001")) if isinstance(row, dict) else None
            if not isinstance(code, str) or not code.strip():
                raise ValueError(f"a member row has no code: {row!r}")
            codes.add(strip_market_prefix(code.strip()))
        members = frozenset(codes)
        changes: list[Output] = []
        if seq in self._resync:
            self._resync.discard(seq)
            before = watch.members
            changes += [MembershipChange(seq, code, False) for code in sorted(before - members)]
            changes += [MembershipChange(seq, code, True) for code in sorted(members - before)]
        watch._set_members(members)
        return changes

    def on_hit(self, event: ConditionEvent) -> None:
        """A type-02 push: update the watch of its seq (a hit nobody watches changes nothing)."""
        watch = self.watches.get(event.seq or "")
        if watch is None or not watch.ready or event.entered is None:
            return
        if event.entered:
            watch._set_members(watch.members | {event.code})
        else:
            watch._set_members(watch.members - {event.code})
