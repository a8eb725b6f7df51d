"""Clean closes in both directions (RFC 6455 7.1): our session against the simulator over ws://
and wss://, and the simulator against an independent client (``websockets``' sync client)."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import ClientConnection, connect

from kiwoom_rt import RealtimeSession
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

from .helpers import Collector, wait_until


def drain(ws: ClientConnection) -> None:
    while True:
        ws.recv(timeout=5)


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_session_close_sends_a_close_frame(secure: bool, sim: SimServer, tls_sim: SimServer,
                                           self_signed: tuple[Path, Path], no_thread_leak: None) -> None:
    server = tls_sim if secure else sim
    context = ssl.create_default_context(cafile=str(self_signed[0])) if secure else None
    session = RealtimeSession(DEFAULT_TOKEN, url=server.url, ssl_context=context).start()
    session.subscribe(["005930"]).wait(5)
    session.close()
    wait_until(lambda: server.connection_count == 0, message="the server saw the connection end")
    assert server.close_received() == 1000


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_session_answers_the_servers_close_frame(secure: bool, sim: SimServer, tls_sim: SimServer,
                                                 self_signed: tuple[Path, Path], no_thread_leak: None) -> None:
    server = tls_sim if secure else sim
    context = ssl.create_default_context(cafile=str(self_signed[0])) if secure else None
    session = RealtimeSession(DEFAULT_TOKEN, url=server.url, ssl_context=context)
    disconnected = Collector()
    session.on_disconnected.connect(disconnected)
    try:
        session.start()
        server.close_all(4001, "bye")
        disconnected.wait_for(1)
        wait_until(lambda: server.close_received(0) is not None, message="the session answered the close frame")
        assert server.close_received(0) == 1000
    finally:
        session.close()


def test_independent_client_close_returns_at_once(sim: SimServer) -> None:
    """The server closes TCP right after answering a close frame; a websockets client waits up to
    ``close_timeout`` (10 s by default) for that, so a server that does not would stall it."""
    with connect(sim.url, close_timeout=10) as ws:
        ws.send(json.dumps({"trnm": "LOGIN", "token": DEFAULT_TOKEN}))
        assert '"LOGIN"' in str(ws.recv(timeout=5))
        started = time.monotonic()
        ws.close()
        took = time.monotonic() - started
    assert took < 2.0, f"close() took {took:.1f} s: the server did not end TCP after the handshake"
    assert ws.close_code == 1000
    wait_until(lambda: sim.close_received() == 1000 and sim.connection_count == 0)


def test_independent_client_sees_the_servers_close(sim: SimServer) -> None:
    with connect(sim.url, close_timeout=10) as ws:
        ws.send(json.dumps({"trnm": "LOGIN", "token": DEFAULT_TOKEN}))
        ws.recv(timeout=5)
        sim.close_all(1000, "maintenance")
        with pytest.raises(ConnectionClosedOK):
            drain(ws)
        assert (ws.close_code, ws.close_reason) == (1000, "maintenance")
    wait_until(lambda: sim.close_received() == 1000 and sim.connection_count == 0)


# --- close() keeps its promise with slow receivers (issue 37) ----------------------------------------

def _slow_close(session: object, calls: list[float], receiver_delay: float) -> None:
    """Close once a slow receiver has run a little, with events still queued: close() returns
    within about a second, and no receiver is called after it returned."""
    import threading

    wait_until(lambda: len(calls) >= 2, 10)
    started = time.monotonic()
    session.close()  # type: ignore[attr-defined]
    took = time.monotonic() - started
    returned = len(calls)
    threading.Event().wait(max(0.6, receiver_delay + 0.2))
    assert took < 1.5, f"close() took {took:.2f} s"
    assert len(calls) <= returned, f"{len(calls) - returned} receiver call(s) after close() returned"


@pytest.mark.parametrize("delay", [0.2, 3.0])
def test_a_live_session_closes_within_a_second_with_slow_receivers(sim: SimServer, delay: float) -> None:
    import threading

    calls: list[float] = []
    pause = threading.Event()
    session = RealtimeSession(DEFAULT_TOKEN, url=sim.url)

    def slow(item: str, event: object) -> None:
        calls.append(time.monotonic())
        pause.wait(delay)

    session.on_real.connect(slow)
    session.start()
    session.subscribe(["005930", "000660", "035420"], ["0B", "0D", "0E"]).wait(5)
    _slow_close(session, calls, delay)


@pytest.mark.parametrize("delay", [0.2, 3.0])
def test_a_replay_closes_within_a_second_with_slow_receivers(tmp_path: Path, delay: float) -> None:
    import threading

    from kiwoom_rt import Recorder, ReplaySession

    path = tmp_path / "rec.jsonl"
    with Recorder(path) as recorder:
        for n in range(200):
            frame = {"trnm": "REAL", "data": [{"type": "0E", "name": "x", "item": f"{n:06d}",
                                               "values": {"21": "165208", "131": "100"}}]}
            recorder(json.dumps(frame).encode(), 1000.0 + n * 0.001)
    calls: list[float] = []
    pause = threading.Event()
    replay = ReplaySession(path, speed=None)

    def slow(item: str, event: object) -> None:
        calls.append(time.monotonic())
        pause.wait(delay)

    replay.on_real.connect(slow)
    replay.start()
    _slow_close(replay, calls, delay)


@pytest.mark.parametrize("delay", [0.2, 3.0])
def test_a_relay_session_closes_within_a_second_with_slow_receivers(redis_server: object, delay: float) -> None:
    """Issue 37, case 7: ``RelaySession.close()`` kept calling receivers (30 calls after it returned)."""
    import threading

    pytest.importorskip("redis")
    from kiwoom_rt.relay import Relay, RelaySession

    from .test_session import quote_frame

    calls: list[float] = []
    pause = threading.Event()
    url = redis_server.url  # type: ignore[attr-defined]
    with SimServer(rate=0.0, condition_churn=0.0) as quiet:
        relay = Relay.for_url(url, DEFAULT_TOKEN, url=quiet.url, heartbeat=0.2).start()
        consumer = RelaySession(url)
        try:
            def slow(item: str, event: object) -> None:
                calls.append(time.monotonic())
                pause.wait(delay)

            consumer.on_real.connect(slow)
            consumer.start()
            consumer.subscribe(["005930"]).wait(5)
            for n in range(300):
                quiet.push(quote_frame("005930", ask=str(n)))
            _slow_close(consumer, calls, delay)
        finally:
            consumer.close()
            relay.close()


def test_every_close_frame_has_a_fresh_mask_key() -> None:
    """RFC 6455 5.3: a fresh, unpredictable mask key for every client frame, close frames too
    (one key used to serve the whole process)."""
    from kiwoom_rt._connection import masked_close_frame

    frames = [masked_close_frame() for _ in range(200)]
    keys = {frame[2:6] for frame in frames}
    assert len(keys) == 200
    for frame in frames[:5]:
        assert frame[:2] == bytes([0x88, 0x82])  # FIN + close, masked, two bytes of payload
        key, masked = frame[2:6], frame[6:]
        assert int.from_bytes(bytes(b ^ key[i] for i, b in enumerate(masked)), "big") == 1000
