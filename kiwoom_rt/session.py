"""``RealtimeSession``: the Kiwoom realtime feed on background threads, for synchronous code.

Long because it is the runtime of one session: its constructor's settings, the two thread roles
and the interpreter of the core's actions. (Issue 38 asks for option groups and one path after
the intake, which will shorten it.)

This module is the runtime: threads, sockets and clocks. What to do (log in, restore
registrations, pair acks, reconnect or give up, time out) is decided by ``_core.SessionCore``;
how events reach receivers by a dispatcher (``_delivery``). The design is explained in
docs/design.md. In short, two daemon threads share two roles (a third, the health watchdog,
wakes once a second unless ``watch_health=False``):

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
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Unpack
from urllib.parse import urlsplit

from . import protocol
from ._actions import (
    Abort,
    Action,
    Completed,
    Deliver,
    Echo,
    Failed,
    GiveUp,
    InvalidateToken,
    MembershipChange,
    Report,
    Retry,
    Send,
    WatchFailed,
    WatchMembers,
)
from ._conditions import resync_event
from ._connection import Connection, ConnectionSettings
from ._core import Outcome, SessionCore, StandbyPace
from ._handles import ConditionRequest, ConditionWatch, PendingRequest, Subscription
from ._intake import FrameHook, Intake
from ._notices import ErrorReport, Notice
from ._proxy import choose_proxy
from ._redact import register_secret, unregister_secret
from ._state import SessionState
from ._stats import SessionStats
from ._surface import CLOSE_WAIT, SessionBase
from ._urls import is_loopback
from .errors import ConnectError, KiwoomError, SessionClosedError
from .messages import Message
from .options import ConnectionOptions, DeliveryOptions, HealthOptions, SessionOptions, split_options
from .us import market_of_url

__all__ = ["MOCK_URL", "PRODUCTION_URL", "US_MOCK_URL", "US_PRODUCTION_URL", "RealtimeSession", "SessionState"]

logger = logging.getLogger("kiwoom_rt")

#: The domestic socket (KRX, NXT).
PRODUCTION_URL = "wss://api.kiwoom.com:10000/api/dostk/websocket"
#: The domestic socket of Kiwoom's mock trading server (모의투자).
MOCK_URL = "wss://mockapi.kiwoom.com:10000/api/dostk/websocket"
#: The US stock socket (미국주식): FE, FT, F4, F5 and US condition search. Same host, its own connection.
US_PRODUCTION_URL = "wss://api.kiwoom.com:10000/api/us/websocket"
US_MOCK_URL = "wss://mockapi.kiwoom.com:10000/api/us/websocket"
"""The US path on Kiwoom's mock host. Derived, not published: Kiwoom's mock serves KRX items
("KRX만 지원가능"), and whether it serves US realtime at all is unknown; a session on it may
connect and then receive nothing, or be refused."""

TokenSource = str | Callable[[], str]


class RealtimeSession(SessionBase):
    """A self-healing subscription to Kiwoom's realtime WebSocket feed.

    ``token`` is the access token, or a zero-argument callable returning one; a callable is
    consulted before every (re)connect (give it an ``invalidate()`` method to be told that the
    server refused its token). Receivers connect to blinker signals::

        session = RealtimeSession(token)
        session.on_0e.connect(lambda item, event: print(item, event.bid_total))
        session.start()
        session.subscribe(["005930", "000660"]).wait(5)

    Settings come in three groups (``kiwoom_rt.options``), each validated when it is made:
    ``connection=ConnectionOptions(...)``, ``delivery=DeliveryOptions(...)`` and
    ``health=HealthOptions(...)``. Their fields also work as keyword arguments, as before
    (``RealtimeSession(token, chunk_size=50)``); a keyword changes that field of the group given.
    ``session.connection``, ``session.delivery`` and ``session.health_options`` hold them.

    Delivery: receivers run on the session thread that read the events, in arrival order. A
    receiver that runs longer than ``handover_after`` seconds makes the standby thread take over
    reading (PINGs keep being answered); ``inline=True`` never hands over (a slow receiver then
    delays PING echoes). ``queue_size`` bounds the events waiting behind a slow receiver;
    ``overflow`` says what happens when it is full: ``"block"`` (default) pauses reading so TCP
    pushes back and nothing is lost, ``"drop_oldest"`` drops the oldest (counted, and signalled by
    ``on_overflow``). ``dispatcher`` delivers on another loop instead
    (``kiwoom_rt.QtDispatcher``, ``TkDispatcher``, ``QueueDispatcher``).

    Connection: ``chunk_size`` is the most items per REG; ``max_items`` the most items the socket
    may have registered (200 by default, ``None`` for no limit; the account types 00/04/F4/F5
    do not count): a subscription past it raises ``SymbolLimitError`` before anything is sent;
    ``reconnect`` a ``ReconnectPolicy``;
    ``idle_timeout`` replaces a connection that sent nothing (PINGs included) for that long;
    ``reconnect_on_kicked=True`` reconnects after SYSTEM R10001 instead of giving up;
    ``max_frame_bytes`` refuses larger frames (reported through ``on_error``); ``ssl_context``
    overrides TLS settings (verification is on by default); ``allow_insecure=True`` permits a
    plain ``ws://`` URL to a host other than loopback; ``frame_hook(frame, received_at)`` sees
    every text frame as received, on the reading thread, before decoding (keep it quick:
    ``kiwoom_rt.recording.Recorder`` only appends to a list). A hook that returns True for a
    REAL frame takes it over: the session then does not decode it into events (the relay
    forwards frames this way); any other frame is decoded and handled as usual.

    Market: a URL whose path ends in ``/api/us/websocket`` (``US_PRODUCTION_URL``) makes a US
    session; ``market="us"`` or ``"kr"`` overrides that, and ``session.market`` says which. A US
    session takes ``UsItem``s or ``"NASDAQ:NVDA"`` strings and types FE, FT, F4 and F5, and speaks
    the US condition search (GCNSR*). One token may serve both sockets: run one session per
    socket, in one process if you like. ``us_item_format`` says how REG sends US items:
    ``"object"`` (default, Kiwoom's published examples: ``{"jmcode": "NVDA", "stex_tp": "ND"}``)
    or ``"string"`` (``"NVDA"``, as two peer clients do). It is a safety valve for an item shape
    no one has verified against the live server: switch it without waiting for a release.

    Health: ``health()`` judges every wanted (item, type) (``kiwoom_rt.Health``); ``stale_after``
    overrides the per-type thresholds (one number, or ``{type: seconds or None}``);
    ``resubscribe_stale=True`` re-sends REG for a stale subscription; ``health_interval`` is how
    often the session checks by itself (``on_stale``/``on_fresh``); ``market_clock`` replaces the
    current time when judging market phases (a simulator's clock); ``watch_health=False`` turns
    the judging off.

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
        market: str | None = None,
        frame_hook: FrameHook | None = None,
        connection: ConnectionOptions | None = None,
        delivery: DeliveryOptions | None = None,
        health: HealthOptions | None = None,
        **options: Unpack[SessionOptions],
    ) -> None:
        if not (isinstance(token, str) and token.strip()) and not callable(token):
            raise TypeError("token must be a non-empty str or a callable returning one")
        connection, delivery, health = split_options(connection, delivery, health, options)
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not a WebSocket URL: {url!r}")
        if parts.scheme == "ws" and not is_loopback(parts.hostname) and not connection.allow_insecure:
            raise ValueError(f"refusing plain ws:// to {parts.hostname}: the token would travel "
                             "unencrypted (pass allow_insecure=True to insist)")
        self.connection = connection
        self._token_source = token
        self.url = url
        self.settings = ConnectionSettings(url=url, connect_timeout=connection.connect_timeout,
                                           max_frame_bytes=connection.max_frame_bytes,
                                           ssl_context=connection.ssl_context,
                                           proxy=choose_proxy(url, connection.proxy))
        market = market_of_url(url) if market is None else market
        self._core = SessionCore(chunk_size=connection.chunk_size, policy=connection.reconnect,
                                 reconnect_on_kicked=connection.reconnect_on_kicked,
                                 login_timeout=connection.login_timeout, idle_timeout=connection.idle_timeout,
                                 ack_timeout=connection.ack_timeout, random=connection.random_source,
                                 condition_rate=connection.condition_rate, market=market,
                                 us_item_format=connection.us_item_format, max_items=connection.max_items)
        self._lock = threading.RLock()  # serialises calls into the core
        super().__init__(market=market, delivery=delivery, health=health)
        self._hands_over = delivery.dispatcher is None and not delivery.inline

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
        self._pace = StandbyPace(delivery.handover_after, delivery.handover_after)  # how often the standby looks
        # the I/O state (touched only by the thread holding the I/O role)
        self._conn: Connection | None = None
        self._retry_at: float | None = None
        self._echoes: list[str | bytes] = []
        self._batch: list[Any] = []  # events of the chunk being read
        # frames to events (and the frame, event and error counters)
        self._intake = Intake(emit=self._emit, report=self._report, message=self._on_message,
                              hits=self._condition_hits, frame_hook=frame_hook,
                              us=self._us_exchanges if market == "us" else None)
        self._errors_lock = threading.Lock()
        self._decode_errors = 0  # bad input reported (from the reading thread, or a receiver's)
        self._handovers = 0
        self._reads = 0  # socket reads of connections that ended (the current one counts itself)
        self._bytes_read = 0

    # --- lifecycle --------------------------------------------------------------------------

    def __repr__(self) -> str:
        proxy = self.settings.proxy
        via = f" via proxy {proxy.address}" if proxy is not None else ""
        market = " (US)" if self.market == "us" else ""
        return f"<RealtimeSession {self.url}{market}{via} {self._core.state}>"

    @property
    def state(self) -> SessionState:
        """``SessionState``: NEW, CONNECTING, CONNECTED (logged in), RECONNECTING, GAVE_UP or CLOSED
        (a ``str``: ``state == "connected"`` works)."""
        return self._core.state

    @property
    def frame_hook(self) -> FrameHook | None:
        """Called on the reading thread with (frame, receive time) for every text frame; keep it quick."""
        return self._intake.frame_hook

    @frame_hook.setter
    def frame_hook(self, hook: FrameHook | None) -> None:
        self._intake.frame_hook = hook

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
        self._start_health()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop everything: idempotent, callable from any thread, receivers included.

        Returns within about a second even if the server does not answer or a receiver is slow.
        Events still queued are not delivered; after it returns no receiver is called, by any
        thread. A receiver still running then finishes on its own thread (daemonic), which ends
        right after it; otherwise no thread of the session is alive and no socket is open.
        """
        with self._lock:
            if self._core.state is SessionState.CLOSED:
                return
            failures = self._core.close()
            self._stop.set()
            conn = self._conn
        self._closing()
        if conn is not None:
            conn.abort()
        self._wake_standby.set()
        current = threading.current_thread()
        deadline = time.monotonic() + min(timeout, CLOSE_WAIT)
        for thread in self._workers:
            if thread is not current and thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._stop_health(max(0.0, deadline - time.monotonic()))
        self._dispatcher.stop(max(0.0, deadline - time.monotonic()))
        self._apply(failures, None)
        self._fail_all(SessionClosedError("the session was closed"))
        self._closed()
        for secret in self._secrets:
            unregister_secret(secret)
        self._secrets.clear()

    # --- requests (SessionBase calls these) -------------------------------------------------

    def _submit_subscribe(self, handle: Subscription, refresh: bool) -> None:
        with self._lock:
            self._check_open()
            request, actions = self._core.subscribe(handle.grp_no, handle.items, handle.types, refresh,
                                                    time.monotonic())
            self._keep(request, handle)
            conn = self._conn
        self._apply(actions, conn)

    def _submit_unsubscribe(self, handle: PendingRequest) -> None:
        with self._lock:
            self._check_open()
            request, actions = self._core.unsubscribe(handle.grp_no, handle.items, handle.types, time.monotonic())
            self._keep(request, handle)
            conn = self._conn
        self._apply(actions, conn)

    def _submit_query(self, handle: ConditionRequest[Any]) -> None:
        with self._lock:
            self._check_open()
            now = time.monotonic()
            request, actions = (self._core.search(handle.seq, now) if handle.seq
                                else self._core.list_conditions(now))
            self._keep(request, handle)
            conn = self._conn
        self._apply(actions, conn)
        self._wake_standby.set()  # paced requests leave later: the standby watches their deadline

    def _submit_watch(self, watch: ConditionWatch) -> None:
        with self._lock:
            self._check_open()
            new, actions = self._core.watch(watch.seq, time.monotonic())
            if not new and self._core.conditions.members(watch.seq):  # a watch made again after a cancel
                watch.set_members(self._core.conditions.members(watch.seq))
            conn = self._conn
        self._apply(actions, conn)
        self._wake_standby.set()

    def _submit_cancel_watch(self, seq: str) -> None:
        with self._lock:
            actions = self._core.cancel_watch(seq, time.monotonic())
            conn = self._conn
        self._apply(actions, conn)

    def _deliver_resync(self, changes: Sequence[MembershipChange]) -> None:
        now = time.time()
        events = [resync_event(change, now, self.market) for change in changes]
        if threading.current_thread() is self._io_owner:
            self._batch.extend(events)
        else:
            self._dispatcher.put_events(events)

    def registrations(self) -> dict[str, set[tuple[str, str]]]:
        """The wanted registrations, restored after every reconnect: {grp_no: {(item, type)}}."""
        with self._lock:
            return self._core.registrations.snapshot()

    def _health_pairs(self) -> set[tuple[str, str]]:
        with self._lock:
            return self._core.registrations.wanted()

    def _acked_pairs(self) -> set[tuple[str, str]]:
        with self._lock:
            return set(self._core.registrations.confirmed)

    def _resubscribe(self, pairs: Sequence[tuple[str, str]]) -> None:
        """REG again for stale pairs, in the groups that hold them (the ack is not waited for)."""
        wanted = set(pairs)
        with self._lock:
            if not self._core.accepting:
                return
            now = time.monotonic()
            actions: list[Action] = []
            for grp_no, held in self._core.registrations.snapshot().items():
                by_type: dict[str, list[str]] = {}
                for item, kind in sorted(held & wanted):
                    by_type.setdefault(kind, []).append(item)
                for kind, items in by_type.items():
                    actions += self._core.subscribe(grp_no, items, [kind], True, now)[1]
            conn = self._conn
        self._apply(actions, conn)

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
                events=events, events_total=sum(events.values()), decode_errors=self._decode_errors,
                ack_timeouts=core.ack_timeouts, dropped=self._dispatcher.dropped,
                queue_depth=self._dispatcher.depth, pings_echoed=core.pings_echoed,
                connections=core.connections, logins=core.logins, reconnects=core.reconnects,
                handovers=self._handovers, reads=reads, bytes_read=bytes_read,
                pending_requests=core.pipeline.pending,
                last_frame_age=None if last is None else now - last,
                last_frame_time=None if last is None else time.time() - (now - last),
                **self._health_counts(),
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
        if self._dispatcher.full and not conn.reader.stopped:
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
                if now - since >= self.delivery.handover_after:
                    self._take_over(me, owner)
                    return
                watching = True
                watch = max(since + self.delivery.handover_after - now, self._pace.period)
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
        logger.debug("a receiver runs longer than %.3f s: %s reads meanwhile", self.delivery.handover_after, me.name)
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
        if any(isinstance(action, Retry) for action in actions):
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
        """One read step: its frames decoded, and its events handed to the dispatcher in one go
        (delivered by ``_after_step``, on this thread)."""
        if conn is not self._conn:  # a stale connection's frames
            return
        if frames:
            self._intake.decode(frames, received_at)
        self._core.frames_seen(time.monotonic())
        batch = self._batch
        if batch:
            self._batch = []
            self._dispatcher.put_events(batch)

    def binary_received(self, conn: Connection, payload: bytes) -> None:
        if conn is self._conn:
            self._intake.decode_binary(payload)

    def _emit(self, events: list[Any]) -> None:
        """The intake's events, handed to the dispatcher at the end of the read step."""
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
            actions = self._core.on_hits(hits)
        self._apply(actions, None)

    def frame_rejected(self, conn: Connection, error: KiwoomError) -> None:
        if conn is self._conn:
            self._report(error)

    # --- carrying out the core's actions ----------------------------------------------------

    def _flush_batch(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            self._dispatcher.put_events(batch)

    def _notify(self, notice: Notice) -> None:
        if threading.current_thread() is self._io_owner:
            self._flush_batch()  # notices keep their place among the events read so far
        self._dispatcher.put_notice(notice)

    def _report(self, error: KiwoomError) -> None:
        """Bad input: counted, logged, and sent to ``on_error`` in order with the events (any thread:
        a receiver reading a lazily typed field may find an unusable value)."""
        with self._errors_lock:
            self._decode_errors += 1
        logger.warning("%s", error)
        self._notify(ErrorReport(error))

    def _apply(self, actions: Sequence[Action], conn: Connection | None) -> None:
        for action in actions:
            match action:
                case Send(frame=frame):
                    if conn is not None:
                        conn.send(frame)
                        self._wake_standby.set()  # a request in flight: a new ack deadline to watch
                case Echo(frame=frame):
                    self._echoes.append(frame)
                case Notice():
                    self._notify(action)
                case Report(error=error):
                    self._report(error)
                case Abort():
                    if conn is not None:
                        conn.abort()
                case Retry(delay=delay):
                    self._retry_at = time.monotonic() + delay
                case GiveUp(error=error):
                    self._gave_up(error)
                case Deliver(changes=changes):
                    self._deliver_resync(changes)
                case InvalidateToken():
                    invalidate = getattr(self._token_source, "invalidate", None)
                    if callable(invalidate):
                        invalidate()
                case Completed() | Failed() | WatchMembers() | WatchFailed():
                    self._finish(action)

    def _gave_up(self, error: KiwoomError) -> None:
        """The core gave up (the requests it held were failed before this action)."""
        self.gave_up_error = error
        with self._lock:
            if not self._core.ever_logged_in:
                self._start_error = error
        logger.error("giving up: %s", error)
        self._stop.set()
        self._wake_standby.set()
        self._fail_all(SessionClosedError(f"the session gave up: {error}"))

