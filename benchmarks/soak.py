"""Soak: a session under a steady 5,000 events/s with a fault every 20 s, for 10 minutes.

    python benchmarks/soak.py [--minutes 10] [--rate 5000] [--fault-every 20]

The simulator runs in its own process (benchmarks/sim_control.py), so this process's memory is
the session's alone. Faults cycle through: abrupt drop, normal close, silence (caught by the
idle timeout), SYSTEM R10002, a refused login, a junk frame. Reports events delivered, faults
survived, the time from each fault to every subscription restored (p50/p99; target p50 <= 1.5 s)
and RSS at start and end (target growth <= 5 MB).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from kiwoom_rt import RealtimeSession
from kiwoom_rt.sim import DEFAULT_TOKEN

HERE = Path(__file__).resolve().parent
FAULTS = ["drop", "close", "silence", "r10002", "refuse", "junk"]
ITEMS_1 = [f"{100000 + i:06d}" for i in range(100)]
ITEMS_2 = [f"{200000 + i:06d}" for i in range(100)]


class SimProcess:
    def __init__(self, rate: float) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "sim_control.py"), "--rate", str(rate)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().split()[1]

    def command(self, text: str) -> Any:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        try:
            self.command("quit")
        except (BrokenPipeError, ValueError):
            pass
        self.proc.wait(10)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--fault-every", type=float, default=20.0)
    args = parser.parse_args()
    sim = SimProcess(args.rate)
    process = psutil.Process()
    delivered = [0]
    logins: list[float] = []
    lock = threading.Lock()

    def count(item: str, event: Any) -> None:
        delivered[0] += 1

    def logged_in(session: Any, **_: Any) -> None:
        with lock:
            logins.append(time.monotonic())

    session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, idle_timeout=3.0)
    session.on_0e.connect(count)
    session.on_login.connect(logged_in)
    restore_times: list[float] = []
    survived = 0
    try:
        session.start()
        session.subscribe(ITEMS_1, grp_no="1").wait(10)
        session.subscribe(ITEMS_2, grp_no="2").wait(10)
        wanted = {"1": sorted(f"{i}/0E" for i in ITEMS_1), "2": sorted(f"{i}/0E" for i in ITEMS_2)}
        pause = threading.Event()
        pause.wait(5)  # warm up
        gc.collect()
        rss_start = process.memory_info().rss
        started = time.monotonic()
        end = started + args.minutes * 60
        number = 0
        while time.monotonic() + args.fault_every <= end:
            pause.wait(args.fault_every)
            fault = FAULTS[number % len(FAULTS)]
            number += 1
            with lock:
                logins_before = len(logins)
            before_events = delivered[0]
            fault_at = time.monotonic()
            sim.command(fault)
            if fault == "junk":
                survived += session.connected
                continue
            while True:  # restored: logged in again and every restore REG acknowledged
                with lock:
                    again = len(logins) > logins_before
                if again and session.stats()["pending_requests"] == 0:
                    break
                if time.monotonic() - fault_at > 60:
                    print(f"fault {number} ({fault}): not restored within 60 s", flush=True)
                    break
                pause.wait(0.01)
            restore_times.append(time.monotonic() - fault_at)
            ok = sim.command("registrations") == wanted
            while delivered[0] <= before_events + 100 and time.monotonic() - fault_at < 60:
                pause.wait(0.05)
            survived += ok and session.connected
            print(f"{time.monotonic() - started:6.0f} s  fault {number:3d} {fault:8s} restored in "
                  f"{restore_times[-1]:.2f} s  registrations {'ok' if ok else 'WRONG'}  "
                  f"events {delivered[0]:,}", flush=True)
        remaining = end - time.monotonic()
        if remaining > 0:
            pause.wait(remaining)
        elapsed = time.monotonic() - started
        gc.collect()
        rss_end = process.memory_info().rss
        stats = session.stats()
    finally:
        session.close()
        sim.stop()
    print()
    print(f"duration {elapsed / 60:.1f} min at {args.rate:,.0f} events/s offered, "
          f"a fault every {args.fault_every:.0f} s")
    print(f"events delivered {delivered[0]:,} ({delivered[0] / elapsed:,.0f}/s), dropped {stats['dropped']:,}, "
          f"decode errors {stats['decode_errors']}")
    print(f"faults survived {survived}/{number}")
    if restore_times:
        print(f"drop to all subscriptions restored: p50 {statistics.median(restore_times):.2f} s, "
              f"p99 {percentile(restore_times, 0.99):.2f} s, max {max(restore_times):.2f} s")
    growth = (rss_end - rss_start) / 1e6
    print(f"RSS start {rss_start / 1e6:.1f} MB, end {rss_end / 1e6:.1f} MB, growth {growth:+.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
