"""Market hours: which phase KRX, NXT and the US markets are in (sources in docs/protocol.md).

::

    from kiwoom_rt import markets
    markets.phase("KRX")                         # "regular", "post", "closed" ...
    markets.phase("US", at=some_aware_datetime)
    markets.flows("0B", "KRX", at)               # True while 0B trades can flow there

Phases, by exchange (times local: KST for KRX and NXT, US Eastern for US, daylight saving
included, with no time-zone database needed):

- ``KRX``: ``pre`` 08:30-08:40 (장전 시간외 종가), ``regular`` 09:00-15:30, ``post`` 15:40-16:00
  (장후 시간외 종가), ``post_single`` 16:00-18:00 (시간외 단일가), else ``closed``;
- ``NXT``: ``pre`` 08:00-08:50 (프리마켓), ``regular`` 09:00-15:20 (메인마켓), ``post``
  15:30-20:00 (애프터마켓), else ``closed``;
- ``US`` (NASDAQ, NYSE, AMEX): ``pre`` 04:00-09:30, ``regular`` 09:30-16:00, ``post``
  16:00-20:00, else ``closed``.

Weekends are ``closed``. Holidays come from ``exchange_calendars`` (XKRX for KRX and NXT, XNYS
for the US) when the optional extra ``calendar`` is installed; without it a weekday's holiday
status is unknown (``is_holiday`` returns None) and the clock alone decides. Half days (US early
closes) are not modelled. ``phase_at`` and ``is_trading`` are pure; ``phase(..., at=None)`` reads
the current time.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import warnings
from types import MappingProxyType
from typing import Any, Final

from .us import EXCHANGE_CODES, to_eastern

__all__ = ["EXCHANGES", "PHASES", "SESSIONS", "TRADING_PHASES", "canonical", "describe", "flows", "is_holiday",
           "is_trading", "local_time", "phase", "phase_at"]

logger = logging.getLogger("kiwoom_rt")

KST: Final = _dt.timezone(_dt.timedelta(hours=9), "KST")
T = _dt.time

#: Each exchange's phases: (name, start, end) in local time, [start, end).
SESSIONS: Final = MappingProxyType({
    "KRX": (("pre", T(8, 30), T(8, 40)), ("regular", T(9, 0), T(15, 30)), ("post", T(15, 40), T(16, 0)),
            ("post_single", T(16, 0), T(18, 0))),
    "NXT": (("pre", T(8, 0), T(8, 50)), ("regular", T(9, 0), T(15, 20)), ("post", T(15, 30), T(20, 0))),
    "US": (("pre", T(4, 0), T(9, 30)), ("regular", T(9, 30), T(16, 0)), ("post", T(16, 0), T(20, 0))),
})
#: The exchanges ``phase`` knows; NASDAQ, NYSE and AMEX (and ND, NY, NA) mean ``US``; SOR means KRX.
EXCHANGES: Final = ("KRX", "NXT", "US")
#: Every phase name.
PHASES: Final = ("closed", "pre", "regular", "post", "post_single")
#: The phases in which orders trade (every phase but ``closed``).
TRADING_PHASES: Final = frozenset({"pre", "regular", "post", "post_single"})
_CALENDARS: Final = {"KRX": "XKRX", "NXT": "XKRX", "US": "XNYS"}

#: The phases in which each realtime type flows, where it is not "every trading phase".
#: 0E (시간외호가) is the after-hours book; 0A (기세), 0H (예상체결) belong to auctions and the
#: regular session's quotes: these are the defaults kiwoom-rt assumes, not Kiwoom's statement.
_FLOWS: Final = MappingProxyType({
    "0E": frozenset({"pre", "post", "post_single"}),
    "0B": frozenset({"pre", "regular", "post", "post_single"}),
    "0D": frozenset({"pre", "regular", "post", "post_single"}),
})
#: Types of the account or of the market itself: not tied to a phase.
_ALWAYS: Final = frozenset({"00", "04", "0s", "1h", "F4", "F5", "02", "S2"})


def canonical(exchange: str) -> str:
    """``KRX``, ``NXT`` or ``US`` for an exchange name or code (ValueError when unknown)."""
    name = str(exchange).upper()
    if name in ("KRX", "SOR", "AL"):
        return "KRX"
    if name in ("NXT", "NX"):
        return "NXT"
    if name == "US" or name in EXCHANGE_CODES or name in EXCHANGE_CODES.values():
        return "US"
    raise ValueError(f"unknown exchange {exchange!r}: use KRX, NXT or US (NASDAQ, NYSE, AMEX)")


def local_time(exchange: str, moment: _dt.datetime) -> _dt.datetime:
    """``moment`` (aware) in the exchange's own zone."""
    if moment.tzinfo is None:
        raise ValueError("markets needs an aware datetime")
    return to_eastern(moment) if canonical(exchange) == "US" else moment.astimezone(KST)


@functools.lru_cache(maxsize=4)
def _calendar(name: str) -> Any:
    try:
        import exchange_calendars
    except ImportError:
        return None
    with warnings.catch_warnings():  # (its own pandas deprecations are not the application's)
        warnings.simplefilter("ignore")
        return exchange_calendars.get_calendar(name)


def is_holiday(exchange: str, day: _dt.date) -> bool | None:
    """True on a weekday the exchange is closed, False on a trading day, None when unknown (the
    ``calendar`` extra is not installed, or the day is outside its calendar). Weekends are never
    holidays here: ``phase`` treats them as closed anyway."""
    if day.weekday() >= 5:
        return False
    calendar = _calendar(_CALENDARS[canonical(exchange)])
    if calendar is None:
        return None
    import pandas

    stamp = pandas.Timestamp(day)
    if stamp < calendar.first_session or stamp > calendar.last_session:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return not bool(calendar.is_session(stamp))


def phase_at(exchange: str, moment: _dt.datetime, holiday: bool | None = None) -> str:
    """The phase of ``exchange`` at the aware ``moment`` (pure: pass ``holiday`` for the day, or
    None when unknown)."""
    local = local_time(exchange, moment)
    if local.weekday() >= 5 or holiday:
        return "closed"
    clock = local.time()
    for name, start, end in SESSIONS[canonical(exchange)]:
        if start <= clock < end:
            return name
    return "closed"


def phase(exchange: str, at: _dt.datetime | None = None) -> str:
    """The phase of ``exchange`` now (or ``at``), holidays included when the ``calendar`` extra
    is installed."""
    moment = _dt.datetime.now(_dt.UTC) if at is None else at
    return phase_at(exchange, moment, is_holiday(exchange, local_time(exchange, moment).date()))


def is_trading(phase_name: str) -> bool:
    return phase_name in TRADING_PHASES


def flows(type_code: str, exchange: str, at: _dt.datetime | None = None) -> bool:
    """Whether realtime type ``type_code`` can be expected to flow on ``exchange`` now (or ``at``):
    account and market-wide types always; 0E outside the regular session; others in the trading
    phases."""
    if type_code in _ALWAYS:
        return True
    now = phase(exchange, at)
    return now in _FLOWS.get(type_code, TRADING_PHASES)


def describe(type_code: str, exchange: str, at: _dt.datetime | None = None) -> str | None:
    """A one-line explanation when ``type_code`` will not flow now (else None), naming the phase
    and when it does flow."""
    if flows(type_code, exchange, at):
        return None
    venue = canonical(exchange)
    now = phase(exchange, at)
    wanted = _FLOWS.get(type_code, TRADING_PHASES)
    windows = ", ".join(f"{start:%H:%M}-{end:%H:%M}" for name, start, end in SESSIONS[venue] if name in wanted)
    zone = "US Eastern" if venue == "US" else "KST"
    return f"{venue} is {now.replace('_', ' ')} now: {type_code} flows {windows} {zone} on trading days"
