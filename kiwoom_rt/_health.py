"""Per-subscription health, sans-I/O: which wanted (item, type) pairs have gone silent while
their market trades ("stale"), and what to do about it.

The runtime records when each (item, type) last delivered an event (``last``: a dict per type,
keyed by item, that the reading thread writes), and calls ``HealthCore.check`` every so often
with the time, the wanted and confirmed pairs and a phase reader. The core answers with a
``Health`` snapshot and the transitions: ``Stale``, ``Fresh`` and ``Resubscribe`` outputs.
Nothing here reads a clock.

Rules:

* a pair is judged only while the session is connected, and only while its market is in a phase
  in which its type flows (``_catalogue.type_flows``, with 0s announcements overriding the table);
* its age is counted from the latest of: its last event, the moment it became wanted, the
  moment the session (re)connected, the moment its market began to flow;
* it is stale once that age exceeds its ``stale_after`` (by type: ``STALE_AFTER``), and turns
  fresh again with its next event; account and event-driven types (``NEVER_STALE``) never are;
  when its market stops flowing it stops being stale (without ``Fresh``: nothing flowed), and
  while the session is disconnected it stays as it was (the connection is the problem then);
* with ``resubscribe`` on, a stale pair is asked again (REG) when it turns stale and then at
  most once per ``stale_after`` while it stays stale.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Collection, Iterator, Mapping
from types import MappingProxyType
from typing import Final

import attrs

from ._catalogue import DEFAULT_STALE_AFTER as CATALOGUE_DEFAULT
from ._catalogue import TYPES, type_flows
from .us import parse_us_item

_NOTHING: Final[Mapping[str, float]] = MappingProxyType({})

__all__ = ["NEVER_STALE", "STALE_AFTER", "Fresh", "Health", "HealthCore", "Resubscribe", "Stale",
           "SubscriptionHealth", "event_key", "exchanges_of", "stale_after_table"]

Pair = tuple[str, str]  # (item as subscribed, type)

#: Seconds of silence, in a phase where the type flows, after which a subscription is stale
#: (from the type catalogue, where each type's figure is explained).
#: Books and quotes change many times a minute on any listed stock, so 60 s of silence is
#: already unusual; a thinly traded stock can go a minute or two without a trade (0B, FE: 120 s);
#: the slower summaries get five minutes, and types that change a few times a day ten.
STALE_AFTER: Final = MappingProxyType({
    code: row.stale_after for code, row in TYPES.items() if row.stale_after is not None})
#: Types that are never stale: the account's (orders, fills, balances) and the event-driven
#: ones (0s phase announcements, 1h VI, condition hits), which may rightly stay silent all day.
NEVER_STALE: Final = frozenset(code for code, row in TYPES.items() if row.stale_after is None)
#: A type not in either table.
DEFAULT_STALE_AFTER: Final = CATALOGUE_DEFAULT


def stale_after_table(override: float | Mapping[str, float | None] | None) -> dict[str, float | None]:
    """The per-type thresholds with ``override`` applied: one number for every type, or a mapping
    of type to seconds (None: never stale). ValueError for a threshold that is not > 0."""
    table: dict[str, float | None] = dict(STALE_AFTER)
    table.update(dict.fromkeys(NEVER_STALE))
    if override is None:
        return table
    if isinstance(override, (int, float)):
        table = {kind: (None if value is None else float(override)) for kind, value in table.items()}
        table[""] = float(override)
    else:
        for kind, value in override.items():
            table[kind] = None if value is None else float(value)
    for kind, value in table.items():
        if value is not None and not value > 0:
            raise ValueError(f"stale_after for {kind or 'other types'!r} must be > 0, got {value!r}")
    return table


def exchanges_of(item: str, market: str) -> tuple[str, ...]:
    """The exchanges whose hours decide when ``item`` flows: US, NXT (``_NX``), KRX and NXT
    (SOR, ``_AL``: either one trading is enough), else KRX."""
    if market == "us":
        return ("US",)
    if item.endswith("_NX"):
        return ("NXT",)
    if item.endswith("_AL"):
        return ("KRX", "NXT")
    return ("KRX",)


def event_key(pair: Pair, market: str) -> Pair:
    """The (item, type) the pair's events carry: the symbol alone on the US socket."""
    item, kind = pair
    if market == "us" and item:
        return parse_us_item(item).symbol, kind
    return pair


@attrs.frozen(kw_only=True)
class SubscriptionHealth:
    """One wanted (item, type) in a ``Health`` snapshot."""

    item: str
    type: str
    #: the exchanges whose hours apply, and whether the type flows in their phase now
    exchanges: tuple[str, ...]
    flowing: bool
    #: the REG was acknowledged on the current connection (a relay consumer: by the relay)
    confirmed: bool
    #: wall-clock time (``time.time()``) of its last event, None if none came yet
    last_event_time: float | None
    #: seconds since its last event (None if none came yet)
    last_event_age: float | None
    #: seconds of silence counted toward staleness (from the latest of the last event, the
    #: subscription, the connection and the market's opening); None while not judged
    silent_for: float | None
    #: its threshold (None: never stale)
    stale_after: float | None
    stale: bool


@attrs.frozen(kw_only=True)
class Health:
    """What ``session.health()`` returns: a snapshot, safe to keep and pass between threads."""

    state: str
    #: seconds since the last frame of any kind (None when not connected)
    last_frame_age: float | None
    #: every wanted (item, type), sorted
    subscriptions: tuple[SubscriptionHealth, ...]
    #: the (item, type) pairs whose registration is confirmed
    confirmed: frozenset[Pair]
    #: the phase of each exchange involved (``markets`` names, 0s announcements applied)
    phases: Mapping[str, str]
    #: the stale (item, type) pairs, sorted
    stale: tuple[Pair, ...]
    #: REG requests re-sent for stale subscriptions so far
    resubscriptions: int = 0
    #: wall-clock time of the snapshot
    at: float = 0.0
    #: the moment the phases were judged at (the session's ``market_clock``, else now)
    market_time: _dt.datetime | None = None

    @property
    def ok(self) -> bool:
        """Connected and nothing stale."""
        return self.state == "connected" and not self.stale

    def __getitem__(self, pair: Pair) -> SubscriptionHealth:
        for row in self.subscriptions:
            if (row.item, row.type) == pair:
                return row
        raise KeyError(pair)

    def __iter__(self) -> Iterator[SubscriptionHealth]:
        return iter(self.subscriptions)

    def __len__(self) -> int:
        return len(self.subscriptions)


@attrs.frozen
class Stale:
    """``item``'s ``type`` has been silent for ``age`` seconds while its market trades."""

    item: str
    type: str
    age: float


@attrs.frozen
class Fresh:
    """``item``'s ``type`` delivered again after being stale."""

    item: str
    type: str


@attrs.frozen
class Resubscribe:
    """Send REG again for (``item``, ``type``)."""

    item: str
    type: str


Output = Stale | Fresh | Resubscribe


class HealthCore:
    """The staleness judgement of one session (see the module docstring). Not thread-safe: the
    runtime calls it from one thread at a time."""

    def __init__(self, market: str = "kr", stale_after: float | Mapping[str, float | None] | None = None,
                 resubscribe: bool = False, *, judge: bool = True) -> None:
        self.market = market
        self.judge = judge  # False: report, never judge stale (a relay's upstream, which decodes nothing)
        self.thresholds = stale_after_table(stale_after)
        self.resubscribe = resubscribe
        self.resubscriptions = 0
        #: each wanted pair's exchanges, threshold and event key (worked out once)
        self._plans: dict[Pair, tuple[tuple[str, ...], float | None, Pair]] = {}
        self._since: dict[Pair, float] = {}  # when each pair began to be judged (wanted, connected, flowing)
        self._flowing: dict[Pair, bool] = {}
        self._stale: dict[Pair, float] = {}  # stale pair -> when it turned stale
        self._asked: dict[Pair, float] = {}  # stale pair -> when REG was last re-sent
        self._connected = False

    def threshold(self, type_code: str) -> float | None:
        """The ``stale_after`` of a type (None: never stale)."""
        if not self.judge:
            return None
        if type_code in self.thresholds:
            return self.thresholds[type_code]
        return self.thresholds.get("", DEFAULT_STALE_AFTER)

    @property
    def stale(self) -> frozenset[Pair]:
        return frozenset(self._stale)

    def check(self, now: float, wall: float, *, connected: bool, wanted: Collection[Pair],
              confirmed: Collection[Pair], last: Mapping[str, Mapping[str, float]],
              phase: Callable[[str], str],
              state: str = "connected", last_frame_age: float | None = None,
              moment: _dt.datetime | None = None, snapshot: bool = True) -> tuple[Health | None, list[Output]]:
        """Judge every wanted pair at ``now`` (the clock of ``last``; ``wall`` is the same moment as
        ``time.time()``). ``last`` maps each type, then each item as its events carry it (the two
        parts of a pair's ``event_key``), to its last event's ``now``; ``phase(exchange)`` names
        the exchange's phase. Returns the snapshot (None with ``snapshot=False``: the periodic
        check builds no rows) and the transitions since the previous check. A check of 2,000
        pairs costs about a millisecond."""
        out: list[Output] = []
        reconnected = connected and not self._connected
        self._connected = connected
        plans = self._plans
        if plans.keys() != wanted:
            for pair in [p for p in plans if p not in wanted]:  # unsubscribed: forgotten
                del plans[pair]
                self._since.pop(pair, None)
                self._flowing.pop(pair, None)
                self._stale.pop(pair, None)
                self._asked.pop(pair, None)
            for pair in wanted:
                if pair not in plans:
                    plans[pair] = (exchanges_of(pair[0], self.market), self.threshold(pair[1]),
                                   event_key(pair, self.market))
        phases: dict[str, str] = {}
        flows: dict[tuple[tuple[str, ...], str], bool] = {}
        rows: list[SubscriptionHealth] | None = [] if snapshot else None
        since_of, flowing_of, stale, asked = self._since, self._flowing, self._stale, self._asked
        for pair, (exchanges, threshold, key) in plans.items():
            kind = pair[1]
            flowing = flows.get((exchanges, kind))
            if flowing is None:
                for exchange in exchanges:
                    if exchange not in phases:
                        phases[exchange] = phase(exchange)
                flowing = flows[(exchanges, kind)] = any(type_flows(kind, phases[exchange])
                                                         for exchange in exchanges)
            since = since_of.get(pair)
            if since is None or reconnected or (flowing and not flowing_of.get(pair, False)):
                since = since_of[pair] = now
            flowing_of[pair] = flowing
            seen = last.get(key[1], _NOTHING).get(key[0])
            judged = connected and flowing and threshold is not None
            silent_for = now - (seen if seen is not None and seen > since else since) if judged else None
            stale_since = stale.get(pair)
            if stale_since is not None:
                if not flowing:  # its market closed: nothing to expect
                    del stale[pair]
                    asked.pop(pair, None)
                    stale_since = None
                elif seen is not None and seen > stale_since:
                    del stale[pair]  # it delivered again
                    asked.pop(pair, None)
                    stale_since = None
                    out.append(Fresh(*pair))
            if stale_since is None and silent_for is not None and silent_for > threshold:  # type: ignore[operator]
                stale[pair] = stale_since = now
                out.append(Stale(pair[0], kind, silent_for))
            if (stale_since is not None and judged and self.resubscribe
                    and now - asked.get(pair, -float("inf")) >= threshold):  # type: ignore[operator]
                asked[pair] = now
                self.resubscriptions += 1
                out.append(Resubscribe(*pair))
            if rows is not None:
                rows.append(SubscriptionHealth(
                    item=pair[0], type=kind, exchanges=exchanges, flowing=flowing, confirmed=pair in confirmed,
                    last_event_time=None if seen is None else wall - (now - seen),
                    last_event_age=None if seen is None else now - seen, silent_for=silent_for,
                    stale_after=threshold, stale=stale_since is not None))
        if rows is None:
            return None, out
        rows.sort(key=lambda row: (row.item, row.type))
        health = Health(state=state, last_frame_age=last_frame_age, subscriptions=tuple(rows),
                        confirmed=frozenset(p for p in confirmed if p in wanted), phases=MappingProxyType(phases),
                        stale=tuple(sorted(stale)), resubscriptions=self.resubscriptions, at=wall,
                        market_time=moment)
        return health, out
