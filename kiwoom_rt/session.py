"""``RealtimeSession``: the Kiwoom realtime feed on background threads, for synchronous code.

Threads (all daemons, all ended by ``close``):

- ``kiwoom-rt-io``: connects, logs in, reads frames, echoes every PING at once, pairs REG/REMOVE
  acks, handles SYSTEM notices, and reconnects with backoff. It never runs user code (unless
  ``inline=True``).
- ``kiwoom-rt-dispatch``: runs receivers, fed by a bounded queue of batches (absent with
  ``inline=True``).
- ``kiwoom-rt-watchdog``: replaces a connection that is idle, never answers LOGIN, or leaves a
  REG unacknowledged.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from . import protocol
from .backoff import ReconnectPolicy
from .connection import Connection, Outcome, is_loopback
from .dispatch import BindableDispatch
from .errors import ConnectError, KiwoomError, LoginError, ProtocolError, SessionClosedError
from .hub import SignalHub
from .messages import Ack, LoginReply, Ping, SystemNotice
from .redact import mask, register_secret, unregister_secret
from .registrations import Registrations, Request, RequestPipeline, build_requests
from .subscription import PendingRequest, Subscription

__all__ = ["MOCK_URL", "PRODUCTION_URL", "RealtimeSession"]

logger = logging.getLogger("kiwoom_rt")

PRODUCTION_URL = "wss://api.kiwoom.com:10000/api/dostk/websocket"
MOCK_URL = "wss://mockapi.kiwoom.com:10000/api/dostk/websocket"

TokenSource = str | Callable[[], str]


class RealtimeSession(SignalHub):
    """A self-healing subscription to Kiwoom's realtime WebSocket feed.

    ``token`` is the access token, or a zero-argument callable returning one; a callable is
    consulted before every (re)connect (give it an ``invalidate()`` method to be told that the
    server refused its token). Receivers connect to blinker signals::

        session = RealtimeSession(token)
        session.on_0e.connect(lambda item, event: print(item, event.bid_total))
        session.start()
        session.subscribe(["005930", "000660"]).wait(5)

    Options: ``inline=True`` runs receivers on the reading thread (lowest latency; a slow
    receiver then delays PING echoes); ``queue_size`` bounds the events waiting for the dispatch
    thread (the oldest are dropped beyond it, counted and signalled by ``on_overflow``);
    ``chunk_size`` is the most items per REG; ``reconnect`` a ``ReconnectPolicy``;
    ``idle_timeout`` replaces a connection that sent nothing (PINGs included) for that long;
    ``reconnect_on_kicked=True`` reconnects after SYSTEM R10001 instead of giving up;
    ``max_frame_bytes`` refuses larger frames (reported through ``on_error``); ``ssl_context``
    overrides TLS settings (verification is on by default); ``allow_insecure=True`` permits a
    plain ``ws://`` URL to a host other than loopback; ``dispatcher`` delivers on another loop
    (``kiwoom_rt.qt.QtDispatcher``, ``kiwoom_rt.tk.TkDispatcher``, ``QueueDispatcher``);
    ``frame_hook(frame, received_at)`` sees every text frame as received, on the reading thread
    (``kiwoom_rt.recording.Recorder`` uses it).
    """

    def __init__(
        self,
        token: TokenSource,
        *,
        url: str = PRODUCTION_URL,
        inline: bool = False,
        queue_size: int = 100_000,
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
        dispatcher: BindableDispatch | None = None,
        frame_hook: Callable[[bytes, float], None] | None = None,
        random_source: Callable[[], float] = random.random,
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
        self._token_source = token
        self.url = url
        self.inline = inline
        self.chunk_size = chunk_size
        self.policy = reconnect or ReconnectPolicy()
        self.idle_timeout = idle_timeout
        self.login_timeout = login_timeout
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_on_kicked = reconnect_on_kicked
        self.max_frame_bytes = max_frame_bytes
        self.ssl_context = ssl_context
        #: called on the reading thread with (frame, receive time) for every text frame; keep it quick
        self.frame_hook = frame_hook
        self._random = random_source

        super().__init__(inline=inline, queue_size=queue_size, dispatcher=dispatcher)

        self._registrations = Registrations()
        self._pipeline = RequestPipeline()
        self._waiting_handles: set[PendingRequest] = set()  # not yet attached to live requests
        self._state = "new"
        self._stop = threading.Event()
        self._start_done = threading.Event()
        self._start_error: KiwoomError | None = None
        self._ever_logged_in = False
        self._conn: Connection | None = None
        self._io_thread: threading.Thread | None = None
        self._watchdog_thread: threading.Thread | None = None
        self._secrets: set[str] = set()
        self.gave_up_error: KiwoomError | None = None
        # statistics (written by the I/O thread)
        self._pings_echoed = 0
        self._reconnects = 0
        self._connections = 0
        self._logins = 0

    # --- lifecycle --------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<RealtimeSession {self.url} {self._state}>"

    def __enter__(self) -> RealtimeSession:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def state(self) -> str:
        """"new", "connecting", "connected" (logged in), "reconnecting", "gave_up" or "closed"."""
        return self._state

    @property
    def connected(self) -> bool:
        """True while logged in."""
        return self._state == "connected"

    def start(self, timeout: float = 10.0) -> RealtimeSession:
        """Start the threads and block until LOGIN succeeded.

        Raises ``LoginError`` when the server refuses the token, ``ConnectError`` when it cannot
        be reached, ``TimeoutError`` when no login happened within ``timeout``. After a failed
        start nothing keeps running.
        """
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"session already {self._state}: start() runs once")
            self._state = "connecting"
        self._dispatch.start()
        self._io_thread = threading.Thread(target=self._io_main, name="kiwoom-rt-io", daemon=True)
        self._watchdog_thread = threading.Thread(target=self._watchdog_main, name="kiwoom-rt-watchdog",
                                                 daemon=True)
        self._io_thread.start()
        self._watchdog_thread.start()
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
            if self._state == "closed":
                return
            self._state = "closed"
            self._stop.set()
            conn = self._conn
        if conn is not None:
            conn.abort(Outcome("stopped", reason="closed by user"))
        current = threading.current_thread()
        deadline = time.monotonic() + timeout
        for thread in (self._io_thread, self._watchdog_thread):
            if thread is not None and thread is not current and thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._dispatch.stop(max(0.0, deadline - time.monotonic()))
        self._fail_handles(SessionClosedError("the session was closed"))
        for secret in self._secrets:
            unregister_secret(secret)
        self._secrets.clear()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

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
            self._registrations.add(grp_no, item_list, type_list, refresh)
            requests = build_requests("REG", grp_no, item_list, type_list, refresh, self.chunk_size, handle)
            self._submit(handle, requests)
        return handle

    def unsubscribe(self, items: Iterable[str] | str, types: Iterable[str] | str = ("0E",), *,
                    grp_no: str = "1") -> PendingRequest:
        """Send REMOVE for ``items`` x ``types`` and forget them (they are not restored later)."""
        item_list, type_list = self._check_request(items, types, grp_no)
        handle = PendingRequest("REMOVE", grp_no, tuple(item_list), tuple(type_list))
        with self._lock:
            self._check_open()
            self._registrations.remove(grp_no, item_list, type_list)
            requests = build_requests("REMOVE", grp_no, item_list, type_list, True, self.chunk_size, handle)
            if self._pipeline.open:
                self._submit(handle, requests)
            else:
                handle._expect(0)  # nothing is registered on any server right now
        return handle

    def registrations(self) -> dict[str, set[tuple[str, str]]]:
        """The wanted registrations, restored after every reconnect: {grp_no: {(item, type)}}."""
        with self._lock:
            return self._registrations.snapshot()

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
        if self._state in ("closed", "gave_up"):
            raise SessionClosedError(f"the session is {self._state}")

    def _submit(self, handle: PendingRequest, requests: Sequence[Request]) -> None:
        # with self._lock held
        if self._pipeline.open:
            handle._expect(len(requests))
            self._send_request(self._pipeline.enqueue(requests, time.monotonic()))
        else:
            self._waiting_handles.add(handle)  # attached to the restore requests at next login

    def _send_request(self, request: Request | None) -> None:
        conn = self._conn
        if request is not None and conn is not None:
            conn.send(request.frame)

    def _fail_handles(self, error: KiwoomError) -> None:
        with self._lock:
            handles = set(self._waiting_handles)
            self._waiting_handles.clear()
            for request in self._pipeline.connection_lost():
                handles.update(w for w in request.waiters if isinstance(w, PendingRequest))
        for handle in handles:
            handle._fail(error)

    # --- statistics -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters: frames, events per type, decode errors, dropped, reconnects, queue depth..."""
        conn = self._conn
        last = conn.last_frame_at if conn is not None and conn.opened else None
        return {
            "state": self._state,
            "frames": conn.reader.frames_read if conn is not None else 0,
            **self._delivery_stats(),
            "pings_echoed": self._pings_echoed,
            "connections": self._connections,
            "logins": self._logins,
            "reconnects": self._reconnects,
            "last_frame_age": None if last is None else time.monotonic() - last,
            "last_frame_time": None if last is None else time.time() - (time.monotonic() - last),
            "pending_requests": self._pipeline.pending,
        }

    def _handle_message(self, conn: Connection, message: Any) -> None:
        """Protocol work for a decoded non-REAL message."""
        if type(message) is LoginReply:
            self._on_login_reply(conn, message)
        elif type(message) is Ack:
            self._on_ack(conn, message)
        elif type(message) is SystemNotice:
            self._on_system(conn, message)
        elif type(message) is Ping:
            conn.send(protocol.echo_ping(message))
        else:
            self._bad_input(ProtocolError(f"unknown message {getattr(message, 'trnm', message)!r}"))

    # --- protocol events (I/O thread) -------------------------------------------------------

    def _connection_opened(self, conn: Connection) -> None:
        self._connections += 1
        self._notify("on_connected")

    def _on_login_reply(self, conn: Connection, reply: LoginReply) -> None:
        if not reply.ok:
            conn.abort(Outcome("login_refused", code=reply.return_code, reason=reply.return_msg,
                               auth_code=protocol.auth_failure_code(reply.return_code, reply.return_msg)))
            return
        if conn.logged_in:
            return
        conn.logged_in = True
        conn.logged_in_at = time.monotonic()
        self._logins += 1
        self._auth_retry_used = False
        with self._lock:
            if self._state == "closed":
                return
            self._state = "connected"
            self._ever_logged_in = True
            restore = self._registrations.restore_requests(self.chunk_size)
            for handle in self._waiting_handles:
                group = restore.get(handle.grp_no, [])
                for request in group:
                    request.waiters.append(handle)
                handle._expect(len(group))
            self._waiting_handles.clear()
            first = self._pipeline.connection_ready([r for g in restore.values() for r in g], time.monotonic())
        self._notify("on_login", extra=dict(reply.extra))
        self._send_request(first)
        self._start_done.set()
        logger.info("logged in to %s", self.url)

    def _on_ack(self, conn: Connection, ack: Ack) -> None:
        with self._lock:
            finished, following = self._pipeline.on_ack(ack, time.monotonic())
            if finished is not None and not ack.ok and finished.kind == "REG":
                # refused: stop wanting it, or every reconnect would ask again
                self._registrations.remove(finished.grp_no, finished.items, finished.types)
        if finished is None:
            self._bad_input(ProtocolError(f"{ack.trnm} ack with no request in flight", repr(ack)))
        elif not ack.ok:
            logger.warning("%s refused (%s %s) for %d items of %s", finished.kind, ack.return_code,
                           ack.return_msg, len(finished.items), list(finished.types))
        self._send_request(following)

    def _on_system(self, conn: Connection, notice: SystemNotice) -> None:
        self._notify("on_system", code=notice.code, message=notice.message)
        if notice.code == "R10001":
            conn.set_outcome(Outcome("kicked", code=notice.code, reason=notice.message))
        elif notice.code == "R10004":
            conn.set_outcome(Outcome("login_refused", code=notice.code, reason=notice.message,
                                     auth_code=8005))
        elif notice.code == "R10002":
            logger.error("the server saw no PING echo (R10002): %s", notice.message)
            conn.set_outcome(Outcome("lost", code=notice.code, reason=notice.message))

    # --- the I/O thread ---------------------------------------------------------------------

    _auth_retry_used = False

    def _next_token(self) -> str:
        source = self._token_source
        token = source() if callable(source) else source
        if not isinstance(token, str) or not token.strip():
            raise TypeError("the token callable returned no token")
        if token not in self._secrets:
            self._secrets.add(token)
            register_secret(token)
        return token

    def _io_main(self) -> None:
        attempt = 0
        number = 0
        try:
            while not self._stop.is_set():
                number += 1
                conn = Connection(self, number)
                with self._lock:
                    if self._stop.is_set():
                        break
                    self._conn = conn
                try:
                    token = self._next_token()
                except Exception as exc:
                    conn.set_outcome(Outcome("connect_failed", reason=f"token source failed: {exc!r}",
                                             error=ConnectError(f"the token source raised {type(exc).__name__}")))
                else:
                    conn.run(token)
                outcome = Outcome("stopped", reason="closed by user") if self._stop.is_set() else conn.outcome
                self._connection_ended(conn)
                if conn.logged_in_at is not None and time.monotonic() - conn.logged_in_at >= self.policy.healthy_after:
                    attempt = 0
                retry, delay, error = self._decide(outcome, attempt)
                if conn.opened:
                    self._notify("on_disconnected", code=outcome.code, reason=outcome.reason, will_retry=retry)
                if outcome.kind == "stopped":
                    break
                if not retry:
                    self._give_up(error or ConnectError(outcome.reason))
                    break
                logger.warning("connection ended (%s: %s); retry %d in %.2f s", outcome.kind, outcome.reason,
                               attempt + 1, delay)
                attempt += 1
                with self._lock:
                    if self._state != "closed":
                        self._state = "reconnecting"
                self._reconnects += 1
                self._notify("on_reconnecting", attempt=attempt, delay=delay)
                if self._stop.wait(delay):
                    break
        except Exception as exc:  # a bug: report it rather than die silently
            logger.exception("the I/O thread failed")
            self._give_up(ConnectError(f"internal error: {exc!r}"))
        finally:
            self._start_done.set()

    def _connection_ended(self, conn: Connection) -> None:
        conn.flush_events()
        with self._lock:
            for request in self._pipeline.connection_lost():
                for waiter in request.waiters:
                    if isinstance(waiter, PendingRequest) and not waiter.done:
                        waiter._reset()
                        if waiter.kind == "REG":
                            self._waiting_handles.add(waiter)
                        else:  # a REMOVE: the next connection starts without that registration
                            waiter._expect(0)

    def _decide(self, outcome: Outcome, attempt: int) -> tuple[bool, float, KiwoomError | None]:
        """(retry?, delay, error if not) for a connection that ended."""
        if outcome.kind == "stopped":
            return False, 0.0, None
        if outcome.kind == "login_refused":
            error = LoginError(outcome.code if isinstance(outcome.code, int) else None, outcome.reason)
            if outcome.auth_code is not None and not self._auth_retry_used:
                self._auth_retry_used = True  # once, with a fresh token; never a reconnect storm
                invalidate = getattr(self._token_source, "invalidate", None)
                if callable(invalidate):
                    invalidate()
                return True, 0.0, None
            return False, 0.0, error
        if not self._ever_logged_in:
            # start(): the first connection must work; errors surface to the caller at once
            first_error = outcome.error if isinstance(outcome.error, KiwoomError) else ConnectError(outcome.reason)
            return False, 0.0, first_error
        if outcome.kind == "kicked" and not self.reconnect_on_kicked:
            return False, 0.0, ConnectError(f"R10001: the same app key connected elsewhere ({outcome.reason})")
        if self.policy.exhausted(attempt):
            return False, 0.0, ConnectError(f"gave up after {attempt} reconnect attempts: {outcome.reason}")
        return True, self.policy.delay(attempt, self._random), None

    def _give_up(self, error: KiwoomError) -> None:
        with self._lock:
            if self._state == "closed":
                return
            self._state = "gave_up"
        self.gave_up_error = error
        if not self._ever_logged_in:
            self._start_error = error
        logger.error("giving up: %s", error)
        self._notify("on_gave_up", error=error)
        self._fail_handles(SessionClosedError(f"the session gave up: {error}"))

    # --- the watchdog thread ----------------------------------------------------------------

    def _watchdog_main(self) -> None:
        period = max(0.02, min(0.25, self.idle_timeout / 4, self.login_timeout / 4, self.ack_timeout / 4))
        while not self._stop.wait(period):
            conn = self._conn
            if conn is None or conn.ended:
                continue
            now = time.monotonic()
            if not conn.opened:
                continue  # the connect and handshake have their own timeout
            if not conn.logged_in and conn.login_sent_at is not None and now - conn.login_sent_at > self.login_timeout:
                conn.abort(Outcome("lost", reason=f"no LOGIN reply within {self.login_timeout} s",
                                   error=ConnectError("no LOGIN reply")))
            elif now - conn.last_frame_at > self.idle_timeout:
                conn.abort(Outcome("lost", reason=f"nothing received for {self.idle_timeout} s"))
            else:
                with self._lock:
                    overdue = self._pipeline.overdue(now, self.ack_timeout)
                if overdue is not None:
                    # acks carry no request id: after a lost ack, pairing cannot be trusted
                    self._bad_input(ProtocolError(f"{overdue.kind} not acknowledged within {self.ack_timeout} s",
                                                  overdue.frame))
                    conn.abort(Outcome("lost", reason=f"{overdue.kind} ack timeout"))

    # --- secrets ----------------------------------------------------------------------------

    @property
    def token_hint(self) -> str:
        """A safe description of the configured token (its length, or 'callable')."""
        source = self._token_source
        return "callable" if callable(source) else mask(source)

