"""Tokens against the simulator's REST endpoints (plain HTTP on loopback)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from kiwoom_rt import AuthError, ConnectError, LoginError, RealtimeSession
from kiwoom_rt.auth import KST, Token, TokenProvider, credentials_from_env, issue_token, revoke_token
from kiwoom_rt.sim import DEFAULT_APPKEY, DEFAULT_SECRETKEY, SimServer

from .helpers import Collector

KEYS = {"appkey": DEFAULT_APPKEY, "secretkey": DEFAULT_SECRETKEY}


@pytest.fixture
def rest_sim() -> Iterator[SimServer]:
    with SimServer(token_expiry=3600) as sim:
        yield sim


def test_issue_token_parses_expiry_as_kst(rest_sim: SimServer) -> None:
    token = issue_token(**KEYS, base_url=rest_sim.rest_url)
    assert isinstance(token, Token)
    assert token.token_type == "bearer"
    assert token.expires_at.tzinfo is KST
    assert 3500 < token.expires_in() <= 3601
    assert token.token not in repr(token)


def test_bad_credentials_raise_auth_error_with_kiwoom_code(rest_sim: SimServer) -> None:
    with pytest.raises(AuthError) as info:
        issue_token(DEFAULT_APPKEY, "wrong-secret", base_url=rest_sim.rest_url)
    assert info.value.return_code == 1
    assert "8001" in info.value.return_msg
    assert "wrong-secret" not in str(info.value)


def test_revoked_token_is_refused_at_login(rest_sim: SimServer) -> None:
    token = issue_token(**KEYS, base_url=rest_sim.rest_url)
    revoke_token(token, **KEYS, base_url=rest_sim.rest_url)
    with pytest.raises(LoginError):
        RealtimeSession(token.token, url=rest_sim.url).start(timeout=5)


def test_unreachable_endpoint_raises_connect_error() -> None:
    with pytest.raises(ConnectError):
        issue_token(**KEYS, base_url="http://127.0.0.1:9", timeout=2)


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, rest_sim: SimServer) -> None:
    monkeypatch.setenv("KIWOOM_APPKEY", DEFAULT_APPKEY)
    monkeypatch.setenv("KIWOOM_SECRETKEY", DEFAULT_SECRETKEY)
    assert credentials_from_env() == (DEFAULT_APPKEY, DEFAULT_SECRETKEY)
    assert issue_token(base_url=rest_sim.rest_url).token
    monkeypatch.delenv("KIWOOM_SECRETKEY")
    with pytest.raises(ValueError, match="KIWOOM_SECRETKEY"):
        TokenProvider()


def test_provider_caches_and_is_thread_safe(rest_sim: SimServer) -> None:
    provider = TokenProvider(**KEYS, base_url=rest_sim.rest_url)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(provider())) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert provider.issued == 1
    assert DEFAULT_SECRETKEY not in repr(provider)
    assert DEFAULT_APPKEY not in repr(provider)


def test_provider_renews_before_expiry(rest_sim: SimServer) -> None:
    now = [time.time()]
    provider = TokenProvider(**KEYS, base_url=rest_sim.rest_url, renew_margin=600, clock=lambda: now[0])
    provider()
    provider()
    assert provider.issued == 1
    token = provider.token
    assert token is not None
    now[0] = token.expires_at.timestamp() - 599  # inside the margin
    provider()
    assert provider.issued == 2


def test_provider_renews_after_invalidate_and_revokes(rest_sim: SimServer) -> None:
    provider = TokenProvider(**KEYS, base_url=rest_sim.rest_url)
    first = provider()
    provider.revoke()
    provider.invalidate()
    second = provider()
    assert provider.issued == 2
    assert second != first  # the first was revoked, so a new one was issued


def test_session_renews_the_token_after_an_auth_refusal(rest_sim: SimServer) -> None:
    provider = TokenProvider(**KEYS, base_url=rest_sim.rest_url)
    session = RealtimeSession(provider, url=rest_sim.url)
    logins = Collector()
    session.on_login.connect(logins)
    try:
        session.start()
        first_token = provider()  # cached
        rest_sim.revoke_token(first_token)  # the server now refuses it; the provider does not know
        rest_sim.drop_all()
        logins.wait_for(2)
        assert provider.issued == 2  # invalidated by the session, then issued afresh
        assert first_token != provider()
    finally:
        session.close()
