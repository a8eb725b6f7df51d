"""Turn each event class's field declarations into the function that builds it from raw values.

A builder takes ``(item, values, received_at)`` for one REAL entry and returns the event, or
``(event, problem)`` when some value could not be parsed: the event is complete either way, with
None in the fields that failed. It never raises for bad values.

Each builder has two paths with the same results:

* the fast path, generated per class (like attrs' own ``__init__``): straight-line code with the
  parsing rules inlined. Anything unusual (a blank, a missing FID, a bad value) raises inside it;
* the careful path, one generic loop over the declared fields with the strict parsers of
  ``kiwoom_rt.events.PARSERS``: it sets the failing fields to None and collects the problems.

So the common well-formed entry costs the fast path only, and every odd one is judged by the same
strict rules. ``tests/test_typed_events.py`` checks that both paths agree on fuzzed input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from .events import (
    DURATION,
    ENTERED,
    EVENT_TYPES,
    FIELD_NAMES,
    INT,
    NUMBER,
    PARSERS,
    PRICE,
    RATE,
    TEXT,
    TIME,
    UINT,
    RealtimeEvent,
    fast_constructor,
    headline_fields,
    split_item,
)
from .values import _TIME_CACHE

__all__ = ["BUILDERS", "Builder", "careful_build", "make_builder"]

#: ``build(item, values, received_at)`` -> event, or (event, problem text).
Builder = Callable[[str, dict[str, Any], float], Any]

def careful_build(cls: type[RealtimeEvent], item: str, values: dict[str, Any],
                  received_at: float) -> Any:
    """Build ``cls`` field by field: a blank or missing value is None, a bad one None plus a problem."""
    names = FIELD_NAMES.get(cls.type, {})
    problems: list[str] = []
    args: list[Any] = []
    for field in headline_fields(cls):
        raw = values.get(field.fid)
        if raw is None:
            args.append(None)
            continue
        if type(raw) is not str:
            problems.append(f"FID {field.fid} ({names.get(field.fid, field.attr)}) is "
                            f"{type(raw).__name__}, not a string")
            args.append(None)
            continue
        if not raw.strip():
            args.append(None)
            continue
        try:
            args.append(PARSERS[field.kind](raw))
        except ValueError as exc:
            problems.append(f"FID {field.fid} ({names.get(field.fid, field.attr)}): {exc}")
            args.append(None)
    code, exchange = split_item(item)
    event = cls(item, code, exchange, MappingProxyType(values), received_at, *args)
    if problems:
        return event, f"{cls.type} entry has unusable values: " + "; ".join(problems)
    return event


#: Inline code per kind: ``{r}`` is the raw value's variable, ``{a}`` the result's.
_INLINE: Final[Mapping[str, str]] = MappingProxyType({
    PRICE: "{a} = _price_cache({r})\n    if {a} is None: {a} = _new_price({r})",
    NUMBER: "{a} = float({r})\n    if {a} - {a}: raise ValueError\n    if {a} < 0: {a} = -{a}",  # inf, nan
    INT: "{a} = int({r})",
    UINT: "{a} = int({r})\n    if {a} < 0: raise ValueError",
    RATE: "{a} = float({r})\n    if {a} - {a}: raise ValueError",
    TIME: "{a} = _time_cache({r}) or _parse_time({r})",
    TEXT: "{a} = {r}.strip() or None",
})
#: Prices recur all day (an item trades at a few hundred distinct prices), so parsed prices are
#: cached by their raw text; the check for "_" and non-ASCII runs before the lookup.
_PRICE_CACHE: dict[str, int] = {}
_PRICE_CACHE_LIMIT: Final = 65_536


def _new_price(raw: str) -> int:
    value = int(raw)
    if value < 0:
        value = -value
    if len(_PRICE_CACHE) >= _PRICE_CACHE_LIMIT:
        _PRICE_CACHE.clear()
    _PRICE_CACHE[raw] = value
    return value


_NUMERIC_KINDS: Final = frozenset({PRICE, NUMBER, INT, UINT, RATE})
assert set(PARSERS) == set(_INLINE) | {ENTERED, DURATION}


def make_builder(cls: type[RealtimeEvent]) -> Builder:
    """Compile the fast builder of ``cls`` (falling back to ``careful_build``)."""
    fields = headline_fields(cls)
    namespace: dict[str, Any] = {
        "_careful": careful_build, "_cls": cls, "_split": split_item, "_proxy": MappingProxyType,
        "_new": fast_constructor(cls), "_time_cache": _TIME_CACHE.get, "_parse_time": PARSERS[TIME],
        "_join": "".join, "_price_cache": _PRICE_CACHE.get, "_new_price": _new_price,
    }
    body = ["get = values.get"]
    body += [f"r{i} = get({field.fid!r})" for i, field in enumerate(fields)]
    checks = [f"r{i}" for i, field in enumerate(fields) if field.kind in _NUMERIC_KINDS]
    steps = []
    if checks:  # int() and float() take "1_000" and non-ASCII digits: refuse them in one test
        steps.append(f"check = _join(({', '.join(checks)},))")
        steps.append('if "_" in check or not check.isascii(): raise ValueError')
    for i, field in enumerate(fields):
        if field.kind in _INLINE:
            code = _INLINE[field.kind].format(a=f"a{i}", r=f"r{i}")
        else:
            namespace[f"_parse{i}"] = PARSERS[field.kind]
            code = f"a{i} = _parse{i}(r{i})"
        if field.often_blank and field.kind != TEXT:
            code = f"if not r{i}.strip(): a{i} = None\n    else:\n        " + code.replace("\n    ", "\n        ")
        steps.append(code)
    results = "".join(f", a{i}" for i in range(len(fields)))
    lines = ["def build(item, values, received_at):"]
    lines += [f"    {line}" for line in body]
    lines.append("    try:")
    lines += ["        " + step.replace("\n", "\n    ") for step in steps] or ["        pass"]
    lines.append("    except Exception:")
    lines.append("        return _careful(_cls, item, values, received_at)")
    lines.append("    code, exchange = _split(item)")
    lines.append(f"    return _new(item, code, exchange, _proxy(values), received_at{results})")
    source = "\n".join(lines)
    exec(compile(source, f"<kiwoom_rt builder for {cls.__name__}>", "exec"), namespace)  # declared names only
    build: Builder = namespace["build"]
    build.__doc__ = f"Build {cls.__name__} from one REAL entry's values.\n\n{source}"
    return build


#: {type code: builder} for every published type.
BUILDERS: Final[Mapping[str, Builder]] = MappingProxyType(
    {type_code: make_builder(cls) for type_code, cls in EVENT_TYPES.items()}
)
