"""One run of bench_bars's work, for counting instructions with callgrind (deterministic, where
this shared host's wall-clock times move by 30-50%).

    for mode in none decode bars; do
        PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
            python benchmarks/bench_bars_ir.py $mode 500 [--stdlib] [--per-read 10] 2>&1 | grep Collected
    done

``none`` builds the 20,000-frame stream only; ``decode`` also decodes it; ``bars`` also builds
1-minute bars (no ``on_update`` receiver); ``updates`` the same with a ``Bar`` snapshot per trade (an
``on_update`` receiver); ``ticks`` 10-tick bars instead; ``feed`` the same
1-minute bars through a whole ``BarFeed`` (its lock and checks per read, final bars posted to
its session's delivery queue). Decode cost per trade =
(decode - none) / 20,000; bars cost = (bars - decode) / 20,000. ``--stdlib`` blocks orjson, as the
default install runs. The stream is built, then frozen out of the garbage collector's way, before
the counted work starts, so both sides pay the same collector.
"""

from __future__ import annotations

import sys

if "--stdlib" in sys.argv:
    sys.modules["orjson"] = None  # type: ignore[assignment]

import gc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_bars

# (every mode imports what ``feed`` uses, so start-up, compiling the modules where no bytecode
# cache is written, is the same in every mode and cancels out)
from kiwoom_rt import QueueDispatcher, RealtimeSession  # noqa: F401
from kiwoom_rt._bars import BarEngine, TradeReader, bar_spec
from kiwoom_rt.bars import BarFeed  # noqa: F401

TRADES = 20_000


def main() -> None:
    mode, items = sys.argv[1], int(sys.argv[2])
    per_read = int(sys.argv[sys.argv.index("--per-read") + 1]) if "--per-read" in sys.argv else 10
    frames, received = bench_bars.stream(TRADES, items)
    gc.collect()
    gc.freeze()
    if mode == "decode":
        bench_bars.run(frames, received, None, per_read)
    elif mode == "feed":
        bench_bars.run(frames, received, bench_bars.bar_feed, per_read)
    elif mode in ("bars", "ticks", "updates"):
        spec = bar_spec(ticks=10) if mode == "ticks" else bar_spec("1m")
        updates = mode == "updates"  # (a Bar snapshot per trade, as for an on_update receiver)
        bench_bars.run(frames, received, lambda: TradeReader(BarEngine(spec, updates=updates), "kr", {"0B"}, None),
                       per_read)


main()
