"""Per-session blinker signals that are safe for a trading app, and the set a session exposes.

blinker's defaults are wrong for us (docs/design.md, "blinker"): ``connect`` holds receivers
weakly, so a lambda or closure is dropped silently; ``send`` stops at the first receiver that
raises; nothing is locked, so connecting while another thread sends can raise ``RuntimeError``;
and ``send`` costs about 1 us per receiver. ``SessionSignal`` keeps blinker's API (``connect``,
``disconnect``, ``connected_to``, ``muted``, ``receivers_for``, senders) and changes exactly
those things. It keeps its own registry of receivers, so it relies on no blinker internals.

``SignalSet`` is the surface a session composes: ``on_real``, ``on_0e``, ``signal(type)`` and the
lifecycle signals, plus the two delivery entry points the dispatchers call.
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

import attrs
import blinker

from . import protocol
from ._catalogue import CONDITION_TYPES
from ._notices import NOTICES, ErrorReport, Notice, Posted
from .errors import ReceiverError

__all__ = ["DATA_KWARGS", "LIFECYCLE_SIGNALS", "SessionSignal", "SignalAttributes", "SignalSet"]

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("kiwoom_rt")

#: Called with (signal, receiver, exception) when a receiver raises.
ErrorReporter = Callable[["SessionSignal", Any, BaseException], None]

#: The keyword arguments each lifecycle signal passes (the sender is the session), from its notice.
LIFECYCLE_SIGNALS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    name: tuple(field.name for field in attrs.fields(cls)) for name, cls in NOTICES.items()
})
#: Data signals call ``receiver(item, event=...)``.
DATA_KWARGS = ("event",)


def _log_receiver_error(signal: SessionSignal, receiver: Any, error: BaseException) -> None:
    logger.error("receiver %r of %s raised", receiver, signal.name, exc_info=error)


def _identity(receiver: Any) -> tuple[int, ...]:
    """A key for ``receiver`` that does not keep it alive (bound methods are made per access)."""
    self_obj = getattr(receiver, "__self__", None)
    func = getattr(receiver, "__func__", None)
    if self_obj is not None and func is not None:
        return (id(self_obj), id(func))
    return (id(receiver),)


def _sender_key(sender: Any) -> Any:
    """Senders compare by value (item codes), as in blinker; an unhashable one by identity."""
    if sender is blinker.ANY:
        return ("any",)
    try:
        hash(sender)
    except TypeError:
        return ("id", id(sender))
    return sender


def check_receiver(receiver: Any, kwargs: Sequence[str], signal_name: str) -> None:
    """Raise TypeError now if ``receiver(sender, **kwargs)`` could never be called."""
    if not callable(receiver):
        raise TypeError(f"{signal_name}: receiver {receiver!r} is not callable")
    try:
        signature = inspect.signature(receiver)
    except (TypeError, ValueError):  # some builtins have no signature: nothing to check
        return
    try:
        signature.bind(None, **dict.fromkeys(kwargs))
    except TypeError as exc:
        name = getattr(receiver, "__qualname__", None) or repr(receiver)
        call = ", ".join(["sender", *(f"{k}=..." for k in kwargs)])
        raise TypeError(f"{signal_name} calls its receivers as receiver({call}); {name}{signature} "
                        f"cannot be called that way ({exc})") from None


class _Entry:
    __slots__ = ("receiver", "ref", "sender")

    def __init__(self, receiver: Any, sender: Any, weak: bool) -> None:
        self.sender = sender
        if weak:
            self.receiver = None
            self.ref: Any = (weakref.WeakMethod(receiver) if inspect.ismethod(receiver)
                             else weakref.ref(receiver))
        else:
            self.receiver = receiver
            self.ref = None


class SessionSignal(blinker.Signal):
    """A blinker signal that holds receivers strongly by default and isolates each call.

    ``connect(receiver, sender=ANY, weak=False)``: the receiver stays connected until you
    disconnect it (pass ``weak=True`` for blinker's weak behaviour). A receiver that cannot be
    called the way this signal calls it is refused at once with ``TypeError``. Data signals send
    the item code as sender, so ``connect(handler, sender="005930")`` hears one item only.
    """

    def __init__(self, name: str, kwargs: Sequence[str] = DATA_KWARGS, doc: str | None = None) -> None:
        super().__init__(doc)
        self.name = name
        self.kwargs = tuple(kwargs)
        self.report_error: ErrorReporter = _log_receiver_error
        self._lock = threading.RLock()
        self._entries: dict[tuple[tuple[int, ...], Any], _Entry] = {}
        self._cache: dict[Any, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
        self._everyone: tuple[Any, ...] | None = None  # see ``for_every_sender``
        #: how the events' sender spells an item the user named (a US session: its symbol)
        self.sender_key: Callable[[Any], Any] | None = None

    def __repr__(self) -> str:
        return f"<SessionSignal {self.name} ({len(self._entries)} receivers)>"

    @property
    def has_receivers(self) -> bool:
        """True while any receiver is connected (for any sender)."""
        return bool(self._entries)

    def connect(self, receiver: F, sender: Any = blinker.ANY, weak: bool = False) -> F:
        """Call ``receiver(sender, **kwargs)`` on every send (from ``sender`` only, if given)."""
        check_receiver(receiver, self.kwargs, self.name)
        if self.sender_key is not None and sender is not blinker.ANY:
            sender = self.sender_key(sender)  # ValueError for an item this socket cannot have
        with self._lock:
            result = super().connect(receiver, sender, weak)
            self._entries[(_identity(receiver), _sender_key(sender))] = _Entry(receiver, sender, weak)
            self._forget_snapshots()
            return result

    def disconnect(self, receiver: Callable[..., Any], sender: Any = blinker.ANY) -> None:
        """Stop calling ``receiver`` (for ``sender`` only, if given; from every sender by default)."""
        if self.sender_key is not None and sender is not blinker.ANY:
            sender = self.sender_key(sender)
        with self._lock:
            super().disconnect(receiver, sender)
            ident, wanted = _identity(receiver), _sender_key(sender)
            for key in list(self._entries):
                if key[0] == ident and (sender is blinker.ANY or key[1] == wanted):
                    del self._entries[key]
            self._forget_snapshots()

    def _forget_snapshots(self) -> None:
        self._cache = {}
        entries = self._entries.values()
        everyone = all(e.sender is blinker.ANY and e.ref is None for e in entries)
        self._everyone = tuple(e.receiver for e in entries) if everyone else None

    def for_every_sender(self) -> tuple[Any, ...] | None:
        """The receivers, when each is strong and hears every sender (then the same tuple serves
        every event of a batch); None when some listen to one sender, are weak, or the signal is
        muted: then deliver per event with ``deliver_event``."""
        return None if self.is_muted else self._everyone

    def _snapshot(self, sender: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """(strong receivers, weak references) for ``sender``, in connect order, cached."""
        found = self._cache.get(sender)
        if found is None:
            with self._lock:
                entries = [e for e in self._entries.values()
                           if e.sender is blinker.ANY or (sender is not blinker.ANY and e.sender == sender)]
                found = (tuple(e.receiver for e in entries if e.ref is None),
                         tuple(e.ref for e in entries if e.ref is not None))
                cache = self._cache
                if len(cache) > 100_000:  # senders are item codes: bounded in practice
                    cache = self._cache = {}
                cache[sender] = found
        return found

    def _receivers(self, sender: Any) -> Iterable[Any]:
        strong, weak = self._snapshot(sender)
        yield from strong
        for ref in weak:
            receiver = ref()
            if receiver is not None:
                yield receiver

    def deliver_event(self, sender: Any, event: Any) -> None:
        """``receiver(sender, event=event)`` for every receiver, isolated (the per-event hot path)."""
        if self.is_muted:
            return
        strong, weak = self._snapshot(sender)
        for receiver in strong:
            try:
                receiver(sender, event=event)
            except Exception as exc:  # isolate: one bad receiver never stops the others
                self.report_error(self, receiver, exc)
        for ref in weak:
            receiver = ref()
            if receiver is not None:
                try:
                    receiver(sender, event=event)
                except Exception as exc:
                    self.report_error(self, receiver, exc)

    def deliver(self, sender: Any, /, **kwargs: Any) -> int:
        """Call every receiver for ``sender``; a raising receiver is reported, the rest still run.

        Returns the number of receivers called. Use this, not ``send``, from library code.
        """
        if self.is_muted:
            return 0
        called = 0
        for receiver in self._receivers(sender):
            called += 1
            try:
                receiver(sender, **kwargs)
            except Exception as exc:  # isolate: one bad receiver never stops the others
                self.report_error(self, receiver, exc)
        return called

    def send(self, sender: Any = None, /, *, _async_wrapper: Any = None, **kwargs: Any) -> list[tuple[Any, Any]]:
        """blinker's ``send``, made isolating and thread-safe; returns [(receiver, result)]."""
        if self.is_muted:
            return []
        results: list[tuple[Any, Any]] = []
        for receiver in self._receivers(sender):
            try:
                results.append((receiver, receiver(sender, **kwargs)))
            except Exception as exc:
                self.report_error(self, receiver, exc)
                results.append((receiver, exc))
        return results


class SignalAttributes:
    """The signal attributes every session type exposes (annotations only; ``SignalSet.attach_to``
    sets them)."""

    on_real: SessionSignal
    on_0e: SessionSignal
    on_condition: SessionSignal  # condition search hits (type 02 or S2), with the condition's seq as sender
    on_connected: SessionSignal
    on_login: SessionSignal
    on_disconnected: SessionSignal
    on_reconnecting: SessionSignal
    on_gave_up: SessionSignal
    on_system: SessionSignal
    on_error: SessionSignal
    on_overflow: SessionSignal


class SignalSet(SignalAttributes):
    """The signals of one session (live, replayed or relayed): data signals and lifecycle.

    ``deliver_events`` and ``deliver_notice`` are what dispatchers call, on the delivering
    thread. ``owner`` is the sender of lifecycle signals.
    """

    def __init__(self, owner: Any, item_key: Callable[[Any], Any] | None = None) -> None:
        self._owner_ref = weakref.ref(owner)  # the session holds us; no cycle through receivers
        self._item_key = item_key  # the sender spelling of data signals (``SessionSignal.sender_key``)
        self._lock = threading.Lock()
        self._type_signals: dict[str, SessionSignal] = {}
        self._notice_signals: dict[str, SessionSignal] = {}  # by the name a notice gives
        self._events_on = True  # False once the session is closing: no event reaches a receiver
        self._notices_on = True  # False once it is closed: nothing does
        self.on_real = self._make("on_real", DATA_KWARGS)
        self.on_real.sender_key = item_key
        self.on_0e = self.signal("0E")
        self.on_condition = self._make("on_condition", DATA_KWARGS)
        for name, kwargs in LIFECYCLE_SIGNALS.items():
            sig = self._notice_signals[name] = self._make(name, kwargs)
            setattr(self, name, sig)

    def _make(self, name: str, kwargs: Sequence[str]) -> SessionSignal:
        sig = SessionSignal(name, kwargs)
        sig.report_error = self._receiver_failed
        return sig

    def extra_signal(self, name: str, kwargs: Sequence[str]) -> SessionSignal:
        """A signal of the owner's own (``RelaySession.on_relay``), fed by the notices that name it;
        its raising receivers are reported through ``on_error``, as the standard signals' are."""
        sig = self._notice_signals[name] = self._make(name, kwargs)
        return sig

    def signal(self, type_code: str) -> SessionSignal:
        """The data signal of one realtime type (case-sensitive: ``"0G"`` is not ``"0g"``)."""
        sig = self._type_signals.get(type_code)
        if sig is None:
            protocol.check_types([type_code])
            with self._lock:
                sig = self._type_signals.get(type_code)
                if sig is None:
                    sig = self._make(f"signal({type_code!r})", DATA_KWARGS)
                    if type_code not in CONDITION_TYPES:  # (condition hits are sent by the condition's seq)
                        sig.sender_key = self._item_key
                    self._type_signals[type_code] = sig
        return sig

    def attach_to(self, session: Any) -> None:
        """Expose the signals as attributes of ``session`` (``session.on_0e`` ...)."""
        session.on_real = self.on_real
        session.on_0e = self.on_0e
        session.on_condition = self.on_condition
        for name in LIFECYCLE_SIGNALS:
            setattr(session, name, getattr(self, name))

    # --- delivery (on the delivering thread) ----------------------------------------------

    def stop_events(self) -> None:
        """The session is closing: deliver no more events (a batch in progress stops at the next
        event; the receiver running now finishes)."""
        self._events_on = False

    def stop_all(self) -> None:
        """The session is closed: no receiver is called again, for events or notices."""
        self._events_on = self._notices_on = False

    def deliver_events(self, events: Sequence[Any]) -> None:
        """Every event to its type's signal and to ``on_real``, in order; condition hits (type
        02, S2 on the US socket) also to ``on_condition``, with the condition's seq as the sender.

        The hot path of every session. Receivers that hear every sender (the usual case) are
        looked up once per run of one type, not once per event; each call is still isolated.
        A receiver connected while a batch is delivered hears the next batch.
        """
        type_signals = self._type_signals
        on_real = self.on_real
        on_condition = self.on_condition
        real_all = on_real.for_every_sender() if on_real._entries else ()
        real_each = on_real if real_all is None else None
        last_class = None
        sig = on_real  # (the current type's signal, once one is found)
        every: tuple[Any, ...] | None = ()
        one = None  # the only receiver of the current type, when it hears every sender
        hits = False  # the current type is a condition hit's, and on_condition has receivers
        for event in events:
            if not self._events_on:  # closing: close() returns within a second, whatever is queued
                return
            cls = type(event)  # (cheaper than event.type; a type's events share their class)
            if cls is not last_class:
                last_class = cls
                type_code = cls.type
                found = type_signals.get(type_code)
                every = ()
                if found is not None and found._entries:
                    sig = found
                    every = found.for_every_sender()
                one = every[0] if every is not None and len(every) == 1 else None
                hits = type_code in CONDITION_TYPES and bool(on_condition._entries)
            if one is not None:  # the usual case
                try:
                    one(event.item, event=event)
                except Exception as exc:  # isolate: a raising receiver never stops the delivery
                    sig.report_error(sig, one, exc)
            elif every:
                item = event.item
                for receiver in every:
                    try:
                        receiver(item, event=event)
                    except Exception as exc:  # isolate: one bad receiver never stops the others
                        sig.report_error(sig, receiver, exc)
            elif every is None:
                sig.deliver_event(event.item, event)
            if real_all:
                item = event.item
                for receiver in real_all:
                    try:
                        receiver(item, event=event)
                    except Exception as exc:
                        on_real.report_error(on_real, receiver, exc)
            elif real_each is not None:
                real_each.deliver_event(event.item, event)
            if hits:
                on_condition.deliver_event(event.seq, event)

    def feature_signal(self, name: str, kwargs: Sequence[str]) -> SessionSignal:
        """A signal of a feature built on the session (``BarFeed.on_bar``), fed by ``Posted``
        notices; its raising receivers are reported through ``on_error``."""
        return self._make(name, kwargs)

    def deliver_notice(self, notice: Notice) -> None:
        if not self._notices_on:
            return
        if type(notice) is Posted:
            target: SessionSignal = notice.target
            if target._entries:
                target.deliver(notice.sender, **notice.values)
            return
        sig = self._notice_signals[notice.signal]
        if sig._entries:
            sig.deliver(self._owner_ref(), **notice.kwargs())

    def _receiver_failed(self, sig: SessionSignal, receiver: Any, error: BaseException) -> None:
        logger.error("receiver %r of %s raised", receiver, sig.name, exc_info=error)
        if sig is self.on_error:
            return  # never loop: an on_error receiver that raises is only logged
        wrapped = ReceiverError(sig.name, receiver, error)
        wrapped.__cause__ = error
        self.on_error.deliver(self._owner_ref(), **ErrorReport(wrapped).kwargs())
