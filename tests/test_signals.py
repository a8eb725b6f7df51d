"""SessionSignal: strong by default, isolated, muted as blinker documents, refusing bad receivers."""

from __future__ import annotations

import functools
import gc
from typing import Any

import pytest

from kiwoom_rt._signals import SessionSignal, SignalSet


def test_receivers_are_strong_by_default_and_weak_on_request() -> None:
    sig = SessionSignal("s")
    calls: list[str] = []
    sig.connect(lambda sender, event: calls.append("lambda"))

    class Owner:
        def method(self, sender: Any, event: Any) -> None:
            calls.append("weak")

    owner = Owner()
    sig.connect(owner.method, weak=True)
    sig.deliver_event("A", 1)
    del owner
    gc.collect()
    sig.deliver_event("A", 2)
    assert calls == ["lambda", "weak", "lambda"]


def test_a_raising_receiver_is_reported_and_the_others_still_run() -> None:
    sig = SessionSignal("s")
    errors: list[BaseException] = []
    sig.report_error = lambda s, r, e: errors.append(e)
    calls: list[int] = []

    def bad(sender: Any, event: Any) -> None:
        raise RuntimeError("boom")

    sig.connect(bad)
    sig.connect(lambda sender, event: calls.append(event))
    sig.deliver_event("A", 7)
    assert calls == [7]
    assert [str(e) for e in errors] == ["boom"]


def test_per_sender_routing_by_value_and_disconnect() -> None:
    sig = SessionSignal("s")
    calls: list[str] = []

    def one(sender: Any, event: Any) -> None:
        calls.append(sender)

    sig.connect(one, sender="".join(["0059", "30"]))  # an equal string, not the same object
    sig.deliver_event("005930", 1)
    sig.deliver_event("000660", 1)
    sig.disconnect(one)
    sig.deliver_event("005930", 1)
    assert calls == ["005930"]


def test_muted_silences_delivery() -> None:
    sig = SessionSignal("s")
    calls: list[int] = []
    sig.connect(lambda sender, event: calls.append(event))
    with sig.muted():
        sig.deliver_event("A", 1)
        sig.deliver("A", event=2)
        sig.send("A", event=3)
    sig.deliver_event("A", 4)
    assert calls == [4]


@pytest.mark.parametrize("receiver", [
    lambda: None,
    lambda item: None,
    lambda item, quote: None,
    lambda item, *, other: None,
])
def test_a_receiver_that_cannot_take_item_and_event_is_refused_at_connect(receiver: Any) -> None:
    sig = SessionSignal("signal('0E')")
    with pytest.raises(TypeError, match=r"receiver\(sender, event=\.\.\.\)"):
        sig.connect(receiver)
    assert not sig.has_receivers


@pytest.mark.parametrize("receiver", [
    lambda item, event: None,
    lambda item, **kwargs: None,
    lambda *args, **kwargs: None,
    lambda item, event=None, extra=1: None,
    functools.partial(lambda prefix, item, event: None, "p"),
])
def test_well_formed_receivers_are_accepted(receiver: Any) -> None:
    sig = SessionSignal("s")
    sig.connect(receiver)
    assert sig.has_receivers
    sig.deliver_event("A", 1)  # and it can be called as connected


def test_lifecycle_signals_check_their_own_arguments() -> None:
    class Owner:
        pass

    signals = SignalSet(Owner())
    signals.on_disconnected.connect(lambda session, code, reason, will_retry: None)
    with pytest.raises(TypeError, match="will_retry"):
        signals.on_disconnected.connect(lambda session, code, reason: None)
    with pytest.raises(TypeError, match="not callable"):
        signals.on_error.connect("nope")  # type: ignore[arg-type]


def test_a_batch_of_mixed_types_reaches_each_types_receivers_and_on_real_in_order() -> None:
    """deliver_events looks receivers up once per run of one type: runs that change type, with
    one receiver, two, none or one raising, still reach everyone in arrival order."""
    from kiwoom_rt import protocol

    class Owner:
        pass

    owner = Owner()
    signals = SignalSet(owner)
    calls: list[tuple[str, str, str]] = []
    errors: list[BaseException] = []
    signals.on_error.connect(lambda sender, error: errors.append(error))

    def bad(item: str, event: Any) -> None:
        raise RuntimeError(f"bad {item}")

    signals.signal("0B").connect(lambda item, event: calls.append(("0B", item, event.type)))
    signals.signal("0D").connect(lambda item, event: calls.append(("0D-1", item, event.type)))
    signals.signal("0D").connect(lambda item, event: calls.append(("0D-2", item, event.type)))
    signals.signal("0E").connect(bad)
    signals.on_real.connect(lambda item, event: calls.append(("real", item, event.type)))
    frame = ('{"trnm":"REAL","data":['
             '{"type":"0B","item":"A","values":{"10":"+1"}},{"type":"0D","item":"B","values":{}},'
             '{"type":"0D","item":"C","values":{}},{"type":"0E","item":"D","values":{}},'
             '{"type":"0J","item":"E","values":{}},{"type":"0B","item":"F","values":{}}]}')
    events: list[Any] = []
    protocol.decode_frames([frame], events)
    signals.deliver_events(events)
    assert calls == [("0B", "A", "0B"), ("real", "A", "0B"),
                     ("0D-1", "B", "0D"), ("0D-2", "B", "0D"), ("real", "B", "0D"),
                     ("0D-1", "C", "0D"), ("0D-2", "C", "0D"), ("real", "C", "0D"),
                     ("real", "D", "0E"), ("real", "E", "0J"),
                     ("0B", "F", "0B"), ("real", "F", "0B")]
    assert [str(error.__cause__) for error in errors] == ["bad D"]
