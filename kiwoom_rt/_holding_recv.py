"""Reading what the kernel already holds without giving the GIL away.

``socket.recv_into`` releases the GIL around its system call, even when the bytes are already
queued and the call returns in microseconds. When the application's main thread is busy in
Python code, it is waiting for the GIL at that moment: the release wakes it, it usually takes
the GIL before the reading thread's call returns, and the reading thread then waits for it to
give the GIL back, up to a whole switch interval (5 ms by default). So under a busy main thread
every read costs a switch interval, even a read that had nothing to wait for. Paced traffic
(bytes queued during one read's work, found by the next) pays it on almost every read.

``holding_recv_into(sock)`` gives a ``recv_into`` that first asks the operating system, through
``ctypes.PyDLL`` (whose calls keep the GIL), whether bytes are queued, and if so takes them with a
plain ``recv`` of the same library, which cannot block then (this thread is the socket's only
reader). The question is ``poll`` with a zero timeout on Linux, macOS and the BSDs, and
``ioctlsocket(FIONREAD)`` (the count of queued bytes; the read asks for no more) on 64-bit
Windows. Only when nothing is queued, or anything at all goes another way (an error, the end of
the stream, a library that cannot be loaded), does it call the socket's own ``recv_into``, which
blocks with the GIL released and raises or returns exactly as it always did.

Plain sockets only: a TLS socket's reads go through OpenSSL, whose every read releases the GIL
(CPython wraps ``SSL_read`` so), so TLS sockets keep their own ``recv_into``. So does 32-bit
Windows, whose socket functions use a calling convention ``PyDLL`` does not.

Holding the GIL through the calls also keeps another thread from closing the socket between
reading its descriptor and the calls (closing needs the GIL), so the descriptor cannot be reused
under them.
"""

from __future__ import annotations

import functools
import logging
import socket
import ssl
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["holding_recv_into"]

logger = logging.getLogger("kiwoom_rt.transport")

_POLLIN = 0x001  # the same on Linux, macOS and the BSDs
_FIONREAD_WINDOWS = 0x4004667F  # _IOR('f', 127, u_long) in winsock2.h


class _Queued:
    """The platform's socket calls that keep the GIL. ``check()`` makes a new ``queued(fd, size)``:
    how many bytes a read may take without blocking (0: none known), with a query structure of
    its own; ``recv(fd, address, size, 0)`` is the C library's ``recv``.

    Each reader needs its own ``queued``: the interpreter may switch threads right after the
    query's C call returns, before its result is read, so a structure shared between readers
    could hand one socket another's answer and send its ``recv`` into a block with the GIL held.
    """

    def __init__(self) -> None:
        import ctypes

        if sys.platform == "win32":
            if ctypes.sizeof(ctypes.c_void_p) != 8:
                raise OSError("32-bit Windows: its socket functions are stdcall")
            library = ctypes.PyDLL("ws2_32")
            ioctl = library.ioctlsocket
            ioctl.argtypes = (ctypes.c_size_t, ctypes.c_long, ctypes.POINTER(ctypes.c_ulong))
            ioctl.restype = ctypes.c_int
            recv = library.recv
            recv.argtypes = (ctypes.c_size_t, ctypes.c_void_p, ctypes.c_int, ctypes.c_int)
            recv.restype = ctypes.c_int

            def check() -> Callable[[int, int], int]:
                count = ctypes.c_ulong(0)
                pointer = ctypes.byref(count)

                def queued(fd: int, size: int) -> int:
                    if ioctl(fd, _FIONREAD_WINDOWS, pointer) != 0:
                        return 0
                    return min(count.value, size)
                return queued
        else:
            library = ctypes.PyDLL(None)

            class PollFd(ctypes.Structure):
                _fields_ = (("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short))

            # nfds_t: unsigned long on Linux, unsigned int on macOS and the BSDs
            nfds = ctypes.c_ulong if sys.platform.startswith("linux") else ctypes.c_uint
            poll = library.poll
            poll.argtypes = (ctypes.POINTER(PollFd), nfds, ctypes.c_int)
            poll.restype = ctypes.c_int
            recv = library.recv
            recv.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
            recv.restype = ctypes.c_ssize_t

            def check() -> Callable[[int, int], int]:
                entry = PollFd(0, _POLLIN, 0)
                pointer = ctypes.byref(entry)

                def queued(fd: int, size: int) -> int:
                    entry.fd = fd
                    entry.revents = 0
                    # readable, hung up or failed: a recv returns at once (bytes, 0 or an error)
                    return size if poll(pointer, 1, 0) > 0 and entry.revents else 0
                return queued
        self.check = check
        self.recv = recv


@functools.cache
def _queued() -> _Queued | None:
    """The platform's calls that keep the GIL, or None where they cannot be loaded."""
    try:
        return _Queued()
    except Exception as exc:  # no ctypes, no socket library symbols: the socket's own call
        logger.debug("reads release the GIL on every call: %s", exc)
        return None


class _HoldingRecvInto:
    """``recv_into(buffer)`` of one plain socket: queued bytes without releasing the GIL, else
    the socket's own (blocking) call."""

    __slots__ = ("_address", "_buffer", "_ctypes", "_fileno", "_pinned", "_plain", "_queued", "_recv")

    def __init__(self, sock: socket.socket, calls: _Queued) -> None:
        import ctypes

        self._ctypes = ctypes
        self._plain = sock.recv_into
        self._fileno = sock.fileno
        self._queued = calls.check()  # (its own query structure: see _Queued)
        self._recv = calls.recv
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
            size = self._queued(fd, len(buffer))
            if size > 0:
                got: int = self._recv(fd, self._address, size, 0)
                if got > 0:
                    return got
        return self._plain(buffer)


def holding_recv_into(sock: socket.socket) -> Callable[[bytearray], int]:
    """``sock.recv_into``, reading what is already queued without releasing the GIL where the
    platform allows it (see the module docstring)."""
    if isinstance(sock, ssl.SSLSocket):
        return sock.recv_into
    calls = _queued()
    if calls is None:
        return sock.recv_into
    return _HoldingRecvInto(sock, calls)
