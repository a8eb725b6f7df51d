"""HTTP CONNECT proxies, against a real proxy (Debian's tinyproxy) started on a free port.

Choosing the proxy is pure and tested by calling ``choose_proxy``; the tunnel is tested end to
end: connect, reconnect, TLS verified through the tunnel, authentication, refusals and the
loopback bypass.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiwoom_rt import ConnectError, RealtimeSession, ReconnectPolicy
from kiwoom_rt._proxy import HttpProxy, choose_proxy, parse_proxy
from kiwoom_rt.auth import issue_token
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

from .helpers import Collector, ServerProcess, find_program, free_port, wait_until

FAST = ReconnectPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.1)


class Tinyproxy(ServerProcess):
    def __init__(self, folder: Path, *, auth: tuple[str, str] | None = None,
                 connect_ports: list[int] | None = None) -> None:
        port = free_port()
        self.requests_log = folder / "tinyproxy.log"
        lines = [f"Port {port}", "Listen 127.0.0.1", "Timeout 60", "MaxClients 50", "Allow 127.0.0.1",
                 f'LogFile "{self.requests_log}"', "LogLevel Connect", "DisableViaHeader Yes"]
        lines += [f"BasicAuth {auth[0]} {auth[1]}"] if auth else []
        lines += [f"ConnectPort {p}" for p in connect_ports or []]
        config = folder / "tinyproxy.conf"
        config.write_text("\n".join(lines) + "\n")
        super().__init__([find_program("tinyproxy", "tinyproxy"), "-d", "-c", str(config)], port,
                         log=folder / "tinyproxy.out")
        self.url = f"http://127.0.0.1:{port}"

    def connects_to(self, port: int, method: str = "CONNECT ") -> int:
        """Requests (CONNECT by default) the proxy logged for 127.0.0.1:``port``."""
        if not self.requests_log.exists():
            return 0
        text = self.requests_log.read_text(errors="replace")
        return len(re.findall(rf"{method}(?:http://)?127\.0\.0\.1:{port}\b", text))


@pytest.fixture
def tinyproxy_factory(tmp_path: Path) -> Iterator[Callable[..., Tinyproxy]]:
    started: list[Tinyproxy] = []

    def start(**options: object) -> Tinyproxy:
        folder = tmp_path / f"proxy{len(started)}"
        folder.mkdir()
        proxy = Tinyproxy(folder, **options)  # type: ignore[arg-type]
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def port_of(sim: SimServer) -> int:
    return int(sim.url.split(":")[2].split("/")[0])


# --- choosing a proxy (pure) -------------------------------------------------------------------

WSS = "wss://api.kiwoom.com:10000/api/dostk/websocket"


def test_explicit_proxy_is_always_used_even_for_loopback() -> None:
    assert choose_proxy("ws://127.0.0.1:9000/x", "http://127.0.0.1:3128", {}) == HttpProxy("127.0.0.1", 3128)
    assert choose_proxy(WSS, "proxy.corp:8080", {"no": "*"}) == HttpProxy("proxy.corp", 8080)


def test_environment_proxy_by_scheme_with_no_proxy_and_loopback_bypass() -> None:
    env = {"https": "http://secure.corp:3128", "http": "http://plain.corp:3128", "no": ".internal,example.org"}
    assert choose_proxy(WSS, None, env) == HttpProxy("secure.corp", 3128)
    assert choose_proxy("ws://feed.example.com/x", None, env) == HttpProxy("plain.corp", 3128)
    assert choose_proxy("wss://a.example.org/x", None, env) is None  # NO_PROXY
    assert choose_proxy("wss://feed.internal/x", None, env) is None
    assert choose_proxy("wss://127.0.0.1:10000/x", None, env) is None  # loopback never goes through it
    assert choose_proxy("wss://localhost:10000/x", None, env) is None
    assert choose_proxy(WSS, None, {"all": "http://all.corp:1"}) == HttpProxy("all.corp", 1)
    assert choose_proxy(WSS, False, env) is None
    assert choose_proxy(WSS, None, {}) is None


def test_proxy_urls_credentials_and_refused_forms() -> None:
    proxy = parse_proxy("http://me%40corp:p%3Ass@proxy.corp:3128")
    assert (proxy.username, proxy.password, proxy.address) == ("me@corp", "p:ss", "proxy.corp:3128")
    assert "p:ss" not in repr(proxy)
    assert "***" in repr(proxy)
    assert b"Proxy-Authorization: Basic bWVAY29ycDpwOnNz" in proxy.connect_request("api.kiwoom.com", 10000)
    for bad in ("socks5://proxy:1080", "https://proxy:443", "http://:3128"):
        with pytest.raises(ValueError, match="proxy"):
            parse_proxy(bad)
    with pytest.raises(TypeError):
        choose_proxy(WSS, 3128, {})  # type: ignore[arg-type]


def test_session_repr_names_the_proxy_but_not_its_password() -> None:
    session = RealtimeSession(DEFAULT_TOKEN, url=WSS, proxy="http://me:secret@proxy.corp:3128")
    assert "via proxy proxy.corp:3128" in repr(session)
    assert "secret" not in repr(session)


# --- through a real proxy ---------------------------------------------------------------------

def test_connect_and_reconnect_through_the_proxy(sim: SimServer, tinyproxy_factory: Callable[..., Tinyproxy],
                                                 no_thread_leak: None) -> None:
    proxy = tinyproxy_factory()
    session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, proxy=proxy.url, reconnect=FAST)
    quotes, disconnected = Collector(), Collector()
    session.on_0e.connect(quotes)
    session.on_disconnected.connect(disconnected)
    try:
        session.start()
        session.subscribe(["005930"]).wait(5)
        quotes.wait_for(1)
        assert proxy.connects_to(port_of(sim)) == 1  # the explicit proxy is used for loopback too
        sim.drop_all()
        disconnected.wait_for(1)
        wait_until(lambda: session.connected and sim.logged_in_count == 1)
        seen = len(quotes.calls)
        quotes.wait_for(seen + 1)  # the subscription was restored through the new tunnel
        assert proxy.connects_to(port_of(sim)) == 2
    finally:
        session.close()


def test_tls_is_verified_end_to_end_through_the_tunnel(tls_sim: SimServer, self_signed: tuple[Path, Path],
                                                       tinyproxy_factory: Callable[..., Tinyproxy],
                                                       no_thread_leak: None) -> None:
    proxy = tinyproxy_factory()
    untrusting = RealtimeSession(DEFAULT_TOKEN, url=tls_sim.url, proxy=proxy.url)
    with pytest.raises(ConnectError, match=r"through the proxy .*(CERTIFICATE_VERIFY_FAILED|certificate verify)"):
        untrusting.start(timeout=5)
    trusting = ssl.create_default_context(cafile=str(self_signed[0]))
    with RealtimeSession(DEFAULT_TOKEN, url=tls_sim.url, proxy=proxy.url, ssl_context=trusting) as session:
        session.subscribe(["005930"]).wait(5)
    assert proxy.connects_to(port_of(tls_sim)) == 2


def test_proxy_authentication(sim: SimServer, tinyproxy_factory: Callable[..., Tinyproxy],
                              no_thread_leak: None) -> None:
    proxy = tinyproxy_factory(auth=("trader", "s3cret"))
    with pytest.raises(ConnectError, match=r"407.*proxy authentication required"):
        RealtimeSession(DEFAULT_TOKEN, url=sim.url, proxy=proxy.url).start(timeout=5)
    with pytest.raises(ConnectError, match=r"40[17].*refused these credentials") as refused:
        RealtimeSession(DEFAULT_TOKEN, url=sim.url,
                        proxy=proxy.url.replace("//", "//trader:wrong@")).start(timeout=5)
    assert "wrong" not in str(refused.value)
    authed = proxy.url.replace("//", "//trader:s3cret@")
    with RealtimeSession(DEFAULT_TOKEN, url=sim.url, proxy=authed) as session:
        session.subscribe(["005930"]).wait(5)


def test_a_refused_connect_is_a_clear_connect_error(sim: SimServer, tinyproxy_factory: Callable[..., Tinyproxy],
                                                    no_thread_leak: None) -> None:
    proxy = tinyproxy_factory(connect_ports=[443])  # the sim's port is not allowed
    session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, proxy=proxy.url)
    with pytest.raises(ConnectError, match=rf"proxy 127\.0\.0\.1:\d+ refused CONNECT 127\.0\.0\.1:{port_of(sim)}"):
        session.start(timeout=5)
    assert sim.connections_total == 0


def test_environment_proxies_bypass_loopback(sim: SimServer, tinyproxy_factory: Callable[..., Tinyproxy],
                                             monkeypatch: pytest.MonkeyPatch, no_thread_leak: None) -> None:
    proxy = tinyproxy_factory()
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.delenv("no_proxy")
    with RealtimeSession(DEFAULT_TOKEN, url=sim.url) as session:
        session.subscribe(["005930"]).wait(5)
    assert proxy.connects_to(port_of(sim)) == 0
    assert "via proxy" not in repr(session)


def test_environment_proxy_is_used_for_remote_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("https_proxy", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "mockapi.kiwoom.com")
    monkeypatch.setenv("no_proxy", "mockapi.kiwoom.com")
    assert "via proxy proxy.corp:3128" in repr(RealtimeSession(DEFAULT_TOKEN, url=WSS))
    assert "via proxy" not in repr(RealtimeSession(DEFAULT_TOKEN, url=WSS.replace("api.", "mockapi.")))
    assert "via proxy" not in repr(RealtimeSession(DEFAULT_TOKEN, url=WSS, proxy=False))


def test_token_requests_follow_the_same_proxy_rule(sim: SimServer,
                                                   tinyproxy_factory: Callable[..., Tinyproxy]) -> None:
    from kiwoom_rt.sim import DEFAULT_APPKEY, DEFAULT_SECRETKEY

    proxy = tinyproxy_factory()
    rest_port = int(sim.rest_url.split(":")[2].split("/")[0])
    token = issue_token(DEFAULT_APPKEY, DEFAULT_SECRETKEY, base_url=sim.rest_url, proxy=proxy.url)
    assert token.token
    assert proxy.connects_to(rest_port, method="POST ") == 1
    issue_token(DEFAULT_APPKEY, DEFAULT_SECRETKEY, base_url=sim.rest_url)  # environment: loopback bypasses
    assert proxy.connects_to(rest_port, method="POST ") == 1


def test_cli_proxy_option(sim: SimServer, tinyproxy_factory: Callable[..., Tinyproxy]) -> None:
    from .test_cli import assert_one_line_error, run

    proxy = tinyproxy_factory()
    ok = run("conditions", "--url", sim.url, "--proxy", proxy.url, env={"KIWOOM_TOKEN": DEFAULT_TOKEN})
    assert ok.returncode == 0, ok.stderr
    assert proxy.connects_to(port_of(sim)) == 1
    bad = run("conditions", "--url", sim.url, "--proxy", "socks5://127.0.0.1:1", env={"KIWOOM_TOKEN": DEFAULT_TOKEN})
    assert_one_line_error(bad, "unsupported proxy scheme")
