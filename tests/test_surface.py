"""One session surface: the same requests, good and bad, through a live session, a replay and a
relay consumer give the same outcomes, and each kind of session satisfies ``kiwoom_rt.Session``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kiwoom_rt import RealtimeSession, Recorder, ReplaySession, Session, SessionClosedError, SessionState
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

from .helpers import RedisServer
from .test_session import quote_frame

#: (what is asked, what must come of it): "done" (its wait returned), or the exception raised.
REQUESTS: list[tuple[str, Callable[[Any], Any], str]] = [
    ("subscribe one item", lambda s: s.subscribe(["005930"]).wait(10), "done"),
    ("subscribe two types", lambda s: s.subscribe(["000660", "005930_NX"], ["0B", "0D"]).wait(10), "done"),
    ("subscribe one item as a string", lambda s: s.subscribe("035420", "0E", grp_no="2").wait(10), "done"),
    ("unsubscribe", lambda s: s.unsubscribe(["005930"]).wait(10), "done"),
    ("watch a condition", lambda s: s.watch_condition("4").wait(10), "done"),
    ("a malformed item", lambda s: s.subscribe(["00593O!"]), "ValueError"),
    ("no item at all", lambda s: s.subscribe([]), "ValueError"),
    ("an item that is not a string", lambda s: s.subscribe([5930]), "TypeError"),
    ("an unknown type", lambda s: s.subscribe(["005930"], ["ZZ"]), "ValueError"),
    ("a malformed type", lambda s: s.subscribe(["005930"], ["0EE"]), "ValueError"),
    ("a group number too long", lambda s: s.subscribe(["005930"], grp_no="12345"), "ValueError"),
    ("unsubscribe a malformed item", lambda s: s.unsubscribe(["a b"]), "ValueError"),
    ("watch a malformed seq", lambda s: s.watch_condition("abc"), "ValueError"),
    ("watch a seq that is not a string", lambda s: s.watch_condition(4), "ValueError"),
    ("search a malformed seq", lambda s: s.search("12345"), "ValueError"),
]


def outcome(request: Callable[[Any], Any], session: Any) -> str:
    try:
        request(session)
    except Exception as exc:
        return type(exc).__name__
    return "done"


@contextmanager
def live(sim: SimServer, tmp_path: Path, redis_server: RedisServer) -> Iterator[Any]:
    with RealtimeSession(DEFAULT_TOKEN, url=sim.url) as session:
        yield session


@contextmanager
def replay(sim: SimServer, tmp_path: Path, redis_server: RedisServer) -> Iterator[Any]:
    path = tmp_path / "day.jsonl"
    recorder = Recorder(path)
    with RealtimeSession(DEFAULT_TOKEN, url=sim.url, frame_hook=recorder) as recording:
        recording.subscribe(["005930"]).wait(5)
        sim.push(quote_frame("005930"))
        sim.wait_until(lambda: recording.stats().real_frames >= 1)
    recorder.close()
    with ReplaySession(path, speed=None) as session:
        yield session


@contextmanager
def relayed(sim: SimServer, tmp_path: Path, redis_server: RedisServer) -> Iterator[Any]:
    pytest.importorskip("redis")
    from kiwoom_rt.relay import Relay, RelaySession

    with Relay.for_url(redis_server.url, DEFAULT_TOKEN, url=sim.url, heartbeat=0.2), \
            RelaySession(redis_server.url) as session:
        yield session


KINDS = {"live": live, "replay": replay, "relay": relayed}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_same_requests_have_the_same_outcomes(kind: str, sim: SimServer, tmp_path: Path,
                                                  redis_server: RedisServer, no_thread_leak: None) -> None:
    with KINDS[kind](sim, tmp_path, redis_server) as session:
        assert isinstance(session, Session)
        assert session.state in (SessionState.CONNECTING, SessionState.CONNECTED, SessionState.FINISHED)
        got = [(name, outcome(request, session)) for name, request, _ in REQUESTS]
        assert got == [(name, expected) for name, _, expected in REQUESTS]
        assert isinstance(session.stats().events, dict)
    assert session.state is SessionState.CLOSED
    with pytest.raises(SessionClosedError):
        session.subscribe(["005930"])
    with pytest.raises(SessionClosedError):
        session.watch_condition("4")
    with pytest.raises(ValueError, match="malformed item"):  # a bad request is judged first
        session.subscribe(["00593O!"])


def test_the_surface_agrees_at_its_edges(tmp_path: Path) -> None:
    """Issue 38: a replay refuses an option it would ignore; every session kind starts with the
    same signature; a replay says it is not live (bars ask that, not the class)."""
    import inspect

    pytest.importorskip("redis")
    from kiwoom_rt.relay import RelaySession

    with pytest.raises(TypeError, match="inline"):
        ReplaySession(tmp_path / "none.jsonl", inline=True)  # type: ignore[call-arg]
    signatures = {cls.__name__: inspect.signature(cls.start) for cls in (RealtimeSession, ReplaySession, RelaySession)}
    assert len({str(sig).split(" -> ")[0] for sig in signatures.values()}) == 1, signatures
    assert ReplaySession.live is False
    assert RealtimeSession.live is True
    assert RelaySession.live is True


def test_options_come_in_groups_and_keywords_still_work() -> None:
    """Issue 38: the constructor's settings are three validated groups; the old keywords change
    the fields of the group given (or of the defaults), and an unknown one is refused."""
    from kiwoom_rt import ConnectionOptions, DeliveryOptions, HealthOptions

    url = "ws://127.0.0.1:9/api/dostk/websocket"
    grouped = RealtimeSession(DEFAULT_TOKEN, url=url, connection=ConnectionOptions(chunk_size=7, max_items=None),
                              delivery=DeliveryOptions(queue_size=50, overflow="drop_oldest"),
                              health=HealthOptions(watch_health=False))
    keywords = RealtimeSession(DEFAULT_TOKEN, url=url, chunk_size=7, max_items=None, queue_size=50,
                               overflow="drop_oldest", watch_health=False)
    try:
        assert grouped.connection == keywords.connection == ConnectionOptions(chunk_size=7, max_items=None)
        assert grouped.delivery == keywords.delivery
        assert grouped.health_options == keywords.health_options
        mixed = RealtimeSession(DEFAULT_TOKEN, url=url, connection=ConnectionOptions(chunk_size=7), idle_timeout=3.0)
        assert (mixed.connection.chunk_size, mixed.connection.idle_timeout) == (7, 3.0)
        mixed.close()
    finally:
        grouped.close()
        keywords.close()
    with pytest.raises(TypeError, match="chunk_sise"):
        RealtimeSession(DEFAULT_TOKEN, url=url, chunk_sise=7)  # type: ignore[call-arg]
    for bad in ({"chunk_size": 0}, {"queue_size": 0}, {"overflow": "drop_newest"}, {"handover_after": 0},
                {"idle_timeout": -1}, {"stale_after": {"0B": 0}}, {"max_frame_bytes": 10}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RealtimeSession(DEFAULT_TOKEN, url=url, **bad)  # type: ignore[arg-type]
    from kiwoom_rt import QueueDispatcher

    with pytest.raises(ValueError, match="exclude each other"):
        DeliveryOptions(inline=True, dispatcher=QueueDispatcher())
