"""Reads that take what the kernel already holds without releasing the GIL (``_holding_recv``),
on real connected sockets: queued bytes come from the held call, an empty queue blocks in the
socket's own call, and the end of the stream and errors come out as the socket's own call gives
them. TLS sockets, and platforms where the calls cannot be loaded, get the socket's own
``recv_into``. (CI runs Linux: the Windows calls, ``ioctlsocket(FIONREAD)`` and ``recv`` of
ws2_32, are not exercised here.)"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

from kiwoom_rt import _holding_recv
from kiwoom_rt._holding_recv import holding_recv_into

HELD = _holding_recv._queued() is not None
needs_held = pytest.mark.skipif(not HELD, reason="the GIL-keeping socket calls cannot be loaded here")


class CountingSocket(socket.socket):
    """A real socket that counts the calls of its own ``recv_into`` (the blocking path)."""

    plain_calls = 0

    def recv_into(self, *args: object, **kwargs: object) -> int:  # type: ignore[override]
        self.plain_calls += 1
        return super().recv_into(*args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def pair() -> Iterator[tuple[CountingSocket, socket.socket]]:
    a, b = socket.socketpair()
    reader = CountingSocket(fileno=a.detach())
    try:
        yield reader, b
    finally:
        reader.close()
        b.close()


@needs_held
def test_queued_bytes_come_from_the_held_call(pair: tuple[CountingSocket, socket.socket]) -> None:
    reader, writer = pair
    recv_into = holding_recv_into(reader)
    assert recv_into != reader.recv_into
    buffer = bytearray(64)
    writer.sendall(b"hello")
    writer.sendall(b" world")
    got = b""
    while len(got) < 11:  # (a socketpair may hand the two writes over as one or two)
        size = recv_into(buffer)
        got += bytes(buffer[:size])
    assert got == b"hello world"
    assert reader.plain_calls == 0


@needs_held
def test_a_buffer_larger_than_the_queue_and_a_new_buffer(pair: tuple[CountingSocket, socket.socket]) -> None:
    reader, writer = pair
    recv_into = holding_recv_into(reader)
    writer.sendall(b"x" * 100)
    small = bytearray(40)
    assert recv_into(small) == 40
    assert bytes(small) == b"x" * 40
    grown = bytearray(1000)  # (the reader replaces its buffer when it grows)
    assert recv_into(grown) == 60
    assert bytes(grown[:60]) == b"x" * 60
    writer.sendall(b"yz")
    assert recv_into(grown) == 2
    assert bytes(grown[:2]) == b"yz"
    assert bytes(small) == b"x" * 40  # the old buffer is left alone
    assert reader.plain_calls == 0


def test_an_empty_queue_waits_in_the_sockets_own_call(pair: tuple[CountingSocket, socket.socket]) -> None:
    reader, writer = pair
    recv_into = holding_recv_into(reader)
    buffer = bytearray(64)
    got: list[bytes] = []
    done = threading.Event()
    waiting = threading.Event()

    def read() -> None:
        waiting.set()
        size = recv_into(buffer)
        got.append(bytes(buffer[:size]))
        done.set()

    thread = threading.Thread(target=read)
    thread.start()
    try:
        assert waiting.wait(5)
        assert not done.wait(0.2)  # nothing queued: it blocks (it did not return empty)
        writer.sendall(b"late")
        assert done.wait(5)
    finally:
        writer.close()  # (ends the read if the assertions above failed)
        thread.join(5)
    assert got == [b"late"]
    assert reader.plain_calls == 1


def test_the_end_of_the_stream_reads_as_zero(pair: tuple[CountingSocket, socket.socket]) -> None:
    reader, writer = pair
    recv_into = holding_recv_into(reader)
    writer.sendall(b"last")
    writer.shutdown(socket.SHUT_WR)
    buffer = bytearray(64)
    size = recv_into(buffer)
    assert bytes(buffer[:size]) == b"last"
    assert recv_into(buffer) == 0
    assert recv_into(buffer) == 0


def test_a_closed_socket_raises_as_its_own_call_does(pair: tuple[CountingSocket, socket.socket]) -> None:
    reader, _ = pair
    recv_into = holding_recv_into(reader)
    reader.close()
    with pytest.raises(OSError, match=r"(?i)bad file descriptor|10038"):
        recv_into(bytearray(64))


def test_tls_and_platforms_without_the_calls_read_through_the_socket(
        pair: tuple[CountingSocket, socket.socket], monkeypatch: pytest.MonkeyPatch) -> None:
    reader, _ = pair
    plain = socket.socket()
    tls = ssl.create_default_context().wrap_socket(plain, server_hostname="localhost",
                                                   do_handshake_on_connect=False)
    try:
        assert holding_recv_into(tls) == tls.recv_into  # OpenSSL releases the GIL on every read anyway
    finally:
        tls.close()
    monkeypatch.setattr(_holding_recv, "_queued", lambda: None)  # as where ctypes cannot load them
    assert holding_recv_into(reader) == reader.recv_into


@needs_held
def test_a_read_takes_no_more_than_the_buffer_and_never_blocks_after_a_hang_up(
        pair: tuple[CountingSocket, socket.socket]) -> None:
    """The check reports a hung-up socket as ready: the read then returns 0 at once, through the
    socket's own call (which must not block either)."""
    reader, writer = pair
    recv_into = holding_recv_into(reader)
    writer.sendall(b"abc")
    writer.close()
    buffer = bytearray(2)
    assert recv_into(buffer) == 2
    assert bytes(buffer) == b"ab"
    assert recv_into(buffer) == 1
    assert reader.plain_calls == 0
    assert recv_into(buffer) == 0
    assert reader.plain_calls == 1


@needs_held
def test_every_reader_asks_with_a_query_of_its_own(pair: tuple[CountingSocket, socket.socket]) -> None:
    """Two sessions in one process (KR and US, a relay's) read at the same time. The interpreter
    may switch threads between the query's C call and reading its answer, so a query structure
    shared between readers could give one socket another's answer and block its ``recv`` with
    the GIL held. Each reader gets its own (checked directly: the switch cannot be forced)."""
    reader, writer = pair
    other_reader, other_writer = socket.socketpair()
    try:
        first = holding_recv_into(reader)
        second = holding_recv_into(other_reader)
        assert first._queued is not second._queued  # type: ignore[attr-defined]
        other_writer.sendall(b"x")
        assert second._queued(other_reader.fileno(), 8) > 0  # type: ignore[attr-defined]
        assert first._queued(reader.fileno(), 8) == 0  # type: ignore[attr-defined]
        writer.sendall(b"y")
        buffer = bytearray(8)
        assert first(buffer) == 1
        assert second(buffer) == 1
    finally:
        other_reader.close()
        other_writer.close()
