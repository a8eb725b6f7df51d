"""Reading what the kernel already holds without giving the GIL away.

``socket.recv_into`` releases the GIL around its system call, even when the bytes are already
queued and the call returns in microseconds. When the application's main thread is busy in
Python code, it is waiting for the GIL at that moment: the release wakes it, it usually takes
the GIL before the reading thread's call returns, and the reading thread then waits for it to
give the GIL back, up to a whole switch interval (5 ms by default). So under a busy main thread
every read costs a switch interval, even a read that had nothing to wait for. Paced traffic
(bytes queued during one read's work, found by the next) pays it on almost every read.

``holding_recv_into(sock)`` gives a ``recv_into`` that first takes what the kernel holds with a
non-blocking ``recv`` (``MSG_DONTWAIT``) called through ``ctypes.PyDLL``, whose calls keep the
GIL: a non-blocking call returns at once, with bytes or without. Only when nothing is queued
(or the call fails in any way) does it call the socket's own ``recv_into``, which blocks with the
GIL released, as before, and raises or returns exactly as it always did: an error, the end of
the stream and an empty kernel queue all go that way.

Plain sockets only, and only where the C library's ``recv`` and ``MSG_DONTWAIT`` exist (Linux,
macOS, the BSDs). A TLS socket's reads go through OpenSSL, which releases the GIL on every read;
on Windows (no ``MSG_DONTWAIT``) and wherever ``ctypes`` cannot be loaded, this is the socket's
own ``recv_into``.

Holding the GIL for the call also keeps another thread from closing the socket between reading
its descriptor and the call (closing needs the GIL), so the descriptor cannot be reused under
the call.
"""

from __future__ import annotations

import functools
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

__all__ = ["holding_recv_into"]

logger = logging.getLogger("kiwoom_rt.transport")


@functools.cache
def _libc_recv() -> Any:
    """The C library's ``recv`` through ``ctypes.PyDLL`` (called with the GIL held), or None."""
    try:
        import ctypes

        function = ctypes.PyDLL(None).recv
        function.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        function.restype = ctypes.c_ssize_t
    except Exception as exc:  # no ctypes, no C library symbols: the socket's own call
        logger.debug("reads release the GIL on every call: %s", exc)
        return None
    return function


class _HoldingRecvInto:
    """``recv_into(buffer)`` of one plain socket: queued bytes without releasing the GIL, else
    the socket's own (blocking) call."""

    __slots__ = ("_address", "_buffer", "_ctypes", "_fileno", "_flags", "_pinned", "_plain", "_recv")

    def __init__(self, sock: socket.socket, recv: Any, flags: int) -> None:
        import ctypes

        self._ctypes = ctypes
        self._plain = sock.recv_into
        self._fileno = sock.fileno
        self._recv = recv
        self._flags = flags
        self._buffer: bytearray | None = None
        self._pinned: Any = None  # a ctypes view of the buffer (it keeps the buffer from moving)
        self._address = 0

    def __call__(self, buffer: bytearray) -> int:
        if buffer is not self._buffer:  # (the reader's buffer: the same until it grows)
            ctypes = self._ctypes
            self._pinned = (ctypes.c_char * len(buffer)).from_buffer(buffer)
            self._address = ctypes.addressof(self._pinned)
            self._buffer = buffer
        fd = self._fileno()
        if fd >= 0:
            size: int = self._recv(fd, self._address, len(buffer), self._flags)
            if size > 0:
                return size
        return self._plain(buffer)


def holding_recv_into(sock: socket.socket) -> Callable[[bytearray], int]:
    """``sock.recv_into``, reading what is already queued without releasing the GIL where the
    platform allows it (see the module docstring)."""
    flags = getattr(socket, "MSG_DONTWAIT", None)  # (absent on Windows)
    if flags is None or isinstance(sock, ssl.SSLSocket):
        return sock.recv_into
    recv = _libc_recv()
    if recv is None:
        return sock.recv_into
    return _HoldingRecvInto(sock, recv, flags)
