"""One run of bench_decode's work for one type, for counting instructions with callgrind (the
README's decoding table: deterministic, where this shared host's wall-clock µs move by 30-50%).

    for mode in decode parse; do
        valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
            python benchmarks/bench_decode_ir.py FE $mode [--stdlib] 2>&1 | grep Collected
    done

``decode`` runs ``protocol.decode_frames`` over ``bench_decode.stream(TYPE)`` (2,000 frames),
``parse`` only the decoder's JSON step; ``none`` builds the stream alone. Typing cost per frame =
(decode - parse) / 2,000. ``--stdlib`` blocks orjson, as the default install runs.
"""

from __future__ import annotations

import sys

if "--stdlib" in sys.argv:
    sys.modules["orjson"] = None  # type: ignore[assignment]

from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_decode

from kiwoom_rt import protocol

type_code, mode = sys.argv[1], sys.argv[2]
frames = bench_decode.stream(type_code, 2_000)
us = {} if type_code in bench_decode.US_TYPES else None
if mode == "decode":
    for frame in frames:
        protocol.decode_frames((frame,), [], us=us)
elif mode == "parse":
    step = bench_decode.json_step(protocol._loads)
    for frame in frames:
        step(frame)
