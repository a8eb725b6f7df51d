"""A Kiwoom-compatible realtime WebSocket server on loopback, for tests, examples and demos.

Built on the ``websockets`` library's sans-I/O ``ServerProtocol`` driven by asyncio streams on a
background thread. The same port also answers the REST token endpoints (``POST /oauth2/token``,
``POST /oauth2/revoke``), which the handshake parser of ``websockets`` would refuse (it only takes
the GET upgrade), so the listener reads the request head and hands WebSocket upgrades over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from ..fids import TYPE_NAMES as _TYPE_NAME
from ..protocol import KNOWN_TYPES
from .conditions import SimConditions
from .market import AfterHoursMarket, RegularMarket, SimClock, in_after_hours, in_regular_session, session_notices
from .tokens import DEFAULT_APPKEY, DEFAULT_SECRETKEY, DEFAULT_TOKEN, TokenStore, serve_token_request

__all__ = ["DEFAULT_APPKEY", "DEFAULT_SECRETKEY", "DEFAULT_TOKEN", "WS_PATH", "SimServer"]

logger = logging.getLogger("kiwoom_rt.sim")
_PROTOCOL_LOGGER = logging.getLogger("kiwoom_rt.sim.websocket")
_PROTOCOL_LOGGER.setLevel(logging.WARNING)  # no per-connection chatter; debug logs would print tokens
T = TypeVar("T")

WS_PATH = "/api/dostk/websocket"

LOGIN_REFUSED_MSG = "토큰 인증에 실패했습니다. 접속을 종료합니다 [CODE=8005, MESSAGE=Token이 유효하지 않습니다]"
NO_LOGIN_MSG = "Websocket 연결 시 유효한 Token 정보가 없습니다. 연결을 종료합니다."
KICKED_MSG = "동일한 App key로 접속이 되어 기존 세션을 종료합니다."
NO_HEARTBEAT_MSG = "Heartbeat 응답이 없어 연결을 종료합니다."
_NO_ACCOUNT_PUSH = frozenset({"00", "04", "0s"})  # order/balance events and notices: not streamed


class _Conn:
    """One client connection (lives on the server's event loop)."""

    def __init__(self, index: int, protocol: ServerProtocol, writer: asyncio.StreamWriter) -> None:
        self.index = index
        self.protocol = protocol
        self.writer = writer
        self.appkey: str | None = None
        self.logged_in = False
        self.silent = False
        self.closed = False
        self.unanswered_pings = 0
        self.pings_echoed = 0
        self.registrations: dict[str, set[tuple[str, str]]] = {}
        self.received: list[str | bytes] = []
        self.sent_log: list[tuple[float, str]] = []  # (time, frame) of every non-REAL frame sent
        self.received_log: list[tuple[float, str | bytes]] = []
        self.credit = 0.0
        self.cursor = 0
        self._pairs: list[tuple[str, str]] | None = None
        self.listed = False  # sent CNSRLST: realtime condition searches are accepted
        self.watching: set[str] = set()  # condition seqs searched in realtime

    def data_pairs(self) -> list[tuple[str, str]]:
        if self._pairs is None:
            pairs = {pair for group in self.registrations.values() for pair in group}
            self._pairs = sorted(p for p in pairs if p[1] not in _NO_ACCOUNT_PUSH)
        return self._pairs

    def registrations_changed(self) -> None:
        self._pairs = None

    def wants(self, type_code: str) -> bool:
        return any(t == type_code for group in self.registrations.values() for _, t in group)

    def flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.writer.write(chunk)
            elif not self.writer.transport.is_closing():
                # b"" is the protocol's "end the TCP connection": a server closes TCP right after
                # the closing handshake (RFC 6455 7.1.1), so a client's close() returns at once.
                self.writer.close()

    @property
    def writable(self) -> bool:
        if self.writer.transport.is_closing():  # the peer went away; asyncio warns on every write
            self.closed = True
        return not self.closed and self.protocol.state is State.OPEN

    def send_text(self, text: str, *, log: bool = True) -> None:
        if not self.writable:
            return
        self.protocol.send_text(text.encode("utf-8"))
        if log:
            self.sent_log.append((time.time(), text))
        self.flush()

    def send_texts(self, texts: Sequence[str]) -> None:
        """Several text frames in one write (not logged)."""
        if not self.writable:
            return
        for text in texts:
            self.protocol.send_text(text.encode("utf-8"))
        self.writer.write(b"".join(self.protocol.data_to_send()))

    def send_text_bytes(self, data: bytes) -> None:
        """A text frame with exactly these bytes (invalid UTF-8 included, for tests)."""
        if not self.writable:
            return
        self.protocol.send_text(data)
        self.flush()

    def send_binary(self, data: bytes) -> None:
        if not self.writable:
            return
        self.protocol.send_binary(data)
        self.flush()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """A normal close: close frame, then the TCP connection shortly after."""
        if self.closed:
            return
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
            self.flush()
        asyncio.get_running_loop().call_later(1.0, self.abort)

    def abort(self) -> None:
        """Drop the TCP connection at once, no close frame."""
        self.closed = True
        transport = self.writer.transport
        if not transport.is_closing():
            transport.abort()


class SimServer:
    """The simulator. ``with SimServer() as sim:`` serves on ``sim.url`` until the block ends.

    Valid tokens map to app keys (``tokens={token: appkey}``; default ``{"sim-token": "sim-appkey"}``);
    ``credentials={appkey: secretkey}`` are what the token endpoints accept. ``rate`` is the events
    per second each connection receives across its registrations, ``batch`` the entries per REAL
    frame. ``clock`` decides what flows: 0B trades and 0D books in the regular session (09:00-15:30
    KST), 0E after hours (default: 16:00 KST today, real speed).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tokens: Mapping[str, str] | Iterable[str] | None = None,
        credentials: Mapping[str, str] | None = None,
        ping_interval: float = 10.0,
        max_missed_pings: int = 3,
        login_timeout: float = 30.0,
        seed: int = 0,
        clock: SimClock | None = None,
        rate: float = 10.0,
        batch: int = 1,
        ack_delay: float = 0.0,
        max_items_per_reg: int = 100,
        token_expiry: float = 86_400.0,
        tick: float = 0.01,
        ssl_context: ssl.SSLContext | None = None,
        conditions: Mapping[str, str] | None = None,
        condition_page_size: int = 5,
        condition_churn: float = 0.5,
    ) -> None:
        if tokens is None:
            tokens = {DEFAULT_TOKEN: DEFAULT_APPKEY}
        self.host = host
        self._requested_port = port
        self.port = 0
        self.tokens = TokenStore(tokens, credentials or {DEFAULT_APPKEY: DEFAULT_SECRETKEY},
                                 expiry=token_expiry)
        self.ping_interval = ping_interval
        self.max_missed_pings = max_missed_pings
        self.login_timeout = login_timeout
        self.market = AfterHoursMarket(seed)
        self.regular = RegularMarket(seed)
        self.conditions = SimConditions(conditions, seed=seed, page_size=condition_page_size)
        self.condition_churn = condition_churn  # random entries/exits per second, across conditions
        self._refuse_conditions = 0
        self._hold_conditions = False
        self.clock = clock or SimClock()
        self.rate = rate
        self.batch = max(1, batch)
        self.ack_delay = ack_delay
        self.max_items_per_reg = max_items_per_reg
        self.tick = tick
        self.ssl_context = ssl_context  # serve wss:// (and https:// token endpoints) with it
        self.write_buffer_limit = 8 * 1024 * 1024
        # counters (written on the loop thread, read anywhere)
        self.connections_total = 0
        self.login_attempts = 0
        self.logins = 0
        self.events_sent = 0
        self.events_skipped = 0  # not generated because a client was not reading (backpressure)
        self._refuse_logins = 0
        self._hold_logins = False
        self._conns: list[_Conn] = []
        self._history: list[_Conn] = []  # every connection ever, by index
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The WebSocket URL to give ``RealtimeSession(url=...)``."""
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{self.host}:{self.port}{WS_PATH}"

    @property
    def rest_url(self) -> str:
        """The base URL of the token endpoints."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> SimServer:
        """Start serving on a daemon thread; returns once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="kiwoom-sim", daemon=True)
        self._thread.start()
        ready.result(timeout=10)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection and the listener, and end the thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
        thread.join(timeout)
        self._loop = self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, ready: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._open(ready))
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _open(self, ready: Future[None]) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve, self.host, self._requested_port, limit=2**20, ssl=self.ssl_context)
        except OSError as exc:
            ready.set_exception(exc)
            asyncio.get_running_loop().stop()
            return
        self.port = self._server.sockets[0].getsockname()[1]
        self._spawn(self._market_loop())
        ready.set_result(None)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0)
        asyncio.get_running_loop().stop()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run ``fn`` on the server's loop and return its result (controls and observations)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("simulator is not running")
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the calling thread
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout)

    # -- controls -------------------------------------------------------------------------------

    def _targets(self, conn: int | None) -> list[_Conn]:
        if conn is not None:
            return [self._history[conn]]  # connection numbers are positions in the history
        return [c for c in self._conns if c.logged_in and not c.closed and not c.silent]

    def push(self, frame: Mapping[str, Any] | str | bytes, *, conn: int | None = None,
             text: bool = False) -> int:
        """Send a frame to every logged-in connection (or connection number ``conn``).

        A mapping is sent as JSON text, a str as a text frame, bytes as a binary frame (or, with
        ``text=True``, as a text frame holding exactly those bytes, valid UTF-8 or not).
        Returns how many connections it went to.
        """
        def run() -> int:
            targets = self._targets(conn)
            for target in targets:
                if isinstance(frame, bytes) and text:
                    target.send_text_bytes(frame)
                elif isinstance(frame, bytes):
                    target.send_binary(frame)
                else:
                    body = frame if isinstance(frame, str) else json.dumps(frame, ensure_ascii=False)
                    target.send_text(body, log=False)
            return len(targets)
        return self._call(run)

    def push_burst(self, frames: Sequence[Mapping[str, Any] | str], *, conn: int | None = None) -> int:
        """Send text frames back to back in one write, so that they reach the client together
        (one read, for a client that reads in large chunks). Returns the connections reached."""
        bodies = [f if isinstance(f, str) else json.dumps(f, ensure_ascii=False) for f in frames]

        def run() -> int:
            targets = self._targets(conn)
            for target in targets:
                target.send_texts(bodies)
            return len(targets)
        return self._call(run)

    def send_system(self, code: str, message: str = "", *, conn: int | None = None) -> int:
        """Send a SYSTEM notice (``{"trnm":"SYSTEM","code":...,"message":...}``)."""
        return self.push({"trnm": "SYSTEM", "code": code, "message": message}, conn=conn)

    def drop_all(self) -> int:
        """Drop every connection abruptly: the TCP connection ends with no close frame."""
        def run() -> int:
            live = [c for c in self._conns if not c.closed]
            for c in live:
                c.abort()
            return len(live)
        return self._call(run)

    def close_all(self, code: int = 1000, reason: str = "") -> int:
        """Close every connection normally with a close frame of ``code``."""
        def run() -> int:
            live = [c for c in self._conns if not c.closed]
            for c in live:
                c.close(code, reason)
            return len(live)
        return self._call(run)

    def go_silent(self) -> int:
        """Make every open connection silent: TCP stays open, nothing is sent or read on it.

        New connections are served normally (a half-dead path, not a dead server).
        """
        def run() -> int:
            live = [c for c in self._conns if not c.closed and not c.silent]
            for c in live:
                c.silent = True
                c.writer.transport.pause_reading()  # type: ignore[attr-defined]
            return len(live)
        return self._call(run)

    def condition_hit(self, seq: str, code: str, entered: bool = True) -> bool:
        """Move ``code`` into (or out of) condition ``seq`` and push the hit to its watchers.

        Returns False, pushing nothing, when the membership already was that way."""
        def run() -> bool:
            changed = self.conditions.change(seq, code, entered)
            if changed:
                self._push_condition_hit(seq, code, entered)
            return changed
        return self._call(run)

    def set_condition_members(self, seq: str, codes: Sequence[str]) -> None:
        """Replace condition ``seq``'s members silently (as if they changed while nobody watched)."""
        def run() -> None:
            self.conditions.members[seq] = sorted(codes)
        self._call(run)

    def hold_condition_replies(self, hold: bool = True) -> None:
        """Receive condition search requests but answer none while ``hold`` (a reply in flight)."""
        def run() -> None:
            self._hold_conditions = hold
        self._call(run)

    def refuse_next_condition_requests(self, count: int = 1) -> None:
        """Refuse the next ``count`` condition search requests (non-zero return_code)."""
        def run() -> None:
            self._refuse_conditions += count
        self._call(run)

    def refuse_next_logins(self, count: int = 1) -> None:
        """Refuse the next ``count`` LOGINs as an invalid token would be (805004, R10004, close)."""
        def run() -> None:
            self._refuse_logins += count
        self._call(run)

    def hold_logins(self, hold: bool = True) -> None:
        """Leave LOGINs unanswered (a server that accepts the socket but never logs anyone in)."""
        def run() -> None:
            self._hold_logins = hold
        self._call(run)

    def add_token(self, token: str, appkey: str = DEFAULT_APPKEY) -> None:
        """Accept ``token`` for LOGIN from now on, as belonging to ``appkey``."""
        self._call(lambda: self.tokens.add(token, appkey))

    def revoke_token(self, token: str) -> None:
        """Refuse ``token`` from now on (connections already logged in stay)."""
        self._call(lambda: self.tokens.remove(token))

    def set_rate(self, rate: float, batch: int | None = None) -> None:
        """Change the events per second per connection (and entries per frame) while running."""
        def run() -> None:
            self.rate = rate
            if batch is not None:
                self.batch = max(1, batch)
        self._call(run)

    # -- observations ---------------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        """Connections open now (silent ones included)."""
        return self._call(lambda: sum(1 for c in self._conns if not c.closed))

    @property
    def logged_in_count(self) -> int:
        return self._call(lambda: sum(1 for c in self._conns if c.logged_in and not c.closed))

    def frames_received(self, conn: int = -1) -> list[str | bytes]:
        """Every frame received on connection number ``conn`` (default: the latest), in order."""
        return self._call(lambda: list(self._pick(conn).received))

    def received_log(self, conn: int = -1) -> list[tuple[float, str | bytes]]:
        """(time, frame) of every frame received on a connection."""
        return self._call(lambda: list(self._pick(conn).received_log))

    def sent_log(self, conn: int = -1) -> list[tuple[float, str]]:
        """(time, frame) of every non-REAL frame the server sent on a connection (acks, PINGs...)."""
        return self._call(lambda: list(self._pick(conn).sent_log))

    def registrations(self, conn: int = -1) -> dict[str, set[tuple[str, str]]]:
        """{grp_no: {(item, type), ...}} registered on a connection."""
        return self._call(lambda: {g: set(p) for g, p in self._pick(conn).registrations.items() if p})

    def close_received(self, conn: int = -1) -> int | None:
        """The status code of the close frame the client sent on a connection (None: none came)."""
        def code() -> int | None:
            received = self._pick(conn).protocol.close_rcvd
            return None if received is None else int(received.code)
        return self._call(code)

    def pings_echoed(self, conn: int = -1) -> int:
        return self._call(lambda: self._pick(conn).pings_echoed)

    def _pick(self, conn: int) -> _Conn:
        if not self._history:
            raise LookupError("no connection yet")
        return self._history[conn]

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll ``predicate`` until it is true or ``timeout`` passes; returns its last value."""
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            pause.wait(0.005)

    # -- connection handling (event loop) -------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        if head.startswith(b"POST "):
            await serve_token_request(self.tokens, head, reader, writer)
            return
        protocol = ServerProtocol(max_size=2**24, logger=_PROTOCOL_LOGGER)
        protocol.receive_data(head)
        events = protocol.events_received()
        request = events[0] if events else None
        if not isinstance(request, Request):
            for chunk in protocol.data_to_send():
                writer.write(chunk)
            writer.close()
            return
        if request.path.split("?")[0] != WS_PATH:
            response = protocol.reject(404, "Not Found\n")
        else:
            response = protocol.accept(request)
        protocol.send_response(response)
        for chunk in protocol.data_to_send():
            writer.write(chunk)
        if response.status_code != 101:
            writer.close()
            return
        self.connections_total += 1
        conn = _Conn(self.connections_total - 1, protocol, writer)
        self._conns.append(conn)
        self._history.append(conn)
        pinger = self._spawn(self._ping_loop(conn))
        watchdog = self._spawn(self._login_watchdog(conn))
        try:
            await self._read_loop(conn, reader)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            pinger.cancel()
            watchdog.cancel()
            conn.closed = True
            if conn in self._conns:
                self._conns.remove(conn)
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _read_loop(self, conn: _Conn, reader: asyncio.StreamReader) -> None:
        protocol = conn.protocol
        while not conn.closed:
            data = await reader.read(65536)
            if not data:
                protocol.receive_eof()
                conn.flush()
                return
            protocol.receive_data(data)
            for event in protocol.events_received():
                if not isinstance(event, Frame):
                    continue
                if event.opcode is Opcode.TEXT:
                    await self._on_text(conn, bytes(event.data).decode("utf-8", "replace"))
                elif event.opcode is Opcode.BINARY:
                    conn.received.append(bytes(event.data))
                    conn.received_log.append((time.time(), bytes(event.data)))
            conn.flush()
            if protocol.state is State.CLOSED:
                conn.abort()
                return

    async def _on_text(self, conn: _Conn, text: str) -> None:
        conn.received.append(text)
        conn.received_log.append((time.time(), text))
        if conn.silent:
            return
        try:
            message = json.loads(text)
        except ValueError:
            message = text
        if message == "PING" or (isinstance(message, dict) and message.get("trnm") == "PING"):
            conn.unanswered_pings = 0
            conn.pings_echoed += 1
            return
        if not isinstance(message, dict):
            return
        trnm = message.get("trnm")
        if trnm == "LOGIN":
            self._on_login(conn, message)
        elif trnm in ("REG", "REMOVE"):
            if not conn.logged_in:
                self._refuse(conn, NO_LOGIN_MSG)
                return
            if self.ack_delay:
                await asyncio.sleep(self.ack_delay)
            conn.send_text(json.dumps(self._on_registration(conn, trnm, message), ensure_ascii=False))
        elif trnm in ("CNSRLST", "CNSRREQ", "CNSRCLR"):
            if not conn.logged_in:
                self._refuse(conn, NO_LOGIN_MSG)
                return
            if self._hold_conditions:
                return  # received (see frames_received), never answered
            conn.send_text(json.dumps(self._on_condition(conn, trnm, message), ensure_ascii=False))

    def _on_condition(self, conn: _Conn, trnm: str, message: dict[str, Any]) -> dict[str, Any]:
        book = self.conditions
        seq = str(message.get("seq", "")).strip()
        if self._refuse_conditions > 0:
            self._refuse_conditions -= 1
            return book.refusal(trnm, seq, "조건검색 요청이 거부되었습니다 (simulated refusal)")
        if trnm == "CNSRLST":
            conn.listed = True
            return book.list_reply()
        if seq not in book.conditions:
            return book.refusal(trnm, seq, f"조건검색식을 찾을 수 없습니다 (seq {seq!r})")
        if trnm == "CNSRCLR":
            conn.watching.discard(seq)
            return book.clear_reply(seq)
        if str(message.get("search_type")) == "1":
            if not conn.listed:
                return book.refusal(trnm, seq, "조건검색 목록 조회를 먼저 진행해 주세요")
            conn.watching.add(seq)
            return book.realtime_reply(seq)
        return book.search_reply(seq, str(message.get("next_key") or ""))

    def _push_condition_hit(self, seq: str, code: str, entered: bool) -> None:
        frame = json.dumps(SimConditions.hit_frame(seq, code, entered, self.clock.now()), ensure_ascii=False)
        for conn in self._conns:
            if conn.logged_in and not conn.closed and not conn.silent and seq in conn.watching:
                conn.send_text(frame, log=False)

    def _on_login(self, conn: _Conn, message: dict[str, Any]) -> None:
        self.login_attempts += 1
        if self._hold_logins:
            return
        appkey = self.tokens.appkey_for(message.get("token"))
        if self._refuse_logins > 0:
            self._refuse_logins -= 1
            appkey = None
        if appkey is None:
            conn.send_text(json.dumps({"trnm": "LOGIN", "return_code": 805004,
                                       "return_msg": LOGIN_REFUSED_MSG}, ensure_ascii=False))
            self._refuse(conn, NO_LOGIN_MSG)
            return
        for other in self._conns:
            if other is not conn and other.logged_in and other.appkey == appkey and not other.closed:
                other.send_text(json.dumps({"trnm": "SYSTEM", "code": "R10001", "message": KICKED_MSG},
                                           ensure_ascii=False))
                other.close(1000)
        conn.appkey = appkey
        conn.logged_in = True
        self.logins += 1
        conn.send_text(json.dumps({"trnm": "LOGIN", "return_code": 0, "return_msg": "", "sor_yn": "Y"}))

    def _refuse(self, conn: _Conn, message: str) -> None:
        conn.send_text(json.dumps({"trnm": "SYSTEM", "code": "R10004", "message": message},
                                  ensure_ascii=False))
        conn.close(1000)

    def _on_registration(self, conn: _Conn, trnm: str, message: dict[str, Any]) -> dict[str, Any]:
        def reply(code: int, msg: str) -> dict[str, Any]:
            return {"trnm": trnm, "return_code": code, "return_msg": msg}

        grp_no = message.get("grp_no")
        data = message.get("data")
        if not isinstance(grp_no, str) or not 1 <= len(grp_no) <= 4 or not isinstance(data, list):
            return reply(1, "요청 형식이 올바르지 않습니다")
        pairs: set[tuple[str, str]] = set()
        for entry in data:
            items = entry.get("item") if isinstance(entry, dict) else None
            types = entry.get("type") if isinstance(entry, dict) else None
            if not isinstance(items, list) or not isinstance(types, list):
                return reply(1, "요청 형식이 올바르지 않습니다")
            if len(items) > self.max_items_per_reg:
                return reply(1, f"등록 가능한 종목 수({self.max_items_per_reg})를 초과했습니다")
            for type_code in types:
                if type_code not in KNOWN_TYPES:
                    return reply(1, f"유효하지 않은 실시간 항목입니다: {type_code}")
            pairs.update((str(i), t) for i in items for t in types)
        group = conn.registrations.setdefault(grp_no, set())
        if trnm == "REG":
            if message.get("refresh") == "0":
                group.clear()
            group |= pairs
        else:
            group -= pairs
        conn.registrations_changed()
        return reply(0, "")

    async def _ping_loop(self, conn: _Conn) -> None:
        while not conn.closed:
            await asyncio.sleep(self.ping_interval)
            if conn.silent or conn.closed:
                continue
            if conn.unanswered_pings >= self.max_missed_pings:
                conn.send_text(json.dumps({"trnm": "SYSTEM", "code": "R10002",
                                           "message": NO_HEARTBEAT_MSG}, ensure_ascii=False))
                conn.close(1000)
                return
            conn.unanswered_pings += 1
            conn.send_text('{"trnm":"PING"}')

    async def _login_watchdog(self, conn: _Conn) -> None:
        await asyncio.sleep(self.login_timeout)
        if not conn.logged_in and not conn.closed and not conn.silent:
            self._refuse(conn, NO_LOGIN_MSG)

    async def _market_loop(self) -> None:
        last_wall = time.monotonic()
        last_clock = self.clock.now()
        while True:
            await asyncio.sleep(self.tick)
            now_wall = time.monotonic()
            elapsed, last_wall = now_wall - last_wall, now_wall
            now = self.clock.now()
            for _, code in session_notices(last_clock, now):
                self._broadcast_notice(code, now)
            last_clock = now
            if self.condition_churn and self.conditions.random_change_due(self.condition_churn * elapsed):
                change = self.conditions.random_change()
                if change is not None:
                    self._push_condition_hit(*change)
            for conn in list(self._conns):
                if conn.logged_in and not conn.silent and conn.writable:
                    self._stream(conn, elapsed, now)

    def _broadcast_notice(self, code: str, now: dt.datetime) -> None:
        values = {"215": code, "20": now.strftime("%H%M%S"), "214": "000000"}
        frame = json.dumps({"trnm": "REAL", "data": [
            {"type": "0s", "name": "장시작시간", "item": "", "values": values}]}, ensure_ascii=False)
        for conn in self._conns:
            if conn.logged_in and not conn.closed and not conn.silent and conn.wants("0s"):
                conn.send_text(frame, log=False)

    def _stream(self, conn: _Conn, elapsed: float, now: dt.datetime) -> None:
        pairs = conn.data_pairs()
        if not pairs:
            conn.credit = 0.0
            return
        conn.credit = min(conn.credit + self.rate * elapsed, self.rate + self.batch)
        count = int(conn.credit)
        if count <= 0:
            return
        conn.credit -= count
        if conn.writer.transport.get_write_buffer_size() > self.write_buffer_limit:
            self.events_skipped += count
            return
        moment = now.timetz().replace(tzinfo=None)
        after_hours = in_after_hours(moment)
        regular = in_regular_session(moment)
        entries: list[dict[str, Any]] = []
        for _ in range(count * 2):  # skip pairs outside their hours, but never loop forever
            if len(entries) >= count:
                break
            item, type_code = pairs[conn.cursor % len(pairs)]
            conn.cursor += 1
            if type_code == "0E":
                if not after_hours:
                    continue
                values = self.market.quote(item, now)
            elif type_code in ("0B", "0D"):
                if not regular:
                    continue
                values = self.regular.trade(item, now) if type_code == "0B" else self.regular.book(item, now)
            else:
                values = self.market.other(type_code, item, now)
            entries.append({"type": type_code, "name": _TYPE_NAME.get(type_code, ""),
                            "item": item, "values": values})
        for start in range(0, len(entries), self.batch):
            chunk = entries[start:start + self.batch]
            conn.send_text(json.dumps({"trnm": "REAL", "data": chunk}, ensure_ascii=False), log=False)
        self.events_sent += len(entries)
