"""Replay a 1,000,000-event recording as fast as possible; reports events/s.

    python benchmarks/bench_replay.py [--events 1000000] [--gzip]

Writes a recording of single-entry 0E frames (the recorder's format) to a temporary directory,
then plays it through ReplaySession(speed=None) into a counting receiver (delivered on the
replay thread), and through ``kiwoom-rt replay --max --json`` into /dev/null.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kiwoom_rt.replay import ReplaySession


def write_recording(path: Path, events: int) -> None:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as out:
        out.write(json.dumps({"kiwoom_rt_recording": 1, "started": 0}) + "\n")
        base = 1_795_000_000.0
        for i in range(events):
            values = f'{{"21":"165208","131":"{40_000 + i % 997}","132":"+156","135":"{1_000 + i % 89}","136":"-3"}}'
            entry = f'{{"type":"0E","name":"주식시간외호가","item":"{i % 500:06d}","values":{values}}}'
            frame = f'{{"trnm":"REAL","data":[{entry}]}}'
            out.write(json.dumps({"t": base + i * 1e-4, "frame": frame}, ensure_ascii=False) + "\n")


def replay(path: Path) -> tuple[int, float]:
    count = [0]
    done = threading.Event()
    session = ReplaySession(path, speed=None)

    def counter(item: str, event: Any) -> None:
        count[0] += 1

    session.on_0e.connect(counter)
    started = time.perf_counter()
    session.start()
    session.wait()
    elapsed = time.perf_counter() - started
    session.close()
    done.set()
    return count[0], elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--gzip", action="store_true", help="a .jsonl.gz recording")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("recording.jsonl.gz" if args.gzip else "recording.jsonl")
        started = time.perf_counter()
        write_recording(path, args.events)
        size_mb = path.stat().st_size / 1e6
        print(f"wrote {args.events:,} events ({size_mb:.0f} MB) in {time.perf_counter() - started:.1f} s")
        count, elapsed = replay(path)
        print(f"ReplaySession                              {count:,} events in {elapsed:.2f} s "
              f"= {count / elapsed:,.0f} events/s")
        started = time.perf_counter()
        with open(os.devnull, "w") as devnull:
            subprocess.run([sys.executable, "-m", "kiwoom_rt", "replay", str(path), "--max", "--json"],
                           stdout=devnull, stderr=subprocess.DEVNULL, check=True)
        elapsed = time.perf_counter() - started
        print(f"kiwoom-rt replay --max --json > /dev/null       {args.events:,} events in {elapsed:.2f} s "
              f"= {args.events / elapsed:,.0f} events/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
