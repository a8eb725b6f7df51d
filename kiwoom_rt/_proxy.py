"""HTTP CONNECT proxies for the WebSocket: which proxy a URL goes through, and the tunnel itself.

Rules (docs/protocol.md, "Proxies"):

- an explicit ``proxy=`` is always used, loopback included;
- otherwise the environment's proxy is used (``HTTPS_PROXY`` for wss://, ``HTTP_PROXY`` for
  ws://, ``ALL_PROXY`` for both; on Windows also the system settings, as ``urllib`` reads them),
  unless ``NO_PROXY`` names the host, and never for loopback;
- ``proxy=False`` never uses one.

The tunnel is a plain-TCP ``CONNECT host:port``; TLS to Kiwoom is then negotiated through it, end
to end, and verified against Kiwoom's host name, so the proxy sees only ciphertext. Credentials
in the proxy URL (``http://user:password@proxy:3128``) go as ``Proxy-Authorization: Basic``.
``choose_proxy`` is pure; ``open_tunnel`` does the I/O on a socket it is given.
"""

from __future__ import annotations

import base64
import socket
import urllib.request
from collections.abc import Callable, Mapping
from urllib.parse import unquote, urlsplit

import attrs

from ._urls import is_loopback
from .errors import ConnectError

__all__ = ["HttpProxy", "choose_proxy", "open_tunnel", "parse_proxy"]

_MAX_REPLY_HEAD = 64 * 1024


@attrs.frozen(repr=False)
class HttpProxy:
    """An HTTP proxy that tunnels with CONNECT. Its password never appears in ``repr``."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        auth = f"{self.username}:***@" if self.username is not None else ""
        return f"HttpProxy(http://{auth}{self.host}:{self.port})"

    @property
    def address(self) -> str:
        """``host:port`` (no credentials), for messages and logs."""
        return f"{self.host}:{self.port}"

    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` header's value, or None without credentials."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def connect_request(self, host: str, port: int) -> bytes:
        """The CONNECT request that opens a tunnel to ``host:port``."""
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        authorization = self.authorization()
        if authorization is not None:
            lines.append("Proxy-Authorization: " + authorization)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_proxy(url: str) -> HttpProxy:
    """``http://[user:password@]host[:port]`` (or just ``host:port``) as an ``HttpProxy``."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme != "http":
        raise ValueError(f"unsupported proxy scheme {parts.scheme}://: only http:// proxies (HTTP CONNECT) work")
    if not parts.hostname:
        raise ValueError("the proxy URL has no host")
    try:
        port = parts.port or 8080
    except ValueError:
        raise ValueError("the proxy URL has an invalid port") from None
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return HttpProxy(parts.hostname, port, username, password)


def choose_proxy(
    url: str,
    proxy: str | bool | None,
    environment: Mapping[str, str] | None = None,
    bypass: Callable[[str], bool] | None = None,
) -> HttpProxy | None:
    """The proxy a WebSocket (or token endpoint) ``url`` goes through, or None for a direct connection.

    ``proxy`` is the session's argument: a URL (always used), False (never), or None (the
    environment). ``environment`` is ``urllib.request.getproxies()``'s mapping and ``bypass`` its
    ``proxy_bypass``; both default to the real ones.
    """
    if proxy is False:
        return None
    if isinstance(proxy, str) and proxy:
        return parse_proxy(proxy)
    if proxy not in (None, True):
        raise TypeError("proxy must be a URL string, False or None")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    proxies = urllib.request.getproxies() if environment is None else environment
    scheme = "https" if parts.scheme in ("wss", "https") else "http"
    chosen = proxies.get(scheme) or proxies.get("all")
    if not chosen:
        return None
    skip = bypass if bypass is not None else (
        urllib.request.proxy_bypass if environment is None else _no_proxy_from(proxies))
    if skip(host):
        return None
    return parse_proxy(chosen)


def _no_proxy_from(proxies: Mapping[str, str]) -> Callable[[str], bool]:
    """``NO_PROXY`` matching for an explicit mapping (``urllib`` only reads the real environment)."""
    entries = [e.strip().lower().lstrip(".") for e in proxies.get("no", "").split(",") if e.strip()]

    def bypass(host: str) -> bool:
        name = host.lower()
        return any(e == "*" or name == e or name.endswith("." + e) for e in entries)

    return bypass


def open_tunnel(sock: socket.socket, proxy: HttpProxy, host: str, port: int) -> None:
    """Ask the proxy on connected ``sock`` for a tunnel to ``host:port``; raises ``ConnectError``.

    Reads the reply one byte at a time so not a byte of the tunnelled stream is consumed.
    """
    sock.sendall(proxy.connect_request(host, port))
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise ConnectError(f"the proxy {proxy.address} closed the connection before answering CONNECT")
        head += byte
        if len(head) > _MAX_REPLY_HEAD:
            raise ConnectError(f"the proxy {proxy.address} sent an oversized reply to CONNECT")
    status_line = bytes(head).split(b"\r\n", 1)[0].decode("latin-1").strip()
    fields = status_line.split(" ", 2)
    status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
    if status // 100 != 2:
        hint = ""
        if status in (401, 407):  # 407 is the standard; some proxies (tinyproxy) say 401
            hint = " (proxy authentication required: put user:password in the proxy URL)" \
                if proxy.username is None else " (the proxy refused these credentials)"
        raise ConnectError(f"the proxy {proxy.address} refused CONNECT {host}:{port}: {status_line!r}{hint}")
