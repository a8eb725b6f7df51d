"""``RelaySession``: a consumer of a relay, with the surface of a live session (runtime).

It reads the relay's feed stream through a Redis consumer group of its own, hands the frames to
the one intake (as a live session would), and sends its requests over the control stream. It
delivers what it asked for: the events of its own (item, type) pairs and the hits of its own
condition watches, as a live session does (``receive="all"`` delivers the whole feed).

Long because one reading thread owns the consumer's whole dealing with Redis (its group, its
pending entries, acknowledgements, numbering, leases and the relay's notices), and each of its
fault paths needs that state (docs/relay.md lists them).
"""

from __future__ import annotations

import datetime
import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import redis

from .._actions import Completed, Failed, WatchFailed, WatchMembers
from .._catalogue import ACCOUNT_TYPES, CONDITION_TYPES, TYPES
from .._conditions import apply_hit
from .._delivery import BindableDispatcher
from .._handles import ConditionRequest, ConditionWatch, Pending, PendingRequest, Subscription
from .._notices import (
    Connected,
    Disconnected,
    GaveUp,
    LoggedIn,
    Notice,
    Reconnecting,
    RelayStatus,
    SystemMessage,
)
from .._playback import Playback
from .._redact import redact_url
from .._state import SessionState
from .._stats import SessionStats
from .._surface import CLOSE_WAIT, SessionBase
from ..conditions import parse_conditions, parse_hit
from ..errors import ConditionError, ConnectError, KiwoomError, ProtocolError, SessionClosedError, SubscribeError
from ..options import DeliveryOptions, HealthOptions
from ..us import parse_us_item
from ._redis import ANY_REDIS_ERROR, REDIS_ERRORS, Backoff, client_for, id_tuple
from ._wire import MAX_ENTRY_BYTES, FeedEntry, RelayKeys, control_message, read_entry
from .publisher import FORWARDED

__all__ = ["RELAY_KINDS", "RelayConsumerStats", "RelayGap", "RelaySession"]

logger = logging.getLogger("kiwoom_rt.relay")

#: The types only the US socket sends (its condition hits included). Of them, the account's types
#: (``ACCOUNT_TYPES``: an order or fill of any symbol) reach whoever asked for them.
_US_SOCKET_TYPES = frozenset(code for code, row in TYPES.items() if row.socket == "us")

#: Relay status notices, as ``RelaySession.on_relay(kind=..., detail=...)``.
RELAY_KINDS = ("relay_started", "relay_stopped", "relay_silent", "relay_back", "redis_lost", "redis_back",
               "gap", "wrong_market")


@attrs.frozen
class RelayGap:
    """The ``detail`` of a ``gap`` notice (``on_relay(kind="gap", detail=...)``): what this
    consumer will never receive. ``lost`` is how many feed entries (None: unknown); ``since`` and
    ``until`` bound the span by the relay's receive times (``time.time()``; None: unknown);
    ``reason`` says what happened. A ``BarFeed`` marks every bar open in the span incomplete."""

    lost: int | None
    since: float | None
    until: float | None
    reason: str


@attrs.frozen(kw_only=True)
class RelayConsumerStats(SessionStats):
    """``RelaySession.stats()``: a live session's counters plus the relay's view. ``events``
    counts what this consumer delivered; ``foreign`` the feed's events that were other
    consumers' (not delivered, under ``receive="own"``)."""

    #: feed entries not yet read by this consumer (Redis's consumer-group lag; None if unknown)
    lag: int | None = None
    #: seconds between the newest feed entry and the last one processed here
    lag_seconds: float | None = None
    #: entries the relay reported lost (buffer overflow while Redis was away)
    relay_lost: int = 0
    redis_up: bool = False
    relay_alive: bool = False
    foreign: int = 0
    #: feed entries skipped because they could not be used (malformed, too large, of the other
    #: socket's types), each reported through ``on_error``
    bad_entries: int = 0
    #: feed entries skipped because they were already delivered (published twice, or read again)
    duplicates: int = 0


class RelaySession(SessionBase):
    """A consumer of a relay, with the surface of ``RealtimeSession`` (``kiwoom_rt.Session``).

    Signals (``on_0e``, ``signal(type)``, ``on_real``, ``on_condition``, the lifecycle signals),
    ``subscribe``/``unsubscribe``/``conditions``/``search``/``watch_condition`` with the same
    handles and the same validation, dispatchers (``QtDispatcher``, ``TkDispatcher``,
    ``QueueDispatcher``), ``stats()`` and ``close()``. Upstream disconnects and reconnects arrive
    as ``on_disconnected`` and ``on_connected``, and ``state`` follows the relay's session
    (CONNECTING until the relay says it is connected). The relay's own state arrives on
    ``on_relay(kind=..., detail=...)`` with ``kind`` one of ``RELAY_KINDS``
    (``redis_lost``/``redis_back``, ``relay_silent``/``relay_back``,
    ``relay_started``/``relay_stopped``, ``gap`` with the count the relay lost, and
    ``wrong_market`` when the relay serves the other socket).

    ``market="us"`` makes a consumer of a US relay (``kiwoom-rt relay --us``): it subscribes
    ``UsItem``s or ``"NASDAQ:NVDA"`` and types FE, FT, F4, F5, as a US ``RealtimeSession`` does.
    A domestic and a US relay can share one Redis under two prefixes.

    ``receive="own"`` (the default) delivers the events of this consumer's (item, type) pairs
    and the hits of its watches, as a live session would; ``receive="all"`` delivers the whole
    feed (recorders, dashboards).

    ``name`` identifies the consumer. A named consumer keeps its place in Redis, so
    ``start_from="last"`` resumes after the last entry it processed (``"now"``, the default,
    starts from the present; subscribe before ``start()`` so the backlog is judged by your
    subscriptions). Without a name, a unique one is made and forgotten at ``close()``.
    Receivers run on the consumer's reading thread unless a ``dispatcher`` is given; a slow
    receiver leaves the backlog in Redis (see ``stats().lag``), nothing is dropped.

    A request asked before the relay runs, or while it restarts, is asked again when the relay
    announces it started, and is answered then.
    """

    def __init__(self, redis_url: str, *, name: str | None = None, prefix: str = "kiwoom-rt",
                 start_from: str = "now", receive: str = "own", dispatcher: BindableDispatcher | None = None,
                 queue_size: int = 100_000, lease: float = 15.0, silence: float = 3.0, batch: int = 1000,
                 timeout: float = 5.0, market: str = "kr", max_entry_bytes: int = MAX_ENTRY_BYTES,
                 stale_after: float | Mapping[str, float | None] | None = None, resubscribe_stale: bool = False,
                 health_interval: float = 1.0, market_clock: Callable[[], datetime.datetime] | None = None) -> None:
        if start_from not in ("now", "last"):
            raise ValueError('start_from must be "now" or "last"')
        if start_from == "last" and not name:
            raise ValueError('start_from="last" needs a name: the place is kept under it')
        if receive not in ("own", "all"):
            raise ValueError('receive must be "own" (what this consumer asked for) or "all" (the whole feed)')
        super().__init__(market=market, delivery=DeliveryOptions(dispatcher=dispatcher, queue_size=queue_size),
                         health=HealthOptions(stale_after=stale_after, resubscribe_stale=resubscribe_stale,
                                              health_interval=health_interval, market_clock=market_clock))
        self._market_error: ConnectError | None = None
        self.redis_url = redis_url
        self.keys = RelayKeys(prefix)
        self.ephemeral = not name
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.start_from = start_from
        #: "own": events of this consumer's own (item, type) pairs and hits of its own watches, as a
        #: live session delivers them; "all": the relay's whole feed (recorders, dashboards)
        self.receive = receive
        self.lease = lease
        self.silence = silence
        self.batch = batch
        self.timeout = timeout
        self.max_entry_bytes = max_entry_bytes
        #: the relay's state: receiver(session, kind=..., detail=...)
        self.on_relay = self._signals.extra_signal(RelayStatus.signal, ("kind", "detail"))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._playback = Playback(self._dispatcher, self._stop, label=f"relay session {self.name}",
                                  batch=min(1000, queue_size // 4), hits=self._condition_hits, keep=self._keep_own,
                                  us=self._us_exchanges if market == "us" else None)
        self._thread: threading.Thread | None = None
        self._client: Any | None = None
        self._state = SessionState.NEW
        self._requests = itertools.count(1)
        self._resend: dict[int, dict[bytes, bytes]] = {}  # requests not answered yet, as sent
        self._watch_requests: dict[int, str] = {}  # request id -> the seq it watches
        self._pairs: set[tuple[str, str]] = set()
        self._confirmed: set[tuple[str, str]] = set()  # pairs of subscribe requests the relay answered
        self._subscribing: dict[int, tuple[tuple[str, str], ...]] = {}  # request id -> its pairs
        self._wanted_pairs: frozenset[tuple[str, str]] = frozenset()
        self._any_item_types: frozenset[str] = frozenset()  # account and market types: any item
        self._delivered: dict[str, int] = {}  # events delivered, per type
        self._foreign = 0
        self._relay_id: str | None = None
        self._entries = 0
        self._relay_lost = 0
        self._redis_up = False
        self._relay_alive = False
        self._silent = False
        self._last_seen = 0.0
        self._last_time: float | None = None
        self._connections = 0
        self._reconnects = 0
        self._bad_entries = 0
        self._duplicates = 0
        self._last_id = (0, 0)  # the newest feed entry handled here (delivered, or skipped)
        self._relay_seq: dict[str, int] = {}  # relay id -> the last entry number handled here
        self._last_entry_time: float | None = None  # the relay's time of the last entry handled
        self._heard: float | None = None  # when this consumer last heard the relay (time.time())
        self._acks: list[bytes] = []  # entry ids whose receivers have run, to acknowledge
        self._acks_lock = threading.Lock()
        #: the reading thread posts this after each batch; the delivering thread, once the
        #: batch's receivers ran, hands its ids back to be acknowledged
        self._delivered_signal = self._signals.extra_signal("RelaySession.delivered", ("ids",))
        self._delivered_signal.connect(self._on_delivered)

    def __repr__(self) -> str:
        return f"<RelaySession {self.name} {redact_url(self.redis_url)} prefix={self.keys.prefix} {self._state}>"

    @property
    def state(self) -> SessionState:
        """NEW; CONNECTING until the relay says its session is connected; CONNECTED while it is;
        RECONNECTING while it is not (a relay that stops or restarts included); CLOSED."""
        return self._state

    # --- life ------------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> RelaySession:
        """Reach Redis (within ``timeout`` seconds, and the session's ``timeout`` per call), take
        this consumer's place in the feed, and start reading."""
        if self._state is not SessionState.NEW:
            raise RuntimeError(f"relay session already {self._state}")
        client = client_for(self.redis_url, min(timeout, self.timeout))
        try:
            client.ping()
            self._join(client)
        except ANY_REDIS_ERROR as exc:
            client.close()
            raise ConnectError(f"cannot reach Redis at {redact_url(self.redis_url)}: {exc}") from None
        self._client = client
        self._redis_up = True
        self._last_seen = time.monotonic()
        self._state = SessionState.CONNECTING
        self._dispatcher.start()
        self._resend_pending()  # requests made before start()
        self._thread = threading.Thread(target=self._run, name=f"kiwoom-rt-relay-{self.name}", daemon=True)
        self._thread.start()
        self._start_health()
        return self

    def _join(self, client: Any) -> None:
        """Create this consumer's group (at the present), or move it there for ``"now"``. The
        group is told how many entries precede the present, so Redis can report its lag. With
        ``"last"``, the entries this consumer read before but never acknowledged (its receivers
        had not finished) are read again first."""
        feed, group = self.keys.feed, self.name
        try:
            added = int(client.xinfo_stream(feed).get("entries-added") or 0)
        except redis.ResponseError:  # no feed yet
            added = 0
        try:
            client.xgroup_create(feed, group, id="$", mkstream=True, entries_read=added)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            if self.start_from == "now":  # the present, and nothing pending from before
                client.xgroup_destroy(feed, group)
                client.xgroup_create(feed, group, id="$", mkstream=True, entries_read=added)
            else:
                self._check_retention(client)

    def _check_retention(self, client: Any) -> None:
        """Resuming: say so if entries after our place were trimmed away before we came back."""
        for group in client.xinfo_groups(self.keys.feed):
            if group.get("name") == self.name.encode():
                last = group.get("last-delivered-id", b"0-0")
                first = client.xinfo_stream(self.keys.feed).get("first-entry")
                if first and id_tuple(first[0]) > id_tuple(last) and id_tuple(last) != (0, 0):
                    self._gap(None, self._last_entry_time, None,
                              "entries after this consumer's place were trimmed (retention)")

    def close(self, timeout: float = 5.0) -> None:
        """Leave the relay (it releases this consumer's items) and stop reading. Returns within
        about a second; after it returns no receiver is called (one still running finishes on
        its own daemonic thread). Entries read but not delivered stay pending in Redis: a named
        consumer started again with ``start_from="last"`` gets them."""
        if self._state is SessionState.CLOSED:
            return
        was_running = self._state is not SessionState.NEW
        self._state = SessionState.CLOSED
        self._stop.set()
        self._closing()
        timeout = min(timeout, CLOSE_WAIT)
        self._stop_health(timeout)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        client = self._client
        if client is not None and was_running:
            try:
                client.xadd(self.keys.control, control_message(self.name, "leave"))
                if self.ephemeral:
                    client.xgroup_destroy(self.keys.feed, self.name)
            except ANY_REDIS_ERROR:
                pass
            client.close()
        self._dispatcher.stop(timeout)
        self._fail_all(SessionClosedError("the relay session was closed"))
        self._closed()

    def _check_open(self) -> None:
        if self._market_error is not None:  # say why, not only that it gave up
            raise SessionClosedError(f"the relay session gave up: {self._market_error}")
        super()._check_open()

    # --- requests (SessionBase calls these) -----------------------------------------------------------

    def _submit_subscribe(self, handle: Subscription, refresh: bool) -> None:
        pairs = tuple((item, kind) for item in handle.items for kind in handle.types)
        with self._lock:
            self._pairs.update(pairs)
            self._wanted_changed()
        self._request("subscribe", handle, pairs, items=handle.items, types=handle.types)

    def _submit_unsubscribe(self, handle: PendingRequest) -> None:
        with self._lock:
            gone = {(item, kind) for item in handle.items for kind in handle.types}
            self._pairs -= gone
            self._confirmed -= gone
            self._wanted_changed()
        self._request("unsubscribe", handle, items=handle.items, types=handle.types)

    def _health_pairs(self) -> set[tuple[str, str]]:
        with self._lock:
            return set(self._pairs)

    def _acked_pairs(self) -> set[tuple[str, str]]:
        with self._lock:
            return self._confirmed & self._pairs

    def _frame_age(self) -> float | None:
        last = self._last_time
        return None if last is None else max(0.0, time.time() - last)

    def _resubscribe(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Ask the relay to send REG again for stale pairs (it does so for the pairs it holds)."""
        by_type: dict[str, list[str]] = {}
        for item, kind in pairs:
            by_type.setdefault(kind, []).append(item)
        for kind, items in by_type.items():
            self._send(control_message(self.name, "resubscribe", items=items, types=[kind]))

    def _submit_watch(self, watch: ConditionWatch) -> None:
        self._request("watch", watch, seq=watch.seq)

    def _submit_cancel_watch(self, seq: str) -> None:
        self._send(control_message(self.name, "unwatch", seq=seq))

    def _submit_query(self, handle: ConditionRequest[Any]) -> None:
        self._request("query", handle, seq=handle.seq)

    def _request(self, op: str, handle: Pending[Any], pairs: tuple[tuple[str, str], ...] = (),
                 **fields: Any) -> None:
        """Send ``op``; ``pairs``: the (item, type) pairs its success confirms (before it is sent:
        the reply can come first)."""
        request = next(self._requests)
        if self._market_error is not None:  # this relay serves the other socket: refused at once
            if isinstance(handle, ConditionWatch):
                self._finish(WatchFailed(handle.seq, self._market_error))
            else:
                self._keep(request, handle)
                self._finish(Failed(request, self._market_error))
            return
        message = control_message(self.name, op, request, **fields)
        if isinstance(handle, ConditionWatch):
            self._watch_requests[request] = handle.seq
        else:
            self._keep(request, handle)
        with self._lock:
            self._resend[request] = message
            if pairs:
                self._subscribing[request] = pairs
        self._send(message)

    def _send(self, message: dict[bytes, bytes]) -> bool:
        client = self._client
        if client is None:
            return False  # sent at start, with the lease
        try:
            client.xadd(self.keys.control, message, maxlen=100_000, approximate=True)
            return True
        except ANY_REDIS_ERROR:
            return False  # resent when Redis is back (pending requests) or with the next lease

    def _lease(self) -> dict[bytes, bytes]:
        with self._lock:
            pairs = sorted(self._pairs)
        return control_message(self.name, "lease", pairs=pairs, seqs=sorted(self._watches),
                               ephemeral=self.ephemeral)

    def _resend_pending(self) -> None:
        with self._lock:
            messages = list(self._resend.values())
        for message in messages:
            self._send(message)

    # --- reading ---------------------------------------------------------------------------------

    def _run(self) -> None:
        client = client_for(self.redis_url, max(self.timeout, 2.0))
        try:
            self._read(client)
        except Exception as exc:  # a bug: report it, never die silently
            logger.exception("relay session %s stopped reading", self.name)
            self._playback.report(ProtocolError(f"relay reader failed: {exc}", b""))
        finally:
            client.close()

    def _read(self, client: Any) -> None:
        """Read the feed until closed. Entries are acknowledged once their receivers have run
        (``_on_delivered``). Pending entries (read before but not acknowledged: by an earlier run
        of this consumer, or by a read whose answer was lost to a timeout) are read again first,
        at start with ``"last"`` and after every Redis error; what was already handled here is
        skipped by its id, so nothing is lost and nothing repeated."""
        backoff = Backoff()
        next_lease = 0.0
        block_ms = int(min(0.25, self.silence / 3) * 1000)
        pending: bytes | None = b"0" if self.start_from == "last" else None  # where to reread from
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_lease and self._send(self._lease()):
                next_lease = now + self.lease / 3
            try:
                self._acknowledge(client)
                position = pending if pending is not None else b">"
                answer = client.xreadgroup(self.name, "reader", {self.keys.feed: position}, count=self.batch,
                                           block=None if pending is not None else block_ms)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._rejoin(client)
                pending = None
                continue
            except REDIS_ERRORS as exc:
                self._redis_lost(exc)
                pending = b"0"  # a read that timed out may have been answered: those entries are pending
                backoff.wait(self._stop)
                continue
            if not self._redis_up:
                self._redis_up = True
                self._relay_notice("redis_back", {})
                self._resend_pending()
                next_lease = 0.0
            backoff.reset()
            entries = [entry for _, found in answer or () for entry in found]
            if pending is not None:
                if not entries:
                    pending = None  # every pending entry is handled: back to new ones
                    continue
                pending = entries[-1][0]
            if entries:
                self._last_seen = time.monotonic()
                self._heard = time.time()
                if not self._relay_alive:
                    self._relay_alive = True
                    if self._silent:  # announced as silent before: announce the return
                        self._silent = False
                        self._relay_notice("relay_back", {})
                self._process(entries)
                self.post(self._delivered_signal, None, ids=[entry_id for entry_id, _ in entries])
            elif self._relay_alive and time.monotonic() - self._last_seen > self.silence:
                self._relay_alive = False
                self._silent = True
                self._relay_notice("relay_silent", {"seconds": round(time.monotonic() - self._last_seen, 1)})
        try:
            self._acknowledge(client)  # what was delivered before the close
        except ANY_REDIS_ERROR:
            pass

    def _on_delivered(self, _sender: Any, ids: list[bytes]) -> None:
        """On the delivering thread, after the receivers of a batch ran: its entries may go."""
        with self._acks_lock:
            self._acks += ids

    def _acknowledge(self, client: Any) -> None:
        with self._acks_lock:
            ids, self._acks = self._acks, []
        if ids:
            try:
                client.xack(self.keys.feed, self.name, *ids)
            except BaseException:
                with self._acks_lock:  # acknowledged with the next try
                    self._acks = ids + self._acks
                raise

    def heard_until(self) -> float | None:
        """When this consumer last heard from the relay (``time.time()``; None before it did).
        The relay writes a heartbeat every second, so a relay that went quiet shows here at
        once: a ``BarFeed`` finishes no bar by the clock past what the feed has heard."""
        return self._heard

    def _rejoin(self, client: Any) -> None:
        """The feed or our group vanished (Redis restarted without its data): join again."""
        try:
            client.xgroup_create(self.keys.feed, self.name, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._gap(None, self._last_entry_time, time.time(), "the feed was recreated (Redis lost its data)")

    def _redis_lost(self, exc: BaseException) -> None:
        if self._redis_up:
            self._redis_up = False
            logger.warning("relay session %s: Redis unreachable: %s", self.name, exc)
            self._relay_notice("redis_lost", {"reason": str(exc)})

    def _process(self, entries: list[tuple[bytes, Mapping[bytes, bytes]]]) -> None:
        """Hand a batch to the intake, in order. Any entry this consumer cannot use is reported,
        counted in ``stats().bad_entries`` and skipped; an entry already handled (read again,
        or published twice) is skipped and counted in ``stats().duplicates``."""
        playback = self._playback
        for entry_id, fields in entries:
            try:
                position = id_tuple(entry_id)
            except ValueError:
                position = self._last_id
            if position <= self._last_id:
                self._duplicates += 1
                continue
            self._last_id = position
            try:
                entry = read_entry(fields, self.max_entry_bytes)
                if self._seen_before(entry):
                    self._duplicates += 1
                    continue
                self._entries += len(entry.frames) or 1
                if entry.kind == "real":
                    self._last_time = entry.time
                    playback.frames(entry.frames, entry.time)  # anything but REAL was the relay's business
                else:
                    self._control_entry(entry)
            except Exception as exc:  # (a malformed entry of any shape: never the end of this consumer)
                self._bad_entries += 1
                playback.report(ProtocolError(f"unusable relay entry {entry_id!r} skipped: "
                                              f"{type(exc).__name__}: {exc}"[:500], b""))
        playback.flush()

    def _seen_before(self, entry: FeedEntry) -> bool:
        """Whether the relay published ``entry`` before (a write it retried after a stall); says
        so when entries went missing, or when a new relay took over (what the old one had not
        published, and what happened between, is lost)."""
        if not entry.relay or not entry.seq:
            return False
        last = self._relay_seq.get(entry.relay)
        if last is not None and entry.seq <= last:
            return True
        since = self._last_entry_time
        if last is not None and entry.seq > last + 1:
            self._gap(entry.seq - last - 1, since, entry.time, "feed entries went missing (trimmed, or lost in Redis)")
        elif last is None and self._relay_seq and since is not None:
            self._gap(None, since, entry.time, "the relay restarted: what arrived while it was down is lost")
        self._relay_seq = {entry.relay: entry.seq}
        self._last_entry_time = entry.time
        return False

    def _gap(self, lost: int | None, since: float | None, until: float | None, reason: str) -> None:
        """A typed loss (``RelayGap``): how many entries (None: unknown) between which relay times."""
        self._relay_notice("gap", RelayGap(lost, since, until, reason))

    # --- what this consumer delivers -----------------------------------------------------------------

    def _wanted_changed(self) -> None:
        """Snapshots of what this consumer wants, for the reading thread (lock held)."""
        if self.market == "us":  # US events carry the symbol; orders and fills are the account's
            self._wanted_pairs = frozenset((parse_us_item(item).symbol, kind) for item, kind in self._pairs)
            self._any_item_types = frozenset(kind for _, kind in self._pairs if kind in ACCOUNT_TYPES)
            return
        self._wanted_pairs = frozenset(self._pairs)
        self._any_item_types = frozenset(kind for item, kind in self._pairs if not item)

    def _keep_own(self, events: list[Any]) -> list[Any]:
        """The events to deliver: this consumer's own, unless it asked for the whole feed; never
        the other socket's types (a US trade in a domestic feed is reported and skipped)."""
        if self.receive == "all":  # ("own" keeps only its own pairs, which are of its socket)
            kept = self._of_this_socket(events)
        else:
            pairs, any_item, watches = self._wanted_pairs, self._any_item_types, self._watches
            kept = [event for event in events
                    if (event.item, event.type) in pairs or event.type in any_item
                    or (event.type in CONDITION_TYPES and event.seq in watches)]
            self._foreign += len(events) - len(kept)
        delivered = self._delivered
        for event in kept:
            delivered[event.type] = delivered.get(event.type, 0) + 1
        return kept

    def _of_this_socket(self, events: list[Any]) -> list[Any]:
        """``events`` without the other socket's types (a US trade in a domestic feed): those
        are reported and skipped. The classes of a batch are looked at, not each event."""
        us = self.market == "us"
        classes: set[Any] = set(map(type, events))
        wrong = {cls for cls in classes if (cls.type in _US_SOCKET_TYPES) is not us}
        if not wrong:
            return events
        kept = [event for event in events if type(event) not in wrong]
        self._bad_entries += len(events) - len(kept)
        for cls in wrong:
            self._playback.report(ProtocolError(
                f"{cls.type} events in a {'US' if us else 'domestic'} relay feed: skipped", b""))
        return kept

    def _condition_hits(self, hits: list[Any]) -> None:
        for event in hits:
            watch = self._watches.get(event.seq or "")
            if watch is not None and watch.ready and not watch.error:  # before the reply, its list rules
                members = apply_hit(watch.members, event)
                if members is not None:
                    watch.set_members(members)

    # --- the relay's notices and replies -------------------------------------------------------------

    def _control_entry(self, entry: FeedEntry) -> None:
        body = entry.body
        if entry.kind == "reply":
            if body.get("to") == self.name:
                self._reply(body)
            return
        name = str(body.get("name", ""))
        relay = body.get("relay")
        if name in FORWARDED:
            kwargs = body.get("kwargs") or {}
            self._upstream(name, kwargs if isinstance(kwargs, dict) else {})
        elif name == "relay_alive":
            self._check_market(body.get("market"))
            if relay != self._relay_id and self._relay_id is not None:
                self._relay_restarted(relay)
            self._upstream_state(body.get("upstream"))
        elif name == "relay_started":
            self._check_market(body.get("market"))
            # A relay reads requests from its own start on: whatever we asked before that (or
            # before a restart) is asked again now, so it is answered within a heartbeat.
            self._relay_restarted(relay)
            self._relay_notice("relay_started", {"relay": relay})
        elif name == "relay_stopped":
            if self._state is SessionState.CONNECTED:
                self._state = SessionState.RECONNECTING
            self._relay_notice("relay_stopped", {"relay": relay})
        elif name == "gap":
            lost = body.get("lost")
            self._relay_lost += int(lost) if isinstance(lost, int) else 0
            self._gap(lost if isinstance(lost, int) else None, self._last_entry_time, entry.time,
                      "the relay's buffer overflowed while Redis was away")
        if self._relay_id is None and isinstance(relay, str):
            self._relay_id = relay

    def _check_market(self, market: Any) -> None:
        """A relay of the other socket (a US consumer on a domestic relay): said once, loudly."""
        if market in (None, self.market) or self._market_error is not None:
            return
        error = ConnectError(f"the relay under prefix {self.keys.prefix!r} serves the {market!r} socket, "
                             f"this consumer the {self.market!r} one: use another prefix, or market={market!r}")
        logger.error("relay session %s: %s", self.name, error)
        self._market_error = error
        self._state = SessionState.GAVE_UP
        self._relay_notice("wrong_market", {"relay": market, "consumer": self.market})
        self._playback.report(error)
        self._fail_all(error)  # nobody here can answer them

    def _relay_restarted(self, relay: Any) -> None:
        """A new relay instance: it knows nothing of us; re-send what we want and wait for."""
        self._relay_id = relay if isinstance(relay, str) else None
        self._send(self._lease())
        self._resend_pending()

    def _upstream_state(self, state: Any) -> None:
        """The relay's session state, from its heartbeat (a consumer may join a running relay)."""
        if self._state in (SessionState.CLOSED, SessionState.GAVE_UP) or not isinstance(state, str):
            return
        self._state = SessionState.CONNECTED if state == "connected" else SessionState.RECONNECTING

    def _upstream(self, name: str, kwargs: dict[str, Any]) -> None:
        notice: Notice
        if name == "on_connected":
            self._connections += 1
            notice = Connected()
        elif name == "on_login":
            self._upstream_state("connected")
            notice = LoggedIn(kwargs.get("extra") or {})
        elif name == "on_disconnected":
            self._upstream_state("disconnected")
            notice = Disconnected(kwargs.get("code"), str(kwargs.get("reason") or ""), bool(kwargs.get("will_retry")))
        elif name == "on_reconnecting":
            self._reconnects += 1
            notice = Reconnecting(int(kwargs.get("attempt") or 0), float(kwargs.get("delay") or 0.0))
        elif name == "on_gave_up":
            self._upstream_state("gave_up")
            notice = GaveUp(KiwoomError(str(kwargs.get("error", ""))))
        else:
            notice = SystemMessage(str(kwargs.get("code") or ""), str(kwargs.get("message") or ""))
        self._playback.notify(notice)

    def _reply(self, body: Mapping[str, Any]) -> None:
        request = body.get("id")
        if not isinstance(request, int):
            return
        with self._lock:
            self._resend.pop(request, None)
            pairs = self._subscribing.pop(request, ())
            if body.get("ok"):
                self._confirmed.update(pairs)
            elif pairs:  # refused (the relay's item limit, or the server): not wanted, not leased again
                self._pairs.difference_update(set(pairs) - self._confirmed)
                self._wanted_changed()
        ok, code, message = bool(body.get("ok")), body.get("code"), str(body.get("message") or "")
        number = code if isinstance(code, int) else None
        seq = self._watch_requests.pop(request, None)
        if seq is not None:
            if ok:
                self._finish(WatchMembers(seq, frozenset(str(m) for m in body.get("members") or ())))
            else:
                self._finish(WatchFailed(seq, ConditionError(number, message, seq=seq)))
            return
        handle = self._pending.get(request)
        if isinstance(handle, ConditionRequest):
            if not ok:
                self._finish(Failed(request, ConditionError(number, message, trnm=handle.trnm, seq=handle.seq)))
                return
            try:
                rows = body.get("result") or []
                result: Any = [parse_hit(row, self.market) for row in rows] if handle.seq else parse_conditions(rows)
            except ValueError as exc:
                self._finish(Failed(request, ProtocolError(f"relay reply with unusable rows ({exc})", repr(body))))
                return
            self._finish(Completed(request, result))
        elif ok:
            self._finish(Completed(request))
        else:
            self._finish(Failed(request, SubscribeError(number, message)))

    def _relay_notice(self, kind: str, detail: dict[str, Any] | RelayGap) -> None:
        logger.info("relay session %s: %s %s", self.name, kind, detail or "")
        self._playback.notify(RelayStatus(kind, detail))

    # --- numbers -----------------------------------------------------------------------------------

    def stats(self) -> RelayConsumerStats:
        """Counters, plus the backlog Redis holds for this consumer (``lag``, ``lag_seconds``)."""
        lag: int | None = None
        lag_seconds: float | None = None
        client = self._client
        if client is not None and self._state is not SessionState.CLOSED:
            try:
                for group in client.xinfo_groups(self.keys.feed):
                    if group.get("name") == self.name.encode():
                        raw_lag = group.get("lag")
                        lag = int(raw_lag) if raw_lag is not None else None
                        last_read = id_tuple(group.get("last-delivered-id", b"0-0"))
                        newest = client.xinfo_stream(self.keys.feed).get("last-generated-id", b"0-0")
                        lag_seconds = max(0.0, (id_tuple(newest)[0] - last_read[0]) / 1000)
            except ANY_REDIS_ERROR:
                pass
        intake = self._playback.intake
        counts = dict(self._delivered)
        return RelayConsumerStats(
            state=self._state.value, frames=self._entries, real_frames=intake.real_frames, events=counts,
            events_total=sum(counts.values()), decode_errors=self._playback.decode_errors,
            dropped=self._dispatcher.dropped, queue_depth=self._dispatcher.depth, connections=self._connections,
            reconnects=self._reconnects, pending_requests=len(self._resend), last_frame_time=self._last_time,
            lag=lag, lag_seconds=lag_seconds, relay_lost=self._relay_lost, redis_up=self._redis_up,
            relay_alive=self._relay_alive, foreign=self._foreign, bad_entries=self._bad_entries,
            duplicates=self._duplicates, **self._health_counts())
