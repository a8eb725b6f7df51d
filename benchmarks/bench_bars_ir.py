"""One run of bench_bars's work, for counting instructions with callgrind (deterministic, where
this shared host's wall-clock times move by 30-50%).

    for mode in none decode bars; do
        valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
            python benchmarks/bench_bars_ir.py $mode 500 [--stdlib] 2>&1 | grep Collected
    done

``none`` builds the 5,000-frame stream only; ``decode`` also decodes it; ``bars`` also builds 1-minute
bars. Decode cost per trade = (decode - none) / 5,000; bars cost = (bars - decode) / 5,000.
``--stdlib`` blocks orjson, as the default install runs.
"""

from __future__ import annotations

import sys

if "--stdlib" in sys.argv:
    sys.modules["orjson"] = None  # type: ignore[assignment]

from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_bars

from kiwoom_rt._bars import BarEngine, TradeReader, bar_spec

mode, items = sys.argv[1], int(sys.argv[2])
frames, received = bench_bars.stream(5_000, items)
if mode == "decode":
    bench_bars.run(frames, received, None)
elif mode == "bars":
    bench_bars.run(frames, received,
                   lambda: TradeReader(BarEngine(bar_spec("1m"), updates=False), "kr", {"0B"}, None))
