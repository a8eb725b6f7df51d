"""Events from one REAL entry's values: decoded (typed lazily) or built in full (typed at once).

``decoded(cls, item, values, received_at, report)`` is what the decoder makes of a well-formed
entry: the event holds the values, and each headline field is parsed the first time it is read
(``kiwoom_rt.events``, "Lazy typing"). ``report`` receives the entry's ``DecodeError`` if a field
turns out to be unusable then.

``careful_build(cls, item, values, received_at)`` types every field at once by the same strict
rules and returns the event, or ``(event, problem text)`` when some value was unusable.
``tests/test_typed_events.py`` checks that both give the same values on fuzzed input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from .events import EVENT_TYPES, RealtimeEvent, careful_values, item_parts

__all__ = ["BUILDERS", "Builder", "careful_build", "decoded", "set_state"]

#: ``build(item, values, received_at, report=None)`` -> a decoded event.
Builder = Callable[..., Any]

_new = object.__new__
#: ``set_state(event, state)`` sets a new event's instance dict: the ``__dict__`` descriptor's own
#: setter, with no attribute lookup per call (the decoder's hot path uses it too).
set_state: Callable[[Any, dict[str, Any]], None] = RealtimeEvent.__dict__["__dict__"].__set__


def decoded(cls: type[RealtimeEvent], item: str, values: dict[str, Any], received_at: float,
            report: Callable[[Exception], None] | None = None) -> Any:
    """A decoded ``cls`` event over ``values`` (not copied: the caller hands it over)."""
    event = _new(cls)
    set_state(event, {"item": item, "values": MappingProxyType(values), "received_at": received_at,
                      "_report": report})
    return event


def careful_build(cls: type[RealtimeEvent], item: str, values: dict[str, Any],
                  received_at: float, exchange: str | None = None) -> Any:
    """Build ``cls`` typed in full: a blank or missing value is None, a bad one None plus a problem.

    ``exchange`` is a US event's exchange (domestic events take theirs from the item)."""
    parsed, problems = careful_values(cls, values)
    code, split_exchange = item_parts(cls, item)
    exchange = exchange if split_exchange is None else split_exchange
    event = cls(item, code, exchange, MappingProxyType(values), received_at, *parsed)
    if problems:
        return event, f"{cls.type} entry has unusable values: " + "; ".join(problems)
    return event


def _builder(cls: type[RealtimeEvent]) -> Builder:
    def build(item: str, values: dict[str, Any], received_at: float,
              report: Callable[[Exception], None] | None = None) -> Any:
        return decoded(cls, item, values, received_at, report)
    build.__doc__ = f"A decoded {cls.__name__} (typed lazily)."
    return build


#: {type code: builder} for every published type.
BUILDERS: Final[Mapping[str, Builder]] = MappingProxyType(
    {type_code: _builder(cls) for type_code, cls in EVENT_TYPES.items()}
)
