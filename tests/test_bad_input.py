"""Bad input through a live session: every shape reaches on_error; good events keep flowing."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiwoom_rt import DecodeError, FrameTooLargeError, ProtocolError, RealtimeSession, protocol
from kiwoom_rt.events import careful_values
from kiwoom_rt.messages import Ping, RealBatch
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

from .helpers import Collector, wait_until
from .test_session import quote_frame

CORPUS = sorted(p for p in (Path(__file__).parent / "corpus").iterdir() if p.name != "README.md")


def load(path: Path) -> tuple[bytes, bool]:
    """(frame bytes, sent as text?)"""
    if path.name.endswith(".gz"):
        return gzip.decompress(path.read_bytes()), True
    return path.read_bytes(), path.suffix in (".txt", ".textbytes")


def push_raw(sim: SimServer, data: bytes, as_text: bool) -> None:
    sim.push(data, text=as_text)


class Reading(Collector):
    """A receiver that reads every typed field, as a real one does (events are typed lazily:
    an unusable value is found, and reported, when its field is first read)."""

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        repr(kwargs["event"])
        super().__call__(sender, **kwargs)


class Watched:
    """A live session with counters for good events and errors."""

    def __init__(self, sim: SimServer) -> None:
        self.session = RealtimeSession(DEFAULT_TOKEN, url=sim.url)
        self.good = Reading()
        self.errors = Collector()
        self.session.on_0e.connect(self.good)
        self.session.on_error.connect(self.errors)
        self.session.start()


@pytest.fixture(scope="module")
def watched() -> Iterator[tuple[SimServer, Watched]]:
    with SimServer() as sim:
        live = Watched(sim)
        yield sim, live
        live.session.close()


def test_corpus_has_every_shape() -> None:
    names = " ".join(p.name for p in CORPUS)
    for shape in ("malformed_json", "non_object", "wrong_type", "missing", "binary", "invalid_utf8",
                  "deep_nesting", "huge_10mb"):
        assert shape in names
    assert len(gzip.decompress((Path(__file__).parent / "corpus" / "huge_10mb.txt.gz").read_bytes())) > 10_000_000


def test_every_bad_frame_reaches_on_error_once_while_good_events_flow(watched: Any) -> None:
    sim, live = watched
    errors_before, _good_before = len(live.errors.calls), len(live.good.calls)
    connections = sim.connections_total
    for number, path in enumerate(CORPUS, start=1):
        data, as_text = load(path)
        push_raw(sim, data, as_text)
        sim.push(quote_frame("005930", ask=str(900_000 + number)))
        # an entry with unusable values is still delivered (those fields None), so wait for the
        # good quote sent after it: order is kept, so it arrives last
        wait_until(lambda n=number: bool(live.good.events)  # type: ignore[misc]
                   and live.good.events[-1].ask_total == 900_000 + n, 10, path.name)
        live.errors.wait_for(errors_before + number, timeout=10)
    wait_until(lambda: len(live.errors.calls) >= errors_before + len(CORPUS))
    new_errors = live.errors.kwargs("error")[errors_before:]
    assert len(new_errors) == len(CORPUS)  # exactly one each
    assert all(isinstance(e, (ProtocolError, DecodeError, FrameTooLargeError)) for e in new_errors)
    assert any(isinstance(e, FrameTooLargeError) for e in new_errors)
    assert live.session.connected
    assert sim.connections_total == connections  # never reconnected: bad input is not a fault


def test_blank_or_missing_values_are_not_errors_and_unusable_ones_still_deliver(watched: Any) -> None:
    sim, live = watched
    errors_before = len(live.errors.calls)
    blank = quote_frame("005930", ask="  ")
    missing = quote_frame("005930")
    del missing["data"][0]["values"]["131"]
    unusable = quote_frame("005930", ask="12a")
    for frame in (blank, missing, unusable):
        sim.push(frame)
    sim.push(quote_frame("005930", ask="777"))
    wait_until(lambda: bool(live.good.events) and live.good.events[-1].ask_total == 777, 10)
    assert [e.ask_total for e in live.good.events[-4:]] == [None, None, None, 777]
    live.errors.wait_for(errors_before + 1, timeout=10)
    (error,) = live.errors.kwargs("error")[errors_before:]
    assert isinstance(error, DecodeError)
    assert "FID 131" in str(error)


def expected_errors(frame: bytes, as_text: bool) -> int:
    """How many on_error calls the session owes for one frame (computed with the pure decoder),
    given a receiver of 0E that reads every field."""
    if not as_text:
        return 1
    try:
        message = protocol.decode(frame)
    except ProtocolError:
        return 1
    if isinstance(message, Ping):
        return 0
    if isinstance(message, RealBatch):
        owed = len(message.errors)
        for event in message.events:
            if event.type == "0E":  # read as the receiver reads it: unusable values owe a report
                problems = careful_values(type(event), event.values)[1]
                owed += bool(problems)
        return owed
    return 1  # anything else unsolicited is reported (unknown message, stray ack, ...)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode)),
                          st.booleans()), min_size=1, max_size=5))
def test_random_frames_through_a_live_session(watched: Any, frames: list[tuple[bytes, bool]]) -> None:
    sim, live = watched
    owed = sum(expected_errors(frame, as_text) for frame, as_text in frames)
    errors_before, good_before = len(live.errors.calls), len(live.good.calls)
    for frame, as_text in frames:
        push_raw(sim, frame, as_text)
    sim.push(quote_frame("000660"))
    live.good.wait_for(good_before + 1, timeout=10)
    wait_until(lambda: len(live.errors.calls) >= errors_before + owed, timeout=10)
    assert len(live.errors.calls) == errors_before + owed
    assert live.session.connected
