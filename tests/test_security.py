"""Security: tokens never leak, TLS is verified by default, unsafe URLs and huge frames are refused."""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
import websocket

from kiwoom_rt import (
    ConnectError,
    FrameTooLargeError,
    LoginError,
    RealtimeSession,
    ReconnectPolicy,
    SessionClosedError,
    SubscribeError,
)
from kiwoom_rt.auth import TokenProvider, issue_token
from kiwoom_rt.sim import DEFAULT_APPKEY, SimServer

from .helpers import Collector, wait_until
from .test_session import quote_frame

SECRET_TOKEN = "tok-7f3a9c-very-secret-value-0042"
SECRET_KEY = "sk-9d1e-very-secret-key-7788"


def everything_said(caplog: Any, *objects: Any, collectors: tuple[Collector, ...] = ()) -> str:
    """All log text (messages and tracebacks), reprs, strs and signal arguments, in one string."""
    parts = [record.getMessage() for record in caplog.records]
    parts += [logging.Formatter().format(record) for record in caplog.records]
    parts += [repr(obj) for obj in objects] + [str(obj) for obj in objects]
    for collector in collectors:
        parts += [repr(call) for call in collector.calls]
    return "\n".join(parts)


@pytest.mark.parametrize("secret_token", [SECRET_TOKEN, 'tok"quoted\\back\\slash-비밀-7f3a9c-0042'],
                         ids=["base64-style", "quote-backslash-korean"])
def test_the_token_appears_nowhere(caplog: Any, no_thread_leak: None, secret_token: str) -> None:
    caplog.set_level(logging.DEBUG)
    websocket.enableTrace(True)  # websocket-client then logs every frame it sends, LOGIN included
    errors: list[BaseException] = []
    try:
        with SimServer(tokens={secret_token: "app"}, credentials={DEFAULT_APPKEY: SECRET_KEY}) as sim:
            session = RealtimeSession(secret_token, url=sim.url, reconnect=ReconnectPolicy(first_delay=0.01))
            lifecycle = Collector()
            for name in ("on_connected", "on_login", "on_disconnected", "on_reconnecting", "on_system", "on_error"):
                getattr(session, name).connect(lifecycle)
            session.start()
            handle = session.subscribe(["005930"]).wait(5)
            sim.refuse_next_logins(1)  # a refused LOGIN on the way back
            sim.drop_all()
            wait_until(lambda: sim.logins >= 2)
            refused = session.subscribe(["X" * 12], ["0E"])
            with SimServer(max_items_per_reg=0, tokens={secret_token: "app"}) as strict:
                other = RealtimeSession(secret_token, url=strict.url)
                other.start()
                try:
                    other.subscribe(["005930"]).wait(5)
                except SubscribeError as exc:
                    errors.append(exc)
                other.close()
            try:
                RealtimeSession(secret_token + "-expired", url=sim.url).start(timeout=5)
            except LoginError as exc:
                errors.append(exc)
            provider = TokenProvider(DEFAULT_APPKEY, SECRET_KEY, base_url=sim.rest_url)
            issued = issue_token(DEFAULT_APPKEY, SECRET_KEY, base_url=sim.rest_url)
            provider()
            stats = session.stats()
            session.close()
            try:
                session.subscribe(["005930"])
            except SessionClosedError as exc:
                errors.append(exc)
            try:
                RealtimeSession(secret_token, url="ws://127.0.0.1:9/x").start(timeout=5)
            except ConnectError as exc:
                errors.append(exc)
    finally:
        websocket.enableTrace(False)
        logging.getLogger("websocket").handlers.clear()
    said = everything_said(caplog, session, handle, refused, provider, issued, stats, *errors,
                           collectors=(lifecycle,))
    assert "LOGIN" in said  # the trace did log the LOGIN frames...
    assert len(errors) >= 3
    for secret in (secret_token, SECRET_KEY, issued.token):
        escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
        for spelling in (secret, json.dumps(secret)[1:-1], escaped, repr(escaped.encode())[2:-1], "비밀"):
            assert spelling not in said  # ...but no token or key anywhere, in any spelling


def test_tls_is_verified_by_default(tls_sim: SimServer, no_thread_leak: None) -> None:
    assert tls_sim.url.startswith("wss://")
    session = RealtimeSession("sim-token", url=tls_sim.url)
    with pytest.raises(ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        session.start(timeout=5)


def test_tls_with_a_trusted_certificate_works(tls_sim: SimServer, self_signed: tuple[Path, Path],
                                              no_thread_leak: None) -> None:
    trusting = ssl.create_default_context(cafile=str(self_signed[0]))
    with RealtimeSession("sim-token", url=tls_sim.url, ssl_context=trusting) as session:
        quotes = Collector()
        session.on_0e.connect(quotes)
        tls_sim.push(quote_frame("005930"))
        quotes.wait_for(1)


def test_token_requests_verify_tls_too(tls_sim: SimServer) -> None:
    with pytest.raises(ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        issue_token("sim-appkey", "sim-secretkey", base_url=tls_sim.rest_url)


@pytest.mark.parametrize("host", ["example.com", "10.0.0.5", "192.168.1.10"])
def test_plain_ws_to_a_remote_host_is_refused_unless_allowed(host: str) -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        RealtimeSession("t" * 20, url=f"ws://{host}:10000/api/dostk/websocket")
    allowed = RealtimeSession("t" * 20, url=f"ws://{host}:10000/api/dostk/websocket", allow_insecure=True)
    assert allowed.state == "new"  # built, never started: nothing is contacted


def test_frames_above_the_configured_limit_are_refused_and_reported(sim: SimServer, no_thread_leak: None) -> None:
    session = RealtimeSession("sim-token", url=sim.url, max_frame_bytes=2048)
    quotes, errors = Collector(), Collector()
    session.on_0e.connect(quotes)
    session.on_error.connect(errors)
    try:
        session.start()
        big = quote_frame("005930")
        big["data"][0]["values"]["9001"] = "x" * 5000
        sim.push(big)
        sim.push(quote_frame("000660"))
        quotes.wait_for(1)
        errors.wait_for(1)
        error = errors.kwargs("error")[0]
        assert isinstance(error, FrameTooLargeError)
        assert (error.limit, error.size > 5000) == (2048, True)
        assert [e.item for e in quotes.events] == ["000660"]
    finally:
        session.close()
