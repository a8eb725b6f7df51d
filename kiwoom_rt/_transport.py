"""Reading WebSocket frames in large chunks: one ``recv_into`` of up to 1 MiB, then every frame in it.

websocket-client reads every frame with three ``recv`` calls plus a ``select``. Each blocking call
releases the GIL, and when the application's main thread is busy in Python code, getting the GIL
back costs up to the 5 ms switch interval (docs/design.md): a plain ``WebSocketApp`` falls to under
2,000 frames/s. websocket-client still does the opening handshake and every send; reading is ours.

``ChunkedFrameReader.read_once`` makes one blocking ``recv_into`` and hands every complete text frame
in the buffer over as one list before returning. The buffer starts at 64 KiB and doubles, up to
1 MiB, while reads come back full: a read that blocks costs a GIL hand-off, so under a flood the
more a read carries, the fewer hand-offs per frame (a read that finds its bytes queued keeps the
GIL where the platform allows: ``_holding_recv``). Its state lives in the object, not on a
stack, so whichever thread holds the session's I/O role can call it next. The socket stays
blocking with no timeout (a timeout makes CPython poll before every ``recv``); other threads end
it with ``shutdown``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["ChunkedFrameReader", "FrameHandler"]

logger = logging.getLogger("kiwoom_rt.transport")

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class FrameHandler(Protocol):
    """What the reader reports to (all calls come from the reading thread), in arrival order."""

    def on_texts(self, payloads: list[bytes]) -> None:
        """Complete text messages in order, handed over before a frame that must follow them
        (binary, oversized, close) arrives in the middle of a step (the list is the callee's)."""

    def on_step(self, payloads: list[bytes]) -> None:
        """The step is done: its remaining complete text messages, in order (possibly none; a
        non-empty list is the callee's to keep). One call per step: the owner is entered once."""

    def on_binary(self, payload: bytes) -> None:
        """A complete binary message (Kiwoom sends text only)."""

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
    """Reads and parses the frames of one connection, one chunk per ``read_once``.

    ``end_error`` tells afterwards why reading stopped: None after a close frame or ``stop()``,
    else the exception (``EOFError`` when the peer ended the TCP connection).
    """

    def __init__(self, handler: FrameHandler, *, bufsize: int = 64 * 1024, max_bufsize: int = 1024 * 1024,
                 max_frame_bytes: int = 4 * 1024 * 1024, step_bytes: int = 32 * 1024) -> None:
        self.handler = handler
        self.step_bytes = step_bytes  # bytes of frames parsed (and then delivered) per step
        self.bufsize = bufsize
        self.max_bufsize = max(bufsize, max_bufsize)
        self._buffer = bytearray(bufsize)
        self._view = memoryview(self._buffer)
        self.max_frame_bytes = max_frame_bytes
        self.stopped = False
        self.end_error: BaseException | None = None
        self.reads = 0  # socket reads that returned data
        self.bytes_read = 0
        self.frames_read = 0
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._fragment_size = 0
        self._skip_fragments = False
        self._texts: list[bytes] = []  # complete text messages of the current read
        self._parts: list[bytes] = []  # an incomplete frame, across reads
        self._have = 0
        self._need = 0  # bytes needed before parsing is worth trying again
        self._skip = 0  # bytes of an oversized frame still to discard
        self._data = b""  # the bytes being parsed ...
        self._pos = 0  # ... from here
        self._more = False  # complete frames may remain in them

    def stop(self) -> None:
        """Ask reading to end; the owner also shuts the socket down to wake a blocked recv."""
        self.stopped = True

    def read_once(self, recv_into: Callable[[Any], int]) -> bool:
        """One step: parse up to ``step_bytes`` of what an earlier read left, or else one blocking
        ``recv_into`` and its first ``step_bytes``; then one ``on_step`` with its text messages.

        A read can bring a megabyte, but its frames are handed over a step at a time, so the
        owner delivers small batches (warm in the CPU's caches) between steps, with no socket
        call, and so no GIL hand-off, in between. Returns False once reading is over;
        ``end_error`` then says why.
        """
        if self.stopped:
            return False
        if not self._more:
            try:
                size = recv_into(self._buffer)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                if not self.stopped:
                    self.end_error = exc
                self.stopped = True
                return False
            if not size:
                if not self.stopped:
                    self.end_error = EOFError("the server ended the TCP connection")
                self.stopped = True
                return False
            self.reads += 1
            self.bytes_read += size
            data = bytes(self._view[:size])
            if size == self.bufsize and size < self.max_bufsize:
                # the kernel held more: read more per GIL acquisition (docs/design.md)
                self.bufsize = min(self.max_bufsize, 2 * size)
                self._buffer = bytearray(self.bufsize)
                self._view = memoryview(self._buffer)
            self._take(data)
        self._step()
        return not self.stopped

    def _take(self, data: bytes) -> None:
        """New bytes from the socket (nothing parsable is buffered when this is called)."""
        skip = self._skip
        if skip:
            if len(data) <= skip:
                self._skip = skip - len(data)
                return
            data, self._skip = data[skip:], 0
        if self._parts:
            self._parts.append(data)
            self._have += len(data)
            if self._have < self._need:
                return
            data = b"".join(self._parts)
            self._parts = []
        self._data = data
        self._pos = 0
        self._more = True

    def _step(self) -> None:
        if self._more:
            data = self._data
            pos, need, self._skip, more = self._parse(data, self._pos, self.step_bytes)
            if more:
                self._pos = pos
            else:
                self._more = False
                self._data = b""
                if pos < len(data):  # an incomplete frame: wait for the rest
                    self._parts = [data[pos:]]
                    self._have = len(data) - pos
                    self._need = need
        texts = self._texts
        if texts:
            self._texts = []
        self.handler.on_step(texts)

    def _flush_texts(self) -> None:
        """Hand the text messages gathered so far over (before anything that must follow them)."""
        texts = self._texts
        if texts:
            self._texts = []
            self.handler.on_texts(texts)

    def read(self, sock: Any) -> None:
        """Read until the connection ends (for tests and simple tools; sessions use ``read_once``)."""
        recv_into = sock.recv_into
        while self.read_once(recv_into):
            pass

    def _parse(self, data: bytes, pos: int, limit: int) -> tuple[int, int, int, bool]:
        """Handle the complete frames in ``data`` from ``pos`` until ``limit`` bytes were used.

        Returns (where parsing stopped, bytes the incomplete frame there needs, bytes of an
        oversized frame still to skip, True if complete frames may remain after ``limit``).
        """
        handler = self.handler
        texts = self._texts
        add_text = texts.append
        size = len(data)
        stop_at = pos + limit
        max_frame = self.max_frame_bytes
        while not self.stopped:
            if pos >= stop_at:
                return pos, 0, 0, pos < size
            if size - pos < 2:
                break
            b0 = data[pos]
            b1 = data[pos + 1]
            # The common case, first and cheap: a complete, unmasked, unfragmented text frame of
            # less than 64 KiB (a Kiwoom push is a few hundred bytes).
            if b0 == 0x81 and b1 <= 126:
                if b1 < 126:
                    start, end = pos + 2, pos + 2 + b1
                elif size - pos >= 4:
                    length = (data[pos + 2] << 8) | data[pos + 3]
                    start, end = pos + 4, pos + 4 + length
                    if length > max_frame:
                        start = -1  # the general path below refuses it
                else:
                    break
                if start >= 0:
                    if end > size:
                        return pos, end - pos, 0, False
                    self.frames_read += 1
                    add_text(data[start:end])
                    pos = end
                    continue
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
                self._flush_texts()
                texts = self._texts
                add_text = texts.append
                handler.on_oversized(length)
                self._drop_fragments(opcode, bool(b0 & 0x80))
                end = pos + head + length
                if end > size:
                    return size, 0, end - size, False
                pos = end
                continue
            end = pos + head + length
            if end > size:
                return pos, end - pos, 0, False
            payload = data[pos + head:end]
            if masked:
                payload = _unmask(data[pos + head - 4:pos + head], payload)
            pos = end
            self.frames_read += 1
            if opcode in (OP_TEXT, OP_BINARY):
                if b0 & 0x80:  # FIN: the common, unfragmented case
                    self._message(payload, opcode)
                else:
                    self._start_fragments(opcode, payload)
            elif opcode == OP_CONT:
                self._continue_fragments(payload, bool(b0 & 0x80))
            elif opcode == OP_PING:
                handler.on_ws_ping(payload)
            elif opcode == OP_CLOSE:
                self._flush_texts()
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                handler.on_close_frame(code, payload[2:].decode("utf-8", "replace"))
                self.stopped = True
                return size, 0, 0, False
            texts = self._texts  # a binary message or an oversized one flushed the list
            add_text = texts.append
            # pongs and reserved opcodes: nothing to do
        return pos, 0, 0, False

    def _message(self, payload: bytes, opcode: int) -> None:
        if opcode == OP_TEXT:
            self._texts.append(payload)
        else:
            self._flush_texts()
            self.handler.on_binary(payload)

    def _start_fragments(self, opcode: int, payload: bytes) -> None:
        self._fragments = [payload]
        self._fragment_opcode = opcode
        self._fragment_size = len(payload)
        self._skip_fragments = False

    def _continue_fragments(self, payload: bytes, fin: bool) -> None:
        if not self._skip_fragments:
            self._fragment_size += len(payload)
            if self._fragment_size > self.max_frame_bytes:
                self._flush_texts()
                self.handler.on_oversized(self._fragment_size)
                self._fragments = []
                self._skip_fragments = True
            else:
                self._fragments.append(payload)
        if fin:
            if not self._skip_fragments and self._fragments:
                self._message(b"".join(self._fragments), self._fragment_opcode)
            self._fragments = []
            self._skip_fragments = False

    def _drop_fragments(self, opcode: int, fin: bool) -> None:
        if opcode == OP_CONT:  # an oversized continuation: the rest of that message is void
            self._fragments = []
            self._skip_fragments = not fin
