"""Reading WebSocket frames in large chunks, through websocket-client's ``dispatcher`` hook.

websocket-client reads every frame with three ``recv`` calls plus a ``select`` (PITFALLS.md).
Each blocking call releases the GIL, and when the application's main thread is busy in Python
code, getting the GIL back costs up to the 5 ms switch interval: a plain ``WebSocketApp`` falls
to under 2,000 frames/s. ``ChunkedFrameReader`` is handed to ``run_forever(dispatcher=...)``;
websocket-client still opens the socket, does TLS, the handshake and every send, but the read
loop is ours: one blocking ``recv`` of up to 256 KiB, then every complete frame in the buffer is
parsed and handled before the next ``recv``. The socket stays blocking with no timeout (a timeout
makes CPython poll before every ``recv``); it is ended from other threads by ``shutdown``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["ChunkedFrameReader", "FrameHandler"]

logger = logging.getLogger("kiwoom_rt.transport")

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class FrameHandler(Protocol):
    """What the reader reports to (all calls come from the reading thread)."""

    def on_message(self, payload: bytes, opcode: int) -> None:
        """A complete text (opcode 1) or binary (opcode 2) message."""

    def on_chunk_done(self) -> None:
        """Every complete frame of the latest ``recv`` was handled."""

    def on_oversized(self, size: int) -> None:
        """A message larger than ``max_frame_bytes`` was skipped."""

    def on_ws_ping(self, payload: bytes) -> None:
        """A WebSocket-level ping control frame (answer with a pong)."""

    def on_close_frame(self, code: int, reason: str) -> None:
        """The server sent a close frame; reading stops after this call."""


def _unmask(key: bytes, data: bytes) -> bytes:
    # Servers must not mask (RFC 6455 5.1), but be lenient rather than corrupt the payload.
    size = len(data)
    stream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")


class ChunkedFrameReader:
    """A websocket-client custom dispatcher that owns the read loop of one connection.

    ``end_error`` tells afterwards why reading stopped: None after a close frame or ``stop()``,
    else the exception (``EOFError`` when the peer ended the TCP connection).
    """

    def __init__(self, handler: FrameHandler, *, bufsize: int = 256 * 1024,
                 max_frame_bytes: int = 4 * 1024 * 1024) -> None:
        self.handler = handler
        self.bufsize = bufsize
        self.max_frame_bytes = max_frame_bytes
        self.stopped = False
        self.end_error: BaseException | None = None
        self.bytes_read = 0
        self.frames_read = 0
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._fragment_size = 0
        self._skip_fragments = False

    # --- websocket-client's custom dispatcher interface (see WrappedDispatcher) ----------------

    def signal(self, signum: int, handler: Callable[..., Any]) -> None:
        """Never install signal handlers: we run on a worker thread, Ctrl-C belongs to the app."""

    def abort(self) -> None:
        self.stop()

    def timeout(self, seconds: float, callback: Callable[..., Any], *args: Any) -> None:
        """Unused: we pass no ping_timeout and never ask websocket-client to reconnect."""

    def buffwrite(self, sock: socket.socket, data: bytes, send: Callable[..., int],
                  handle_disconnect: Callable[..., Any]) -> None:
        """Every send of websocket-client lands here: write it all (the caller assumes so)."""
        sock.sendall(data)

    def read(self, sock: Any, read_callback: Callable[[], bool]) -> None:
        """The read loop; returns when the connection ends or ``stop()`` was called."""
        try:
            sock.settimeout(None)
            self._loop(sock)
        except Exception as exc:  # never let an exception escape into websocket-client
            if self.end_error is None and not self.stopped:
                self.end_error = exc

    def stop(self) -> None:
        """Ask the loop to end; the owner also shuts the socket down to wake a blocked recv."""
        self.stopped = True

    # --- the loop ----------------------------------------------------------------------------

    def _loop(self, sock: Any) -> None:
        recv = sock.recv
        bufsize = self.bufsize
        handler = self.handler
        parts: list[bytes] = []
        have = 0
        need = 0  # bytes needed before parsing is worth trying again
        skip = 0  # bytes of an oversized frame still to discard
        while not self.stopped:
            try:
                data = recv(bufsize)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                if not self.stopped:
                    self.end_error = exc
                return
            if not data:
                if not self.stopped:
                    self.end_error = EOFError("the server ended the TCP connection")
                return
            self.bytes_read += len(data)
            if skip:
                if len(data) <= skip:
                    skip -= len(data)
                    continue
                data, skip = data[skip:], 0
            if parts:
                parts.append(data)
                have += len(data)
                if have < need:
                    continue
                data = b"".join(parts)
                parts = []
            leftover, need, skip = self._parse(data)
            if leftover:
                parts = [leftover]
                have = len(leftover)
            handler.on_chunk_done()

    def _parse(self, data: bytes) -> tuple[bytes, int, int]:
        """Handle every complete frame in ``data``; returns (leftover, bytes needed, bytes to skip)."""
        handler = self.handler
        size = len(data)
        pos = 0
        while not self.stopped:
            if size - pos < 2:
                break
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2:pos + 10], "big")
                head = 10
            masked = b1 & 0x80
            if masked:
                head += 4
            opcode = b0 & 0x0F
            if length > self.max_frame_bytes and opcode < OP_CLOSE:
                handler.on_oversized(length)
                self._drop_fragments(opcode, bool(b0 & 0x80))
                end = pos + head + length
                if end > size:
                    return b"", 0, end - size
                pos = end
                continue
            end = pos + head + length
            if end > size:
                return data[pos:], end - pos, 0
            payload = data[pos + head:end]
            if masked:
                payload = _unmask(data[pos + head - 4:pos + head], payload)
            pos = end
            self.frames_read += 1
            if opcode in (OP_TEXT, OP_BINARY):
                if b0 & 0x80:  # FIN: the common, unfragmented case
                    handler.on_message(payload, opcode)
                else:
                    self._start_fragments(opcode, payload)
            elif opcode == OP_CONT:
                self._continue_fragments(payload, bool(b0 & 0x80))
            elif opcode == OP_PING:
                handler.on_ws_ping(payload)
            elif opcode == OP_CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                handler.on_close_frame(code, payload[2:].decode("utf-8", "replace"))
                self.stopped = True
                return b"", 0, 0
            # pongs and reserved opcodes: nothing to do
        return data[pos:], 0, 0

    def _start_fragments(self, opcode: int, payload: bytes) -> None:
        self._fragments = [payload]
        self._fragment_opcode = opcode
        self._fragment_size = len(payload)
        self._skip_fragments = False

    def _continue_fragments(self, payload: bytes, fin: bool) -> None:
        if not self._skip_fragments:
            self._fragment_size += len(payload)
            if self._fragment_size > self.max_frame_bytes:
                self.handler.on_oversized(self._fragment_size)
                self._fragments = []
                self._skip_fragments = True
            else:
                self._fragments.append(payload)
        if fin:
            if not self._skip_fragments and self._fragments:
                self.handler.on_message(b"".join(self._fragments), self._fragment_opcode)
            self._fragments = []
            self._skip_fragments = False

    def _drop_fragments(self, opcode: int, fin: bool) -> None:
        if opcode == OP_CONT:  # an oversized continuation: the rest of that message is void
            self._fragments = []
            self._skip_fragments = not fin
