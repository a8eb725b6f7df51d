"""One Kiwoom feed shared by many processes and machines, through Redis Streams (extra ``relay``).

Kiwoom allows one realtime session per app key. A ``Relay`` owns that session. It publishes
every REAL frame as received, with its receive time, to a Redis stream, together with the
session's lifecycle notices. Any number of ``RelaySession`` consumers read that stream, on this
machine or others, through the same signals, handles and dispatchers as a live session::

    kiwoom-rt relay --redis redis://127.0.0.1:6379/0 --sim          # or --mock / --prod

    session = RelaySession("redis://127.0.0.1:6379/0", name="strategy-a", start_from="last")
    session.on_0e.connect(handler)                  # unchanged from RealtimeSession code
    session.start()
    session.subscribe(["005930"]).wait(5)           # the relay REGs it, once for everyone

Requests travel over a control stream. The relay merges them with reference counts per
consumer: it sends REG when the first consumer wants a pair and REMOVE when the last one leaves.
Consumers hold leases, so a crashed consumer's items go once its lease expires. Each consumer
reads through its own Redis consumer group: a named consumer that restarts with
``start_from="last"`` resumes after the last entry it processed. docs/relay.md has the details,
including how to run a relay and its consumers on different machines safely.

``redis`` (redis-py) is imported by this module only; ``import kiwoom_rt`` never imports it.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from . import protocol
from ._delivery import BindableDispatcher, Dispatcher, SessionDelivery
from ._handles import PendingRequest, Subscription
from ._playback import Playback
from ._redact import redact, redact_url
from ._relay_core import (
    FeedEntry,
    Outbox,
    RelayBook,
    RelayChange,
    RelayKeys,
    control_message,
    feed_notice,
    feed_reply,
    read_control,
    read_entry,
)
from ._signals import LIFECYCLE_SIGNALS, SessionSignal, SignalAttributes, SignalSet
from ._stats import SessionStats
from .conditions import ConditionWatch
from .errors import ConditionError, ConnectError, KiwoomError, ProtocolError, SessionClosedError, SubscribeError

try:
    import redis
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("kiwoom_rt.relay needs redis-py: pip install 'kiwoom-rt[relay]'") from exc

__all__ = ["DEFAULT_MAXLEN", "RELAY_KINDS", "Relay", "RelayConsumerStats", "RelaySession", "RelayStats"]

logger = logging.getLogger("kiwoom_rt.relay")

#: About an hour at 5,000 frames/s (approximate trimming: Redis keeps at least this many).
DEFAULT_MAXLEN = 5_000 * 3600
#: Upstream lifecycle signals the relay forwards (``on_error``/``on_overflow`` stay local:
#: consumers decode frames themselves and report their own).
FORWARDED = ("on_connected", "on_login", "on_disconnected", "on_reconnecting", "on_gave_up", "on_system")
#: Relay status notices, as ``RelaySession.on_relay(kind=..., detail=...)``.
RELAY_KINDS = ("relay_started", "relay_stopped", "relay_silent", "relay_back", "redis_lost", "redis_back",
               "gap")
#: Redis is unreachable (retried); ``_ANY_REDIS_ERROR`` adds refusals such as a wrong password.
_REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)
_ANY_REDIS_ERROR: tuple[type[BaseException], ...] = (*_REDIS_ERRORS, redis.RedisError)


def _redis(url: str, timeout: float) -> Any:
    """A client for ``redis://`` or ``rediss://`` (TLS verified by default) URLs, passwords
    included. (redis-py's own annotations are too loose to help, hence ``Any``.)"""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                health_check_interval=0, decode_responses=False)


class _Backoff:
    """Retry pacing for Redis outages: 50 ms doubling to 1 s."""

    def __init__(self) -> None:
        self.delay = 0.05

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.delay)
        self.delay = min(1.0, self.delay * 2)

    def reset(self) -> None:
        self.delay = 0.05


# ================================================================================================
# The relay: one upstream session, published
# ================================================================================================

@attrs.frozen(kw_only=True)
class RelayStats:
    """What ``Relay.stats()`` returns."""

    published: int  # feed entries Redis accepted
    frames: int  # REAL frames received from upstream
    buffered: int  # entries waiting for Redis
    lost: int  # entries dropped because the buffer overflowed while Redis was away
    redis_up: bool
    consumers: int
    wanted_pairs: int
    watched_conditions: int
    upstream: SessionStats


class Relay:
    """Runs one ``RealtimeSession`` and publishes what it receives to Redis Streams.

    ``session_factory(frame_hook)`` builds the (not yet started) upstream session with that
    ``frame_hook``; ``Relay.for_url(...)`` covers the usual case. ``maxlen`` bounds the feed with
    approximate trimming (default: about an hour at 5,000 frames/s). ``buffer`` bounds what
    waits while Redis is away; overflow is counted, logged and announced to consumers as a
    ``gap``. ``lease``: a consumer not heard from for that long loses its items.
    """

    def __init__(self, redis_url: str, session_factory: Callable[[Callable[[bytes, float], bool | None]], Any], *,
                 prefix: str = "kiwoom-rt", maxlen: int = DEFAULT_MAXLEN, buffer: int = 100_000,
                 lease: float = 15.0, heartbeat: float = 1.0, batch: int = 1000) -> None:
        if maxlen < 1 or batch < 1 or heartbeat <= 0:
            raise ValueError("maxlen and batch must be >= 1, heartbeat > 0")
        self.redis_url = redis_url
        self.keys = RelayKeys(prefix)
        self.maxlen = maxlen
        self.heartbeat = heartbeat
        self.batch = batch
        self.id = uuid.uuid4().hex[:12]
        self.outbox = Outbox(buffer)
        self.book = RelayBook(lease)
        self.published = 0
        self.frames = 0
        self.redis_up = False
        self.session = session_factory(self._on_frame)
        for name in FORWARDED:
            getattr(self.session, name).connect(self._forwarder(name))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._replies: list[tuple[str, int, list[PendingRequest | ConditionWatch]]] = []
        self._watches: dict[str, ConditionWatch] = {}
        self._ephemeral: set[str] = set()  # unnamed consumers: their groups go with their leases
        self._control_id = b"$"
        self._state = "new"

    @classmethod
    def for_url(cls, redis_url: str, token: Any, *, url: str | None = None, proxy: str | bool | None = None,
                ssl_context: Any = None, session_options: Mapping[str, Any] | None = None,
                **options: Any) -> Relay:
        """A relay whose upstream is ``RealtimeSession(token, url=url, ...)``."""
        from .session import PRODUCTION_URL, RealtimeSession

        def factory(hook: Callable[[bytes, float], bool | None]) -> RealtimeSession:
            return RealtimeSession(token, url=url or PRODUCTION_URL, proxy=proxy, ssl_context=ssl_context,
                                   frame_hook=hook, **dict(session_options or {}))

        return cls(redis_url, factory, **options)

    def __repr__(self) -> str:
        return f"<Relay {self.id} {redact_url(self.redis_url)} prefix={self.keys.prefix} {self._state}>"

    # --- life ------------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Relay:
        """Check Redis, start the upstream session, then publish and serve consumers."""
        client = _redis(self.redis_url, timeout)
        try:
            client.ping()
            self._control_id = self._last_id(client, self.keys.control)
        except _ANY_REDIS_ERROR as exc:
            raise ConnectError(f"cannot reach Redis at {redact_url(self.redis_url)}: {exc}") from None
        finally:
            client.close()
        self.redis_up = True
        self._state = "running"
        self.outbox.put(feed_notice("relay_started", time.time(), relay=self.id))
        for target, name in ((self._publish_loop, "kiwoom-rt-relay-publish"),
                             (self._control_loop, "kiwoom-rt-relay-control")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        try:
            self.session.start(timeout=timeout)
        except BaseException:
            self.close()
            raise
        logger.info("relay %s publishing to %s (prefix %s)", self.id, redact_url(self.redis_url), self.keys.prefix)
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Close the upstream session, publish what is buffered (if Redis takes it), and stop."""
        if self._state == "closed":
            return
        self._state = "closing"
        self.session.close()
        self.outbox.put(feed_notice("relay_stopped", time.time(), relay=self.id))
        deadline = time.monotonic() + timeout
        while len(self.outbox) and self.redis_up and time.monotonic() < deadline:
            self._stop.wait(0.01)  # the publishing thread drains meanwhile
        self._stop.set()
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self._state = "closed"

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> RelayStats:
        return RelayStats(published=self.published, frames=self.frames, buffered=len(self.outbox),
                          lost=self.outbox.lost_total, redis_up=self.redis_up, consumers=len(self.book.consumers),
                          wanted_pairs=len(self.book.wanted()), watched_conditions=len(self.book.watched()),
                          upstream=self.session.stats())

    # --- upstream (the session's threads) --------------------------------------------------------

    def _on_frame(self, frame: bytes, received_at: float) -> bool:
        """The session's frame hook, on its reading thread: queue REAL frames as received.

        Returns True, so the session does not decode the frame into events no one here reads,
        unless it may hold condition hits (type 02): the upstream watches need those, to answer
        consumers with current members."""
        if not protocol.is_real_frame(frame):
            return False
        self.frames += 1
        self.outbox.put_frame(bytes(frame), received_at)
        return b'"02"' not in frame

    def _forwarder(self, name: str) -> Callable[..., None]:
        def forward(sender: Any, **kwargs: Any) -> None:
            detail = {k: redact(str(v)) if isinstance(v, BaseException) else dict(v) if isinstance(v, Mapping) else v
                      for k, v in kwargs.items()}
            self.outbox.put(feed_notice(name, time.time(), relay=self.id, kwargs=detail))
        return forward

    # --- publishing ------------------------------------------------------------------------------

    def _publish_loop(self) -> None:
        client = _redis(self.redis_url, 5.0)
        backoff = _Backoff()
        last_beat = time.monotonic()
        try:
            while not self._stop.is_set():
                if time.monotonic() - last_beat >= self.heartbeat:
                    last_beat = time.monotonic()
                    if self.redis_up:  # no heartbeats pile up while Redis is away
                        self.outbox.put(feed_notice("relay_alive", time.time(), relay=self.id))
                if not self.outbox.wait(min(0.25, self.heartbeat)):
                    continue
                batch = self.outbox.drain(self.batch)
                lost = self.outbox.take_lost()
                if lost:
                    batch.insert(0, feed_notice("gap", time.time(), relay=self.id, lost=lost))
                try:
                    pipe = client.pipeline(transaction=False)
                    for entry in batch:
                        pipe.xadd(self.keys.feed, entry, maxlen=self.maxlen, approximate=True)
                    pipe.execute()
                except _REDIS_ERRORS as exc:
                    self.outbox.requeue(batch[1:] if lost else batch, lost)  # the gap is announced later
                    if self.redis_up:
                        self.redis_up = False
                        logger.warning("relay %s: Redis unreachable (%s); buffering up to %d entries",
                                       self.id, exc, self.outbox.limit)
                    backoff.wait(self._stop)
                    continue
                self.published += len(batch)
                if lost:
                    logger.warning("relay %s: %d frames were dropped while Redis was away (announced as a gap)",
                                   self.id, lost)
                if not self.redis_up:
                    self.redis_up = True
                    logger.info("relay %s: Redis is back; publishing resumed", self.id)
                backoff.reset()
        finally:
            client.close()

    # --- serving consumers -----------------------------------------------------------------------

    @staticmethod
    def _last_id(client: Any, key: str) -> bytes:
        last = client.xrevrange(key, count=1)
        return last[0][0] if last else b"0-0"

    def _control_loop(self) -> None:
        client = _redis(self.redis_url, 5.0)
        backoff = _Backoff()
        next_expiry = time.monotonic() + 1.0
        try:
            while not self._stop.is_set():
                block = 10 if self._replies else 250
                try:
                    answer = client.xread({self.keys.control: self._control_id}, count=500, block=block)
                except _REDIS_ERRORS:
                    backoff.wait(self._stop)
                    continue
                backoff.reset()
                for _, entries in answer or ():
                    for entry_id, fields in entries:
                        self._control_id = entry_id
                        try:
                            self._on_control(fields)
                        except Exception:  # one bad request never stops the relay serving the others
                            logger.exception("relay %s: a control message failed", self.id)
                self._send_replies()
                if time.monotonic() >= next_expiry:
                    next_expiry = time.monotonic() + 1.0
                    gone, change = self.book.expire(time.time())
                    for name in gone:
                        logger.info("relay %s: consumer %s's lease expired; its items are released", self.id, name)
                        if name in self._ephemeral:  # nobody will resume it: drop its place in the feed
                            self._ephemeral.discard(name)
                            self._forget_group(client, name)
                    self._apply(change)
        finally:
            client.close()

    def _forget_group(self, client: Any, name: str) -> None:
        try:
            client.xgroup_destroy(self.keys.feed, name)
        except _ANY_REDIS_ERROR as exc:
            logger.warning("relay %s: could not remove consumer group %s: %s", self.id, name, exc)

    def _on_control(self, fields: Mapping[bytes, bytes]) -> None:
        try:
            message = read_control(fields)
        except ValueError as exc:
            logger.warning("relay %s: ignored a malformed control message: %s", self.id, exc)
            return
        now = time.time()
        op, consumer = message.op, message.consumer
        handles: list[PendingRequest | ConditionWatch] = []
        if op == "subscribe":
            handles += self._apply(self.book.subscribe(consumer, message.items, message.types, now))
        elif op == "unsubscribe":
            handles += self._apply(self.book.unsubscribe(consumer, message.items, message.types, now))
        elif op == "watch":
            self._apply(self.book.watch(consumer, message.seq, now))
            watch = self._watches.get(message.seq)
            if watch is not None:
                handles.append(watch)
        elif op == "unwatch":
            self._apply(self.book.unwatch(consumer, message.seq, now))
        elif op == "lease":
            self._apply(self.book.sync(consumer, message.pairs, message.seqs, now))
            if message.ephemeral:
                self._ephemeral.add(consumer)
            return
        elif op == "leave":
            self._apply(self.book.leave(consumer))
            self._ephemeral.discard(consumer)
            return
        if message.request:
            self._replies.append((consumer, message.request, handles))

    def _apply(self, change: RelayChange) -> list[PendingRequest | ConditionWatch]:
        """Carry out a book change on the upstream session; returns the handles to wait for.

        The session may be closing (the relay is stopping) or have given up: then nothing can be
        carried out, which is logged; the consumers learn it from the lifecycle notices."""
        handles: list[PendingRequest | ConditionWatch] = []
        if not change:
            return handles
        session = self.session
        try:
            for type_code, items in change.register.items():
                handles.append(session.subscribe(items, [type_code]))
            for type_code, items in change.remove.items():
                handles.append(session.unsubscribe(items, [type_code]))
            for seq in change.watch:
                watch = self._watches[seq] = session.watch_condition(seq)
                handles.append(watch)
            for seq in change.unwatch:
                watch = self._watches.pop(seq, None)
                if watch is not None:
                    watch.cancel()
        except KiwoomError as exc:
            logger.info("relay %s: the upstream session takes no requests (%s)", self.id, exc)
        return handles

    def _send_replies(self) -> None:
        waiting: list[tuple[str, int, list[PendingRequest | ConditionWatch]]] = []
        now = time.time()
        for consumer, request, handles in self._replies:
            if not all(h.done if isinstance(h, PendingRequest) else h.ready for h in handles):
                waiting.append((consumer, request, handles))
                continue
            error = next((h.error for h in handles if h.error is not None), None)
            watch = next((h for h in handles if isinstance(h, ConditionWatch)), None)
            self.outbox.put(feed_reply(consumer, request, now, ok=error is None,
                                       code=getattr(error, "return_code", None),
                                       message="" if error is None else redact(str(error)),
                                       members=None if watch is None else watch.members))
        self._replies = waiting


# ================================================================================================
# The consumer
# ================================================================================================

@attrs.frozen(kw_only=True)
class RelayConsumerStats(SessionStats):
    """``RelaySession.stats()``: a live session's counters plus the relay's view."""

    #: feed entries not yet read by this consumer (Redis's consumer-group lag; None if unknown)
    lag: int | None = None
    #: seconds between the newest feed entry and the last one processed here
    lag_seconds: float | None = None
    #: entries the relay reported lost (buffer overflow while Redis was away)
    relay_lost: int = 0
    redis_up: bool = False
    relay_alive: bool = False


class RelaySession(SignalAttributes):
    """A consumer of a relay, with the surface of ``RealtimeSession``.

    Signals (``on_0e``, ``signal(type)``, ``on_real``, ``on_condition``, the lifecycle signals),
    ``subscribe``/``unsubscribe``/``watch_condition`` with the same handles, dispatchers
    (``QtDispatcher``, ``TkDispatcher``, ``QueueDispatcher``), ``stats()`` and ``close()``.
    Upstream disconnects and reconnects arrive as ``on_disconnected`` and ``on_connected``; the
    relay's own state arrives on ``on_relay(kind=..., detail=...)`` with ``kind`` one of
    ``RELAY_KINDS`` (``redis_lost``/``redis_back``, ``relay_silent``/``relay_back``,
    ``relay_started``/``relay_stopped``, and ``gap`` with the count the relay lost).

    ``name`` identifies the consumer. A named consumer keeps its place in Redis, so
    ``start_from="last"`` resumes after the last entry it processed (``"now"``, the default,
    starts from the present). Without a name, a unique one is made and forgotten at ``close()``.
    Receivers run on the consumer's reading thread unless a ``dispatcher`` is given; a slow
    receiver leaves the backlog in Redis (see ``stats().lag``), nothing is dropped.
    """

    def __init__(self, redis_url: str, *, name: str | None = None, prefix: str = "kiwoom-rt",
                 start_from: str = "now", receive: str = "own", dispatcher: BindableDispatcher | None = None,
                 queue_size: int = 100_000, lease: float = 15.0, silence: float = 3.0, batch: int = 1000,
                 timeout: float = 5.0) -> None:
        if start_from not in ("now", "last"):
            raise ValueError('start_from must be "now" or "last"')
        if receive not in ("own", "all"):
            raise ValueError('receive must be "own" (what this consumer asked for) or "all" (the whole feed)')
        #: "own": events of this consumer's own (item, type) pairs and hits of its own watches, as a
        #: live session delivers them; "all": the relay's whole feed (recorders, dashboards)
        self.receive = receive
        if start_from == "last" and not name:
            raise ValueError('start_from="last" needs a name: the place is kept under it')
        self.redis_url = redis_url
        self.keys = RelayKeys(prefix)
        self.ephemeral = not name
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.start_from = start_from
        self.lease = lease
        self.silence = silence
        self.batch = batch
        self.timeout = timeout
        self._signals = SignalSet(self)
        self._signals.attach_to(self)
        #: the relay's state: receiver(session, kind=..., detail=...)
        self.on_relay = self._signals.extra_signal("on_relay", ("kind", "detail"))
        self._dispatcher: Dispatcher
        if dispatcher is not None:
            dispatcher.bind(self._signals.deliver_events, self._deliver_notice)
            self._dispatcher = dispatcher
        else:
            self._dispatcher = SessionDelivery(self._signals.deliver_events, self._deliver_notice,
                                               max_events=queue_size)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # decodes, counts and delivers on the reading thread; hits update watches before delivery
        self._playback = Playback(self._dispatcher, self._stop, label=f"relay session {self.name}",
                                  batch=min(1000, queue_size // 4), hits=self._condition_hits, keep=self._keep)
        self._delivered: dict[str, int] = {}  # events delivered, per type
        self.foreign = 0  # events of the feed that were other consumers' (receive="own")
        self._wanted_pairs: frozenset[tuple[str, str]] = frozenset()
        self._any_item_types: frozenset[str] = frozenset()  # account and market types: any item
        self._thread: threading.Thread | None = None
        self._client: Any | None = None
        self._state = "new"
        self._requests = itertools.count(1)
        self._pending: dict[int, PendingRequest | ConditionWatch] = {}
        self._resend: dict[int, dict[bytes, bytes]] = {}
        self._pairs: set[tuple[str, str]] = set()
        self._watches: dict[str, ConditionWatch] = {}
        self._relay_id: str | None = None
        self._entries = 0
        self._relay_lost = 0
        self._upstream_connected = False
        self._redis_up = False
        self._relay_alive = False
        self._silent = False
        self._last_seen = 0.0
        self._last_time: float | None = None
        self._connections = 0
        self._reconnects = 0

    def __repr__(self) -> str:
        return f"<RelaySession {self.name} {redact_url(self.redis_url)} prefix={self.keys.prefix} {self._state}>"

    @property
    def state(self) -> str:
        """"new", "running" or "closed"."""
        return self._state

    @property
    def connected(self) -> bool:
        """True while the relay's upstream session is connected (as far as its notices say)."""
        return self._upstream_connected

    def signal(self, type_code: str) -> SessionSignal:
        return self._signals.signal(type_code)

    # --- life ------------------------------------------------------------------------------------

    def start(self, timeout: float | None = None) -> RelaySession:
        """Reach Redis, take this consumer's place in the feed, and start reading."""
        if self._state != "new":
            raise RuntimeError(f"relay session already {self._state}")
        client = _redis(self.redis_url, timeout or self.timeout)
        try:
            client.ping()
            self._join(client)
        except _ANY_REDIS_ERROR as exc:
            client.close()
            raise ConnectError(f"cannot reach Redis at {redact_url(self.redis_url)}: {exc}") from None
        self._client = client
        self._redis_up = True
        self._last_seen = time.monotonic()
        self._state = "running"
        self._dispatcher.start()
        self._resend_pending()  # requests made before start()
        self._thread = threading.Thread(target=self._run, name=f"kiwoom-rt-relay-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _join(self, client: Any) -> None:
        """Create this consumer's group (at the present), or move it there for ``"now"``. The
        group is told how many entries precede the present, so Redis can report its lag."""
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
            if self.start_from == "now":
                client.xgroup_setid(feed, group, id="$", entries_read=added)
            else:
                self._check_retention(client)

    def _check_retention(self, client: Any) -> None:
        """Resuming: say so if entries after our place were trimmed away before we came back."""
        for group in client.xinfo_groups(self.keys.feed):
            if group.get("name") == self.name.encode():
                last = group.get("last-delivered-id", b"0-0")
                info = client.xinfo_stream(self.keys.feed)
                first = info.get("first-entry")
                if first and _id_tuple(first[0]) > _id_tuple(last) and _id_tuple(last) != (0, 0):
                    self._relay_notice("gap", {"lost": None, "reason": "entries after this consumer's place "
                                                                       "were trimmed (retention)"})

    def close(self, timeout: float = 5.0) -> None:
        """Leave the relay (it releases this consumer's items) and stop reading."""
        if self._state == "closed":
            return
        was_running = self._state == "running"
        self._state = "closed"
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        client = self._client
        if client is not None and was_running:
            try:
                client.xadd(self.keys.control, control_message(self.name, "leave"))
                if self.ephemeral:
                    client.xgroup_destroy(self.keys.feed, self.name)
            except _ANY_REDIS_ERROR:
                pass
            client.close()
        self._dispatcher.stop(timeout)
        error = SessionClosedError("the relay session was closed")
        for handle in self._pending.values():
            handle._fail(error)
        self._pending.clear()

    def __enter__(self) -> RelaySession:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests ----------------------------------------------------------------------------------

    def subscribe(self, items: Iterable[str] | str, types: Iterable[str] | str = ("0E",), *,
                  grp_no: str = "1", refresh: bool = True) -> Subscription:
        """Ask the relay for these items and types; ``.wait()`` returns once the relay has them
        registered upstream (or another consumer already had)."""
        wanted, kinds = tuple(protocol.check_items(items)), tuple(protocol.check_types(types))
        handle = Subscription(grp_no, wanted, kinds, self.unsubscribe)
        handle._expect(1)
        with self._lock:
            self._pairs |= {(item, kind) for item in wanted for kind in kinds}
            self._wanted_changed()
        self._request("subscribe", handle, items=wanted, types=kinds)
        return handle

    def unsubscribe(self, items: Iterable[str] | str, types: Iterable[str] | str = ("0E",), *,
                    grp_no: str = "1") -> PendingRequest:
        wanted, kinds = tuple(protocol.check_items(items)), tuple(protocol.check_types(types))
        handle = PendingRequest("REMOVE", grp_no, wanted, kinds)
        handle._expect(1)
        with self._lock:
            self._pairs -= {(item, kind) for item in wanted for kind in kinds}
            self._wanted_changed()
        self._request("unsubscribe", handle, items=wanted, types=kinds)
        return handle

    def watch_condition(self, seq: str | int) -> ConditionWatch:
        """Watch a condition through the relay; ``members`` follow its type 02 hits."""
        key = str(seq).strip()
        with self._lock:
            existing = self._watches.get(key)
            if existing is not None and not existing.cancelled:
                return existing
            watch = self._watches[key] = ConditionWatch(key, self._cancel_watch)
        self._request("watch", watch, seq=key)
        return watch

    def _cancel_watch(self, seq: str) -> None:
        with self._lock:
            self._watches.pop(seq, None)
        self._send(control_message(self.name, "unwatch", seq=seq))

    def _request(self, op: str, handle: PendingRequest | ConditionWatch, **fields: Any) -> None:
        if self._state == "closed":
            handle._fail(SessionClosedError("the relay session was closed"))
            return
        request = next(self._requests)
        message = control_message(self.name, op, request, **fields)
        with self._lock:
            self._pending[request] = handle
            self._resend[request] = message
        self._send(message)

    def _send(self, message: dict[bytes, bytes]) -> bool:
        client = self._client
        if client is None:
            return False  # sent at start, with the lease
        try:
            client.xadd(self.keys.control, message, maxlen=100_000, approximate=True)
            return True
        except _ANY_REDIS_ERROR:
            return False  # resent when Redis is back (pending requests) or with the next lease

    def _lease(self) -> dict[bytes, bytes]:
        with self._lock:
            return control_message(self.name, "lease", pairs=sorted(self._pairs), seqs=sorted(self._watches),
                                   ephemeral=self.ephemeral)

    # --- reading ---------------------------------------------------------------------------------

    def _run(self) -> None:
        client = _redis(self.redis_url, max(self.timeout, 2.0))
        backoff = _Backoff()
        next_lease = 0.0
        block_ms = int(min(0.25, self.silence / 3) * 1000)
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_lease and self._send(self._lease()):
                    next_lease = now + self.lease / 3
                try:
                    answer = client.xreadgroup(self.name, "reader", {self.keys.feed: ">"}, count=self.batch,
                                               block=block_ms)
                except redis.ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    self._rejoin(client)
                    continue
                except _REDIS_ERRORS as exc:
                    self._redis_lost(exc)
                    backoff.wait(self._stop)
                    continue
                if not self._redis_up:
                    self._redis_up = True
                    self._relay_notice("redis_back", {})
                    self._resend_pending()
                    next_lease = 0.0
                backoff.reset()
                entries = [entry for _, found in answer or () for entry in found]
                if entries:
                    self._last_seen = time.monotonic()
                    if not self._relay_alive:
                        self._relay_alive = True
                        if self._silent:  # announced as silent before: announce the return
                            self._silent = False
                            self._relay_notice("relay_back", {})
                    self._process(entries)
                    try:
                        client.xack(self.keys.feed, self.name, *[entry_id for entry_id, _ in entries])
                    except _REDIS_ERRORS:
                        pass  # acked with the next batch's place; the group already moved on
                elif self._relay_alive and time.monotonic() - self._last_seen > self.silence:
                    self._relay_alive = False
                    self._silent = True
                    self._relay_notice("relay_silent", {"seconds": round(time.monotonic() - self._last_seen, 1)})
        except Exception as exc:  # a bug: report it, never die silently
            logger.exception("relay session %s stopped reading", self.name)
            self._dispatcher.put_notice("on_error", {"error": ProtocolError(f"relay reader failed: {exc}", b"")})
            self._dispatcher.pump()
        finally:
            client.close()

    def _rejoin(self, client: Any) -> None:
        """The feed or our group vanished (Redis restarted without its data): join again."""
        try:
            client.xgroup_create(self.keys.feed, self.name, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._relay_notice("gap", {"lost": None, "reason": "the feed was recreated (Redis lost its data)"})

    def _redis_lost(self, exc: BaseException) -> None:
        if self._redis_up:
            self._redis_up = False
            logger.warning("relay session %s: Redis unreachable: %s", self.name, exc)
            self._relay_notice("redis_lost", {"reason": str(exc)})

    def _resend_pending(self) -> None:
        with self._lock:
            messages = list(self._resend.values())
        for message in messages:
            self._send(message)

    def _process(self, entries: list[tuple[bytes, Mapping[bytes, bytes]]]) -> None:
        playback = self._playback
        for _, fields in entries:
            try:
                entry = read_entry(fields)
            except (ValueError, TypeError) as exc:
                playback.report(ProtocolError(f"malformed relay entry: {exc}", b""))
                continue
            self._entries += len(entry.frames) or 1
            if entry.kind == "real":
                self._last_time = entry.time
                playback.frames(entry.frames, entry.time)  # anything but REAL was the relay's business
            else:
                self._control_entry(entry)
        playback.flush()

    def _wanted_changed(self) -> None:
        """Snapshots of what this consumer wants, for the reading thread (lock held)."""
        self._wanted_pairs = frozenset(self._pairs)
        self._any_item_types = frozenset(kind for item, kind in self._pairs if not item)

    def _keep(self, events: list[Any]) -> list[Any]:
        """The events to deliver: this consumer's own, unless it asked for the whole feed."""
        if self.receive == "all":
            kept = events
        else:
            pairs, any_item, watches = self._wanted_pairs, self._any_item_types, self._watches
            kept = [event for event in events
                    if (event.item, event.type) in pairs or event.type in any_item
                    or (event.type == "02" and event.seq in watches)]
            self.foreign += len(events) - len(kept)
        delivered = self._delivered
        for event in kept:
            delivered[event.type] = delivered.get(event.type, 0) + 1
        return kept

    def _condition_hits(self, hits: list[Any]) -> None:
        for event in hits:
            watch = self._watches.get(event.seq or "")
            if watch is not None and watch.ready and event.code:  # before the reply, its member list rules
                members = watch.members
                watch._set_members(members | {event.code} if event.entered else members - {event.code})

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
            if relay != self._relay_id and self._relay_id is not None:
                self._relay_restarted(relay)
        elif name == "relay_started":
            # A relay reads requests from its own start on: whatever we asked before that (or
            # before a restart) is asked again now, so it is answered within a heartbeat.
            self._relay_restarted(relay)
            self._relay_notice("relay_started", {"relay": relay})
        elif name == "relay_stopped":
            self._relay_notice("relay_stopped", {"relay": relay})
        elif name == "gap":
            lost = body.get("lost")
            self._relay_lost += int(lost) if isinstance(lost, int) else 0
            self._relay_notice("gap", {"lost": lost, "reason": "the relay's buffer overflowed while Redis was away"})
        if self._relay_id is None and isinstance(relay, str):
            self._relay_id = relay

    def _relay_restarted(self, relay: Any) -> None:
        """A new relay instance: it knows nothing of us; re-send what we want and wait for."""
        self._relay_id = relay if isinstance(relay, str) else None
        self._send(self._lease())
        self._resend_pending()

    def _upstream(self, name: str, kwargs: dict[str, Any]) -> None:
        if name == "on_connected":
            self._upstream_connected = True
            self._connections += 1
        elif name == "on_disconnected":
            self._upstream_connected = False
        elif name == "on_reconnecting":
            self._reconnects += 1
        elif name == "on_gave_up":
            kwargs = {"error": KiwoomError(str(kwargs.get("error", "")))}
        elif name == "on_login":
            kwargs = {"extra": kwargs.get("extra") or {}}
        expected = LIFECYCLE_SIGNALS[name]
        self._notify(name, {key: kwargs.get(key) for key in expected})

    def _reply(self, body: Mapping[str, Any]) -> None:
        request = body.get("id")
        with self._lock:
            handle = self._pending.pop(request, None) if isinstance(request, int) else None
            self._resend.pop(request, None) if isinstance(request, int) else None
        if handle is None:
            return
        ok, code, message = bool(body.get("ok")), body.get("code"), str(body.get("message") or "")
        if isinstance(handle, ConditionWatch):
            if ok:
                handle._set_members(frozenset(str(m) for m in body.get("members") or ()))
            else:
                handle._fail(ConditionError(code if isinstance(code, int) else None, message))
        else:
            if ok:
                handle.request_done(True, None, "")
            else:
                handle._fail(SubscribeError(code if isinstance(code, int) else None, message))

    # --- delivery ----------------------------------------------------------------------------------

    def _notify(self, name: str, kwargs: dict[str, Any]) -> None:
        self._playback.notify(name, kwargs)

    def _relay_notice(self, kind: str, detail: dict[str, Any]) -> None:
        logger.info("relay session %s: %s %s", self.name, kind, detail or "")
        self._notify("on_relay", {"kind": kind, "detail": detail})

    def _deliver_notice(self, name: str, kwargs: Mapping[str, Any]) -> None:
        if name == "on_relay":
            if self.on_relay.has_any_receivers:
                self.on_relay.deliver(self, **kwargs)
            return
        self._signals.deliver_notice(name, kwargs)

    # --- numbers -----------------------------------------------------------------------------------

    def stats(self) -> RelayConsumerStats:
        """Counters, plus the backlog Redis holds for this consumer (``lag``, ``lag_seconds``)."""
        lag: int | None = None
        lag_seconds: float | None = None
        client = self._client
        if client is not None and self._state == "running":
            try:
                for group in client.xinfo_groups(self.keys.feed):
                    if group.get("name") == self.name.encode():
                        raw_lag = group.get("lag")
                        lag = int(raw_lag) if raw_lag is not None else None
                        last_read = _id_tuple(group.get("last-delivered-id", b"0-0"))
                        newest = client.xinfo_stream(self.keys.feed).get("last-generated-id", b"0-0")
                        lag_seconds = max(0.0, (_id_tuple(newest)[0] - last_read[0]) / 1000)
            except _ANY_REDIS_ERROR:
                pass
        intake = self._playback.intake
        counts = dict(self._delivered)
        return RelayConsumerStats(
            state=self._state, frames=self._entries, real_frames=intake.real_frames, events=counts,
            events_total=sum(counts.values()), decode_errors=intake.decode_errors, dropped=self._dispatcher.dropped,
            queue_depth=self._dispatcher.depth, connections=self._connections, reconnects=self._reconnects,
            pending_requests=len(self._pending), last_frame_time=self._last_time, lag=lag, lag_seconds=lag_seconds,
            relay_lost=self._relay_lost, redis_up=self._redis_up, relay_alive=self._relay_alive)


def _id_tuple(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)

