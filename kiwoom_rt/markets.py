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

Type 0s (장시작시간) announces phases as they begin (FID 215, ``ANNOUNCEMENTS``); a
``PhaseBook`` fed with them lets the announcements override the table for the rest of that day
(a late opening, a holiday the calendar does not know), and logs each disagreement once.

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

from ._catalogue import TRADING_PHASES, TYPES, type_flows  # (type_flows: re-exported)
from .us import EXCHANGE_CODES, to_eastern

__all__ = [
    "ANNOUNCEMENTS",
    "EXCHANGES",
    "PHASES",
    "SESSIONS",
    "TRADING_PHASES",
    "PhaseBook",
    "canonical",
    "describe",
    "flows",
    "is_holiday",
    "is_trading",
    "local_time",
    "phase",
    "phase_at",
    "type_flows",
]

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
_CALENDARS: Final = {"KRX": "XKRX", "NXT": "XKRX", "US": "XNYS"}


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
    name = _CALENDARS[canonical(exchange)]
    if _calendar(name) is None:
        return None
    return _closed_on(name, day)


@functools.lru_cache(maxsize=64)
def _closed_on(name: str, day: _dt.date) -> bool | None:
    """``is_holiday`` for a calendar that is installed (cached: the health checks ask every second)."""
    import pandas

    calendar = _calendar(name)
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
    return type_flows(type_code, phase(exchange, at))


def describe(type_code: str, exchange: str, at: _dt.datetime | None = None) -> str | None:
    """A one-line explanation when ``type_code`` will not flow now (else None), naming the phase
    and when it does flow."""
    if flows(type_code, exchange, at):
        return None
    venue = canonical(exchange)
    now = phase(exchange, at)
    wanted = TYPES[type_code].flows_in if type_code in TYPES else TRADING_PHASES
    wanted = TRADING_PHASES if wanted is None else wanted
    windows = ", ".join(f"{start:%H:%M}-{end:%H:%M}" for name, start, end in SESSIONS[venue] if name in wanted)
    zone = "US Eastern" if venue == "US" else "KST"
    return f"{venue} is {now.replace('_', ' ')} now: {type_code} flows {windows} {zone} on trading days"


#: Type 0s FID 215 codes: the (exchange, phase) each one begins. From Kiwoom's table: 0 장시작전
#: 알림 (08:40~), 3 장시작 (09:00), 2 장마감 알림 (15:20~, the closing auction: still regular), 4
#: 장마감 (15:30), 8 정규장마감, 9 전체장마감, a/b 시간외 종가 start/end, c/d 시간외 단일가
#: start/end, P/Q NXT 프리마켓 start/end, R/S NXT 메인마켓 start/end, T/U NXT 에프터마켓
#: (단일가, then continuous) start, V its end. Futures and options codes (e, f, o, s) are not here.
ANNOUNCEMENTS: Final = MappingProxyType({
    "0": ("KRX", "closed"), "3": ("KRX", "regular"), "2": ("KRX", "regular"), "4": ("KRX", "closed"),
    "8": ("KRX", "closed"), "9": ("KRX", "closed"), "a": ("KRX", "post"), "b": ("KRX", "closed"),
    "c": ("KRX", "post_single"), "d": ("KRX", "closed"),
    "P": ("NXT", "pre"), "Q": ("NXT", "closed"), "R": ("NXT", "regular"), "S": ("NXT", "closed"),
    "T": ("NXT", "post"), "U": ("NXT", "post"), "V": ("NXT", "closed"),
})


class PhaseBook:
    """The phases as the table says, overridden by what 0s announced (pure: pass ``at``).

    ``announce(code, at)`` records a 0s announcement: until the next one for that exchange, for
    at most ``hold`` (default two hours, so that one missed announcement cannot hide a whole day)
    and never past the end of that (KST) day, ``phase`` returns the announced phase instead of
    the table's. A disagreement with the table (the market opened late, a holiday the calendar does
    not know) is logged once per (exchange, announced, table) combination. Not thread-safe on its
    own: one writer (the session's delivery) and readers that tolerate a stale read.
    """

    def __init__(self, hold: _dt.timedelta = _dt.timedelta(hours=2)) -> None:
        self.hold = hold
        self._announced: dict[str, tuple[str, _dt.datetime]] = {}
        self._logged: set[tuple[str, str, str]] = set()

    def announce(self, code: str | None, at: _dt.datetime) -> str | None:
        """Record FID 215 ``code`` received at ``at``; returns the phase it begins (None: a code
        of no stock exchange, ignored)."""
        meaning = ANNOUNCEMENTS.get(code or "")
        if meaning is None:
            return None
        exchange, announced = meaning
        self._announced[exchange] = (announced, local_time(exchange, at))
        table = phase(exchange, at)
        key = (exchange, announced, table)
        if table != announced and key not in self._logged:
            self._logged.add(key)
            logger.warning("0s announced %s %s (code %r) while the built-in table says %s at %s: "
                           "the announcement wins until the next one", exchange, announced, code, table,
                           local_time(exchange, at).strftime("%H:%M:%S"))
        return announced

    def phase(self, exchange: str, at: _dt.datetime) -> str:
        """The announced phase of ``exchange`` if one holds for ``at``'s day, else the table's."""
        venue = canonical(exchange)
        announced = self._announced.get(venue)
        if announced is not None:
            name, since = announced
            local = local_time(venue, at)
            if since <= local < since + self.hold and local.date() == since.date():
                return name
        return phase(venue, at)

    def flows(self, type_code: str, exchange: str, at: _dt.datetime) -> bool:
        """``flows`` with this book's phase."""
        return type_flows(type_code, self.phase(exchange, at))
