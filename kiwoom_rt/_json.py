"""The JSON parser for received frames: orjson when a safe version is installed, else the stdlib.

orjson parses a frame in about a third of the time. Versions before 3.9.15 have no nesting limit
and crash the process (stack overflow) on a deeply nested frame such as ``[[[[...`` 300,000 deep,
which anyone able to send us a frame could exploit; those versions are ignored. The standard
library raises RecursionError instead, which the decoder turns into a ProtocolError.

Without orjson, ``json.loads(bytes)`` spends about half its time in Python wrapping (encoding
detection, the decoder object, the end-of-input check). ``_stdlib_loads`` calls the C scanner
directly on the UTF-8 text (about 2 us instead of 3.6 us for a 0E frame) and falls back to
``json.loads`` whenever the fast path does not apply, so errors and edge cases behave exactly as
``json.loads`` does.
"""

from __future__ import annotations

import json
import json.scanner
from typing import Any

__all__ = ["DECODE_ERRORS", "PARSER", "SCANNER", "loads"]

SAFE_ORJSON = (3, 9, 15)

_scan_once: Any = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _stdlib_loads(raw: bytes | str) -> Any:
    """``json.loads`` for one frame, through the C scanner when the input allows it."""
    try:
        text = raw.decode("utf-8") if type(raw) is bytes else raw
        obj, end = _scan_once(text, 0)
    except (StopIteration, UnicodeDecodeError, AttributeError, TypeError, ValueError):
        return json.loads(raw)  # the slow path raises the proper error, or handles the edge case
    if end != len(text) and not text[end:].isspace():  # trailing data: let json.loads say so
        return json.loads(raw)
    return obj


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


loads: Any = _stdlib_loads
#: The standard library's scanner when it is the parser (None with orjson): ``scan(text, 0)``
#: gives (object, end index). ``kiwoom_rt.protocol`` calls it directly on its hot path.
SCANNER: Any = _scan_once
DECODE_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, RecursionError, MemoryError)
PARSER = "json"

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    pass
else:
    if _version(getattr(_orjson, "__version__", "0")) >= SAFE_ORJSON:
        loads = _orjson.loads
        SCANNER = None
        DECODE_ERRORS = (_orjson.JSONDecodeError, ValueError, TypeError, RecursionError, MemoryError)
        PARSER = f"orjson {_orjson.__version__}"
