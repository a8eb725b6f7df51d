"""The JSON parser for received frames: orjson when a safe version is installed, else the stdlib.

orjson parses a frame in about a third of the time. Versions before 3.9.15 have no nesting limit
and crash the process (stack overflow) on a deeply nested frame such as ``[[[[...`` 300,000 deep,
which anyone able to send us a frame could exploit; those versions are ignored. The standard
library raises RecursionError instead, which the decoder turns into a ProtocolError.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DECODE_ERRORS", "PARSER", "loads"]

SAFE_ORJSON = (3, 9, 15)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


loads: Any = json.loads
DECODE_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, RecursionError, MemoryError)
PARSER = "json"

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    pass
else:
    if _version(getattr(_orjson, "__version__", "0")) >= SAFE_ORJSON:
        loads = _orjson.loads
        DECODE_ERRORS = (_orjson.JSONDecodeError, ValueError, TypeError, RecursionError, MemoryError)
        PARSER = f"orjson {_orjson.__version__}"
