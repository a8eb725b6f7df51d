"""A small HTTP/1.1 endpoint on one daemon thread, for the metrics scrape (runtime layer).

Why not ``prometheus_client.start_http_server``: it runs a WSGI server that polls every half
second, starts a thread per request and writes headers and body with separate calls. Each of
those steps gives the interpreter lock away and takes it back, and in an application whose main
thread is busy computing every taking back can wait a switch interval (5 ms) while the reading
thread waits behind it. This endpoint sleeps in one ``select`` until a scraper writes, keeps the
scraper's connection open between scrapes (HTTP/1.1 keep-alive, as Prometheus does), and answers
a scrape with one read and one write: three lock acquisitions per scrape, none while idle.

It serves ``GET`` and ``HEAD`` of the paths it is given, answers everything else with a status
(404, 405, 400, 431), closes connections idle for ``idle_timeout`` seconds, and keeps at most
``max_connections`` open (the oldest idle one goes first). Every socket is non-blocking: a client
that leaves its answers unread for ``io_timeout`` seconds (or more than ``_MAX_UNREAD`` bytes of
them) gets its connection closed; meanwhile no more of its requests are read, and pipelined
requests are answered a few per round, so no client can starve the others. A renderer that
raises gives a 500 and a logged traceback; the endpoint keeps serving. Portable: sockets and ``selectors`` only.
"""

from __future__ import annotations

import logging
import math
import selectors
import socket
import threading
import time
from collections.abc import Callable

__all__ = ["HttpEndpoint", "Renderer"]

logger = logging.getLogger(__name__)

#: ``render(accept_header) -> (body, content_type)``
Renderer = Callable[[str], tuple[bytes, str]]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 500: "Internal Server Error"}
_MAX_HEAD = 16 * 1024
#: Pipelined requests answered per connection per round of the loop: a client that sends
#: thousands at once is served in turns with everyone else, and the loop gives the interpreter
#: lock back (in ``select``) between turns.
_PER_ROUND = 8
#: Answers a client may leave unread before its connection is closed: one client that never
#: reads cannot hold memory or the serving thread.
_MAX_UNREAD = 1024 * 1024


class _Connection:
    __slots__ = ("buffer", "last", "out", "sock", "stalled", "want_close", "writing")

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.buffer = b""  # received, not answered yet
        self.out = b""  # answers the client has not taken yet
        self.last = now
        self.want_close = False  # close once ``out`` is sent
        self.writing = False  # registered for EVENT_WRITE
        self.stalled = 0.0  # when ``out`` last made no progress (it is closed past ``io_timeout``)


def _response(status: int, body: bytes, content_type: str, *, head: bool, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}", f"Content-Type: {content_type}",
             f"Content-Length: {len(body)}"]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body)


class HttpEndpoint:
    """Serve ``render`` at ``paths`` on ``addr:port`` (``port=0`` picks a free one: see ``port``)
    from a daemon thread named ``name`` until ``close()``."""

    def __init__(self, render: Renderer, addr: str = "127.0.0.1", port: int = 0, *,
                 paths: tuple[str, ...] = ("/metrics", "/"), name: str = "kiwoom-rt-http",
                 idle_timeout: float = 300.0, io_timeout: float = 10.0, max_connections: int = 16) -> None:
        self._render = render
        self._paths = frozenset(paths)
        self._idle_timeout = idle_timeout
        self._io_timeout = io_timeout
        self._max_connections = max_connections
        family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[0][0]
        self._listener = socket.create_server((addr, port), family=family)
        self._listener.setblocking(False)
        self.addr = addr
        self.port: int = self._listener.getsockname()[1]
        self._wake_read, self._wake_write = socket.socketpair()  # close() wakes the select
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._connections: dict[socket.socket, _Connection] = {}
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and close every socket (idempotent)."""
        with self._lock:
            if self._closing.is_set():
                return
            self._closing.set()
        try:
            self._wake_write.send(b"x")
        except OSError:
            pass
        if self._thread is not threading.current_thread():
            self._thread.join(self._io_timeout + 1.0)
        for sock in (self._listener, self._wake_read, self._wake_write, *self._connections):
            sock.close()
        self._connections.clear()
        self._selector.close()

    # --- the serving thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing.is_set():
            try:
                if self._round():
                    return
            except Exception:  # a bug of ours must not end the endpoint: logged, and serving goes on
                logger.exception("metrics endpoint: serving failed; going on")
                pause = self._closing.wait(0.05)
                if pause:
                    return

    def _round(self) -> bool:
        """One select and what it found; True when the endpoint is closing."""
        busy = any(not c.out and b"\r\n\r\n" in c.buffer for c in self._connections.values())
        timeout = 0.0 if busy else self._next_idle_deadline()
        try:
            ready = self._selector.select(timeout)
        except OSError:  # a socket closed under us by close()
            if self._closing.is_set():
                return True
            raise
        now = time.monotonic()
        for key, events in ready:
            sock = key.fileobj
            if sock is self._wake_read or self._closing.is_set():
                return True
            if sock is self._listener:
                self._accept(now)
                continue
            assert isinstance(sock, socket.socket)
            connection = self._connections.get(sock)
            if connection is None:  # dropped earlier in this round (evicted, or failed)
                continue
            if events & selectors.EVENT_WRITE:
                self._flush(connection)
            if events & selectors.EVENT_READ and sock in self._connections:
                self._receive(connection, now)
        # requests already buffered (pipelined), a few per connection per round
        for connection in list(self._connections.values()):
            if not connection.out and b"\r\n\r\n" in connection.buffer and connection.sock in self._connections:
                self._serve(connection)
        self._expire(time.monotonic())
        return False

    def _next_idle_deadline(self) -> float | None:
        if not self._connections:
            return None
        deadline = min(min(c.last + self._idle_timeout, c.stalled + self._io_timeout if c.out else math.inf)
                       for c in self._connections.values())
        return max(0.0, deadline - time.monotonic())

    def _accept(self, now: float) -> None:
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            logger.warning("metrics endpoint: accept failed: %s", error)
            return
        if len(self._connections) >= self._max_connections:
            oldest = min(self._connections.values(), key=lambda connection: connection.last)
            self._drop(oldest.sock)
        sock.setblocking(False)  # every read and write is one that cannot wait
        self._connections[sock] = _Connection(sock, now)
        self._selector.register(sock, selectors.EVENT_READ, None)

    def _drop(self, sock: socket.socket) -> None:
        self._connections.pop(sock, None)
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def _expire(self, now: float) -> None:
        """Close connections idle too long, and those whose answers have waited unread for longer
        than ``io_timeout`` (a client that does not read)."""
        for connection in list(self._connections.values()):
            if now - connection.last >= self._idle_timeout:
                self._drop(connection.sock)
            elif connection.out and now - connection.stalled >= self._io_timeout:
                logger.warning("metrics endpoint: a client left its answers unread for %.0f s; its connection is "
                               "closed", now - connection.stalled)
                self._drop(connection.sock)

    def _receive(self, connection: _Connection, now: float) -> None:
        sock = connection.sock
        try:
            chunk = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(sock)
            return
        if not chunk:
            self._drop(sock)
            return
        connection.buffer += chunk
        connection.last = now
        if not connection.out:
            self._serve(connection)

    def _serve(self, connection: _Connection) -> None:
        """Answer up to ``_PER_ROUND`` of the requests buffered on ``connection``."""
        sock = connection.sock
        for _ in range(_PER_ROUND):
            end = connection.buffer.find(b"\r\n\r\n")
            if end < 0 or end > _MAX_HEAD:
                break
            head = connection.buffer[:end]
            connection.buffer = connection.buffer[end + 4:]
            if not self._answer(connection, head):
                connection.want_close = True
                connection.buffer = b""
                break
            if connection.out:
                break  # the client is not taking answers as fast as it asks: wait for it
        if not connection.want_close:
            end = connection.buffer.find(b"\r\n\r\n")
            if end > _MAX_HEAD or (end < 0 and len(connection.buffer) > _MAX_HEAD):
                # the head limit holds however the head arrives: in one read or in many
                connection.buffer = b""
                connection.want_close = True
                self._write(connection, _response(431, b"request head too large\n", "text/plain; charset=utf-8",
                                                  head=False, close=True))
        if connection.want_close and not connection.out and sock in self._connections:
            self._drop(sock)

    def _write(self, connection: _Connection, data: bytes) -> None:
        """Send what the socket takes now; keep the rest (bounded) for when it is writable."""
        if connection.out:
            connection.out += data
        else:
            try:
                sent = connection.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._drop(connection.sock)
                return
            connection.out = data[sent:]
            connection.stalled = time.monotonic()
        if len(connection.out) > _MAX_UNREAD:
            logger.warning("metrics endpoint: a client left %d bytes of answers unread; its connection is closed",
                           len(connection.out))
            self._drop(connection.sock)
            return
        if connection.out and not connection.writing:
            connection.writing = True
            self._selector.modify(connection.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, None)

    def _flush(self, connection: _Connection) -> None:
        sock = connection.sock
        try:
            sent = sock.send(connection.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(sock)
            return
        connection.out = connection.out[sent:]
        if connection.out:
            connection.stalled = time.monotonic()
            return
        if connection.want_close:
            self._drop(sock)
            return
        connection.writing = False
        self._selector.modify(sock, selectors.EVENT_READ, None)

    def _answer(self, connection: _Connection, head: bytes) -> bool:
        """Answer one request; False when the connection must close after it."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            self._write(connection, _response(400, b"bad request\n", "text/plain; charset=utf-8", head=False,
                                              close=True))
            return False
        method, target, version = parts
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if "content-length" in headers or "transfer-encoding" in headers:
            keep = False  # a body we do not read: this connection cannot carry another request
        head_only = method == "HEAD"
        if method not in ("GET", "HEAD"):
            status, body, content_type = 405, b"GET or HEAD only\n", "text/plain; charset=utf-8"
        elif target.partition("?")[0] not in self._paths:
            status, body, content_type = 404, b"not found: try /metrics\n", "text/plain; charset=utf-8"
        else:
            try:
                body, content_type = self._render(headers.get("accept", ""))
                status = 200
            except Exception:
                logger.exception("metrics endpoint: rendering the metrics failed")
                status, body, content_type = 500, b"rendering the metrics failed\n", "text/plain; charset=utf-8"
        self._write(connection, _response(status, body, content_type, head=head_only, close=not keep))
        return keep
