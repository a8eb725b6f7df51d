"""Playback, by calling it: frames received elsewhere reach the dispatcher through the one intake,
in order with their notices, in bounded batches, waiting for room and never dropping."""

from __future__ import annotations

import json
import threading
from typing import Any

from kiwoom_rt._delivery import SessionDelivery
from kiwoom_rt._notices import ErrorReport, LoggedIn, Notice
from kiwoom_rt._playback import Playback
from kiwoom_rt.messages import Message, SystemNotice

from .test_session import quote_frame


def frame(n: int, item: str = "005930") -> bytes:
    return json.dumps(quote_frame(item, ask=str(n))).encode()


class Sink:
    """What a session's signals would receive, in order."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.batches: list[int] = []

    def events(self, events: Any) -> None:
        self.batches.append(len(events))
        self.seen += [event.ask_total for event in events]

    def notice(self, notice: Notice) -> None:
        self.seen.append(notice.signal)


def playback(sink: Sink, **options: Any) -> tuple[Playback, SessionDelivery]:
    dispatcher = SessionDelivery(sink.events, sink.notice, max_events=options.pop("max_events", 100_000))
    return Playback(dispatcher, threading.Event(), label="test", **options), dispatcher


def test_events_and_notices_keep_their_order() -> None:
    sink = Sink()
    play, _ = playback(sink)
    play.notify(LoggedIn({}))
    play.frames([frame(1), frame(2)], 1.0)
    play.notify(ErrorReport(ValueError("x")))
    play.frames([frame(3)], 2.0)
    play.flush()
    assert sink.seen == ["on_login", 1, 2, "on_error", 3]
    assert play.intake.counts == {"0E": 3}
    assert play.intake.real_frames == 3


def test_batches_are_bounded() -> None:
    sink = Sink()
    play, _ = playback(sink, batch=10)
    for n in range(25):
        play.frames([frame(n)], 1.0)
    play.flush()
    assert sink.seen == list(range(25))
    assert max(sink.batches) <= 10


def test_bad_input_is_counted_and_reported_in_its_place() -> None:
    sink = Sink()
    play, _ = playback(sink)
    play.frames([frame(1), b"{not json", frame(2)], 1.0)
    play.flush()
    assert sink.seen == [1, "on_error", 2]
    assert play.decode_errors == 1


def test_messages_and_the_keep_filter() -> None:
    sink = Sink()
    messages: list[Message] = []
    play, _ = playback(sink, message=messages.append,
                       keep=lambda events: [e for e in events if e.item == "005930"])
    play.frames([frame(1), b'{"trnm":"SYSTEM","code":"R10001","message":"x"}', frame(2, "000660"), frame(3)], 1.0)
    play.flush()
    assert sink.seen == [1, 3]  # the other item was not this consumer's
    assert messages == [SystemNotice("R10001", "x")]


def test_a_full_queue_is_waited_for_never_dropped() -> None:
    sink = Sink()
    release = threading.Event()
    delivered: list[int] = []

    def slow(events: Any) -> None:
        release.wait(5)
        delivered.extend(e.ask_total for e in events)

    dispatcher = SessionDelivery(slow, sink.notice, max_events=2)
    play = Playback(dispatcher, threading.Event(), label="test", batch=1)
    worker = threading.Thread(target=lambda: [play.frames([frame(n)], 1.0) for n in range(6)] and play.flush())
    worker.start()
    threading.Timer(0.2, release.set).start()
    worker.join(10)
    assert not worker.is_alive()
    dispatcher.pump()
    assert delivered == list(range(6))
    assert dispatcher.dropped == 0
