"""Throughput and latency of RealtimeSession against a flood server in another process.

    python benchmarks/bench_session.py [--events 200000] [--seconds 5]

Everything is measured in one run, on loopback, and reported as ratios to a bare websocket-client
loop (``recv()`` + ``json.loads`` per frame) measured in the same run:

1. idle main thread: 0E events/s delivered to a counting receiver, default and inline modes;
2. receive-to-receiver latency p50/p99 at 5,000 events/s, default mode;
3. the same while the main thread runs a CPU-bound pure-Python loop (a busy GUI or strategy),
   against a plain ``WebSocketApp`` doing the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import websocket

from kiwoom_rt import RealtimeSession

HERE = Path(__file__).resolve().parent
NO_PROXY = ["127.0.0.1"]
LOGIN = '{"trnm":"LOGIN","token":"bench-token"}'
REG = '{"trnm":"REG","grp_no":"1","refresh":"1","data":[{"item":["000001"],"type":["0E"]}]}'


class FloodServer:
    """The flood server process; ``result()`` returns its report of the last connection."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, str(HERE / "flood_server.py")], stdout=subprocess.PIPE,
                                     text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.port = int(line.split()[1])
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def url(self, **query: Any) -> str:
        args = "&".join(f"{k}={v}" for k, v in query.items())
        return f"ws://127.0.0.1:{self.port}/api/dostk/websocket?{args}"

    def result(self, timeout: float = 10.0) -> dict[str, Any]:
        return self.lines.get(timeout=timeout)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Busy:
    """A CPU-bound pure-Python loop on the main thread, as a busy GUI or strategy would run."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def run_until(self, done: threading.Event, limit: float) -> None:
        deadline = time.monotonic() + limit
        if not self.enabled:
            done.wait(limit)
            return
        while not done.is_set() and time.monotonic() < deadline:
            total = 0
            for i in range(2_000):
                total += i * i


def bare_loop(server: FloodServer, count: int, busy: Busy, limit: float) -> float:
    """websocket-client's documented blocking API: recv() + json.loads per frame."""
    done = threading.Event()
    received = [0]
    started = [0.0]

    def work() -> None:
        ws = websocket.create_connection(server.url(count=count), http_no_proxy=NO_PROXY,
                                         skip_utf8_validation=True)  # the fastest it can be
        ws.send(LOGIN)
        started[0] = time.perf_counter()
        ws.send(REG)
        try:
            while received[0] < count and not done.is_set():
                frame = json.loads(ws.recv())
                if frame["trnm"] == "REAL":
                    received[0] += len(frame["data"])
                elif frame["trnm"] == "PING":
                    ws.send(json.dumps(frame))
        finally:
            done.set()
            ws.close(timeout=0.2)

    if busy.enabled:  # a plain WebSocketApp on a thread, as in a GUI app
        return app_loop(server, count, busy, limit)
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    done.wait(limit)
    done.set()
    thread.join(5)
    server.result()
    return received[0] / (time.perf_counter() - started[0])


def app_loop(server: FloodServer, count: int, busy: Busy, limit: float) -> float:
    """A plain WebSocketApp with on_message doing json.loads, run_forever on a daemon thread."""
    done = threading.Event()
    received = [0]
    started = [0.0]

    def on_open(app: websocket.WebSocketApp) -> None:
        app.send(LOGIN)
        started[0] = time.perf_counter()
        app.send(REG)

    def on_message(app: websocket.WebSocketApp, message: str) -> None:
        frame = json.loads(message)
        if frame["trnm"] == "REAL":
            received[0] += len(frame["data"])
            if received[0] >= count:
                done.set()
        elif frame["trnm"] == "PING":
            app.send(message)

    app = websocket.WebSocketApp(server.url(count=count), on_open=on_open, on_message=on_message)
    thread = threading.Thread(target=app.run_forever, daemon=True,
                              kwargs={"http_no_proxy": NO_PROXY, "skip_utf8_validation": True})
    thread.start()
    busy.run_until(done, limit)
    elapsed = time.perf_counter() - started[0]
    app.keep_running = False
    if app.sock is not None and app.sock.sock is not None:
        app.sock.sock.shutdown(2)
    thread.join(15)
    if thread.is_alive():
        print("  (warning: the plain WebSocketApp thread is still running)", flush=True)
    server.result()
    return received[0] / elapsed


def session_throughput(server: FloodServer, count: int, inline: bool, busy: Busy, limit: float) -> float:
    done = threading.Event()
    received = [0]

    def counter(item: str, event: Any) -> None:
        received[0] += 1
        if received[0] >= count:
            done.set()

    session = RealtimeSession("bench-token", url=server.url(count=count), inline=inline)
    session.on_0e.connect(counter)
    session.start()
    started = time.perf_counter()
    session.subscribe(["000001"])
    busy.run_until(done, limit)
    elapsed = time.perf_counter() - started
    session.close()
    server.result()
    return received[0] / elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def session_latency(server: FloodServer, rate: int, seconds: float, busy: Busy) -> dict[str, Any]:
    latencies: list[float] = []  # receive (frame read from the socket) -> receiver
    wire: list[float] = []  # server's send stamp -> receiver (adds the kernel and wake-up)
    done = threading.Event()
    expected = int(rate * seconds)

    def measure(item: str, event: Any) -> None:
        now = time.time()
        latencies.append((now - event.received_at) * 1e6)
        wire.append(now * 1e6 - int(event.values["9999"]))
        if len(latencies) >= expected:
            done.set()

    session = RealtimeSession("bench-token", url=server.url(rate=rate, seconds=seconds, ping=0.2))
    session.on_0e.connect(measure)
    session.start()
    started = time.perf_counter()
    session.subscribe(["000001"])
    busy.run_until(done, seconds + 10)
    elapsed = time.perf_counter() - started
    session.close()
    report = server.result()
    print(f"  ({len(latencies)} of {expected} events in {elapsed:.1f} s)", flush=True)
    warm = latencies[len(latencies) // 10:]  # skip the first tenth (connection warm-up)
    warm_wire = wire[len(wire) // 10:]
    return {
        "wire_p50_us": statistics.median(warm_wire) if warm_wire else float("nan"),
        "wire_p99_us": percentile(warm_wire, 0.99) if warm_wire else float("nan"),
        "events_per_s": len(latencies) / elapsed if elapsed else 0.0,
        "p50_us": statistics.median(warm) if warm else float("nan"),
        "p99_us": percentile(warm, 0.99) if warm else float("nan"),
        "pings": f"{report['echoed']}/{report['pings']}", "echo_ms_max": report["echo_ms_max"],
    }


def run(args: argparse.Namespace) -> int:
    server = FloodServer()
    rows: list[tuple[str, str]] = []

    def add(name: str, value: str) -> None:
        rows.append((name, value))
        print(f"{name:58s} {value}", flush=True)

    try:
        idle, busy = Busy(False), Busy(True)
        n = args.events
        bare = bare_loop(server, n, idle, 60)
        add("idle: bare websocket-client recv()+json.loads", f"{bare:,.0f} events/s")
        default = session_throughput(server, n, False, idle, 60)
        add("idle: RealtimeSession default", f"{default:,.0f} events/s = {default / bare:.2f}x bare")
        inline = session_throughput(server, n, True, idle, 60)
        add("idle: RealtimeSession inline", f"{inline:,.0f} events/s = {inline / bare:.2f}x bare")
        runs = sorted((session_latency(server, 5000, args.seconds, idle) for _ in range(args.latency_runs)),
                      key=lambda r: r["p99_us"])
        lat = runs[len(runs) // 2]  # the median run by p99: one noisy neighbour does not decide
        add(f"idle: latency at 5,000 events/s, default mode (median of {len(runs)} runs)",
            f"p50 {lat['p50_us']:,.0f} us, p99 {lat['p99_us']:,.0f} us (p99 over runs "
            f"{runs[0]['p99_us']:,.0f}-{runs[-1]['p99_us']:,.0f} us; from the server's send: "
            f"p50 {lat['wire_p50_us']:,.0f} us, p99 {lat['wire_p99_us']:,.0f} us), PINGs echoed {lat['pings']}")
        plain_busy = app_loop(server, n, busy, args.seconds * 2)
        add("busy main thread: plain WebSocketApp + json.loads", f"{plain_busy:,.0f} events/s")
        busy_runs = sorted(session_throughput(server, n, False, busy, 60) for _ in range(args.busy_runs))
        session_busy = busy_runs[len(busy_runs) // 2]
        add(f"busy main thread: RealtimeSession default (median of {len(busy_runs)} runs)",
            f"{session_busy:,.0f} events/s ({busy_runs[0]:,.0f}-{busy_runs[-1]:,.0f}) = "
            f"{session_busy / plain_busy:.1f}x plain app, {session_busy / bare:.2f}x the idle bare loop")
        lat_busy = session_latency(server, 5000, args.seconds, busy)
        add("busy main thread: latency at 5,000 events/s, default mode",
            f"{lat_busy['events_per_s']:,.0f} events/s, p50 {lat_busy['p50_us'] / 1e3:,.1f} ms, "
            f"p99 {lat_busy['p99_us'] / 1e3:,.1f} ms (from send: p99 {lat_busy['wire_p99_us'] / 1e3:,.1f} ms), "
            f"PINGs echoed {lat_busy['pings']} "
            f"(slowest echo {lat_busy['echo_ms_max']} ms)")
    finally:
        server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per throughput run")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per latency run")
    parser.add_argument("--latency-runs", type=int, default=3, help="idle latency runs (the median is shown)")
    parser.add_argument("--busy-runs", type=int, default=3, help="busy throughput runs (the median is shown)")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    _: Callable[..., Any] = main
    raise SystemExit(main())
