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
