"""The relay's wire format, sans-I/O: Redis key names, feed entries and control messages.

- ``RelayKeys``: the Redis key names of one relay (several relays can share one Redis).
- Feed entries (``feed_*`` / ``read_entry``): what the relay appends to the feed stream and how a
  consumer reads it back. REAL frames go as received, with their receive time: the frames of
  one socket read share that time, and share one entry (length-prefixed), which makes a flood
  cost Redis one entry per read instead of one per frame. Notices and replies go as JSON.
- Control messages (``control_message`` / ``read_control``): what consumers send the relay.

Nothing here touches a socket, a thread or a clock: times are passed in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .. import protocol

__all__ = [
    "CONTROL_OPS",
    "MAX_ENTRY_BYTES",
    "REAL",
    "ControlMessage",
    "FeedEntry",
    "RelayKeys",
    "control_message",
    "feed_frames",
    "feed_notice",
    "feed_reply",
    "number_entry",
    "read_control",
    "read_entry",
    "unpack_frames",
]

#: What a consumer may ask of the relay.
CONTROL_OPS = frozenset({"subscribe", "unsubscribe", "resubscribe", "watch", "unwatch", "query", "lease", "leave"})

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



# --- the feed -----------------------------------------------------------------------------------

@attrs.frozen
class FeedEntry:
    """One feed entry as a consumer reads it back. ``relay`` and ``seq`` name it: each relay
    numbers its entries 1, 2, 3 ... in the order it publishes them, so a consumer drops an entry
    published twice (a write retried after a Redis stall) and sees entries that went missing."""

    kind: str  # "real", "notice" or "reply"
    time: float
    frames: tuple[bytes, ...] = ()  # real: the frames, in order
    body: dict[str, Any] = attrs.field(factory=dict)  # notice, reply: the JSON object
    relay: str = ""
    seq: int = 0  # 0: not numbered (a relay older than this field)


#: The largest feed entry a consumer decodes (bytes); a larger one is reported and skipped.
MAX_ENTRY_BYTES = 16 * 1024 * 1024


def number_entry(entry: dict[bytes, bytes], relay: str, seq: int) -> dict[bytes, bytes]:
    """``entry`` with the relay's id and its place in the relay's order (set once, at first drain,
    and kept when a write is retried)."""
    entry[b"r"] = relay.encode()
    entry[b"n"] = str(seq).encode()
    return entry


def feed_frames(frames: Iterable[bytes], received_at: float) -> dict[bytes, bytes]:
    """REAL frames received together (one read), each with a 4-byte big-endian length."""
    packed = b"".join(len(frame).to_bytes(4, "big") + frame for frame in frames)
    return {b"k": REAL, b"d": packed, b"t": repr(received_at).encode()}


def unpack_frames(packed: bytes) -> tuple[bytes, ...]:
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
               message: str = "", members: Iterable[str] | None = None,
               result: list[Any] | None = None) -> dict[bytes, bytes]:
    """A reply to one consumer's request: ok or refused (code, message); a watch's ``members``;
    a query's ``result`` (``[seq, name]`` pairs, or a search's rows)."""
    body: dict[str, Any] = {"to": consumer, "id": request, "ok": ok, "code": code, "message": message}
    if members is not None:
        body["members"] = sorted(members)
    if result is not None:
        body["result"] = result
    return {b"k": REPLY, b"d": json.dumps(body).encode(), b"t": repr(now).encode()}


def read_entry(fields: Mapping[bytes, bytes], max_bytes: int = MAX_ENTRY_BYTES) -> FeedEntry:
    """A feed entry's fields back as a ``FeedEntry``; raises ``ValueError`` if malformed, too
    large (over ``max_bytes``), too deeply nested, or not of a known kind."""
    kind, data, stamp = fields.get(b"k"), fields.get(b"d"), fields.get(b"t")
    if not isinstance(data, bytes) or not isinstance(stamp, bytes):
        raise ValueError("feed entry without data or time")
    if len(data) > max_bytes:
        raise ValueError(f"feed entry of {len(data):,} bytes, over the limit of {max_bytes:,}")
    try:
        when = float(stamp)
        relay = fields.get(b"r", b"").decode()
        seq = int(fields.get(b"n", b"0"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"feed entry with a malformed time or number: {exc}") from None
    if when != when or when in (float("inf"), float("-inf")):
        raise ValueError("feed entry with a time that is not finite")
    if kind == REAL:
        return FeedEntry("real", when, frames=unpack_frames(data), relay=relay, seq=seq)
    if kind in (NOTICE, REPLY):
        try:
            body = json.loads(data)
        except RecursionError:
            raise ValueError("feed entry body nested too deeply") from None
        if not isinstance(body, dict):
            raise ValueError("feed entry body is not an object")
        return FeedEntry("notice" if kind == NOTICE else "reply", when, body=body, relay=relay, seq=seq)
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


def read_control(fields: Mapping[bytes, bytes], market: str = "kr") -> ControlMessage:
    """A control entry back as a ``ControlMessage``; raises ``ValueError`` if malformed, or if its
    items are not of the relay's socket (``market``: domestic codes, or ``"NASDAQ:NVDA"``); the
    relay reports and skips it."""
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
        items = tuple(protocol.check_items(body.get("items") or [], market)) if body.get("items") else ()
        types = tuple(protocol.check_types(body.get("types") or [])) if body.get("types") else ()
        pairs = frozenset((str(i), str(t)) for i, t in body.get("pairs") or [])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"control message with bad items or types: {exc}") from None
    return ControlMessage(consumer, op, int(body.get("id") or 0), items, types, str(body.get("seq") or ""),
                          pairs, frozenset(str(s) for s in body.get("seqs") or []), body.get("ephemeral") is True)
