"""The Redis relay against a direct session, in one run, on loopback.

    python benchmarks/bench_relay.py [--events 200000] [--rounds 3]

Needs Debian's redis-server and ``pip install -e ".[relay,bench]"``. Every process is separate:
the flood server (benchmarks/flood_server.py), a redis-server on a free port, the relay
(``kiwoom-rt relay``) and each consumer. Measured:

1. events/s delivered to a counting receiver, from first to last event:
   - a direct ``RealtimeSession`` on the flood;
   - one ``RelaySession`` consumer behind the relay;
   - four consumers at once (the slowest one's rate, and their sum).
2. the relay's own CPU per event (its process's user+system time over the flood).
3. receive-to-consumer latency, p50 and p99, at 5,000 events/s for 5 s: the time from the
   relay's receive stamp (``event.received_at``) to the consumer's receiver.

Each is measured twice: with the default install (orjson made unimportable in every process)
and with ``[fast]`` (orjson). Medians over ``--rounds``. Targets (issue 13): one consumer gets at
least 50% of a direct session's events/s; p99 at most 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ITEM = "000001"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            threading.Event().wait(0.02)
    raise RuntimeError(f"nothing listens on {port}")


# --- the measured processes -----------------------------------------------------------------------

def run_direct(url: str, expect: int, idle: float) -> dict[str, Any]:
    from kiwoom_rt import RealtimeSession

    return _count(RealtimeSession("bench-token", url=url), expect, idle, ready=False)


def _count(session: Any, expect: int, idle: float, ready: bool) -> dict[str, Any]:
    done = threading.Event()
    stamps: list[float] = []
    latencies: list[float] = []
    clock = time.perf_counter
    wall = time.time

    def receive(item: str, event: Any) -> None:
        stamps.append(clock())
        latencies.append(wall() - event.received_at)
        if len(stamps) >= expect:
            done.set()

    session.on_0e.connect(receive)
    session.start()
    if ready:  # every consumer joins before the first REG starts the flood
        print("READY", flush=True)
        sys.stdin.readline()
    session.subscribe([ITEM])
    last = -1
    while not done.wait(idle) and len(stamps) != last:
        last = len(stamps)
    session.close()
    if len(stamps) < 2:
        return {"events": len(stamps), "rate": 0.0}
    lat = sorted(latencies)
    return {"events": len(stamps), "rate": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
            "p50_ms": lat[len(lat) // 2] * 1e3, "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3}


# --- orchestration ------------------------------------------------------------------------------------

class Processes:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, argv: list[str], **options: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen(argv, text=True, **options)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.procs.clear()


def flood_url(port: int, **query: Any) -> str:
    return f"ws://127.0.0.1:{port}/api/dostk/websocket?" + "&".join(f"{k}={v}" for k, v in query.items())


#: Runs the CLI with orjson unimportable (the default install) when the first argument is "default".
CLI = ("import sys\n"
       "if sys.argv.pop(1) == 'default': sys.modules['orjson'] = None\n"
       "from kiwoom_rt.cli import main\n"
       "raise SystemExit(main(sys.argv[1:]))\n")


def consumers_round(procs: Processes, redis_url: str, upstream: str, consumers: int, expect: int,
                    prefix: str, variant: str) -> dict[str, Any]:
    import psutil

    env = dict(os.environ, PYTHONUNBUFFERED="1", KIWOOM_TOKEN="bench-token", NO_PROXY="127.0.0.1")
    relay = procs.start([sys.executable, "-c", CLI, variant, "relay", "--url", upstream, "--redis", redis_url,
                         "--prefix", prefix, "--every", "60", "--buffer", "1000000"],
                        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert relay.stderr is not None
    banner = relay.stderr.readline()
    if not banner.startswith("relay "):
        raise RuntimeError(f"the relay did not start: {banner}{relay.stderr.read()}")
    readers = []
    for _ in range(consumers):
        reader = procs.start([sys.executable, __file__, "--consumer", f"{redis_url}", "--prefix", prefix,
                              "--expect", str(expect), "--variant", variant], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
        readers.append(reader)
    for reader in readers:
        assert reader.stdout is not None
        line = reader.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"a consumer did not start: {line}")
    cpu = psutil.Process(relay.pid)
    before = sum(cpu.cpu_times()[:2])
    for reader in readers:
        assert reader.stdin is not None
        reader.stdin.write("GO\n")
        reader.stdin.flush()
    results = []
    for reader in readers:
        assert reader.stdout is not None
        results.append(json.loads(reader.stdout.readline()))
        reader.wait(30)
    used = sum(cpu.cpu_times()[:2]) - before
    relay.terminate()
    relay.wait(20)
    rates = [r["rate"] for r in results]
    return {"rate_min": min(rates), "rate_sum": sum(rates), "events": min(r["events"] for r in results),
            "cpu_us_per_event": used / max(1, expect) * 1e6, "p50_ms": results[0].get("p50_ms"),
            "p99_ms": results[0].get("p99_ms")}


def direct_round(flood_port: int, expect: int, variant: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", NO_PROXY="127.0.0.1")
    out = subprocess.run([sys.executable, __file__, "--direct", flood_url(flood_port, count=expect),
                          "--expect", str(expect), "--variant", variant], env=env, capture_output=True, text=True,
                         timeout=300)
    if out.returncode:
        raise RuntimeError(out.stderr)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--consumer", metavar="REDIS_URL", help=argparse.SUPPRESS)
    parser.add_argument("--direct", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="kiwoom-rt", help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="fast", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant == "default":
        sys.modules["orjson"] = None  # type: ignore[assignment]  # the default install has no orjson
    if args.consumer:
        from kiwoom_rt.relay import RelaySession

        session = RelaySession(args.consumer, prefix=args.prefix)
        print(json.dumps(_count(session, args.expect, 3.0, ready=True)), flush=True)
        return 0
    if args.direct:
        print(json.dumps(run_direct(args.direct, args.expect, 3.0)), flush=True)
        return 0

    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 1
    procs = Processes()
    folder = tempfile.mkdtemp(prefix="bench-relay-")
    try:
        port = free_port()
        procs.start([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--save", "",
                     "--appendonly", "no"], stdout=subprocess.DEVNULL)
        wait_port(port)
        redis_url = f"redis://127.0.0.1:{port}/0"
        flood = procs.start([sys.executable, str(HERE / "flood_server.py")], stdout=subprocess.PIPE,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        assert flood.stdout is not None
        flood_port = int(flood.stdout.readline().split()[1])
        threading.Thread(target=lambda: [None for _ in flood.stdout or ()], daemon=True).start()

        variants = ("default", "fast")
        rows: dict[tuple[str, str], list[dict[str, Any]]] = {
            (v, name): [] for v in variants for name in ("direct", "relay x1", "relay x4", "paced")}
        for round_no in range(args.rounds):
            for v in variants:
                rows[v, "direct"].append(direct_round(flood_port, args.events, v))
                for consumers in (1, 4):
                    rows[v, f"relay x{consumers}"].append(consumers_round(
                        procs, redis_url, flood_url(flood_port, count=args.events), consumers, args.events,
                        prefix=f"bench{round_no}{v}x{consumers}", variant=v))
                rows[v, "paced"].append(consumers_round(
                    procs, redis_url, flood_url(flood_port, rate=5000, seconds=5), 1, 25_000,
                    prefix=f"paced{round_no}{v}", variant=v))
                print(f"round {round_no + 1} {v}: " + "  ".join(
                    f"{name} {runs[-1].get('rate') or runs[-1].get('rate_min'):,.0f}/s"
                    for (variant, name), runs in rows.items() if variant == v), file=sys.stderr, flush=True)

        def median(v: str, name: str, key: str) -> float:
            return statistics.median(r[key] for r in rows[v, name])

        print(f"\n{args.events:,} frames, medians of {args.rounds} rounds (loopback, 2 cores shared by the flood "
              "server, Redis, the relay and the consumers)\n")
        print("| path | default events/s | × direct | [fast] events/s | × direct |")
        print("|---|---|---|---|---|")
        for label, name, key in (("direct RealtimeSession", "direct", "rate"),
                                 ("relay, 1 consumer", "relay x1", "rate_min"),
                                 ("relay, 4 consumers (slowest)", "relay x4", "rate_min"),
                                 ("relay, 4 consumers (sum)", "relay x4", "rate_sum")):
            cells = []
            for v in variants:
                value = median(v, name, key)
                cells += [f"{value:,.0f}", f"{value / median(v, 'direct', 'rate'):.2f}"]
            print(f"| {label} | " + " | ".join(cells) + " |")
        print()
        for v in variants:
            one = median(v, "relay x1", "rate_min") / median(v, "direct", "rate")
            p99 = median(v, "paced", "p99_ms")
            print(f"{v}: relay CPU per event {median(v, 'relay x1', 'cpu_us_per_event'):.1f} µs (1 consumer), "
                  f"{median(v, 'relay x4', 'cpu_us_per_event'):.1f} µs (4 consumers); receive-to-consumer "
                  f"latency at 5,000 events/s p50 {median(v, 'paced', 'p50_ms'):.2f} ms, p99 {p99:.2f} ms; "
                  f"targets: 1 consumer {one:.2f} x direct (>= 0.50: {'met' if one >= 0.5 else 'MISSED'}), "
                  f"p99 <= 5 ms: {'met' if p99 <= 5 else 'MISSED'}")
    finally:
        procs.stop_all()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
