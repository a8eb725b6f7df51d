"""The relay: one upstream ``RealtimeSession``, published to Redis Streams (runtime).

Three threads serve it besides the session's own: the session's reading thread hands REAL
frames to the ``Outbox`` as received (its frame hook); the publishing thread writes the outbox
to the feed stream, with heartbeats; the control thread reads consumers' requests, keeps the
``RelayBook`` (who wants what) and carries its changes out on the session, then answers.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from .. import protocol
from .._handles import ConditionWatch, PendingRequest
from .._redact import redact, redact_url
from .._stats import SessionStats
from ..errors import ConnectError, KiwoomError, SymbolLimitError
from ._book import RelayBook, RelayChange
from ._outbox import Outbox
from ._redis import ANY_REDIS_ERROR, REDIS_ERRORS, Backoff, client_for
from ._wire import RelayKeys, feed_notice, feed_reply, read_control

__all__ = ["DEFAULT_MAXLEN", "FORWARDED", "Relay", "RelayStats"]

logger = logging.getLogger("kiwoom_rt.relay")

#: About an hour at 5,000 frames/s (approximate trimming: Redis keeps at least this many).
DEFAULT_MAXLEN = 5_000 * 3600
#: Upstream lifecycle signals the relay forwards (``on_error``/``on_overflow`` stay local:
#: consumers decode frames themselves and report their own).
FORWARDED = ("on_connected", "on_login", "on_disconnected", "on_reconnecting", "on_gave_up", "on_system")


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
        self.outbox = Outbox(buffer, relay=self.id)
        self.book = RelayBook(lease)
        self.published = 0
        self.resubscriptions = 0  # REGs re-sent because a consumer found them stale
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
        """A relay whose upstream is ``RealtimeSession(token, url=url, ...)`` (a US session when
        ``url`` is the US socket's, or with ``session_options={"market": "us"}``). The upstream
        decodes no REAL frames (the consumers do), so it does not judge staleness
        (``watch_health=False``): each consumer judges its own subscriptions."""
        from ..session import PRODUCTION_URL, RealtimeSession

        def factory(hook: Callable[[bytes, float], bool | None]) -> RealtimeSession:
            return RealtimeSession(token, url=url or PRODUCTION_URL, proxy=proxy, ssl_context=ssl_context,
                                   frame_hook=hook, **{"watch_health": False, **dict(session_options or {})})

        return cls(redis_url, factory, **options)

    def __repr__(self) -> str:
        market = " (US)" if self.market == "us" else ""
        return f"<Relay {self.id} {redact_url(self.redis_url)} prefix={self.keys.prefix}{market} {self._state}>"

    @property
    def market(self) -> str:
        """The upstream session's socket: ``"kr"`` or ``"us"`` (consumers must match it)."""
        return str(getattr(self.session, "market", "kr"))

    # --- life ------------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Relay:
        """Check Redis, start the upstream session, then publish and serve consumers."""
        client = client_for(self.redis_url, timeout)
        try:
            client.ping()
            self._control_id = self._last_id(client, self.keys.control)
        except ANY_REDIS_ERROR as exc:
            raise ConnectError(f"cannot reach Redis at {redact_url(self.redis_url)}: {exc}") from None
        finally:
            client.close()
        self.redis_up = True
        self._state = "running"
        self.outbox.put(feed_notice("relay_started", time.time(), relay=self.id, market=self.market))
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

    def leases(self) -> dict[str, float]:
        """{consumer: when its lease runs out (``time.time()``)}."""
        return self.book.leases()

    def consumer_lags(self) -> dict[str, int | None]:
        """{consumer group: feed entries it has not read yet} from Redis ({} while Redis is away)."""
        client = client_for(self.redis_url, 2.0)
        try:
            groups = client.xinfo_groups(self.keys.feed)
        except ANY_REDIS_ERROR:
            return {}
        finally:
            client.close()
        lags: dict[str, int | None] = {}
        for group in groups:
            name, lag = group.get("name"), group.get("lag")
            if isinstance(name, bytes):
                lags[name.decode()] = int(lag) if lag is not None else None
        return lags

    # --- upstream (the session's threads) --------------------------------------------------------

    def _on_frame(self, frame: bytes, received_at: float) -> bool:
        """The session's frame hook, on its reading thread: queue REAL frames as received.

        Returns True, so the session does not decode the frame into events no one here reads,
        unless it may hold condition hits (type 02, or S2 on the US socket): the upstream watches
        need those, to answer consumers with current members."""
        if not protocol.is_real_frame(frame):
            return False
        self.frames += 1
        self.outbox.put_frame(bytes(frame), received_at)
        return b'"02"' not in frame and b'"S2"' not in frame

    def _forwarder(self, name: str) -> Callable[..., None]:
        def forward(sender: Any, **kwargs: Any) -> None:
            detail = {k: redact(str(v)) if isinstance(v, BaseException) else dict(v) if isinstance(v, Mapping) else v
                      for k, v in kwargs.items()}
            self.outbox.put(feed_notice(name, time.time(), relay=self.id, kwargs=detail))
        return forward

    # --- publishing ------------------------------------------------------------------------------

    def _publish_loop(self) -> None:
        try:
            self._publish()
        except Exception:  # a bug: say so rather than stop publishing silently
            logger.exception("relay %s: the publishing thread failed", self.id)

    def _control_loop(self) -> None:
        try:
            self._serve()
        except Exception:
            logger.exception("relay %s: the control thread failed", self.id)

    def _publish(self) -> None:
        client = client_for(self.redis_url, 5.0)
        backoff = Backoff()
        last_beat = time.monotonic()
        try:
            while not self._stop.is_set():
                if time.monotonic() - last_beat >= self.heartbeat:
                    last_beat = time.monotonic()
                    if self.redis_up:  # no heartbeats pile up while Redis is away
                        self.outbox.put(feed_notice("relay_alive", time.time(), relay=self.id,
                                                    upstream=str(self.session.state), market=self.market))
                if not self.outbox.wait(min(0.25, self.heartbeat)):
                    continue
                batch = self.outbox.drain(self.batch, self._gap_notice)  # (a loss is announced in its place)
                lost = self.outbox.announced
                try:
                    pipe = client.pipeline(transaction=False)
                    for entry in batch:
                        pipe.xadd(self.keys.feed, entry, maxlen=self.maxlen, approximate=True)
                    pipe.execute()
                except REDIS_ERRORS as exc:
                    self.outbox.requeue(batch)  # (the gap notice, if any, is in it, numbered)
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

    def _gap_notice(self, lost: int) -> dict[bytes, bytes]:
        return feed_notice("gap", time.time(), relay=self.id, lost=lost)

    # --- serving consumers -----------------------------------------------------------------------

    @staticmethod
    def _last_id(client: Any, key: str) -> bytes:
        last = client.xrevrange(key, count=1)
        return last[0][0] if last else b"0-0"

    def _serve(self) -> None:
        client = client_for(self.redis_url, 5.0)
        backoff = Backoff()
        next_expiry = time.monotonic() + 1.0
        try:
            while not self._stop.is_set():
                block = 10 if self._replies else 250
                try:
                    answer = client.xread({self.keys.control: self._control_id}, count=500, block=block)
                except REDIS_ERRORS:
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
        except ANY_REDIS_ERROR as exc:
            logger.warning("relay %s: could not remove consumer group %s: %s", self.id, name, exc)

    def _on_control(self, fields: Mapping[bytes, bytes]) -> None:
        try:
            message = read_control(fields, self.market)
        except ValueError as exc:
            logger.warning("relay %s: ignored a malformed control message: %s", self.id, exc)
            return
        now = time.time()
        op, consumer = message.op, message.consumer
        handles: list[PendingRequest | ConditionWatch] = []
        if op == "subscribe":
            handles += self._apply(self.book.subscribe(consumer, message.items, message.types, now))
            for handle in handles:  # past the upstream's item limit: the book forgets what was never sent
                if isinstance(handle, PendingRequest) and isinstance(handle.error, SymbolLimitError):
                    self.book.unsubscribe(consumer, handle.items, handle.types, now)
        elif op == "unsubscribe":
            handles += self._apply(self.book.unsubscribe(consumer, message.items, message.types, now))
        elif op == "resubscribe":  # a consumer found these stale: REG again what the book holds
            self._resubscribe(message.items, message.types)
            return
        elif op == "watch":
            self._apply(self.book.watch(consumer, message.seq, now))
            watch = self._watches.get(message.seq)
            if watch is not None:
                handles.append(watch)
        elif op == "unwatch":
            self._apply(self.book.unwatch(consumer, message.seq, now))
        elif op == "query":
            self._query(consumer, message.request, message.seq)
            return
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
                handles.append(self._register(items, type_code))
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

    def _register(self, items: list[str], type_code: str) -> PendingRequest:
        """REG upstream; past the session's item limit, a handle failed with the
        ``SymbolLimitError`` (the consumer that asked is answered with it)."""
        try:
            handle: PendingRequest = self.session.subscribe(items, [type_code])
            return handle
        except SymbolLimitError as exc:
            logger.warning("relay %s: %s", self.id, exc)
            refused = PendingRequest("REG", "1", tuple(items), (type_code,))
            refused.set_error(exc)
            return refused

    def _resubscribe(self, items: Sequence[str], types: Sequence[str]) -> None:
        wanted = self.book.wanted()
        for type_code in types:
            held = [item for item in items if (item, type_code) in wanted]
            if not held:
                continue
            logger.info("relay %s: REG again for %d stale %s item(s) (a consumer asked)", self.id, len(held), type_code)
            self.resubscriptions += len(held)
            try:
                self.session.subscribe(held, [type_code])
            except KiwoomError as exc:
                logger.info("relay %s: the upstream session takes no requests (%s)", self.id, exc)

    def _query(self, consumer: str, request: int, seq: str) -> None:
        """CNSRLST (no seq) or a one-shot search for a consumer: asked upstream on a thread of its
        own (the answer can take seconds), answered on the feed like any reply."""
        def ask() -> None:
            now = time.time()
            try:
                if seq:
                    rows = [dict(hit.values) for hit in self.session.search(seq)]
                    result: list[Any] = rows
                else:
                    result = [[c.seq, c.name] for c in self.session.conditions()]
            except (KiwoomError, TimeoutError) as exc:
                self.outbox.put(feed_reply(consumer, request, now, ok=False,
                                           code=getattr(exc, "return_code", None), message=redact(str(exc))))
                return
            self.outbox.put(feed_reply(consumer, request, now, ok=True, result=result))

        threading.Thread(target=ask, name="kiwoom-rt-relay-query", daemon=True).start()

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
