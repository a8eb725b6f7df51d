"""One session surface: ``Session`` (what every kind of session offers) and ``SessionBase``
(the one implementation of it that ``RealtimeSession``, ``ReplaySession`` and ``RelaySession``
share).

``SessionBase`` owns what does not depend on where events come from: the signals, the
dispatcher, the validation of every request (the same errors for the same bad request), the
handles the application waits on, and finishing them when a core says a request is done. A
session kind adds how it starts, stops, counts, and carries requests out (``_submit_*``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from types import MappingProxyType
from typing import Any, Final, Protocol, Self, runtime_checkable

from . import protocol
from ._actions import Completed, Failed, WatchFailed, WatchMembers
from ._delivery import Dispatcher, EventQueue, QueueObserver, SessionDelivery
from ._handles import ConditionRequest, ConditionWatch, Pending, PendingRequest, Subscription
from ._health import Fresh, Health, HealthCore, Stale
from ._notices import Notice, Posted
from ._signals import SessionSignal, SignalAttributes, SignalSet
from ._state import SessionState
from ._stats import SessionStats
from ._watchdog import Watchdog
from .conditions import Condition, ConditionHit
from .errors import KiwoomError, SessionClosedError
from .options import DeliveryOptions, HealthOptions
from .us import MARKETS, UsItem, parse_us_item, us_sender

__all__ = ["CLOSE_WAIT", "DEFAULT_TYPES", "Item", "Session", "SessionBase"]

logger = logging.getLogger("kiwoom_rt")

#: An item as a session takes it: a domestic code, or on the US socket a ``UsItem`` or
#: ``"NASDAQ:NVDA"``.
Item = str | UsItem
#: The realtime type ``subscribe`` registers when none is named, by socket.
DEFAULT_TYPES: Final = MappingProxyType({"kr": ("0E",), "us": ("FE",)})


#: The longest ``close()`` waits for a thread or a receiver: it returns within about a second.
CLOSE_WAIT = 1.0


@runtime_checkable
class Session(Protocol):
    """What every kind of session offers: ``RealtimeSession``, ``ReplaySession``, ``RelaySession``.

    Type an application (or a feature such as ``kiwoom_rt.bars``) against this, and it runs
    live, on a recording or through a relay unchanged.
    """

    on_real: SessionSignal
    on_0e: SessionSignal
    on_condition: SessionSignal
    on_connected: SessionSignal
    on_login: SessionSignal
    on_disconnected: SessionSignal
    on_reconnecting: SessionSignal
    on_gave_up: SessionSignal
    on_system: SessionSignal
    on_error: SessionSignal
    on_overflow: SessionSignal
    on_stale: SessionSignal
    on_fresh: SessionSignal

    @property
    def state(self) -> SessionState: ...

    @property
    def market(self) -> str: ...

    @property
    def live(self) -> bool: ...

    def signal(self, type_code: str) -> SessionSignal: ...

    def start(self, timeout: float = 10.0) -> Self: ...

    def close(self, timeout: float = 5.0) -> None: ...

    def subscribe(self, items: Iterable[Item] | Item, types: Iterable[str] | str | None = None, *,
                  grp_no: str = "1", refresh: bool = True) -> Subscription: ...

    def unsubscribe(self, items: Iterable[Item] | Item, types: Iterable[str] | str | None = None, *,
                    grp_no: str = "1") -> PendingRequest: ...

    def conditions(self, timeout: float = 10.0) -> list[Condition]: ...

    def search(self, seq: str, *, timeout: float = 10.0) -> list[ConditionHit]: ...

    def watch_condition(self, seq: str) -> ConditionWatch: ...

    def stats(self) -> SessionStats: ...

    def health(self) -> Health: ...

    @property
    def conflates(self) -> bool: ...

    def observe(self, observer: QueueObserver) -> Callable[[], None]: ...

    def feature_signal(self, name: str, kwargs: Sequence[str]) -> SessionSignal: ...

    def post(self, signal: SessionSignal, sender: Any, /, *, wake: bool = True, **values: Any) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class SessionBase(SignalAttributes):
    """The shared implementation of ``Session`` (see the module docstring)."""

    def __init__(self, *, market: str = "kr", delivery: DeliveryOptions | None = None,
                 health: HealthOptions | None = None) -> None:
        """``delivery`` and ``health`` are validated groups (``kiwoom_rt.options``): nothing here
        checks them again."""
        if market not in MARKETS:
            raise ValueError(f"market must be one of {MARKETS}, got {market!r}")
        delivery = delivery or DeliveryOptions()
        health = health or HealthOptions()
        self.delivery = delivery
        self.health_options = health
        self._market = market
        #: On the US socket: the exchange of every symbol subscribed so far, for pushes that do
        #: not name theirs (read by the intake on the reading thread; only ever added to).
        self._us_exchanges: dict[str, str] = {}
        dispatcher = delivery.dispatcher
        # a US event's sender is its symbol: an item spelled "NASDAQ:NVDA" in connect() means it too
        self._signals = SignalSet(self, item_key=us_sender if market == "us" else None)
        self._signals.attach_to(self)
        self._dispatcher: Dispatcher
        if dispatcher is not None:
            dispatcher.bind(self._signals.deliver_events, self._deliver_notice)
            self._dispatcher = dispatcher
        else:
            self._dispatcher = SessionDelivery(self._signals.deliver_events, self._deliver_notice,
                                               max_events=delivery.queue_size, overflow=delivery.overflow)
        self._handles_lock = threading.Lock()
        self._pending: dict[int, Pending[Any]] = {}  # the application's requests, by the core's id
        self._watches: dict[str, ConditionWatch] = {}
        #: receivers get (item, type=..., age=...) when a subscription turns stale
        self.on_stale = self._signals.feature_signal("on_stale", ("type", "age"))
        #: receivers get (item, type=...) when a stale subscription flows again
        self.on_fresh = self._signals.feature_signal("on_fresh", ("type",))
        self._watch_health = health.watch_health
        self._watchdog = Watchdog(HealthCore(market, health.stale_after, health.resubscribe_stale,
                                             judge=health.watch_health),
                                  inputs=self._health_inputs,
                                  resubscribe=self._resubscribe, report=self._report_health,
                                  interval=health.health_interval, clock=health.market_clock)
        self._unobserve: Callable[[], None] | None = None

    # --- what a kind of session provides --------------------------------------------------------

    @property
    def state(self) -> SessionState:
        raise NotImplementedError

    def start(self, timeout: float = 10.0) -> Self:
        raise NotImplementedError

    def close(self, timeout: float = 5.0) -> None:
        raise NotImplementedError

    def stats(self) -> SessionStats:
        raise NotImplementedError

    def _accepting(self) -> bool:
        """False once requests are refused (closed, gave up)."""
        return self.state not in (SessionState.CLOSED, SessionState.GAVE_UP)

    def _submit_subscribe(self, handle: Subscription, refresh: bool) -> None:
        raise NotImplementedError

    def _submit_unsubscribe(self, handle: PendingRequest) -> None:
        raise NotImplementedError

    def _submit_watch(self, watch: ConditionWatch) -> None:
        raise NotImplementedError

    def _submit_cancel_watch(self, seq: str) -> None:
        raise NotImplementedError

    def _submit_query(self, handle: ConditionRequest[Any]) -> None:
        """CNSRLST (``handle.seq`` empty) or a one-shot search of ``handle.seq``."""
        raise NotImplementedError

    def _deliver_notice(self, notice: Notice) -> None:
        """A notice reaches its signal (a kind of session may handle its own first)."""
        self._signals.deliver_notice(notice)

    def _health_pairs(self) -> Collection[tuple[str, str]]:
        """Every (item, type) this session wants registered."""
        return ()

    def _acked_pairs(self) -> Collection[tuple[str, str]]:
        """The (item, type) pairs whose registration is confirmed now."""
        return ()

    def _resubscribe(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Send REG again for ``pairs`` (``resubscribe_stale``)."""

    # --- health ------------------------------------------------------------------------------------

    def health(self) -> Health:
        """Judge every wanted (item, type) now: a frozen ``Health`` with the state, the time since
        the last frame, each subscription's last event and age, the confirmed registrations, the
        market phase of each exchange involved and the stale subscriptions.

        A subscription is stale when its market is in a phase where its type flows and it has been
        silent longer than ``stale_after`` (``kiwoom_rt.STALE_AFTER`` by type; account types never
        are). The session checks by itself every ``health_interval`` seconds and fires
        ``on_stale(item, type=..., age=...)`` once when one turns stale and ``on_fresh(item,
        type=...)`` when it flows again; ``resubscribe_stale=True`` re-sends its REG, at most once
        per ``stale_after``; ``watch_health=False`` turns the judging off (nothing is ever stale).
        Phases come from ``kiwoom_rt.markets`` (``market_clock`` replaces the
        current time there, for a simulator's clock); subscribe to 0s to let Kiwoom's phase
        announcements override the built-in table.
        """
        return self._watchdog.snapshot()

    def _start_health(self) -> None:
        """Begin watching (a kind of session calls this from ``start``)."""
        if not self._watch_health:
            return
        if self._unobserve is None:
            try:
                self._unobserve = self.observe(self._watchdog)
            except TypeError:  # a dispatcher of the application's own, without an EventQueue
                logger.warning("%s cannot be observed: health() sees no events", type(self._dispatcher).__name__)
                return
            self.signal("0s").connect(self._watchdog.announced)
        self._watchdog.prepare(("US",) if self._market == "us" else ("KRX", "NXT"))
        self._watchdog.start()

    def _stop_health(self, timeout: float = 2.0) -> None:
        self._watchdog.stop(timeout)

    def _health_inputs(self) -> tuple[str, bool, Collection[tuple[str, str]], Collection[tuple[str, str]],
                                      float | None]:
        state = self.state
        return state.value, state is SessionState.CONNECTED, self._health_pairs(), self._acked_pairs(), \
            self._frame_age()

    def _frame_age(self) -> float | None:
        """Seconds since the last frame (None when not connected)."""
        return self.stats().last_frame_age

    def _health_counts(self) -> dict[str, int]:
        """The stats fields every kind of session fills the same way."""
        queue = getattr(self._dispatcher, "queue", None)
        return {"conflated": int(getattr(queue, "conflated", 0)), "subscriptions": len(self._health_pairs()),
                "stale": self._watchdog.stale_count(), "resubscriptions": self._watchdog.resubscriptions}

    def _report_health(self, transition: Stale | Fresh) -> None:
        if isinstance(transition, Stale):
            self.post(self.on_stale, transition.item, type=transition.type, age=transition.age)
        else:
            self.post(self.on_fresh, transition.item, type=transition.type)

    # --- for features built on a session (kiwoom_rt.bars) ----------------------------------------

    @property
    def conflates(self) -> bool:
        """True when the dispatcher keeps only the latest event per (type, item) (a GUI's choice)."""
        return bool(getattr(self._dispatcher, "conflate", False))

    def observe(self, observer: QueueObserver) -> Callable[[], None]:
        """Let ``observer`` see every batch of events and every notice as the session queues them
        for delivery: on the thread that read them, in order, before a conflating dispatcher or
        ``overflow="drop_oldest"`` can leave any out. For features that must see every event
        (``kiwoom_rt.bars``); an application connects receivers instead. Returns a function that
        stops the observing. Needs a dispatcher built on ``EventQueue`` (all of kiwoom-rt's are).
        """
        queue = getattr(self._dispatcher, "queue", None)
        if not isinstance(queue, EventQueue):
            raise TypeError(f"{type(self._dispatcher).__name__} has no EventQueue to observe")
        queue.add_observer(observer)
        return lambda: queue.remove_observer(observer)

    def feature_signal(self, name: str, kwargs: Sequence[str]) -> SessionSignal:
        """A new signal for a feature built on this session: receivers are called as
        ``receiver(sender, **kwargs)`` when the feature ``post``s, and one that raises is reported
        through ``on_error`` like any receiver."""
        return self._signals.feature_signal(name, kwargs)

    def post(self, signal: SessionSignal, sender: Any, /, *, wake: bool = True, **values: Any) -> None:
        """Call ``signal``'s receivers with ``(sender, **values)`` through the dispatcher, in order
        with the events queued so far (so Qt and Tk get them on the GUI thread). Never dropped.

        ``wake=False`` from an observer: the session delivers what it just queued right after."""
        self._dispatcher.put_notice(Posted(signal, sender, values))
        if wake:
            self._dispatcher.pump()

    # --- the surface ------------------------------------------------------------------------------

    @property
    def market(self) -> str:
        """``"kr"`` for the domestic socket, ``"us"`` for the US one (``/api/us/websocket``)."""
        return self._market

    #: True when events arrive as they happen, so the time is the wall clock's; False for a
    #: replay, whose time is its recording's (``BarFeed`` runs no timer on it).
    live: bool = True

    def signal(self, type_code: str) -> SessionSignal:
        """The data signal of one realtime type (case-sensitive: ``"0G"`` is not ``"0g"``).

        Receivers are called as ``receiver(item, event=...)``; connect with ``sender=item`` to
        hear one item only.
        """
        return self._signals.signal(type_code)

    @property
    def connected(self) -> bool:
        """True while connected and logged in (a replay: while it plays)."""
        return self.state is SessionState.CONNECTED

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(self, items: Iterable[Item] | Item, types: Iterable[str] | str | None = None, *,
                  grp_no: str = "1", refresh: bool = True) -> Subscription:
        """Register ``items`` for realtime ``types`` in group ``grp_no``; returns a handle.

        Items: domestic codes (``"005930"``, ``"005930_NX"``) on the domestic socket; on the US
        socket ``UsItem``s or ``"NASDAQ:NVDA"`` strings (kept as ``"NASDAQ:NVDA"`` in the
        handle). ``types`` defaults to 0E on the domestic socket and FE on the US one.
        Callable before ``start``, while connected or while reconnecting, from any thread. The
        registration is remembered and restored after every reconnect. ``refresh=False`` replaces
        what the group had. ``handle.wait(timeout)`` returns once the server acknowledged it.
        Raises ``ValueError``/``TypeError`` for a malformed request, or an item of the other
        socket, ``SymbolLimitError`` past the socket's ``max_items`` (nothing is sent and nothing
        registered changes), and ``SessionClosedError`` once the session is closed.
        """
        item_list, type_list = self.check_request(items, types, grp_no)
        self._check_open()
        if self._market == "us":
            for item in map(parse_us_item, item_list):
                self._us_exchanges[item.symbol] = item.exchange
        handle = Subscription(grp_no, tuple(item_list), tuple(type_list), self.unsubscribe)
        self._submit_subscribe(handle, refresh)
        return handle

    def unsubscribe(self, items: Iterable[Item] | Item, types: Iterable[str] | str | None = None, *,
                    grp_no: str = "1") -> PendingRequest:
        """Send REMOVE for ``items`` x ``types`` and forget them (they are not restored later)."""
        item_list, type_list = self.check_request(items, types, grp_no)
        self._check_open()
        handle = PendingRequest("REMOVE", grp_no, tuple(item_list), tuple(type_list))
        self._submit_unsubscribe(handle)
        return handle

    def conditions(self, timeout: float = 10.0) -> list[Condition]:
        """The user's conditions (CNSRLST): ``Condition(seq, name)`` each.

        Waits for the login when called before ``start()`` or while reconnecting. Raises
        ``ConditionError`` if refused, ``ConnectError`` if the connection dropped first,
        ``TimeoutError`` if no reply came in ``timeout`` seconds.
        """
        self._check_open()
        handle: ConditionRequest[list[Condition]] = ConditionRequest("CNSRLST")
        self._submit_query(handle)
        return handle.wait(timeout)

    def search(self, seq: str, *, timeout: float = 10.0) -> list[ConditionHit]:
        """A one-shot search of condition ``seq`` (CNSRREQ, search_type 0), every page followed."""
        seq = protocol.check_seq(seq)
        self._check_open()
        handle: ConditionRequest[list[ConditionHit]] = ConditionRequest("CNSRREQ", seq)
        self._submit_query(handle)
        return handle.wait(timeout)

    def watch_condition(self, seq: str) -> ConditionWatch:
        """A realtime search of condition ``seq`` (CNSRREQ, search_type 1): a ``ConditionWatch``.

        Callable before ``start()``, while connected or reconnecting, from any thread; a second
        call for the same seq returns the same watch (until it is cancelled). Entries and exits
        arrive as ``ConditionEvent``s on ``on_condition`` (sender: the seq), ``signal("02")``
        and ``on_real``; the watch is requested again after every reconnect, and the differences
        found then arrive with ``resync=True``.
        """
        seq = protocol.check_seq(seq)
        self._check_open()
        with self._handles_lock:
            watch = self._watches.get(seq)
            if watch is not None and not watch.cancelled:
                return watch
            watch = self._watches[seq] = ConditionWatch(seq, self._cancel_watch)
        self._submit_watch(watch)
        return watch

    def _cancel_watch(self, seq: str) -> None:
        with self._handles_lock:
            self._watches.pop(seq, None)
        if self._accepting():
            self._submit_cancel_watch(seq)

    def check_request(self, items: Iterable[Item] | Item, types: Iterable[str] | str | None,
                      grp_no: str) -> tuple[list[str], list[str]]:
        """The request's items (canonical strings) and types, validated for this session's socket
        and without duplicates (ValueError/TypeError)."""
        item_list = protocol.check_items(items, self._market)
        if types is None:
            types = DEFAULT_TYPES[self._market]
        type_list = protocol.check_types(types)
        known = protocol.types_of(self._market)
        unknown = [t for t in type_list if t not in known]
        if unknown:
            where = "the US socket" if self._market == "us" else "the domestic socket"
            raise ValueError(f"unknown realtime type {unknown[0]!r} on {where}; known: {sorted(known)}")
        protocol.check_grp_no(grp_no)
        return list(dict.fromkeys(item_list)), list(dict.fromkeys(type_list))

    def _check_open(self) -> None:
        if not self._accepting():
            raise SessionClosedError(f"the session is {self.state}")

    # --- handles ------------------------------------------------------------------------------------

    def _keep(self, request: int, handle: Pending[Any]) -> None:
        """Remember ``handle`` under the core's id ``request`` until the core finishes it."""
        with self._handles_lock:
            self._pending[request] = handle

    def _finish(self, action: Completed | Failed | WatchMembers | WatchFailed) -> None:
        """Carry out what a core said of a request or a watch."""
        match action:
            case Completed(request=request, result=result):
                with self._handles_lock:
                    handle = self._pending.pop(request, None)
                if handle is not None:
                    handle.set_result(result)
            case Failed(request=request, error=error):
                with self._handles_lock:
                    handle = self._pending.pop(request, None)
                if handle is not None:
                    handle.set_error(error)
            case WatchMembers(seq=seq, members=members):
                watch = self._watches.get(seq)
                if watch is not None:
                    watch.set_members(members)
            case WatchFailed(seq=seq, error=error):
                with self._handles_lock:
                    watch = self._watches.pop(seq, None)
                if watch is not None:
                    watch.set_error(error)

    def _closing(self) -> None:
        """``close()`` began: no more events reach a receiver."""
        self._signals.stop_events()

    def _closed(self) -> None:
        """``close()`` is about to return: no receiver is called again, by any thread."""
        self._signals.stop_all()

    def _fail_all(self, error: KiwoomError) -> None:
        """The session ended: every handle still waiting fails with ``error``."""
        with self._handles_lock:
            pending, self._pending = list(self._pending.values()), {}
            watches = [w for w in self._watches.values() if not w.done]
        for handle in [*pending, *watches]:
            handle.set_error(error)
