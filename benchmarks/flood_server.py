"""A minimal Kiwoom-shaped flood server for benchmarks (run as its own process).

    python benchmarks/flood_server.py [--port 0]

Prints ``PORT <n>`` once listening, then one JSON line per finished connection with what it
sent and how fast PINGs were echoed. The client chooses the load in its REG frame's group
number and a query string on the URL: ``?count=N`` floods N single-entry 0E frames as fast as
TCP allows; ``?rate=R&seconds=S`` paces R frames/s for S seconds, each stamped with its send
time (FID 9999, microseconds since the epoch) so receivers can measure latency. PINGs go out
every ``ping`` seconds (default 1) in both modes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

PING = b'{"trnm":"PING"}'


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


def quote_payload(index: int, stamp_us: int) -> bytes:
    item = f"{index % 100:06d}"
    values = (f'{{"21":"165208","131":"{40000 + index % 997}","132":"+156","135":"{1000 + index % 89}",'
              f'"136":"-3","9999":"{stamp_us}"}}')
    entry = f'{{"type":"0E","name":"주식시간외호가","item":"{item}","values":{values}}}'
    return f'{{"trnm":"REAL","data":[{entry}]}}'.encode()


class FloodConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = ServerProtocol(max_size=2**20)
        self.sent = 0
        self.ping_sent_at: list[float] = []
        self.ping_echo_delays: list[float] = []
        self.registered = asyncio.Event()
        self.closed = False

    def flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.writer.write(chunk)

    def send_text(self, payload: bytes) -> None:
        self.writer.write(ws_frame(payload))

    async def handshake(self) -> dict[str, list[str]]:
        while True:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("closed during handshake")
            self.protocol.receive_data(data)
            events = self.protocol.events_received()
            if events:
                request = events[0]
                assert isinstance(request, Request)
                self.protocol.send_response(self.protocol.accept(request))
                self.flush()
                return parse_qs(urlsplit(request.path).query)

    async def read_loop(self) -> None:
        try:
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                self.protocol.receive_data(data)
                for event in self.protocol.events_received():
                    if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                        self.on_text(bytes(event.data))
                self.flush()
        except ConnectionError:
            pass
        finally:
            self.closed = True

    def on_text(self, data: bytes) -> None:
        message: dict[str, Any] = json.loads(data)
        trnm = message.get("trnm")
        if trnm == "PING":  # an echo, verbatim or re-serialized (peers send '{"trnm": "PING"}')
            if self.ping_sent_at:
                self.ping_echo_delays.append(time.perf_counter() - self.ping_sent_at.pop(0))
            return
        if trnm == "LOGIN":
            self.send_text(b'{"trnm":"LOGIN","return_code":0,"return_msg":""}')
        elif trnm in ("REG", "REMOVE"):
            self.send_text(f'{{"trnm":"{trnm}","return_code":0,"return_msg":""}}'.encode())
            self.registered.set()

    async def ping_loop(self, interval: float) -> None:
        while not self.closed:
            await asyncio.sleep(interval)
            self.ping_sent_at.append(time.perf_counter())
            self.send_text(PING)

    async def flood(self, count: int) -> None:
        blob = b"".join(ws_frame(quote_payload(i, 0)) for i in range(1000))
        while self.sent < count and not self.closed:
            batch = min(1000, count - self.sent)
            self.writer.write(blob if batch == 1000 else b"".join(
                ws_frame(quote_payload(i, 0)) for i in range(batch)))
            self.sent += batch
            await self.writer.drain()

    async def paced(self, rate: float, seconds: float) -> None:
        start = time.perf_counter()
        total = int(rate * seconds)
        while not self.closed and self.sent < total:
            elapsed = time.perf_counter() - start
            due = min(total, int(elapsed * rate)) - self.sent
            if due > 0:
                now_us = int(time.time() * 1e6)
                self.writer.write(b"".join(ws_frame(quote_payload(self.sent + i, now_us)) for i in range(due)))
                self.sent += due
            await asyncio.sleep(0.0005)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ping: float) -> None:
    conn = FloodConnection(reader, writer)
    try:
        query = await conn.handshake()
    except (ConnectionError, AssertionError):
        writer.close()
        return
    reading = asyncio.create_task(conn.read_loop())
    pinging = asyncio.create_task(conn.ping_loop(float(query.get("ping", [ping])[0])))
    try:
        await asyncio.wait_for(conn.registered.wait(), timeout=30)
        if "count" in query:
            await conn.flood(int(query["count"][0]))
        elif "rate" in query:
            await conn.paced(float(query["rate"][0]), float(query.get("seconds", ["5"])[0]))
        await reading
    except (TimeoutError, ConnectionError):
        pass
    finally:
        pinging.cancel()
        reading.cancel()
        delays = sorted(conn.ping_echo_delays)
        print(json.dumps({
            "sent": conn.sent, "pings": len(delays) + len(conn.ping_sent_at), "echoed": len(delays),
            "echo_ms_max": round(delays[-1] * 1e3, 3) if delays else None,
            "echo_ms_p50": round(delays[len(delays) // 2] * 1e3, 3) if delays else None,
            "echo_ms_p99": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1e3, 3) if delays else None,
        }), flush=True)
        writer.close()


async def main(port: int, ping: float, tls: list[str] | None = None) -> None:
    context = None
    if tls:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls[0], tls[1])
    server = await asyncio.start_server(lambda r, w: serve(r, w, ping), "127.0.0.1", port, ssl=context)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ping", type=float, default=1.0, help="seconds between PINGs")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve wss:// with this certificate")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.port, args.ping, args.tls))
    except KeyboardInterrupt:
        sys.exit(0)
