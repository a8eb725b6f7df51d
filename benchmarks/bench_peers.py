"""kiwoom-rt against the clients a user would otherwise pick, all in one run.

    pip install -e ".[bench]"
    python benchmarks/bench_peers.py [--rounds 3] [--events 200000] [--tls]

A Kiwoom-speaking flood server runs in its own process on loopback and PINGs every 0.5 s. Each
client runs in a fresh process of its own (``peer_client.py``): kiwoom-client 0.4.0, the seed
document's asyncio ``websockets`` loop, kiwoom-rt with its default install (no orjson) and
kiwoom-rt with ``[fast]`` (orjson). Scenarios:

- flood: ``--events`` one-entry 0E frames as fast as TCP takes them; events/s and the share
  delivered; idle main thread, then a busy one (a pure-Python CPU loop on the main thread);
- paced: 5,000 frames/s for 5 s; receive latency p99 from the server's send stamp, and the PING
  echo latency p99 seen by the server; idle and busy.

Each cell is the median of ``--rounds`` rounds; rounds interleave the clients so that a noisy
period hits them all. Ratios compare kiwoom-rt with kiwoom-client and with the best peer of the
same scenario in the same run. ``--tls`` runs everything over wss:// with a local self-signed
certificate (production is wss://).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLIENTS = ["kiwoom-client", "seed-asyncio", "kiwoom-rt", "kiwoom-rt-fast"]
PEERS = ["kiwoom-client", "seed-asyncio"]


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


class FloodServer:
    def __init__(self, tls: tuple[Path, Path] | None) -> None:
        command = [sys.executable, str(HERE / "flood_server.py"), "--ping", "0.5"]
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


def run_client(server: FloodServer, client: str, mode: str, count: int, busy: bool, cafile: Path | None,
               query: str) -> dict[str, Any]:
    env = dict(os.environ, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    if cafile is not None:
        env["SSL_CERT_FILE"] = str(cafile)  # kiwoom-client offers no way to pass a CA: trust it process-wide
    command = [sys.executable, str(HERE / "peer_client.py"), client, server.url(query), "--mode", mode,
               "--count", str(count)]
    if busy:
        command.append("--busy")
    if cafile is not None:
        command += ["--cafile", str(cafile)]
    output = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    lines = [line for line in output.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{client} failed: {output.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result.update({f"server_{k}": v for k, v in server.report().items()})
    return result


def median(rows: list[dict[str, Any]], key: str) -> float:
    values = [row[key] for row in rows if isinstance(row.get(key), (int, float))]
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=200_000, help="frames per flood run")
    parser.add_argument("--rate", type=int, default=5000, help="frames/s in paced runs")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of paced runs")
    parser.add_argument("--tls", action="store_true", help="wss:// with a local self-signed certificate")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--only", action="append", metavar="SCENARIO",
                        help='run only this scenario (repeatable), e.g. --only "paced, busy main"')
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="kiwoom-bench-"))
    tls = make_certificate(folder) if args.tls else None
    server = FloodServer(tls)
    paced_count = int(args.rate * args.seconds)
    scenarios = [
        ("flood, idle main", "flood", args.events, False, f"count={args.events}"),
        ("flood, busy main", "flood", args.events, True, f"count={args.events}"),
        ("paced, idle main", "paced", paced_count, False, f"rate={args.rate}&seconds={args.seconds}"),
        ("paced, busy main", "paced", paced_count, True, f"rate={args.rate}&seconds={args.seconds}"),
    ]
    if args.only:
        unknown = set(args.only) - {s[0] for s in scenarios}
        if unknown:
            parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {[s[0] for s in scenarios]}")
        scenarios = [s for s in scenarios if s[0] in args.only]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        for name, mode, count, busy, query in scenarios:
            for round_number in range(args.rounds):
                for client in CLIENTS:
                    row = run_client(server, client, mode, count, busy, tls[0] if tls else None, query)
                    results.setdefault((name, client), []).append(row)
                    print(f"  {name:18s} round {round_number + 1} {client:15s} "
                          f"{row['events_per_s']:>10,.0f}/s {row['received']}/{row['expected']} "
                          f"p99 {row['p99_ms']:.2f} ms echo p99 {row.get('server_echo_ms_p99')} ms",
                          file=sys.stderr, flush=True)
    finally:
        server.stop()

    print(f"\nkiwoom-rt against its peers, {'wss:// (TLS)' if tls else 'ws://'} on loopback, medians of "
          f"{args.rounds} rounds, {sys.implementation.name} {sys.version.split()[0]}\n")
    header = "| scenario | " + " | ".join(CLIENTS) + " | kiwoom-rt / kiwoom-client | kiwoom-rt-fast / kiwoom-client |"
    print(header)
    print("|" + "---|" * (len(CLIENTS) + 3))
    for name, mode, _count, _busy, _query in scenarios:
        cells = []
        for client in CLIENTS:
            rows = results[(name, client)]
            if mode == "flood":
                delivered = median(rows, "received") / rows[0]["expected"] * 100
                cells.append(f"{median(rows, 'events_per_s'):,.0f}/s ({delivered:.0f}%)")
            else:
                cells.append(f"p99 {median(rows, 'p99_ms'):.2f} ms")
        ratios = []
        for ours in ("kiwoom-rt", "kiwoom-rt-fast"):
            key = "events_per_s" if mode == "flood" else "p99_ms"
            ratios.append(f"{median(results[(name, ours)], key) / median(results[(name, 'kiwoom-client')], key):.2f}x")
        print(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    print("\nPING echo latency p99 seen by the server (ms), median over rounds:\n")
    print("| scenario | " + " | ".join(CLIENTS) + " |")
    print("|" + "---|" * (len(CLIENTS) + 1))
    for name, *_ in scenarios:
        print(f"| {name} | " + " | ".join(f"{median(results[(name, c)], 'server_echo_ms_p99'):.1f}"
                                          for c in CLIENTS) + " |")
    print("\nkiwoom-rt's p99 against the best peer (lower is better):")
    for name, mode, *_ in scenarios:
        if mode != "paced":
            continue
        best = min(median(results[(name, peer)], "p99_ms") for peer in PEERS)
        for ours in ("kiwoom-rt", "kiwoom-rt-fast"):
            print(f"- {name}, {ours}: {median(results[(name, ours)], 'p99_ms') / best:.2f}x the best peer's p99")
    if args.json:
        Path(args.json).write_text(json.dumps({f"{k[0]}|{k[1]}": v for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
