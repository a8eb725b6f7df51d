"""A Kiwoom-compatible realtime WebSocket server on loopback, for tests, examples and demos.

This module is the simulator's I/O: the ``websockets`` library's sans-I/O ``ServerProtocol``
driven by asyncio streams on a background thread, PINGs, the login watchdog, the market tick,
and the controls a test uses. What the server decides is elsewhere: ``_kiwoom`` (logins,
registrations, condition search) and ``_feed`` (which REAL frames a client is owed). The same
port also answers the REST token endpoints (``POST /oauth2/token``, ``POST /oauth2/revoke``),
which the handshake parser of ``websockets`` would refuse (it only takes the GET upgrade), so the
listener reads the request head and hands WebSocket upgrades over.

Long because it is one server: the connection loop, its timers and the controls tests drive
are one piece of asyncio state, and the controls are each a few lines.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
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

from ..us import US_PATH, to_eastern
from ._feed import MarketFeed
from ._kiwoom import KICKED_MSG, NO_LOGIN_MSG, ClientState, Effects, KiwoomLogic, system
from ._token_endpoint import serve_token_request
from .clock import SimClock
from .conditions import SimConditions, SimUsConditions
from .market import KST, AfterHoursMarket, RegularMarket, session_notices
from .tokens import DEFAULT_APPKEY, DEFAULT_SECRETKEY, DEFAULT_TOKEN, TokenStore
from .us_market import UsMarket, UsOrders

__all__ = ["DEFAULT_APPKEY", "DEFAULT_SECRETKEY", "DEFAULT_TOKEN", "US_WS_PATH", "WS_PATH", "SimServer", "us_clock"]

logger = logging.getLogger("kiwoom_rt.sim")
_PROTOCOL_LOGGER = logging.getLogger("kiwoom_rt.sim.websocket")
_PROTOCOL_LOGGER.setLevel(logging.WARNING)  # no per-connection chatter; debug logs would print tokens
T = TypeVar("T")

WS_PATH = "/api/dostk/websocket"
US_WS_PATH = US_PATH


def us_clock(at: dt.time = dt.time(10, 30), speed: float = 1.0, *, day: dt.date | None = None) -> SimClock:
    """A simulator clock that starts at ``at`` US Eastern time on ``day`` (default: the latest
    weekday), so that the US sessions are open: 10:30 is the regular session, 05:00 pre-market."""
    day = day or dt.datetime.now(KST).date()
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    for offset in (-4, -5):  # EDT or EST: the one that reads back as ``at`` is right
        moment = dt.datetime.combine(day, at, tzinfo=dt.timezone(dt.timedelta(hours=offset)))
        if to_eastern(moment).utcoffset() == dt.timedelta(hours=offset):
            break
    return SimClock(moment.astimezone(KST), speed)


class _Conn(ClientState):
    """One client connection: what the server knows of it, and its socket (the event loop's)."""

    def __init__(self, index: int, protocol: ServerProtocol, writer: asyncio.StreamWriter,
                 market: str = "kr") -> None:
        super().__init__(market)
        self.index = index
        self.protocol = protocol
        self.writer = writer
        self.received: list[str | bytes] = []
        self.sent_log: list[tuple[float, str]] = []  # (time, frame) of every non-REAL frame sent
        self.received_log: list[tuple[float, str | bytes]] = []

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
    frame. ``max_items_per_reg`` caps the items of one REG and ``max_items`` the items a connection
    may hold (account types not counted; ``None``: no cap): past either, REG gets a non-zero
    ``return_code`` and a Korean message, and nothing changes. ``clock`` decides what flows: 0B
    trades and 0D books in the regular session (09:00-15:30 KST), 0E after hours (default: 16:00 KST today, real speed).

    The US socket is served at ``us_url`` (``/api/us/websocket``) with the same tokens: FE trades
    and FT books of a seeded NASDAQ, NYSE and AMEX universe while a US session is open (pre-market
    04:00 to after-hours 20:00 US Eastern, daylight saving time included; ``us_clock()`` makes a
    clock there), F4/F5 from ``us_order``, and G-prefixed condition search (``us_conditions``;
    ``us_condition_spellings`` picks which documented reply names it uses).
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
        max_items: int | None = 200,
        token_expiry: float = 86_400.0,
        tick: float = 0.01,
        ssl_context: ssl.SSLContext | None = None,
        conditions: Mapping[str, str] | None = None,
        condition_page_size: int = 5,
        condition_churn: float = 0.5,
        us_conditions: Mapping[str, str] | None = None,
        us_condition_spellings: Mapping[str, str] | None = None,
    ) -> None:
        if tokens is None:
            tokens = {DEFAULT_TOKEN: DEFAULT_APPKEY}
        self.host = host
        self._requested_port = port
        self.port = 0
        self.tokens = TokenStore(tokens, credentials or {DEFAULT_APPKEY: DEFAULT_SECRETKEY}, clock=time.time,
                                 new_token=lambda: secrets.token_urlsafe(32), expiry=token_expiry)
        self.ping_interval = ping_interval
        self.max_missed_pings = max_missed_pings
        self.login_timeout = login_timeout
        self.feed = MarketFeed(seed, rate=rate, batch=batch)
        self.conditions = SimConditions(conditions, seed=seed, page_size=condition_page_size)
        self.us_conditions = SimUsConditions(us_conditions, seed=seed, page_size=condition_page_size,
                                             us_market=self.feed.us, spellings=us_condition_spellings)
        self.us_orders = UsOrders()
        self.kiwoom = KiwoomLogic(self.tokens, self.conditions, max_items_per_reg=max_items_per_reg,
                                  max_items=max_items, us_conditions=self.us_conditions)
        self.condition_churn = condition_churn  # random entries/exits per second, across conditions
        self.clock = clock or SimClock()
        self.ack_delay = ack_delay
        self.tick = tick
        self.ssl_context = ssl_context  # serve wss:// (and https:// token endpoints) with it
        self.write_buffer_limit = 8 * 1024 * 1024
        # counters (written on the loop thread, read anywhere)
        self.connections_total = 0
        self.events_sent = 0
        self.events_skipped = 0  # not generated because a client was not reading (backpressure)
        self._conns: list[_Conn] = []
        self._history: list[_Conn] = []  # every connection ever, by index
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def market(self) -> AfterHoursMarket:
        """The after-hours market (0E totals)."""
        return self.feed.market

    @property
    def regular(self) -> RegularMarket:
        """The regular-session market (0B trades, 0D books)."""
        return self.feed.regular

    @property
    def us(self) -> UsMarket:
        """The US market (FE trades, FT books)."""
        return self.feed.us

    @property
    def rate(self) -> float:
        """Events per second per connection, across its registrations."""
        return self.feed.rate

    @property
    def batch(self) -> int:
        """Entries per REAL frame."""
        return self.feed.batch

    @property
    def logins(self) -> int:
        return self.kiwoom.logins

    @property
    def login_attempts(self) -> int:
        return self.kiwoom.login_attempts

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The WebSocket URL to give ``RealtimeSession(url=...)``."""
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{self.host}:{self.port}{WS_PATH}"

    @property
    def us_url(self) -> str:
        """The US socket's URL (``/api/us/websocket``): a ``RealtimeSession`` on it is a US session."""
        return self.url.replace(WS_PATH, US_WS_PATH)

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
        return [c for c in self._conns if c.live]

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

    def _book(self, market: str) -> SimConditions:
        if market not in ("kr", "us"):
            raise ValueError(f"market must be 'kr' or 'us', got {market!r}")
        return self.us_conditions if market == "us" else self.conditions

    def condition_hit(self, seq: str, code: str, entered: bool = True, *, market: str = "kr") -> bool:
        """Move ``code`` into (or out of) condition ``seq`` and push the hit to its watchers
        (``market="us"``: a US condition, pushed as S2 on the US socket).

        Returns False, pushing nothing, when the membership already was that way."""
        book = self._book(market)

        def run() -> bool:
            changed = book.change(seq, code, entered)
            if changed:
                self._push_condition_hit(seq, code, entered, market)
            return changed
        return self._call(run)

    def silence_item(self, item: str) -> None:
        """Stop streaming ``item`` (a code, or a US symbol) to every client while the others flow
        and the connection stays healthy: the "connected but silent" subscription."""
        self._call(lambda: self.feed.silenced.add(item))

    def resume_item(self, item: str) -> None:
        """Stream ``item`` again after ``silence_item``."""
        self._call(lambda: self.feed.silenced.discard(item))

    def set_condition_members(self, seq: str, codes: Sequence[str], *, market: str = "kr") -> None:
        """Replace condition ``seq``'s members silently (as if they changed while nobody watched)."""
        book = self._book(market)

        def run() -> None:
            book.members[seq] = sorted(codes)
        self._call(run)

    def us_order(self, symbol: str, side: str = "buy", quantity: int = 1, price: float | None = None, *,
                 fill: bool = True) -> str:
        """Place a simulated US order: F4 (주문전송), F5 (접수) and, with ``fill``, F5 with the fill
        go to every US connection registered for F4 or F5. ``price`` defaults to the symbol's last
        trade. Returns the order number."""
        def run() -> str:
            at = price if price is not None else self.feed.us.stock(symbol).last
            order_no, pushes = self.us_orders.place(symbol, side, quantity, at, self.clock.now(), fill=fill)
            for type_code, values in pushes:
                frame = self.feed.us_account_frame(type_code, symbol, values)
                for conn in self._conns:
                    if conn.live and conn.market == "us" and conn.wants(type_code):
                        conn.send_text(frame, log=False)
            return order_no
        return self._call(run)

    def hold_condition_replies(self, hold: bool = True) -> None:
        """Receive condition search requests but answer none while ``hold`` (a reply in flight)."""
        def run() -> None:
            self.kiwoom.hold_conditions = hold
        self._call(run)

    def refuse_next_condition_requests(self, count: int = 1) -> None:
        """Refuse the next ``count`` condition search requests (non-zero return_code)."""
        def run() -> None:
            self.kiwoom.refuse_conditions += count
        self._call(run)

    def refuse_next_logins(self, count: int = 1) -> None:
        """Refuse the next ``count`` LOGINs as an invalid token would be (805004, R10004, close)."""
        def run() -> None:
            self.kiwoom.refuse_logins += count
        self._call(run)

    def hold_logins(self, hold: bool = True) -> None:
        """Leave LOGINs unanswered (a server that accepts the socket but never logs anyone in)."""
        def run() -> None:
            self.kiwoom.hold_logins = hold
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
            self.feed.rate = rate
            if batch is not None:
                self.feed.batch = max(1, batch)
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
        path = request.path.split("?")[0]
        if path not in (WS_PATH, US_WS_PATH):
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
        conn = _Conn(self.connections_total - 1, protocol, writer, "us" if path == US_WS_PATH else "kr")
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
        if self.ack_delay and isinstance(message, dict) and message.get("trnm") in ("REG", "REMOVE"):
            await asyncio.sleep(self.ack_delay)
        self._carry_out(conn, self.kiwoom.on_message(conn, message, self._conns))

    def _carry_out(self, conn: _Conn, effects: Effects) -> None:
        for frame in effects.replies:
            conn.send_text(frame)
        for other in effects.kicked:
            if isinstance(other, _Conn):
                other.send_text(system("R10001", KICKED_MSG))
                other.close(1000)
        if effects.close:
            conn.close(1000)

    def _push_condition_hit(self, seq: str, code: str, entered: bool, market: str = "kr") -> None:
        frame = json.dumps(self._book(market).hit_frame(seq, code, entered, self.clock.now()), ensure_ascii=False)
        for conn in self._conns:
            if conn.live and conn.market == market and seq in conn.watching:
                conn.send_text(frame, log=False)

    async def _ping_loop(self, conn: _Conn) -> None:
        while not conn.closed:
            await asyncio.sleep(self.ping_interval)
            if conn.silent or conn.closed:
                continue
            frame, close = self.kiwoom.ping_due(conn, self.max_missed_pings)
            conn.send_text(frame)
            if close:
                conn.close(1000)
                return

    async def _login_watchdog(self, conn: _Conn) -> None:
        await asyncio.sleep(self.login_timeout)
        if not conn.logged_in and not conn.closed and not conn.silent:
            self._carry_out(conn, self.kiwoom.refuse(NO_LOGIN_MSG))

    async def _market_loop(self) -> None:
        last_wall = time.monotonic()
        last_clock = self.clock.now()
        while True:
            await asyncio.sleep(self.tick)
            now_wall = time.monotonic()
            elapsed, last_wall = now_wall - last_wall, now_wall
            now = self.clock.now()
            for _, code in session_notices(last_clock, now):
                notice = self.feed.session_notice(code, now)
                for conn in self._conns:
                    if conn.live and conn.wants("0s"):
                        conn.send_text(notice, log=False)
            last_clock = now
            for market in ("kr", "us"):
                book = self._book(market)
                if self.condition_churn and book.random_change_due(self.condition_churn * elapsed):
                    change = book.random_change()
                    if change is not None:
                        self._push_condition_hit(*change, market)
            for conn in list(self._conns):
                if conn.logged_in and not conn.silent and conn.writable:
                    self._stream(conn, elapsed, now)

    def _stream(self, conn: _Conn, elapsed: float, now: dt.datetime) -> None:
        count = self.feed.owed(conn, elapsed)
        if count <= 0:
            return
        if conn.writer.transport.get_write_buffer_size() > self.write_buffer_limit:
            self.events_skipped += count
            return
        frames, events = self.feed.frames(conn, count, now)
        for frame in frames:
            conn.send_text(frame, log=False)
        self.events_sent += events
