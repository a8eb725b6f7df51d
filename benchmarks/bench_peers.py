"""kiwoom-rt against the clients a user would otherwise pick, on every traffic shape, in one run.

    pip install -e ".[bench]"
    python benchmarks/bench_peers.py [--rounds 5] [--tls] [--only SCENARIO ...] [--json out.json]

Clients, each in a fresh process of its own (``peer_client.py``): kiwoom-client 0.4.0, the seed
document's asyncio ``websockets`` loop, kiwoom-rt as installed by default (no orjson) and kiwoom-rt
with ``[fast]`` (orjson). The asyncio peers run their loop on a thread, as a Qt or Tk app would.

Servers (``flood_server.py``), each its own process on loopback, PINGing every 0.5 s:

- ``sendall``: frames encoded once beforehand, written with blocking ``sendall`` from a plain socket,
  paced only by the kernel;
- ``asyncio``: an asyncio writer that writes 1,000 frames and then waits for ``drain()``.

Traffic shapes (``traffic.py``): ``0e-x1`` (one 0E entry a frame, 2,000 items subscribed in REGs
of 100, varied values), ``0e-x5`` (five entries a frame), ``mixed`` (0B trades and 0D ten-level
books, about 3 KB), and ``0e-legacy`` (the project's first benchmark: one item, near-constant
values) kept as one row for comparison.

Scenarios: a flood (as fast as TCP takes it; events/s and the share delivered) and a paced run
(5,000 frames/s for 5 s; receive latency p50/p99 from the server's send stamp, PING echo p99), each
with an idle main thread and with a busy one (a pure-Python CPU loop on the main thread).

Each cell is the median of ``--rounds`` rounds; rounds interleave the clients so that a noisy period
hits them all. Ratios compare kiwoom-rt with kiwoom-client and with the best peer of the same
scenario in the same run. kiwoom-rt's own counters (socket reads, frames per read, handovers) are in
the ``--json`` output. ``--tls`` runs everything over wss:// with a local self-signed certificate
(production is wss://); the sendall server then serves plain ws:// rows only, so TLS rows use the
asyncio server.

``--receiver numbers`` makes every client's receiver take three numbers of each event (0E: both
totals and the ask total's change; 0B: price, volume, cumulative volume; 0D: both totals and the
ask total's change) the way its users get them: kiwoom-rt's typed fields, ``int()`` of the peers'
raw text. By default the receivers take the raw values only, which every client hands over as is.

``KIWOOM_RT_BENCH_SWITCH=SECONDS`` makes every client process call ``sys.setswitchinterval`` with it
first (what an application may do; CPython's default is 0.005), and busy-main scenarios report how
much work the main thread got done meanwhile (its loop's rounds/s).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import ipaddress
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import traffic  # noqa: E402  (beside this file)

CLIENTS = ["kiwoom-client", "seed-asyncio", "kiwoom-rt", "kiwoom-rt-fast"]
PEERS = ["kiwoom-client", "seed-asyncio"]
OURS = ["kiwoom-rt", "kiwoom-rt-fast"]

#: Frames per flood, per shape (entries per frame differ; mixed frames are large).
FLOOD_FRAMES = {"0e-legacy": 200_000, "0e-x1": 200_000, "0e-x5": 100_000, "mixed": 40_000}


class Scenario(NamedTuple):
    shape: str
    writer: str
    mode: str  # "flood" or "paced"
    busy: bool

    @property
    def name(self) -> str:
        return f"{self.shape} {self.writer}, {self.mode}, {'busy' if self.busy else 'idle'} main"


def all_scenarios(tls: bool) -> list[Scenario]:
    rows: list[tuple[str, str]] = [("0e-legacy", "asyncio"), ("0e-x1", "sendall"), ("0e-x1", "asyncio"),
                                   ("0e-x5", "sendall"), ("0e-x5", "asyncio"), ("mixed", "sendall"),
                                   ("mixed", "asyncio")]
    paced: list[tuple[str, str]] = [("0e-x1", "sendall"), ("mixed", "sendall")]
    if tls:  # the sendall server speaks plain TCP only
        rows = [(shape, "asyncio") for shape, writer in rows if writer == "asyncio"]
        paced = [(shape, "asyncio") for shape, _ in paced]
    result = [Scenario(shape, writer, "flood", busy) for shape, writer in rows for busy in (False, True)]
    result += [Scenario(shape, writer, "paced", busy) for shape, writer in paced for busy in (False, True)]
    return result


def make_certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Server:
    """One benchmark server process (``flood_server.py --writer ...``)."""

    def __init__(self, writer: str, tls: tuple[Path, Path] | None, prepare: list[str]) -> None:
        command = [sys.executable, str(HERE / "flood_server.py"), "--writer", writer, "--ping", "0.5"]
        for spec in prepare:
            command += ["--prepare", spec]
        if tls:
            command += ["--tls", str(tls[0]), str(tls[1])]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline().split()[1])
        self.scheme = "wss" if tls else "ws"

    def url(self, query: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/api/dostk/websocket?{query}"

    def report(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        result: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return result

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def run_client(server: Server, client: str, scenario: Scenario, args: argparse.Namespace,
               cafile: Path | None) -> dict[str, Any]:
    shape = scenario.shape
    entries = traffic.ENTRIES_PER_FRAME[shape]
    items = traffic.SHAPE_ITEMS[shape]
    if scenario.mode == "flood":
        frames = FLOOD_FRAMES[shape] if args.frames is None else args.frames
        query = f"shape={shape}&items={items}&count={frames}"
    else:
        frames = int(args.rate * args.seconds)
        query = f"shape={shape}&items={items}&rate={args.rate}&seconds={args.seconds}"
    env = dict(os.environ, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1", KIWOOM_RT_BENCH_RECEIVER=args.receiver)
    if client.endswith("-before"):
        env["PYTHONPATH"] = args.before  # the older checkout's kiwoom_rt comes first
        client = client.removesuffix("-before")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    if cafile is not None:
        env["SSL_CERT_FILE"] = str(cafile)  # kiwoom-client offers no way to pass a CA: trust it process-wide
    command = [sys.executable, str(HERE / "peer_client.py"), client, server.url(query), "--mode", scenario.mode,
               "--count", str(frames * entries), "--shape", shape, "--limit", str(args.limit)]
    if scenario.busy:
        command.append("--busy")
    if cafile is not None:
        command += ["--cafile", str(cafile)]
    output = subprocess.run(command, capture_output=True, text=True, timeout=args.limit + 60, env=env)
    lines = [line for line in output.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{client} failed: {output.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result.update({f"server_{k}": v for k, v in server.report().items()})
    return result


def median(rows: list[dict[str, Any]], key: str) -> float:
    values = [row[key] for row in rows if isinstance(row.get(key), (int, float))]
    return statistics.median(values) if values else float("nan")


def print_tables(scenarios: list[Scenario], results: dict[tuple[str, str], list[dict[str, Any]]],
                 rounds: int, tls: bool, receiver: str = "values") -> None:
    results = collections.defaultdict(list, results)  # a client left out by --clients reads as nan
    takes = ("three numbers of each event (kiwoom-rt: typed fields; the peers: int() of the raw text)"
             if receiver == "numbers" else "each event's raw values")
    print(f"\nkiwoom-rt against its peers, {'wss:// (TLS)' if tls else 'ws://'} on loopback, medians of "
          f"{rounds} rounds, {sys.implementation.name} {sys.version.split()[0]}; the receivers take {takes}\n")
    floods = [s for s in scenarios if s.mode == "flood"]
    if floods:
        print("Floods, events/s (share delivered); ratios: ours / kiwoom-client, ours / the best peer\n")
        ratio_heads = [f"{ours} / {peer}" for ours in OURS for peer in ("kc", "best")]
        print("| shape | server | main | " + " | ".join(CLIENTS) + " | " + " | ".join(ratio_heads) + " |")
        print("|" + "---|" * (len(CLIENTS) + 3 + len(ratio_heads)))
        for s in floods:
            cells = []
            for client in CLIENTS:
                rows = results[(s.name, client)]
                delivered = median(rows, "received") / rows[0]["expected"] * 100
                cells.append(f"{median(rows, 'events_per_s') / 1000:,.1f}k ({delivered:.0f}%)")
            kc = median(results[(s.name, "kiwoom-client")], "events_per_s")
            best = max((median(results[(s.name, p)], "events_per_s") for p in PEERS), default=math.nan)
            ratios = []
            for ours in OURS:
                value = median(results[(s.name, ours)], "events_per_s")
                ratios += [f"{value / kc:.2f}x", f"{value / best:.2f}x"]
            print(f"| {s.shape} | {s.writer} | {'busy' if s.busy else 'idle'} | " + " | ".join(cells) + " | "
                  + " | ".join(ratios) + " |")
    paced = [s for s in scenarios if s.mode == "paced"]
    if paced:
        print("\nPaced 5,000 frames/s, receive latency p50 / p99 (ms); ratio: our p99 / the best peer's p99\n")
        print("| shape | server | main | " + " | ".join(CLIENTS) + " | "
              + " | ".join(f"{ours} / best" for ours in OURS) + " |")
        print("|" + "---|" * (len(CLIENTS) + 3 + len(OURS)))
        for s in paced:
            cells = [f"{median(results[(s.name, c)], 'p50_ms'):.2f} / {median(results[(s.name, c)], 'p99_ms'):.2f}"
                     for c in CLIENTS]
            best = min((median(results[(s.name, p)], "p99_ms") for p in PEERS), default=math.nan)
            ratios = [f"{median(results[(s.name, ours)], 'p99_ms') / best:.2f}x" for ours in OURS]
            print(f"| {s.shape} | {s.writer} | {'busy' if s.busy else 'idle'} | " + " | ".join(cells) + " | "
                  + " | ".join(ratios) + " |")
    print("\nPING echo p99 seen by the server (ms), and peak memory (MB)\n")
    print("| scenario | " + " | ".join(f"{c} echo" for c in CLIENTS) + " | " + " | ".join(f"{c} MB" for c in CLIENTS)
          + " |")
    print("|" + "---|" * (2 * len(CLIENTS) + 1))
    for s in scenarios:
        echoes = [f"{median(results[(s.name, c)], 'server_echo_ms_p99'):.1f}" for c in CLIENTS]
        memory = [f"{median(results[(s.name, c)], 'max_rss_mb'):.0f}" for c in CLIENTS]
        print(f"| {s.name} | " + " | ".join(echoes) + " | " + " | ".join(memory) + " |")
    busy = [s for s in scenarios if s.busy]
    if busy:
        interval = float(os.environ.get("KIWOOM_RT_BENCH_SWITCH") or sys.getswitchinterval())
        print(f"\nThe busy main thread's work while each client ran: its loop's rounds/s (medians; every "
              f"client's GIL switch interval {interval * 1e3:g} ms)\n")
        print("| scenario | " + " | ".join(CLIENTS) + " |")
        print("|" + "---|" * (len(CLIENTS) + 1))
        for s in busy:
            print(f"| {s.name} | " + " | ".join(f"{median(results[(s.name, c)], 'main_rounds_per_s'):,.0f}"
                                               for c in CLIENTS) + " |")
    print("\nkiwoom-rt's own counters (medians): socket reads, frames per read, handovers, CPU per event (idle)\n")
    print("| scenario | client | reads | frames/read | bytes/read | handovers | CPU µs/event |")
    print("|---|---|---|---|---|---|---|")
    for s in scenarios:
        for ours in OURS:
            rows = results[(s.name, ours)]
            cpu = f"{median(rows, 'cpu_us_per_event'):.2f}" if not s.busy else "-"
            print(f"| {s.name} | {ours} | {median(rows, 'reads'):,.0f} | {median(rows, 'frames_per_read'):,.1f} | "
                  f"{median(rows, 'bytes_per_read'):,.0f} | {median(rows, 'handovers'):,.0f} | {cpu} |")
    print("\nCPU µs per event with an idle main thread, peers:", ", ".join(
        f"{s.shape} {s.writer}: " + " / ".join(f"{median(results[(s.name, p)], 'cpu_us_per_event'):.2f}" for p in PEERS)
        for s in scenarios if s.mode == "flood" and not s.busy), "(kiwoom-client / seed-asyncio)")


def print_metrics_overhead(scenarios: list[Scenario], results: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    """kiwoom-rt with metrics served (not scraped: the hot path's share) and scraped every second,
    against kiwoom-rt without, in one run."""
    print("\nMetrics on / off, default install: kiwoom-rt-metrics serves metrics (collectors observing the "
          "session: the hot path's share), kiwoom-rt-scraped is also scraped every second by another process "
          "(15 times Prometheus's usual 15 s). Floods in events/s (above 1.00 means faster with metrics), paced in "
          "p99 ms (below 1.00 means lower with metrics)\n")
    print("| scenario | kiwoom-rt | kiwoom-rt-metrics | kiwoom-rt-scraped | metrics / plain | scraped / plain |")
    print("|---|---|---|---|---|---|")
    for s in scenarios:
        key = "events_per_s" if s.mode == "flood" else "p99_ms"
        plain, metrics, scraped = (median(results[(s.name, client)], key)
                                   for client in ("kiwoom-rt", "kiwoom-rt-metrics", "kiwoom-rt-scraped"))
        unit = "/s" if s.mode == "flood" else " ms"
        print(f"| {s.name} | {plain:,.1f}{unit} | {metrics:,.1f}{unit} | {scraped:,.1f}{unit} | "
              f"{metrics / plain:.3f} | {scraped / plain:.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, help="frames per flood (default: per shape)")
    parser.add_argument("--rate", type=int, default=5000, help="frames/s in paced runs")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of paced runs")
    parser.add_argument("--limit", type=float, default=30.0, help="seconds a client may take before it gives up")
    parser.add_argument("--tls", action="store_true", help="wss:// with a local self-signed certificate")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, help="run only these clients")
    parser.add_argument("--before", metavar="CHECKOUT",
                        help="also run kiwoom-rt from this older checkout (a git worktree) in the same run, as "
                             "kiwoom-rt-before and kiwoom-rt-fast-before")
    parser.add_argument("--metrics", action="store_true",
                        help="also run kiwoom-rt (default install) with serve_metrics, as kiwoom-rt-metrics (never "
                             "scraped) and kiwoom-rt-scraped (scraped every second from another process), and "
                             "report their ratios to kiwoom-rt")
    parser.add_argument("--receiver", choices=["values", "numbers"], default="values",
                        help="what every client's receiver takes from each event: its raw values (default), "
                             "or three numbers of it (kiwoom-rt's typed fields, int() of the peers' raw text)")
    parser.add_argument("--only", action="append", metavar="TEXT",
                        help='run only scenarios whose name contains TEXT (repeatable), e.g. --only "busy"')
    args = parser.parse_args()
    if args.clients:
        CLIENTS[:] = [c for c in CLIENTS if c in args.clients]
        PEERS[:] = [c for c in PEERS if c in args.clients]  # ratios to a peer not run print as nan
        OURS[:] = [c for c in OURS if c in args.clients]
    if args.before:
        CLIENTS.extend(["kiwoom-rt-before", "kiwoom-rt-fast-before"])
        OURS.extend(["kiwoom-rt-before", "kiwoom-rt-fast-before"])
    if args.metrics:
        CLIENTS.extend(["kiwoom-rt-metrics", "kiwoom-rt-scraped"])

    scenarios = all_scenarios(args.tls)
    if args.only:
        scenarios = [s for s in scenarios if any(text in s.name for text in args.only)]
        if not scenarios:
            parser.error(f"no scenario matches {args.only}; names look like {all_scenarios(args.tls)[0].name!r}")
    folder = Path(tempfile.mkdtemp(prefix="kiwoom-bench-"))
    tls = make_certificate(folder) if args.tls else None
    servers: dict[str, Server] = {}
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        for writer in sorted({s.writer for s in scenarios}):
            prepare = sorted({f"{s.shape}:{FLOOD_FRAMES[s.shape] if args.frames is None else args.frames}"
                              for s in scenarios if s.writer == writer and s.mode == "flood"})
            servers[writer] = Server(writer, tls, prepare)
        for scenario in scenarios:
            for round_number in range(args.rounds):
                for client in CLIENTS:
                    row = run_client(servers[scenario.writer], client, scenario, args, tls[0] if tls else None)
                    results.setdefault((scenario.name, client), []).append(row)
                    print(f"  {scenario.name:34s} round {round_number + 1} {client:15s} "
                          f"{row['events_per_s']:>10,.0f}/s {row['received']}/{row['expected']} "
                          f"p99 {row['p99_ms']:.2f} ms echo p99 {row.get('server_echo_ms_p99')} ms "
                          f"reads {row.get('reads', '-')} handovers {row.get('handovers', '-')}",
                          file=sys.stderr, flush=True)
    finally:
        for server in servers.values():
            server.stop()
    print_tables(scenarios, results, args.rounds, bool(tls), args.receiver)
    if args.metrics:
        print_metrics_overhead(scenarios, results)
    if args.json:
        Path(args.json).write_text(json.dumps({f"{k[0]}|{k[1]}": v for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
