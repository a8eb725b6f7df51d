"""``RealtimeSession``: the Kiwoom realtime feed on background threads, for synchronous code.

This module is the runtime: threads, sockets and clocks. What to do (log in, restore
registrations, pair acks, reconnect or give up, time out) is decided by ``_core.SessionCore``;
how events reach receivers by a dispatcher (``_delivery``). The design is explained in
docs/design.md. In short, two daemon threads share two roles:

- the **I/O role**: connect, log in, read a chunk, decode every frame in it in arrival order,
  do the protocol work (acks, SYSTEM, PING), then deliver the chunk's events right there, with no
  thread handoff. PING echoes go out right after that delivery.
- the **standby**: sleeps until a deadline (LOGIN, idle or ack timeout) or until the delivery
  running on the I/O thread has lasted ``handover_after`` seconds. Then it takes the I/O role,
  answers pending PINGs and goes on reading; events it reads wait in the queue behind the
  delivery in progress, so order holds. The thread that was delivering becomes the standby
  once its receiver returns.

So a receiver that blocks for seconds never delays a PING echo by more than ``handover_after``,
and a quick receiver costs one GIL acquisition per read, which is what matters when the
application's main thread is busy (every wake-up of another thread can wait 5 ms for the GIL).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from . import protocol
from ._conditions import ConditionRequest, MembershipChange, resync_event
from ._connection import Connection, ConnectionSettings
from ._core import (
    Abort,
    Action,
    Deliver,
    Echo,
    GiveUp,
    InvalidateToken,
    Notify,
    Outcome,
    Report,
    Retry,
    Send,
    SessionCore,
    SessionState,
    StandbyPace,
)
from ._delivery import OVERFLOW_POLICIES, BindableDispatcher, Dispatcher, SessionDelivery
from ._handles import PendingRequest, Subscription
from ._intake import FrameHook, Intake
from ._proxy import choose_proxy
from ._redact import mask, register_secret, unregister_secret
from ._signals import SessionSignal, SignalAttributes, SignalSet
from ._stats import SessionStats
from ._urls import is_loopback
from .backoff import ReconnectPolicy
from .conditions import Condition, ConditionHit, ConditionWatch
from .errors import ConnectError, KiwoomError, SessionClosedError
from .messages import Message

__all__ = ["MOCK_URL", "PRODUCTION_URL", "RealtimeSession", "SessionState"]

logger = logging.getLogger("kiwoom_rt")

PRODUCTION_URL = "wss://api.kiwoom.com:10000/api/dostk/websocket"
MOCK_URL = "wss://mockapi.kiwoom.com:10000/api/dostk/websocket"

TokenSource = str | Callable[[], str]


class RealtimeSession(SignalAttributes):
    """A self-healing subscription to Kiwoom's realtime WebSocket feed.

    ``token`` is the access token, or a zero-argument callable returning one; a callable is
    consulted before every (re)connect (give it an ``invalidate()`` method to be told that the
    server refused its token). Receivers connect to blinker signals::

        session = RealtimeSession(token)
        session.on_0e.connect(lambda item, event: print(item, event.bid_total))
        session.start()
        session.subscribe(["005930", "000660"]).wait(5)

    Delivery: receivers run on the session thread that read the events, in arrival order. A
    receiver that runs longer than ``handover_after`` seconds makes the standby thread take over
    reading (PINGs keep being answered); ``inline=True`` never hands over (a slow receiver then
    delays PING echoes). ``queue_size`` bounds the events waiting behind a slow receiver;
    ``overflow`` says what happens when it is full: ``"block"`` (default) pauses reading so TCP
    pushes back and nothing is lost, ``"drop_oldest"`` drops the oldest (counted, and signalled by
    ``on_overflow``). ``dispatcher`` delivers on another loop instead
    (``kiwoom_rt.QtDispatcher``, ``TkDispatcher``, ``QueueDispatcher``).

    Connection: ``chunk_size`` is the most items per REG; ``reconnect`` a ``ReconnectPolicy``;
    ``idle_timeout`` replaces a connection that sent nothing (PINGs included) for that long;
    ``reconnect_on_kicked=True`` reconnects after SYSTEM R10001 instead of giving up;
    ``max_frame_bytes`` refuses larger frames (reported through ``on_error``); ``ssl_context``
    overrides TLS settings (verification is on by default); ``allow_insecure=True`` permits a
    plain ``ws://`` URL to a host other than loopback; ``frame_hook(frame, received_at)`` sees
    every text frame as received, on the reading thread, before decoding (keep it quick:
    ``kiwoom_rt.recording.Recorder`` only appends to a list). A hook that returns True for a
    REAL frame takes it over: the session then does not decode it into events (the relay
    forwards frames this way). Only frames starting ``{"trnm":"REAL"`` can be taken; any other
    frame is decoded and handled as usual.

    Proxy: ``proxy="http://user:password@proxy:3128"`` tunnels every connection through that HTTP
    proxy with CONNECT (TLS stays end to end and verified against Kiwoom's name). By default
    (``proxy=None``) the environment decides: ``HTTPS_PROXY`` for wss://, ``HTTP_PROXY`` for
    ws://, ``ALL_PROXY``, minus ``NO_PROXY`` and loopback; ``proxy=False`` never uses one.
    """

    def __init__(
        self,
        token: TokenSource,
        *,
        url: str = PRODUCTION_URL,
        inline: bool = False,
        handover_after: float = 0.015,
        queue_size: int = 100_000,
        overflow: str = "block",
        chunk_size: int = 100,
        reconnect: ReconnectPolicy | None = None,
        idle_timeout: float = 60.0,
        login_timeout: float = 10.0,
        ack_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        reconnect_on_kicked: bool = False,
        max_frame_bytes: int = 4 * 1024 * 1024,
        ssl_context: Any = None,
        allow_insecure: bool = False,
        dispatcher: BindableDispatcher | None = None,
        frame_hook: FrameHook | None = None,
        random_source: Callable[[], float] = random.random,
        condition_rate: float = 5.0,
        proxy: str | bool | None = None,
    ) -> None:
        if not (isinstance(token, str) and token.strip()) and not callable(token):
            raise TypeError("token must be a non-empty str or a callable returning one")
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not a WebSocket URL: {url!r}")
        if parts.scheme == "ws" and not is_loopback(parts.hostname) and not allow_insecure:
            raise ValueError(f"refusing plain ws:// to {parts.hostname}: the token would travel "
                             "unencrypted (pass allow_insecure=True to insist)")
        if chunk_size < 1 or queue_size < 1 or max_frame_bytes < 1024:
            raise ValueError("chunk_size and queue_size must be >= 1, max_frame_bytes >= 1024")
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, got {overflow!r}")
        if handover_after <= 0:
            raise ValueError("handover_after must be > 0")
        self._token_source = token
        self.url = url
        self.inline = inline
        self.handover_after = handover_after
        self.chunk_size = chunk_size  # the most items per REG request
        self.overflow = overflow
        self.settings = ConnectionSettings(url=url, connect_timeout=connect_timeout, max_frame_bytes=max_frame_bytes,
                                           ssl_context=ssl_context, proxy=choose_proxy(url, proxy))
        self._core = SessionCore(chunk_size=chunk_size, policy=reconnect, reconnect_on_kicked=reconnect_on_kicked,
                                 login_timeout=login_timeout, idle_timeout=idle_timeout, ack_timeout=ack_timeout,
                                 random=random_source, condition_rate=condition_rate)
        self._lock = threading.RLock()  # serialises calls into the core

        self._signals = SignalSet(self)
        self._signals.attach_to(self)
        self._dispatcher: Dispatcher
        if dispatcher is not None:
            if inline:
                raise ValueError("inline=True and a dispatcher exclude each other")
            dispatcher.bind(self._signals.deliver_events, self._signals.deliver_notice)
            self._dispatcher = dispatcher
        else:
            self._dispatcher = SessionDelivery(self._signals.deliver_events, self._signals.deliver_notice,
                                               max_events=queue_size, overflow=overflow)
        self._hands_over = dispatcher is None and not inline

        self._stop = threading.Event()
        self._start_done = threading.Event()
        self._start_error: KiwoomError | None = None
        self.gave_up_error: KiwoomError | None = None
        self._secrets: set[str] = set()
        # the I/O role and the standby
        self._roles = threading.Lock()
        self._io_owner: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        self._wake_standby = threading.Event()
        self._standby_sleeping = False
        self._io_steps = 0  # steps of the I/O role so far
        self._io_steps_seen = -1  # as the standby last saw them
        self._pace = StandbyPace(handover_after, handover_after)  # how often the standby looks
        # the I/O state (touched only by the thread holding the I/O role)
        self._conn: Connection | None = None
        self._retry_at: float | None = None
        self._echoes: list[str | bytes] = []
        self._batch: list[Any] = []  # events of the chunk being read
        # frames to events (and the frame, event and error counters)
        self._intake = Intake(emit=self._emit, report=self._error_notice, message=self._on_message,
                              hits=self._condition_hits, frame_hook=frame_hook)
        self._handovers = 0
        self._reads = 0  # socket reads of connections that ended (the current one counts itself)
        self._bytes_read = 0

    # --- lifecycle --------------------------------------------------------------------------

    def __repr__(self) -> str:
        proxy = self.settings.proxy
        via = f" via proxy {proxy.address}" if proxy is not None else ""
        return f"<RealtimeSession {self.url}{via} {self._core.state}>"

    def __enter__(self) -> RealtimeSession:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def state(self) -> str:
        """"new", "connecting", "connected" (logged in), "reconnecting", "gave_up" or "closed"."""
        return self._core.state.value

    @property
    def connected(self) -> bool:
        """True while logged in."""
        return self._core.state is SessionState.CONNECTED

    @property
    def frame_hook(self) -> FrameHook | None:
        """Called on the reading thread with (frame, receive time) for every text frame; keep it quick."""
        return self._intake.frame_hook

    @frame_hook.setter
    def frame_hook(self, hook: FrameHook | None) -> None:
        self._intake.frame_hook = hook

    def signal(self, type_code: str) -> SessionSignal:
        """The data signal of one realtime type (case-sensitive: ``"0G"`` is not ``"0g"``).

        Receivers are called as ``receiver(item, event=...)``; connect with ``sender=item`` to
        hear one item only.
        """
        return self._signals.signal(type_code)

    def start(self, timeout: float = 10.0) -> RealtimeSession:
        """Start the threads and block until LOGIN succeeded.

        Raises ``LoginError`` when the server refuses the token, ``ConnectError`` when it cannot
        be reached, ``TimeoutError`` when no login happened within ``timeout``. After a failed
        start nothing keeps running.
        """
        with self._lock:
            self._core.start()
        self._dispatcher.start()
        self._workers = [threading.Thread(target=self._worker, name=name, daemon=True)
                         for name in ("kiwoom-rt-io", "kiwoom-rt-standby")]
        self._io_owner = self._workers[0]
        for thread in self._workers:
            thread.start()
        if not self._start_done.wait(timeout):
            self.close()
            raise TimeoutError(f"no successful LOGIN within {timeout} s")
        if self._start_error is not None:
            error = self._start_error
            self.close()
            raise error
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop everything: idempotent, callable from any thread, receivers included.

        Returns within about a second even if the server does not answer. Afterwards no thread
        of the session is alive and no socket is open (called from one of the session's own
        threads, that thread ends right after the current receiver returns).
        """
        with self._lock:
            if self._core.state is SessionState.CLOSED:
                return
            handles = self._core.close()
            self._core.conditions.close(SessionClosedError("the session was closed"))
            self._stop.set()
            conn = self._conn
        if conn is not None:
            conn.abort()
        self._wake_standby.set()
        current = threading.current_thread()
        deadline = time.monotonic() + timeout
        for thread in self._workers:
            if thread is not current and thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._dispatcher.stop(max(0.0, deadline - time.monotonic()))
        error = SessionClosedError("the session was closed")
        for handle in handles:
            handle._fail(error)
        for secret in self._secrets:
            unregister_secret(secret)
        self._secrets.clear()

    # --- subscriptions ----------------------------------------------------------------------

    def subscribe(self, items: Iterable[str] | str, types: Iterable[str] | str = ("0E",), *,
                  grp_no: str = "1", refresh: bool = True) -> Subscription:
        """Register ``items`` for realtime ``types`` in group ``grp_no``; returns a handle.

        Callable before ``start``, while connected or while reconnecting, from any thread. The
        registration is remembered and restored after every reconnect. More than ``chunk_size``
        items go in several REG requests, one at a time. ``refresh=False`` replaces what the
        group had. ``handle.wait(timeout)`` returns once the server acknowledged every request.
        """
        item_list, type_list = self._check_request(items, types, grp_no)
        handle = Subscription(grp_no, tuple(item_list), tuple(type_list), self.unsubscribe)
        with self._lock:
            self._check_open()
            actions = self._core.subscribe(handle, grp_no, item_list, type_list, refresh, time.monotonic())
            conn = self._conn
        self._apply(actions, conn)
        return handle

    def unsubscribe(self, items: Iterable[str] | str, types: Iterable[str] | str = ("0E",), *,
                    grp_no: str = "1") -> PendingRequest:
        """Send REMOVE for ``items`` x ``types`` and forget them (they are not restored later)."""
        item_list, type_list = self._check_request(items, types, grp_no)
        handle = PendingRequest("REMOVE", grp_no, tuple(item_list), tuple(type_list))
        with self._lock:
            self._check_open()
            actions = self._core.unsubscribe(handle, grp_no, item_list, type_list, time.monotonic())
            conn = self._conn
        self._apply(actions, conn)
        return handle

    # --- condition search (조건검색) -----------------------------------------------------------

    def conditions(self, timeout: float = 10.0) -> list[Condition]:
        """The user's conditions (CNSRLST): ``Condition(seq, name)`` each.

        Waits for the login when called before ``start()`` or while reconnecting. Raises
        ``ConditionError`` if refused, ``ConnectError`` if the connection dropped first,
        ``TimeoutError`` if no reply came in ``timeout`` seconds.
        """
        result: list[Condition] = self._condition_request(lambda core: core.list_conditions(), timeout)
        return result

    def search(self, seq: str, *, timeout: float = 10.0) -> list[ConditionHit]:
        """A one-shot search of condition ``seq`` (CNSRREQ, search_type 0), every page followed."""
        result: list[ConditionHit] = self._condition_request(lambda core: core.search(seq), timeout)
        return result

    def watch_condition(self, seq: str) -> ConditionWatch:
        """A realtime search of condition ``seq`` (CNSRREQ, search_type 1): a ``ConditionWatch``.

        Callable before ``start()``, while connected or reconnecting, from any thread; a second
        call for the same seq returns the same watch. Entries and exits arrive as
        ``ConditionEvent``s on ``on_condition`` (sender: the seq), ``signal("02")`` and
        ``on_real``; the watch is requested again after every reconnect, and the differences
        found then arrive with ``resync=True``.
        """
        watch: ConditionWatch = self._conditions_call(lambda core: core.watch(seq, self._cancel_condition))
        return watch

    def _cancel_condition(self, seq: str) -> None:
        self._conditions_call(lambda core: core.cancel(seq), check_open=False)

    def _condition_request(self, make: Callable[[Any], ConditionRequest], timeout: float) -> Any:
        return self._conditions_call(make).wait(timeout)

    def _conditions_call(self, call: Callable[[Any], Any], *, check_open: bool = True) -> Any:
        """Run ``call`` on the condition core under the lock, then send what became due (paced
        requests leave later: the standby is woken to watch their deadline)."""
        with self._lock:
            if check_open:
                self._check_open()
            result = call(self._core.conditions)
            actions = self._core.condition_sends(time.monotonic())  # nothing before the login
            conn = self._conn
        self._apply(actions, conn)
        self._wake_standby.set()
        return result

    def _deliver_resync(self, changes: Sequence[MembershipChange]) -> None:
        now = time.time()
        events = [resync_event(change, now) for change in changes]
        if threading.current_thread() is self._io_owner:
            self._batch.extend(events)
        else:
            self._dispatcher.put_events(events)

    def registrations(self) -> dict[str, set[tuple[str, str]]]:
        """The wanted registrations, restored after every reconnect: {grp_no: {(item, type)}}."""
        with self._lock:
            return self._core.registrations.snapshot()

    def _check_request(self, items: Iterable[str] | str, types: Iterable[str] | str,
                       grp_no: str) -> tuple[list[str], list[str]]:
        item_list = protocol.check_items(items)
        type_list = protocol.check_types(types)
        unknown = [t for t in type_list if t not in protocol.KNOWN_TYPES]
        if unknown:
            raise ValueError(f"unknown realtime type {unknown[0]!r}; known: {sorted(protocol.KNOWN_TYPES)}")
        protocol.check_grp_no(grp_no)
        return list(dict.fromkeys(item_list)), list(dict.fromkeys(type_list))

    def _check_open(self) -> None:
        if not self._core.accepting:
            raise SessionClosedError(f"the session is {self._core.state}")

    # --- statistics -------------------------------------------------------------------------

    def stats(self) -> SessionStats:
        """A consistent snapshot of the counters (see ``SessionStats``)."""
        with self._lock:
            core = self._core
            last = core.last_frame_at if self._conn is not None and self._conn.opened else None
            intake = self._intake
            events = dict(intake.counts)  # one C-level copy: atomic under the GIL
            now = time.monotonic()
            reads, bytes_read = self._reads, self._bytes_read
            if self._conn is not None:
                reads += self._conn.reader.reads
                bytes_read += self._conn.reader.bytes_read
            return SessionStats(
                state=core.state.value, frames=intake.frames, real_frames=intake.real_frames,
                events=events, events_total=sum(events.values()), decode_errors=intake.decode_errors,
                ack_timeouts=core.ack_timeouts, dropped=self._dispatcher.dropped,
                queue_depth=self._dispatcher.depth, pings_echoed=core.pings_echoed,
                connections=core.connections, logins=core.logins, reconnects=core.reconnects,
                handovers=self._handovers, reads=reads, bytes_read=bytes_read,
                pending_requests=core.pipeline.pending,
                last_frame_age=None if last is None else now - last,
                last_frame_time=None if last is None else time.time() - (now - last),
            )

    # --- the workers ------------------------------------------------------------------------

    def _worker(self) -> None:
        me = threading.current_thread()
        try:
            while not self._stop.is_set():
                if self._io_owner is me:
                    self._io_step()
                    self._after_step(me)
                else:
                    self._standby_step(me)
        except Exception as exc:  # a bug: report it rather than die silently
            logger.exception("the session thread %s failed", me.name)
            with self._lock:
                actions = self._core.give_up(ConnectError(f"internal error: {exc!r}"))
            self._apply(actions, None)
            conn = self._conn
            if conn is not None:
                conn.abort()
            self._stop.set()
            self._wake_standby.set()
        finally:
            if self._io_owner is me:
                conn = self._conn
                if conn is not None:  # a close() that raced a connect: release the socket too
                    conn.abort()
                    self._connection_ended(conn)
                self._dispatcher.pump()
            self._start_done.set()

    def _io_step(self) -> None:
        """One blocking step of the I/O role: connect, read one chunk, or wait (backoff, room)."""
        conn = self._conn
        if conn is None:
            self._connect()
            return
        if self._dispatcher.full and not conn.reader.ended:
            # backpressure: stop reading until receivers make room, so TCP pushes back on the
            # server; a pause for room is not silence on the line
            self._dispatcher.wait_for_room(0.25)
            self._core.frames_seen(time.monotonic())
            return
        if not conn.read_once():
            self._connection_ended(conn)

    def _after_step(self, me: threading.Thread) -> None:
        """Deliver what the step queued (here, on this thread), then answer PINGs."""
        self._io_steps += 1
        if self._standby_sleeping:
            self._wake_standby.set()  # deliveries begin again: the standby watches them
        self._dispatcher.pump()
        if self._echoes:
            self._flush_echoes()

    def _flush_echoes(self) -> None:
        with self._roles:
            echoes, self._echoes = self._echoes, []
            conn = self._conn
        if conn is not None:
            for frame in echoes:
                conn.send(frame)

    def _standby_step(self, me: threading.Thread) -> None:
        """Wait until a deadline or a long delivery; act on it."""
        now = time.monotonic()
        with self._lock:
            deadline = self._core.next_deadline()
            actions = self._core.check_timeouts(now) if deadline is not None and now >= deadline else []
            if actions:
                deadline = None
        if actions:
            self._apply(actions, self._conn)
        timeout: float | None = None if deadline is None else max(0.0, deadline - now)
        watching = False  # watching the I/O thread's deliveries, to take over if one runs long
        if self._hands_over:
            since = self._dispatcher.delivering_since
            owner = self._io_owner
            if since is not None and owner is not None and self._dispatcher.delivering_thread is owner:
                if now - since >= self.handover_after:
                    self._take_over(me, owner)
                    return
                watching = True
                watch = max(since + self.handover_after - now, self._pace.period)
            elif self._io_steps_seen != self._io_steps:
                watching = True  # deliveries are flowing: keep looking
                watch = self._pace.period
            if watching:
                timeout = watch if timeout is None else min(timeout, watch)
        self._io_steps_seen = self._io_steps
        # not watching: the I/O thread wakes us at its next step (cheap: only after a quiet spell)
        self._standby_sleeping = self._hands_over and not watching
        expected = now + (timeout or 0.0)
        woken = self._wake_standby.wait(timeout)
        self._wake_standby.clear()
        self._standby_sleeping = False
        if not woken and watching:
            # a late wake-up means the GIL is contended: look less often (StandbyPace)
            self._pace = self._pace.after_look(time.monotonic() - expected)

    def _take_over(self, me: threading.Thread, owner: threading.Thread) -> None:
        with self._roles:
            if self._io_owner is not owner or self._stop.is_set():
                return
            self._io_owner = me
            self._handovers += 1
        logger.debug("a receiver runs longer than %.3f s: %s reads meanwhile", self.handover_after, me.name)
        if self._echoes:
            self._flush_echoes()

    # --- connecting (I/O role) --------------------------------------------------------------

    def _connect(self) -> None:
        retry_at = self._retry_at
        if retry_at is not None:
            self._retry_at = None
            if self._stop.wait(max(0.0, retry_at - time.monotonic())):
                return
        with self._lock:
            if self._stop.is_set():
                return
            number = self._core.connection_started()
            conn = self._conn = Connection(self.settings, self, number)
        try:
            token = self._next_token()
        except Exception as exc:
            self._connection_failed(conn, Outcome("connect_failed", reason=f"token source failed: {exc!r}",
                                                  error=ConnectError(f"the token source raised {type(exc).__name__}")))
            return
        try:
            conn.open()
        except ConnectError as exc:
            kind = "stopped" if self._stop.is_set() else "connect_failed"
            self._connection_failed(conn, Outcome(kind, reason=str(exc), error=exc))
            return
        now = time.monotonic()
        with self._lock:
            if self._stop.is_set():  # a close() that raced the handshake: the worker ends it
                conn.abort()
                return
            actions = self._core.connection_opened(now)
            self._core.login_sent(now)
        self._apply(actions, conn)
        conn.send(protocol.login(token))
        self._wake_standby.set()  # the LOGIN and idle deadlines begin

    def _connection_failed(self, conn: Connection, outcome: Outcome) -> None:
        conn.close()
        self._end(conn, outcome)

    def _connection_ended(self, conn: Connection) -> None:
        self._flush_batch()
        conn.close()
        self._end(conn, conn.transport_outcome())

    def _end(self, conn: Connection, outcome: Outcome) -> None:
        with self._lock:
            self._conn = None
            self._reads += conn.reader.reads
            self._bytes_read += conn.reader.bytes_read
            actions = self._core.on_connection_ended(outcome, time.monotonic())
        with self._roles:
            self._echoes = []
        kinds = [type(a) for a in actions]
        if Retry in kinds:
            logger.warning("connection ended (%s); reconnecting", outcome.reason or outcome.kind)
        self._apply(actions, None)

    def _next_token(self) -> str:
        source = self._token_source
        token = source() if callable(source) else source
        if not isinstance(token, str) or not token.strip():
            raise TypeError("the token callable returned no token")
        if token not in self._secrets:
            self._secrets.add(token)
            register_secret(token)
        return token

    # --- ConnectionOwner (I/O role) ---------------------------------------------------------

    def frames_received(self, conn: Connection, frames: list[bytes], received_at: float) -> None:
        if conn is self._conn:  # else a stale connection's frames
            self._intake.take(frames, received_at)

    def binary_received(self, conn: Connection, payload: bytes) -> None:
        if conn is self._conn:
            self._intake.take_binary(payload)

    def _emit(self, events: list[Any]) -> None:
        """The intake's events, queued for delivery at the end of the read (``chunk_done``)."""
        if self._batch:
            self._batch += events
        else:
            self._batch = events

    def _on_message(self, message: Message) -> None:
        """A non-REAL message of the current connection: the core decides what it means."""
        with self._lock:
            actions = self._core.on_message(message, time.monotonic())
            logged_in = self._core.ever_logged_in
        self._apply(actions, self._conn)
        if logged_in and not self._start_done.is_set():
            self._start_done.set()
            proxy = self.settings.proxy
            logger.info("logged in to %s%s", self.url, "" if proxy is None else f" via proxy {proxy.address}")

    def _condition_hits(self, hits: list[Any]) -> None:
        """Type-02 events update their watches' members here, in arrival order, before delivery."""
        with self._lock:
            for event in hits:
                self._core.conditions.on_hit(event)

    def chunk_done(self, conn: Connection) -> None:
        if conn is not self._conn:
            return
        self._core.frames_seen(time.monotonic())
        batch = self._batch
        if batch:
            self._batch = []
            self._dispatcher.put_events(batch)

    def frame_rejected(self, conn: Connection, error: KiwoomError) -> None:
        if conn is self._conn:
            self._report(error)

    # --- carrying out the core's actions ----------------------------------------------------

    def _flush_batch(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            self._dispatcher.put_events(batch)

    def _notify(self, name: str, kwargs: Mapping[str, Any]) -> None:
        if threading.current_thread() is self._io_owner:
            self._flush_batch()  # notices keep their place among the events read so far
        self._dispatcher.put_notice(name, kwargs)

    def _report(self, error: KiwoomError) -> None:
        """Bad input: counted (by the intake), logged, and sent to ``on_error`` in order with the events."""
        self._intake.report(error)

    def _error_notice(self, error: KiwoomError) -> None:
        logger.warning("%s", error)
        self._notify("on_error", {"error": error})

    def _apply(self, actions: Sequence[Action], conn: Connection | None) -> None:
        for action in actions:
            kind = type(action)
            if kind is Send:
                if conn is not None:
                    conn.send(action.frame)  # type: ignore[union-attr]
                    self._wake_standby.set()  # a request in flight: a new ack deadline to watch
            elif kind is Echo:
                self._echoes.append(action.frame)  # type: ignore[union-attr]
            elif kind is Notify:
                self._notify(action.name, action.kwargs)  # type: ignore[union-attr]
            elif kind is Report:
                self._report(action.error)  # type: ignore[union-attr]
            elif kind is Abort:
                if conn is not None:
                    conn.abort()
            elif kind is Retry:
                self._retry_at = time.monotonic() + action.delay  # type: ignore[union-attr]
            elif kind is GiveUp:
                self._gave_up(action.error)  # type: ignore[union-attr]
            elif kind is Deliver:
                self._deliver_resync(action.changes)  # type: ignore[union-attr]
            elif kind is InvalidateToken:
                invalidate = getattr(self._token_source, "invalidate", None)
                if callable(invalidate):
                    invalidate()

    def _gave_up(self, error: KiwoomError) -> None:
        self.gave_up_error = error
        with self._lock:
            if not self._core.ever_logged_in:
                self._start_error = error
            handles = self._core.abandoned_handles()
            self._core.conditions.close(SessionClosedError(f"the session gave up: {error}"))
        logger.error("giving up: %s", error)
        self._stop.set()
        self._wake_standby.set()
        failure = SessionClosedError(f"the session gave up: {error}")
        for handle in handles:
            handle._fail(failure)

    # --- secrets ----------------------------------------------------------------------------

    @property
    def token_hint(self) -> str:
        """A safe description of the configured token (its length, or 'callable')."""
        source = self._token_source
        return "callable" if callable(source) else mask(source)
