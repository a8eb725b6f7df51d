"""One WebSocket connection attempt: open (TCP, TLS, handshake), read chunks, send frames, abort.

The connection knows nothing about the session. It reports to its owner through a small typed
interface (``ConnectionOwner``): ``frames_received`` (once per read step), ``binary_received`` and
``frame_rejected``.
websocket-client traps handled here (docs/design.md):

- TCP and TLS are opened here and handed to websocket-client's ``WebSocket`` for the handshake
  only, so ``abort`` can shut the socket down at any moment (during the handshake too), and the
  connect has a timeout without touching websocket-client's process-wide default. We never use
  ``WebSocketApp.run_forever``: reading is ``read_once``, callable by whichever thread holds the
  session's I/O role.
- ``abort`` never calls websocket-client's ``close()`` (which blocks for seconds from another
  thread); it stops the reader and shuts the socket down; the reading thread closes it.
- websocket-client draws a mask key from ``os.urandom(4)`` for every frame it sends, and each
  such call can wait for the GIL while the application's main thread computes; keys come from
  a pool refilled 1,024 keys at a time.
- Reads are the socket's own ``recv_into``, plain or TLS. (A read that kept the GIL for bytes
  already queued, through ``ctypes``, served plain ws:// only, which Kiwoom does not serve: it
  was removed by issue 38; docs/design.md keeps what it measured.)
- ``send`` can raise ``AttributeError`` or ``WebSocketConnectionClosedException`` during a
  teardown: both count as a lost connection, never as a crash.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import ssl
import threading
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

import attrs
import websocket

from ._core import Outcome
from ._proxy import HttpProxy, open_tunnel
from ._transport import ChunkedFrameReader
from ._urls import is_loopback
from .errors import ConnectError, FrameTooLargeError, KiwoomError

__all__ = ["Connection", "ConnectionOwner", "ConnectionSettings"]

logger = logging.getLogger("kiwoom_rt")


@attrs.frozen
class ConnectionSettings:
    """What every connection of a session is opened with."""

    url: str
    connect_timeout: float = 10.0
    max_frame_bytes: int = 4 * 1024 * 1024
    ssl_context: ssl.SSLContext | None = None
    read_size: int = 64 * 1024  # the first read's size; it doubles while reads come back full
    max_read_size: int = 1024 * 1024
    proxy: HttpProxy | None = None  # an HTTP CONNECT proxy to tunnel through


class ConnectionOwner(Protocol):
    """What a connection reports to (every call comes from the thread that called ``read_once``)."""

    def frames_received(self, conn: Connection, frames: list[bytes], received_at: float) -> None:
        """The complete text messages of one read step (possibly none), in order, all received
        at ``received_at``: once at the end of every step, and before a binary, oversized or close
        frame that follows them within a step."""

    def binary_received(self, conn: Connection, payload: bytes) -> None:
        """A binary message (Kiwoom sends text only)."""

    def frame_rejected(self, conn: Connection, error: KiwoomError) -> None:
        """A frame was refused (too large) and skipped; reading goes on."""


class _MaskKeys:
    """Mask keys for the frames we send, from a pool of ``os.urandom`` bytes (thread-safe)."""

    def __init__(self, keys: int = 1024) -> None:
        self._size = 4 * keys
        self._pool = b""
        self._pos = 0
        self._lock = threading.Lock()

    def __call__(self, length: int) -> bytes:
        with self._lock:
            pos = self._pos
            if pos + length > len(self._pool):
                self._pool = os.urandom(max(self._size, length))
                pos = 0
            self._pos = pos + length
            return self._pool[pos:pos + length]


_MASK_KEYS = _MaskKeys()


def masked_close_frame(code: int = 1000) -> bytes:
    """A client close frame with a fresh mask key (RFC 6455 5.3: a new, unpredictable key for
    every frame)."""
    key = _MASK_KEYS(4)
    payload = code.to_bytes(2, "big")
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x88, 0x80 | len(payload)]) + key + masked


class Connection:
    """One attempt. ``open`` and ``read_once`` run on the thread holding the I/O role; ``send``
    and ``abort`` may be called from any thread."""

    def __init__(self, settings: ConnectionSettings, owner: ConnectionOwner, number: int) -> None:
        self.settings = settings
        self.owner = owner
        self.number = number
        self.reader = ChunkedFrameReader(self, bufsize=settings.read_size, max_bufsize=settings.max_read_size,
                                         max_frame_bytes=settings.max_frame_bytes)
        self.opened = False
        self.close_code: int | None = None
        self.close_reason = ""
        self._ws: websocket.WebSocket | None = None
        self._raw: socket.socket | None = None
        self._recv: Any = None
        self._aborted = False
        self._stamped = -1  # the read whose time ``_read_at`` is
        self._read_at = 0.0

    def __repr__(self) -> str:
        state = "open" if self.opened and not self.reader.stopped else "ended" if self.reader.stopped else "new"
        return f"<Connection #{self.number} {urlsplit(self.settings.url).hostname} {state}>"

    def was_aborted(self) -> bool:
        """True once ``abort`` was called (from any thread)."""
        return self._aborted

    # --- opening ---------------------------------------------------------------------------

    def open(self) -> None:
        """TCP, TLS and the WebSocket handshake; raises ``ConnectError``."""
        url = self.settings.url
        try:
            raw = self._open_socket()
            if self.was_aborted():
                raise ConnectError("aborted")
            host = urlsplit(url).hostname or ""
            ws = websocket.WebSocket(get_mask_key=_MASK_KEYS, skip_utf8_validation=True, enable_multithread=True)
            self._ws = ws
            handshake: Any = ws.connect  # untyped in websocket-client
            handshake(url, socket=raw, timeout=self.settings.connect_timeout,
                      http_no_proxy=[host] if is_loopback(host) else None)
            raw.settimeout(None)  # a timeout makes CPython poll before every recv
        except ConnectError:
            self.close()
            raise
        except (OSError, websocket.WebSocketException, ValueError) as exc:
            self.close()
            proxy = self.settings.proxy
            via = f" through the proxy {proxy.address}" if proxy is not None else ""
            raise ConnectError(f"cannot connect to {url}{via}: {exc}") from exc
        if self.was_aborted():  # abort() ran on another thread during the handshake
            self.close()
            raise ConnectError("aborted")
        self._recv = raw.recv_into
        self.opened = True

    def _open_socket(self) -> socket.socket:
        """TCP to the server or to the proxy (then a CONNECT tunnel), then TLS end to end."""
        parts = urlsplit(self.settings.url)
        host = parts.hostname or ""
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        proxy = self.settings.proxy
        sock = self._open_tcp(proxy.host, proxy.port) if proxy is not None else self._open_tcp(host, port)
        try:
            if proxy is not None:
                open_tunnel(sock, proxy, host, port)
            if secure:
                context = self.settings.ssl_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=host)
                self._raw = sock
        except BaseException:
            sock.close()
            self._raw = None
            raise
        return sock

    def _open_tcp(self, host: str, port: int) -> socket.socket:
        last_error: OSError | None = None
        for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            self._raw = sock
            try:
                sock.settimeout(self.settings.connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect(address)
                return sock
            except OSError as exc:
                last_error = exc
                sock.close()
                self._raw = None
                if self._aborted:
                    break
        raise last_error or OSError(f"no address for {host}")

    # --- reading (the I/O thread) ----------------------------------------------------------

    def read_once(self) -> bool:
        """Read one chunk and report its frames; False once the connection is over."""
        if self._recv is None:
            return False
        return self.reader.read_once(self._recv)

    def transport_outcome(self) -> Outcome:
        """How the transport saw the end (the session may know a better reason)."""
        if self.close_code is not None:
            return Outcome("closed", code=self.close_code, reason=self.close_reason or f"close code {self.close_code}")
        error = self.reader.end_error
        return Outcome("lost", reason=str(error or "connection lost"), error=error)

    # --- FrameHandler (the reader calls these) -----------------------------------------------

    def on_texts(self, payloads: list[bytes]) -> None:
        self.on_step(payloads)

    def on_step(self, payloads: list[bytes]) -> None:
        reads = self.reader.reads
        if reads != self._stamped:  # frames are stamped with the time of the read that brought them
            self._stamped = reads
            self._read_at = time.time()
        self.owner.frames_received(self, payloads, self._read_at)

    def on_binary(self, payload: bytes) -> None:
        self.owner.binary_received(self, payload)

    def on_oversized(self, size: int) -> None:
        self.owner.frame_rejected(self, FrameTooLargeError(size, self.settings.max_frame_bytes))

    def on_ws_ping(self, payload: bytes) -> None:
        ws = self._ws
        if ws is not None:
            try:
                ws.pong(payload)
            except (OSError, AttributeError, websocket.WebSocketException):
                pass

    def on_close_frame(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason
        self._send_close_frame()  # answer the closing handshake; the server closes TCP next

    # --- any thread ---------------------------------------------------------------------------

    def send(self, frame: str | bytes) -> bool:
        """Send one text frame; False (and the connection is aborted) if it could not be sent."""
        ws = self._ws
        if ws is None or not self.opened:
            return False
        try:
            ws.send(frame, websocket.ABNF.OPCODE_TEXT)
            return True
        except (OSError, AttributeError, websocket.WebSocketException) as exc:
            # AttributeError: the socket went away between two sends during teardown
            logger.debug("send failed on %r: %s", self, exc)
            self.abort()
            return False

    def abort(self) -> None:
        """End the connection now, from any thread: a close frame if it can go at once, no wait."""
        self._aborted = True
        self.reader.stop()
        raw = self._raw
        if raw is None:
            return
        if self.opened:
            self._send_close_frame()
        try:
            raw.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv; the reading thread closes it
        except OSError:
            pass

    def _send_close_frame(self) -> None:
        """A polite close frame, only if no other send is under way and it fits in the send buffer
        right now (a portable non-blocking check: select works on sockets on every platform)."""
        ws, raw = self._ws, self._raw
        if ws is None or raw is None:
            return
        lock = getattr(ws, "lock", None)
        if lock is not None and not lock.acquire(blocking=False):
            return
        try:
            _, writable, _ = select.select([], [raw], [], 0)
            if writable:
                raw.send(masked_close_frame())
        except (OSError, ValueError):
            pass
        finally:
            if lock is not None:
                lock.release()

    def close(self) -> None:
        """Release the socket (the reading thread, once reading is over)."""
        raw = self._raw
        self._raw = None
        self._recv = None
        if raw is None:
            return
        try:
            raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            raw.close()
        except OSError:
            pass
