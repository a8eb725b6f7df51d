"""The simulator in its own process, driven by one-word commands on stdin (for benchmarks).

    python benchmarks/sim_control.py --rate 5000 --batch 5 --ping-interval 1

Prints ``URL <ws url>``, then answers each command line with one line:
``drop`` | ``close`` | ``silence`` | ``r10002`` | ``refuse`` (the next LOGIN) | ``junk`` |
``registrations`` (JSON of the latest connection) | ``status`` (JSON counters) | ``quit``.
"""

from __future__ import annotations

import argparse
import json
import sys

from kiwoom_rt.sim import SimServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--ping-interval", type=float, default=1.0)
    args = parser.parse_args()
    with SimServer(rate=args.rate, batch=args.batch, ping_interval=args.ping_interval) as sim:
        print(f"URL {sim.url}", flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "quit":
                break
            if command == "drop":
                reply: object = sim.drop_all()
            elif command == "close":
                reply = sim.close_all(1001, "soak")
            elif command == "silence":
                reply = sim.go_silent()
            elif command == "r10002":
                reply = sim.send_system("R10002", "no heartbeat") + sim.close_all()
            elif command == "refuse":
                sim.refuse_next_logins(1)
                reply = sim.drop_all()
            elif command == "junk":
                reply = sim.push("{not json")
            elif command == "registrations":
                reply = {g: sorted(f"{i}/{t}" for i, t in pairs) for g, pairs in sim.registrations().items()}
            elif command == "status":
                reply = {"connections": sim.connection_count, "total": sim.connections_total,
                         "logins": sim.logins, "events_sent": sim.events_sent}
            else:
                reply = f"unknown command {command!r}"
            print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
