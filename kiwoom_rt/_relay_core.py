"""The relay's decisions and wire format, sans-I/O (docs/relay.md).

- ``RelayKeys``: the Redis key names of one relay.
- Feed entries (``feed_*`` / ``read_entry``): what the relay appends to the feed stream and how a
  consumer reads it back. REAL frames go as received, with their receive time: the frames of
  one socket read share that time, and share one entry (length-prefixed), which makes a flood
  cost Redis one entry per read instead of one per frame. Notices and replies go as JSON.
- Control messages (``control_message`` / ``read_control``): what consumers send the relay.
- ``RelayBook``: every consumer's wanted (item, type) pairs and condition watches, with
  reference counts and leases. It says which REG/REMOVE/watch/cancel the upstream session needs.
- ``Outbox``: the relay's bounded buffer of entries waiting for Redis. It counts what overflows.

Nothing here touches a socket, a thread or a clock: ``now`` is passed in.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from . import protocol

__all__ = [
    "CONTROL_OPS", "FeedEntry", "Outbox", "RelayBook", "RelayChange", "RelayKeys", "control_message",
    "feed_frames", "feed_notice", "feed_reply", "read_control", "read_entry",
]

#: What a consumer may ask of the relay.
CONTROL_OPS = frozenset({"subscribe", "unsubscribe", "watch", "unwatch", "lease", "leave"})

#: Feed entry kinds: a REAL frame, a notice (lifecycle, relay status), a reply to one consumer.
REAL, NOTICE, REPLY = b"r", b"n", b"a"

Pair = tuple[str, str]  # (item, type)


@attrs.frozen
class RelayKeys:
    """The Redis keys of the relay named ``prefix`` (several relays can share one Redis)."""

    prefix: str = "kiwoom-rt"

    @property
    def feed(self) -> str:
        """The stream every consumer reads: REAL frames, notices, replies, in order."""
        return f"{self.prefix}:feed"

    @property
    def control(self) -> str:
        """The stream consumers write their requests and leases to."""
        return f"{self.prefix}:control"

    def offset(self, consumer: str) -> str:
        """Where a named consumer keeps the id of the last feed entry it processed."""
        return f"{self.prefix}:offset:{consumer}"


# --- the feed -----------------------------------------------------------------------------------

@attrs.frozen
class FeedEntry:
    """One feed entry as a consumer reads it back."""

    kind: str  # "real", "notice" or "reply"
    time: float
    frames: tuple[bytes, ...] = ()  # real: the frames, in order
    body: dict[str, Any] = attrs.field(factory=dict)  # notice, reply: the JSON object


def feed_frames(frames: Iterable[bytes], received_at: float) -> dict[bytes, bytes]:
    """REAL frames received together (one read), each with a 4-byte big-endian length."""
    packed = b"".join(len(frame).to_bytes(4, "big") + frame for frame in frames)
    return {b"k": REAL, b"d": packed, b"t": repr(received_at).encode()}


def _unpack(packed: bytes) -> tuple[bytes, ...]:
    frames, pos, end = [], 0, len(packed)
    while pos < end:
        size = int.from_bytes(packed[pos:pos + 4], "big")
        pos += 4
        if size < 0 or pos + size > end:
            raise ValueError("truncated frame in a feed entry")
        frames.append(packed[pos:pos + size])
        pos += size
    return tuple(frames)


def feed_notice(name: str, now: float, **detail: Any) -> dict[bytes, bytes]:
    """A notice: an upstream lifecycle signal (``on_connected`` ...) or a relay status."""
    return {b"k": NOTICE, b"d": json.dumps({"name": name, **detail}, default=str).encode(),
            b"t": repr(now).encode()}


def feed_reply(consumer: str, request: int, now: float, *, ok: bool, code: int | None = None,
               message: str = "", members: Iterable[str] | None = None) -> dict[bytes, bytes]:
    body: dict[str, Any] = {"to": consumer, "id": request, "ok": ok, "code": code, "message": message}
    if members is not None:
        body["members"] = sorted(members)
    return {b"k": REPLY, b"d": json.dumps(body).encode(), b"t": repr(now).encode()}


def read_entry(fields: Mapping[bytes, bytes]) -> FeedEntry:
    """A feed entry's fields back as a ``FeedEntry``; raises ``ValueError`` if malformed."""
    kind, data, stamp = fields.get(b"k"), fields.get(b"d"), fields.get(b"t")
    if data is None or stamp is None:
        raise ValueError("feed entry without data or time")
    when = float(stamp)
    if kind == REAL:
        return FeedEntry("real", when, frames=_unpack(bytes(data)))
    if kind in (NOTICE, REPLY):
        body = json.loads(data)
        if not isinstance(body, dict):
            raise ValueError("feed entry body is not an object")
        return FeedEntry("notice" if kind == NOTICE else "reply", when, body=body)
    raise ValueError(f"unknown feed entry kind {kind!r}")


# --- control ------------------------------------------------------------------------------------

def control_message(consumer: str, op: str, request: int = 0, *, items: Iterable[str] = (),
                    types: Iterable[str] = (), seq: str = "", pairs: Iterable[Pair] = (),
                    seqs: Iterable[str] = (), ephemeral: bool = False) -> dict[bytes, bytes]:
    """A consumer's request. ``lease`` carries its whole wanted state (``pairs``, ``seqs``), so a
    restarted relay learns it within one lease period. ``ephemeral``: an unnamed consumer, whose
    consumer group the relay removes if its lease expires."""
    if op not in CONTROL_OPS:
        raise ValueError(f"unknown relay op {op!r}")
    body = {"c": consumer, "op": op, "id": request, "items": list(items), "types": list(types), "seq": seq,
            "pairs": [list(p) for p in pairs], "seqs": list(seqs), "ephemeral": ephemeral}
    return {b"m": json.dumps(body).encode()}


@attrs.frozen
class ControlMessage:
    consumer: str
    op: str
    request: int
    items: tuple[str, ...]
    types: tuple[str, ...]
    seq: str
    pairs: frozenset[Pair]
    seqs: frozenset[str]
    ephemeral: bool = False


def read_control(fields: Mapping[bytes, bytes]) -> ControlMessage:
    """A control entry back as a ``ControlMessage``; raises ``ValueError`` if malformed (the
    relay reports and skips it)."""
    raw = fields.get(b"m")
    if raw is None:
        raise ValueError("control entry without a message")
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("control message is not an object")
    consumer, op = body.get("c"), body.get("op")
    if not isinstance(consumer, str) or not consumer or op not in CONTROL_OPS:
        raise ValueError(f"control message without a consumer or with an unknown op {op!r}")
    try:
        items = tuple(protocol.check_items(body.get("items") or [])) if body.get("items") else ()
        types = tuple(protocol.check_types(body.get("types") or [])) if body.get("types") else ()
        pairs = frozenset((str(i), str(t)) for i, t in body.get("pairs") or [])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"control message with bad items or types: {exc}") from None
    return ControlMessage(consumer, op, int(body.get("id") or 0), items, types, str(body.get("seq") or ""),
                          pairs, frozenset(str(s) for s in body.get("seqs") or []), body.get("ephemeral") is True)


# --- who wants what -----------------------------------------------------------------------------

@attrs.define
class RelayChange:
    """What the upstream session must do after a book change."""

    register: dict[str, list[str]] = attrs.Factory(dict)  # type -> items now wanted by someone
    remove: dict[str, list[str]] = attrs.Factory(dict)  # type -> items no one wants any more
    watch: list[str] = attrs.Factory(list)  # condition seqs now watched by someone
    unwatch: list[str] = attrs.Factory(list)  # condition seqs no one watches any more

    def __bool__(self) -> bool:
        return bool(self.register or self.remove or self.watch or self.unwatch)

    def merge(self, other: RelayChange) -> RelayChange:
        for mine, theirs in ((self.register, other.register), (self.remove, other.remove)):
            for type_code, items in theirs.items():
                mine.setdefault(type_code, []).extend(items)
        self.watch.extend(other.watch)
        self.unwatch.extend(other.unwatch)
        return self


@attrs.define
class _Consumer:
    pairs: set[Pair] = attrs.Factory(set)
    seqs: set[str] = attrs.Factory(set)
    seen: float = 0.0


class RelayBook:
    """Reference counts of (item, type) pairs and condition seqs over consumers, with leases.

    A pair is registered upstream while at least one consumer wants it; a consumer whose lease
    (``lease`` seconds since its last message) ran out loses everything it wanted.
    """

    def __init__(self, lease: float = 15.0) -> None:
        if lease <= 0:
            raise ValueError("lease must be > 0")
        self.lease = lease
        self._consumers: dict[str, _Consumer] = {}
        self._pairs: dict[Pair, int] = {}
        self._seqs: dict[str, int] = {}

    @property
    def consumers(self) -> frozenset[str]:
        return frozenset(self._consumers)

    def wanted(self) -> frozenset[Pair]:
        """Every pair some consumer wants."""
        return frozenset(self._pairs)

    def watched(self) -> frozenset[str]:
        return frozenset(self._seqs)

    def count(self, item: str, type_code: str) -> int:
        """How many consumers want (item, type)."""
        return self._pairs.get((item, type_code), 0)

    def wants(self, consumer: str) -> frozenset[Pair]:
        found = self._consumers.get(consumer)
        return frozenset(found.pairs) if found is not None else frozenset()

    def touch(self, consumer: str, now: float) -> None:
        self._consumer(consumer, now)

    def _consumer(self, consumer: str, now: float) -> _Consumer:
        found = self._consumers.get(consumer)
        if found is None:
            found = self._consumers[consumer] = _Consumer()
        found.seen = max(found.seen, now)
        return found

    def subscribe(self, consumer: str, items: Iterable[str], types: Iterable[str], now: float) -> RelayChange:
        return self._set(consumer, self._consumer(consumer, now).pairs | _pairs(items, types), None, now)

    def unsubscribe(self, consumer: str, items: Iterable[str], types: Iterable[str], now: float) -> RelayChange:
        return self._set(consumer, self._consumer(consumer, now).pairs - _pairs(items, types), None, now)

    def watch(self, consumer: str, seq: str, now: float) -> RelayChange:
        return self._set(consumer, None, self._consumer(consumer, now).seqs | {seq}, now)

    def unwatch(self, consumer: str, seq: str, now: float) -> RelayChange:
        return self._set(consumer, None, self._consumer(consumer, now).seqs - {seq}, now)

    def sync(self, consumer: str, pairs: Iterable[Pair], seqs: Iterable[str], now: float) -> RelayChange:
        """Make ``consumer``'s wants exactly these (a lease renewal carries them)."""
        return self._set(consumer, set(pairs), set(seqs), now)

    def leave(self, consumer: str) -> RelayChange:
        """``consumer`` closed: forget everything it wanted."""
        if consumer not in self._consumers:
            return RelayChange()
        change = self._set(consumer, set(), set(), 0.0)
        del self._consumers[consumer]
        return change

    def expire(self, now: float) -> tuple[list[str], RelayChange]:
        """Drop consumers whose lease ran out: (their names, what the upstream must remove)."""
        gone = [name for name, c in self._consumers.items() if now - c.seen > self.lease]
        change = RelayChange()
        for name in gone:
            change.merge(self.leave(name))
        return gone, change

    def _set(self, consumer: str, pairs: set[Pair] | None, seqs: set[str] | None, now: float) -> RelayChange:
        state = self._consumer(consumer, now)
        change = RelayChange()
        if pairs is not None:
            for pair in sorted(pairs - state.pairs):
                count = self._pairs.get(pair, 0)
                self._pairs[pair] = count + 1
                if count == 0:
                    change.register.setdefault(pair[1], []).append(pair[0])
            for pair in sorted(state.pairs - pairs):
                count = self._pairs[pair] - 1
                if count:
                    self._pairs[pair] = count
                else:
                    del self._pairs[pair]
                    change.remove.setdefault(pair[1], []).append(pair[0])
            state.pairs = set(pairs)
        if seqs is not None:
            for seq in sorted(seqs - state.seqs):
                count = self._seqs.get(seq, 0)
                self._seqs[seq] = count + 1
                if count == 0:
                    change.watch.append(seq)
            for seq in sorted(state.seqs - seqs):
                count = self._seqs[seq] - 1
                if count:
                    self._seqs[seq] = count
                else:
                    del self._seqs[seq]
                    change.unwatch.append(seq)
            state.seqs = set(seqs)
        return change


def _pairs(items: Iterable[str], types: Iterable[str]) -> set[Pair]:
    types = list(types)
    return {(item, type_code) for item in items for type_code in types}


# --- waiting for Redis ----------------------------------------------------------------------------

class _Frames:
    """REAL frames of one read, waiting to become one feed entry."""

    __slots__ = ("frames", "received_at")

    def __init__(self, frame: bytes, received_at: float) -> None:
        self.frames = [frame]
        self.received_at = received_at


class Outbox:
    """Feed entries waiting for Redis, bounded at ``limit`` frames plus notices: when full, the
    oldest go, so a long Redis outage costs bounded memory. Dropped REAL frames are counted in
    ``lost`` (announced to consumers as a gap) and ``lost_total``; dropped notices (heartbeats
    and the like) in ``lost_notices``. Frames with the same receive time (one socket read) that
    are still waiting share one entry, up to ``frames_per_entry``. Thread-safe: the session's
    reading thread puts, the publishing thread drains."""

    def __init__(self, limit: int = 100_000, frames_per_entry: int = 1000) -> None:
        if limit < 1 or frames_per_entry < 1:
            raise ValueError("limit and frames_per_entry must be >= 1")
        self.limit = limit
        self.frames_per_entry = frames_per_entry
        self.lost = 0  # REAL frames dropped since the last ``take_lost``
        self.lost_total = 0
        self.lost_notices = 0
        self._entries: deque[_Frames | dict[bytes, bytes]] = deque()
        self._size = 0  # frames and notices waiting
        self._lock = threading.Lock()
        self._ready = threading.Event()

    def __len__(self) -> int:
        """Frames and notices waiting."""
        return self._size

    def put_frame(self, frame: bytes, received_at: float) -> None:
        """A REAL frame as received (joins the waiting entry of the same read, if any)."""
        with self._lock:
            entries = self._entries
            last = entries[-1] if entries else None
            if (type(last) is _Frames and last.received_at == received_at
                    and len(last.frames) < self.frames_per_entry):
                last.frames.append(frame)
            else:
                entries.append(_Frames(frame, received_at))
            self._size += 1
            self._trim()
        self._ready.set()

    def put(self, entry: dict[bytes, bytes]) -> None:
        """A notice or reply, ready as a feed entry."""
        with self._lock:
            self._entries.append(entry)
            self._size += 1
            self._trim()
        self._ready.set()

    def _trim(self) -> None:
        entries = self._entries
        while self._size > self.limit:
            oldest = entries[0]
            if type(oldest) is _Frames:
                oldest.frames.pop(0)
                if not oldest.frames:
                    entries.popleft()
                self.lost += 1
                self.lost_total += 1
            else:
                entries.popleft()
                self.lost_notices += 1
            self._size -= 1

    def wait(self, timeout: float) -> bool:
        """Block until something is queued (or ``timeout``); True if something is."""
        if self._entries:
            return True
        self._ready.wait(timeout)
        self._ready.clear()
        return bool(self._entries)

    def drain(self, count: int) -> list[dict[bytes, bytes]]:
        """Remove up to ``count`` of the oldest entries and return them as feed entries."""
        with self._lock:
            entries = self._entries
            taken = [entries.popleft() for _ in range(min(count, len(entries)))]
            self._size -= sum(len(e.frames) if type(e) is _Frames else 1 for e in taken)
        return [feed_frames(e.frames, e.received_at) if isinstance(e, _Frames) else e for e in taken]

    def requeue(self, batch: list[dict[bytes, bytes]], lost: int = 0) -> None:
        """Put back, in front and in order, a batch Redis did not take, and the count of lost
        frames it was to announce (announced again with the next batch)."""
        with self._lock:
            restored: list[_Frames | dict[bytes, bytes]] = []
            for entry in batch:
                if entry.get(b"k") == REAL:
                    frames = _unpack(entry[b"d"])
                    pending = _Frames(frames[0], float(entry[b"t"]))
                    pending.frames.extend(frames[1:])
                    restored.append(pending)
                    self._size += len(frames)
                else:
                    restored.append(entry)
                    self._size += 1
            self._entries.extendleft(reversed(restored))
            self.lost += lost
            self._trim()

    def take_lost(self) -> int:
        """The frames lost since the last call (to announce them once)."""
        with self._lock:
            lost, self.lost = self.lost, 0
            return lost
