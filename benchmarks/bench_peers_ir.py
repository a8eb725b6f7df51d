"""Instructions per event of each whole client process on a flood, counted by callgrind: the
peers and kiwoom-rt doing the same work, measured without this shared host's wall-clock noise.

    pip install -e ".[bench]"   # and valgrind (Debian: apt-get install valgrind)
    python benchmarks/bench_peers_ir.py [--shape 0e-x5] [--receiver values|numbers] [--top 12]

The benchmark server (``flood_server.py --writer sendall``) runs natively in its own process;
each client (``peer_client.py``, the same code ``bench_peers.py`` runs, idle main thread) runs
under ``valgrind --tool=callgrind`` twice, on a flood of ``--small`` and of ``--large`` frames.
The difference, divided by the difference in events, is what one more event costs the client
(start-up, login and subscription cancel out), every thread of the process included: socket
reads, WebSocket framing, JSON, the client's own objects, and the receiver. ``--top`` also lists
the C functions (and the interpreter loop) that account for most of it per frame, which shows
where each client spends and what they share (the standard library's JSON scanner, string
hashing and dict inserts).

Instructions are not time: C code such as a JSON scanner or orjson runs more instructions per
nanosecond than the interpreter loop, so compare clients that parse with the same library
(kiwoom-rt default against the peers, all on the standard library's ``json``) and read the
``[fast]`` column as an upper bound of its cost. The counts repeat to within a fraction of a
percent from run to run (``PYTHONHASHSEED=0``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import traffic  # noqa: E402  (beside this file)

CLIENTS = ("kiwoom-client", "seed-asyncio", "kiwoom-rt", "kiwoom-rt-fast")
_LINE = re.compile(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.*?)(?: \[.*)?$")


def functions(path: Path) -> dict[str, int]:
    """Instructions by function (file:function, the file dropped) of one callgrind output."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100", str(path)], capture_output=True, text=True,
                         check=True).stdout
    found: dict[str, int] = {}
    for line in out.splitlines():
        match = _LINE.match(line)
        if match and "PROGRAM TOTALS" not in line:
            name = match.group(2).split(":", 1)[-1]
            found[name] = found.get(name, 0) + int(match.group(1).replace(",", ""))
    return found


def measure(client: str, url: str, shape: str, frames: int, receiver: str, folder: Path) -> tuple[int, Path]:
    """(instructions, callgrind output) of one client process receiving ``frames`` frames."""
    events = frames * traffic.ENTRIES_PER_FRAME[shape]
    out = folder / f"{client}.{frames}.out"
    env = dict(os.environ, PYTHONHASHSEED="0", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1",
               KIWOOM_RT_BENCH_RECEIVER=receiver)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    query = f"shape={shape}&items={traffic.SHAPE_ITEMS[shape]}&count={frames}"
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
               str(HERE / "peer_client.py"), client, f"{url}?{query}", "--mode", "flood", "--count", str(events),
               "--shape", shape, "--limit", "600"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if f'"received": {events}' not in result.stdout:
        raise RuntimeError(f"{client} did not receive {events} events: {result.stdout[-500:]} {result.stderr[-1500:]}")
    collected = re.search(r"Collected : (\d+)", result.stderr)
    if collected is None:
        raise RuntimeError(f"no callgrind total for {client}: {result.stderr[-1500:]}")
    return int(collected.group(1)), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(traffic.SHAPES), default="0e-x5")
    parser.add_argument("--receiver", choices=("values", "numbers"), default="values")
    parser.add_argument("--small", type=int, default=2_000, help="frames of the short flood")
    parser.add_argument("--large", type=int, default=20_000, help="frames of the long flood")
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    parser.add_argument("--top", type=int, default=12, help="functions listed per client (0: none)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    server = subprocess.Popen([sys.executable, str(HERE / "flood_server.py"), "--writer", "sendall", "--ping", "0.5",
                               "--prepare", f"{args.shape}:{args.small}", "--prepare", f"{args.shape}:{args.large}"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        url = f"ws://127.0.0.1:{port}/api/dostk/websocket"
        entries = traffic.ENTRIES_PER_FRAME[args.shape]
        extra_events = (args.large - args.small) * entries
        rows = []
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            for client in args.clients:
                small, small_out = measure(client, url, args.shape, args.small, args.receiver, folder)
                large, large_out = measure(client, url, args.shape, args.large, args.receiver, folder)
                per_event = (large - small) / extra_events
                rows.append((client, per_event))
                print(f"{client}: {per_event:,.0f} instructions per event", flush=True)
                if args.top:
                    before, after = functions(small_out), functions(large_out)
                    frames = args.large - args.small
                    spent = {key: (after.get(key, 0) - before.get(key, 0)) / frames for key in set(before) | set(after)}
                    for key, value in sorted(spent.items(), key=lambda kv: -kv[1])[:args.top]:
                        print(f"    {value:9,.0f} per frame  {key[:100]}")
    finally:
        server.terminate()
        server.wait(10)
    best_peer = min(per for client, per in rows if not client.startswith("kiwoom-rt")) if any(
        not client.startswith("kiwoom-rt") for client, _ in rows) else None
    print(f"\n{args.shape} flood, receiver {args.receiver}, {extra_events:,} events "
          f"({args.large:,} - {args.small:,} frames), whole client process, idle main thread\n")
    print("| client | instructions per event | / the peer with the fewest |")
    print("|---|---|---|")
    for client, per_event in rows:
        ratio = f"{per_event / best_peer:.2f}" if best_peer else "-"
        print(f"| {client} | {per_event:,.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
