"""The metrics endpoint's HTTP server (``kiwoom_rt._http_endpoint``), spoken to by real clients:
``http.client`` (keep-alive, as Prometheus scrapes), ``urllib`` and raw sockets for bad input."""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from kiwoom_rt._http_endpoint import HttpEndpoint

from .helpers import wait_until


class Counting:
    """A renderer that counts its calls and can be told to fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.accepts: list[str] = []

    def __call__(self, accept: str) -> tuple[bytes, str]:
        self.calls += 1
        self.accepts.append(accept)
        if self.fail:
            raise RuntimeError("renderer broke")
        return f"answer {self.calls}\n".encode(), "text/plain; version=0.0.4"


@pytest.fixture
def served() -> Iterator[tuple[HttpEndpoint, Counting]]:
    render = Counting()
    endpoint = HttpEndpoint(render, "127.0.0.1", 0, idle_timeout=30.0, io_timeout=2.0)
    yield endpoint, render
    endpoint.close()


def raw(endpoint: HttpEndpoint, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection; everything the endpoint answers until it closes."""
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_scrapes_share_one_kept_alive_connection(no_thread_leak: None,
                                                 served: tuple[HttpEndpoint, Counting]) -> None:
    endpoint, render = served
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=5)
    try:
        for expected in (1, 2, 3):
            connection.request("GET", "/metrics", headers={"Accept": "text/plain"})
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("Content-Type") == "text/plain; version=0.0.4"
            assert response.read() == f"answer {expected}\n".encode()
            assert not response.will_close
        connection.request("GET", "/", headers={"Connection": "close"})
        response = connection.getresponse()
        assert (response.status, response.read(), response.will_close) == (200, b"answer 4\n", True)
    finally:
        connection.close()
    assert render.accepts[0] == "text/plain"


def test_head_has_the_length_and_no_body(served: tuple[HttpEndpoint, Counting]) -> None:
    endpoint, _ = served
    answer = raw(endpoint, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Length: 9" in head
    assert body == b""


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n", b"404"),
    (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", b"405"),
    (b"garbage\r\n\r\n", b"400"),
    (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20_000, b"431"),
])
def test_bad_requests_get_a_status_and_the_endpoint_keeps_serving(
        served: tuple[HttpEndpoint, Counting], request_bytes: bytes, status: bytes) -> None:
    endpoint, render = served
    answer = raw(endpoint, request_bytes + (b"" if status != b"404" else b"GET / HTTP/1.0\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 " + status)
    assert b"HTTP/1.1 200 OK" in raw(endpoint, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert render.calls >= 1


def test_a_failing_renderer_gives_500_and_is_logged(caplog: pytest.LogCaptureFixture,
                                                    served: tuple[HttpEndpoint, Counting]) -> None:
    endpoint, render = served
    render.fail = True
    with caplog.at_level(logging.ERROR, logger="kiwoom_rt._http_endpoint"):
        answer = raw(endpoint, b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500")
    assert "renderer broke" in caplog.text
    render.fail = False
    assert raw(endpoint, b"GET /metrics HTTP/1.0\r\n\r\n").endswith(b"answer 2\n")


def test_a_request_split_across_writes_is_answered(served: tuple[HttpEndpoint, Counting]) -> None:
    endpoint, _ = served
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=5) as sock:
        for part in (b"GET /met", b"rics HTTP/1.1\r\nHo", b"st: x\r\n", b"Connection: close\r\n\r\n"):
            sock.sendall(part)
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"answer 1\n")


def test_idle_connections_are_closed_and_their_count_is_bounded(no_thread_leak: None) -> None:
    endpoint = HttpEndpoint(Counting(), "127.0.0.1", 0, idle_timeout=0.3, max_connections=2)
    try:
        sockets = [socket.create_connection(("127.0.0.1", endpoint.port), timeout=5) for _ in range(3)]
        # the third connection pushed the oldest out; then idleness closes the others

        def all_closed() -> bool:
            for sock in sockets:
                sock.settimeout(0.05)
                try:
                    if sock.recv(1) != b"":
                        return False
                except TimeoutError:
                    return False
            return True

        wait_until(all_closed, timeout=5)
        for sock in sockets:
            sock.close()
    finally:
        endpoint.close()


def test_close_stops_the_thread_and_closes_kept_connections(no_thread_leak: None) -> None:
    endpoint = HttpEndpoint(Counting(), "127.0.0.1", 0)
    connection = socket.create_connection(("127.0.0.1", endpoint.port), timeout=5)  # kept open meanwhile
    endpoint.close()
    endpoint.close()  # idempotent
    try:  # closed: an orderly end if it was accepted, a reset if it still sat in the backlog
        assert connection.recv(1) == b""
    except ConnectionResetError:
        pass
    connection.close()


# --- faults: eviction races, clients that never read, heads that arrive whole (issue 37) -----------

def scrape_once(endpoint: HttpEndpoint, timeout: float = 2.0) -> tuple[int, float]:
    """One GET on a fresh connection: (status, seconds it took)."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=timeout)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        connection.close()


def test_an_evicted_connection_still_in_the_ready_batch_never_kills_the_endpoint() -> None:
    """16 connections open and busy, then a 17th connects while the oldest sends a byte: the
    oldest is evicted while it is still in the batch the select returned. (A slow render holds
    the serving thread while both happen, so one select returns both.)"""
    started = threading.Event()

    def slow(accept: str) -> tuple[bytes, str]:
        started.set()
        threading.Event().wait(0.3)
        return b"ok\n", "text/plain"

    endpoint = HttpEndpoint(slow, "127.0.0.1", 0)
    try:
        for _ in range(3):
            clients = [socket.create_connection(("127.0.0.1", endpoint.port), timeout=5) for _ in range(16)]
            try:
                for client in clients[:-1]:
                    client.sendall(b"GET /metrics HTTP/1.1\r\n")  # busy: half a request
                wait_until(lambda: sum(bool(c.buffer) for c in endpoint._connections.values()) == 15, 5)
                started.clear()
                clients[-1].sendall(b"GET /metrics HTTP/1.1\r\n\r\n")  # the thread renders slowly ...
                assert started.wait(5)
                clients.append(socket.create_connection(("127.0.0.1", endpoint.port), timeout=5))  # ... a 17th
                clients[0].send(b"X")  # ... and the oldest speaks
                newest = clients[-1].getsockname()
                wait_until(lambda newest=newest: not endpoint._thread.is_alive() or any(  # type: ignore[misc]
                    s.getpeername() == newest for s in list(endpoint._connections)), 5)
            finally:
                for client in clients:
                    client.close()
            wait_until(lambda: not endpoint._connections or not endpoint._thread.is_alive(), 5)
            assert endpoint._thread.is_alive(), "the endpoint's thread died"
        status, _took = scrape_once(endpoint)
        assert status == 200
    finally:
        endpoint.close()


def test_a_scraper_that_never_reads_cannot_stall_the_others() -> None:
    # answers of a real registry's size, and the default I/O timeout (10 s)
    endpoint = HttpEndpoint(lambda accept: (b"x" * 20_000, "text/plain"), "127.0.0.1", 0)
    greedy = socket.socket()
    greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    greedy.connect(("127.0.0.1", endpoint.port))
    try:
        greedy.settimeout(10)
        greedy.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 2400)  # and never reads
        for _ in range(5):
            status, took = scrape_once(endpoint, timeout=15)
            assert status == 200
            assert took < 1.0, f"a scrape waited {took:.2f} s behind a client that does not read"
        assert endpoint._thread.is_alive()
    finally:
        greedy.close()
        endpoint.close()


def test_a_client_that_never_reads_is_closed_on_a_bounded_buffer() -> None:
    endpoint = HttpEndpoint(lambda accept: (b"x" * 200_000, "text/plain"), "127.0.0.1", 0, io_timeout=1.0)
    greedy = socket.socket()
    greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    greedy.connect(("127.0.0.1", endpoint.port))
    try:
        greedy.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 100)
        wait_until(lambda: not endpoint._connections, 10, "the client that never reads was not closed")
    finally:
        greedy.close()
        endpoint.close()


def test_the_head_limit_holds_when_the_whole_head_arrives_in_one_read(served: tuple[HttpEndpoint, Counting]) -> None:
    endpoint, render = served
    head = b"GET /metrics HTTP/1.1\r\nX-Filler: " + b"a" * 20_000 + b"\r\n\r\n"
    answer = raw(endpoint, head)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert render.calls == 0


def test_pipelined_heads_are_served_in_turns(served: tuple[HttpEndpoint, Counting]) -> None:
    endpoint, render = served
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=10) as pipelined:
        pipelined.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
        status, took = scrape_once(endpoint)
        assert status == 200
        assert took < 1.0
        received = b""
        while received.count(b"HTTP/1.1 200 OK") < 2000:
            chunk = pipelined.recv(65536)
            assert chunk, "the endpoint closed a client that reads its answers"
            received += chunk
    assert render.calls >= 2001
