"""A Kiwoom-shaped benchmark server (run as its own process): every traffic shape, two write patterns.

    python benchmarks/flood_server.py --writer sendall|asyncio [--ping 0.5] [--tls CERT KEY]
                                      [--prepare SHAPE:COUNT ...]

Prints ``PORT <n>`` once listening, then one JSON line per finished connection: what it sent and
how fast PINGs were echoed. The client chooses the load with the URL's query string:

- ``shape`` (``benchmarks/traffic.py``: ``0e-legacy``, ``0e-x1``, ``0e-x5``, ``mixed``);
- ``count=N`` floods N frames as fast as TCP takes them, or ``rate=R&seconds=S`` paces R frames/s
  for S seconds, each entry stamped with its send time (FID 9999, microseconds since the epoch);
- ``items=K``: sending starts once the client registered K distinct items (REGs of any size).

Write patterns (``--writer``):

- ``sendall``: a plain blocking socket per connection; the frames, encoded once beforehand, go
  out with ``sendall`` in frame-aligned slices of about 64 KiB, paced only by the kernel;
- ``asyncio``: an asyncio stream writer that writes 1,000 frames, then waits for ``drain()``.

PINGs go out every ``--ping`` seconds in both, between slices. ``--prepare`` encodes flood payloads
before the first client connects, so no client waits for them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import traffic
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

PING = b'{"trnm":"PING"}'
SLICE = 64 * 1024


def ws_frame(payload: bytes) -> bytes:
    """An unmasked server text frame."""
    size = len(payload)
    if size < 126:
        head = bytes([0x81, size])
    elif size < 65536:
        head = bytes([0x81, 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x81, 127]) + size.to_bytes(8, "big")
    return head + payload


_cache: dict[tuple[str, int], list[bytes]] = {}
_cache_lock = threading.Lock()


def encoded(shape: str, count: int) -> list[bytes]:
    """The flood's WebSocket frames, encoded once per (shape, count) and kept."""
    with _cache_lock:
        found = _cache.get((shape, count))
        if found is None:
            found = _cache[(shape, count)] = [ws_frame(p) for p in traffic.frames(shape, count)]
        return found


def slices(frames: list[bytes], size: int) -> list[tuple[bytes, int]]:
    """Frame-aligned (bytes, frames) slices of about ``size`` bytes (a PING may go between two)."""
    result: list[tuple[bytes, int]] = []
    current: list[bytes] = []
    length = 0
    for frame in frames:
        current.append(frame)
        length += len(frame)
        if length >= size:
            result.append((b"".join(current), len(current)))
            current, length = [], 0
    if current:
        result.append((b"".join(current), len(current)))
    return result


class Session:
    """What both writers share: the protocol replies, PING accounting and the registrations."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self.protocol = ServerProtocol(max_size=2**22)
        self.send = send  # sends raw bytes (already framed)
        self.sent = 0
        self.ping_sent_at: list[float] = []
        self.ping_echo_delays: list[float] = []
        self.registered: set[str] = set()
        self.closed = False

    def on_bytes(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.on_text(bytes(event.data))
            elif isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                self.closed = True
        out = b"".join(self.protocol.data_to_send())
        if out:
            self.send(out)

    def on_text(self, data: bytes) -> None:
        try:
            message: dict[str, Any] = json.loads(data)
        except ValueError:
            return
        trnm = message.get("trnm")
        if trnm == "PING":  # an echo, verbatim or re-serialized (peers send '{"trnm": "PING"}')
            if self.ping_sent_at:
                self.ping_echo_delays.append(time.perf_counter() - self.ping_sent_at.pop(0))
            return
        if trnm == "LOGIN":
            self.send(ws_frame(b'{"trnm":"LOGIN","return_code":0,"return_msg":""}'))
        elif trnm in ("REG", "REMOVE"):
            if trnm == "REG":
                for entry in message.get("data") or []:
                    self.registered.update(entry.get("item") or [])
            self.send(ws_frame(f'{{"trnm":"{trnm}","return_code":0,"return_msg":""}}'.encode()))

    def ping(self) -> None:
        self.ping_sent_at.append(time.perf_counter())
        self.send(ws_frame(PING))

    def report(self) -> None:
        delays = sorted(self.ping_echo_delays)
        print(json.dumps({
            "sent": self.sent, "pings": len(delays) + len(self.ping_sent_at), "echoed": len(delays),
            "echo_ms_max": round(delays[-1] * 1e3, 3) if delays else None,
            "echo_ms_p50": round(delays[len(delays) // 2] * 1e3, 3) if delays else None,
            "echo_ms_p99": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1e3, 3) if delays else None,
        }), flush=True)


def paced_batches(shape: str, rate: float, seconds: float,
                  ready: Callable[[], bool]) -> Any:
    """Yield (due payload bytes, frames in it) every ~0.5 ms: the frames due by now, stamped."""
    total = int(rate * seconds)
    payloads = traffic.frames(shape, total)
    offsets = [traffic.stamp_offsets(p) for p in payloads]
    start = time.perf_counter()
    sent = 0
    while sent < total and ready():
        due = min(total, int((time.perf_counter() - start) * rate)) - sent
        if due > 0:
            now_us = int(time.time() * 1e6)
            yield b"".join(ws_frame(traffic.stamp(payloads[sent + i], offsets[sent + i], now_us))
                           for i in range(due)), due
            sent += due
        else:
            yield b"", 0


# --- the blocking sendall writer ------------------------------------------------------------------

def serve_blocking(sock: socket.socket, ping_interval: float, tls: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is not None:
        sock = tls.wrap_socket(sock, server_side=True)
    lock = threading.Lock()

    def send(data: bytes) -> None:
        with lock:
            sock.sendall(data)

    session = Session(send)
    # the handshake
    while True:
        data = sock.recv(65536)
        if not data:
            sock.close()
            return
        session.protocol.receive_data(data)
        events = session.protocol.events_received()
        if events:
            request = events[0]
            assert isinstance(request, Request)
            session.protocol.send_response(session.protocol.accept(request))
            sock.sendall(b"".join(session.protocol.data_to_send()))
            query = parse_qs(urlsplit(request.path).query)
            break

    def read() -> None:
        try:
            while not session.closed:
                data = sock.recv(65536)
                if not data:
                    break
                session.on_bytes(data)
        except OSError:
            pass
        session.closed = True

    def pings() -> None:
        while not session.closed:
            time.sleep(ping_interval)
            try:
                session.ping()
            except OSError:
                break

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    pinger = threading.Thread(target=pings, daemon=True)
    pinger.start()
    shape = query.get("shape", ["0e-legacy"])[0]
    wanted = int(query.get("items", ["1"])[0])
    deadline = time.monotonic() + 30
    while len(session.registered) < wanted and not session.closed and time.monotonic() < deadline:
        time.sleep(0.001)
    try:
        if "count" in query:
            for blob, count in slices(encoded(shape, int(query["count"][0])), SLICE):
                if session.closed:
                    break
                send(blob)
                session.sent += count
        elif "rate" in query:
            for blob, count in paced_batches(shape, float(query["rate"][0]),
                                             float(query.get("seconds", ["5"])[0]), lambda: not session.closed):
                if blob:
                    send(blob)
                    session.sent += count
                else:
                    time.sleep(0.0005)
        reader.join()
    except OSError:
        pass
    finally:
        session.closed = True
        session.report()
        try:
            sock.close()
        except OSError:
            pass


def run_blocking(port: int, ping: float, tls: Any) -> None:
    listener = socket.create_server(("127.0.0.1", port))
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_blocking, args=(conn, ping, tls), daemon=True).start()


# --- the asyncio writer ---------------------------------------------------------------------------

async def serve_asyncio(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ping: float) -> None:
    session = Session(writer.write)
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("closed during handshake")
            session.protocol.receive_data(data)
            events = session.protocol.events_received()
            if events:
                request = events[0]
                assert isinstance(request, Request)
                session.protocol.send_response(session.protocol.accept(request))
                writer.write(b"".join(session.protocol.data_to_send()))
                query = parse_qs(urlsplit(request.path).query)
                break
    except (ConnectionError, AssertionError):
        writer.close()
        return

    async def read_loop() -> None:
        try:
            while not session.closed:
                data = await reader.read(65536)
                if not data:
                    break
                session.on_bytes(data)
        except ConnectionError:
            pass
        finally:
            session.closed = True

    async def ping_loop() -> None:
        while not session.closed:
            await asyncio.sleep(ping)
            session.ping()

    reading = asyncio.create_task(read_loop())
    pinging = asyncio.create_task(ping_loop())
    shape = query.get("shape", ["0e-legacy"])[0]
    wanted = int(query.get("items", ["1"])[0])
    try:
        deadline = time.monotonic() + 30
        while len(session.registered) < wanted and not session.closed and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        if "count" in query:
            frames = encoded(shape, int(query["count"][0]))
            for start in range(0, len(frames), 1000):
                if session.closed:
                    break
                batch = frames[start:start + 1000]
                writer.write(b"".join(batch))
                session.sent += len(batch)
                await writer.drain()
        elif "rate" in query:
            for blob, count in paced_batches(shape, float(query["rate"][0]),
                                             float(query.get("seconds", ["5"])[0]), lambda: not session.closed):
                if blob:
                    writer.write(blob)
                    session.sent += count
                await asyncio.sleep(0.0005)
        await reading
    except (TimeoutError, ConnectionError):
        pass
    finally:
        pinging.cancel()
        reading.cancel()
        session.report()
        writer.close()


async def run_asyncio(port: int, ping: float, tls: Any) -> None:
    server = await asyncio.start_server(lambda r, w: serve_asyncio(r, w, ping), "127.0.0.1", port, ssl=tls)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--writer", choices=("sendall", "asyncio"), default="sendall")
    parser.add_argument("--ping", type=float, default=0.5, help="seconds between PINGs")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve wss:// with this certificate")
    parser.add_argument("--prepare", action="append", default=[], metavar="SHAPE:COUNT",
                        help="encode this flood before serving (repeatable)")
    args = parser.parse_args()
    for spec in args.prepare:
        shape, _, count = spec.partition(":")
        encoded(shape, int(count))
    tls = None
    if args.tls:
        import ssl

        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls[0], args.tls[1])
    try:
        if args.writer == "sendall":
            run_blocking(args.port, args.ping, tls)
        else:
            asyncio.run(run_asyncio(args.port, args.ping, tls))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
