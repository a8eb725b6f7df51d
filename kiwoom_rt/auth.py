"""Access tokens from Kiwoom's REST API (au10001 issue, au10002 revoke), with the standard library.

    provider = TokenProvider()                       # KIWOOM_APPKEY / KIWOOM_SECRETKEY
    session = RealtimeSession(provider, url=MOCK_URL)  # a fresh token before every connect

TLS is verified (the default SSL context); every request has a timeout. Credentials and tokens
never appear in logs, reprs or exception messages.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import attrs

from ._proxy import choose_proxy
from ._redact import mask, register_secret
from .errors import AuthError, ConnectError

__all__ = ["KST", "MOCK_REST_URL", "PRODUCTION_REST_URL", "Token", "TokenProvider", "credentials_from_env",
           "issue_token", "revoke_token"]

logger = logging.getLogger("kiwoom_rt.auth")

PRODUCTION_REST_URL = "https://api.kiwoom.com"
MOCK_REST_URL = "https://mockapi.kiwoom.com"
KST = dt.timezone(dt.timedelta(hours=9), "KST")


@attrs.frozen(repr=False)
class Token:
    """An access token and when it expires (an aware datetime in KST)."""

    token: str
    token_type: str
    expires_at: dt.datetime

    def __repr__(self) -> str:
        return f"Token({mask(self.token)}, {self.token_type}, expires {self.expires_at.isoformat()})"

    def expires_in(self, now: float | None = None) -> float:
        """Seconds until expiry (negative once expired)."""
        return self.expires_at.timestamp() - (time.time() if now is None else now)


def credentials_from_env(appkey: str | None = None, secretkey: str | None = None) -> tuple[str, str]:
    """The app key and secret key: the arguments, else KIWOOM_APPKEY and KIWOOM_SECRETKEY."""
    appkey = appkey or os.environ.get("KIWOOM_APPKEY", "").strip()
    secretkey = secretkey or os.environ.get("KIWOOM_SECRETKEY", "").strip()
    if not appkey or not secretkey:
        raise ValueError("missing credentials: pass appkey and secretkey, or set KIWOOM_APPKEY and KIWOOM_SECRETKEY")
    return appkey, secretkey


def _base(mock: bool, base_url: str | None) -> str:
    return (base_url or (MOCK_REST_URL if mock else PRODUCTION_REST_URL)).rstrip("/")


def _post(url: str, body: dict[str, str], timeout: float, proxy: str | bool | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json;charset=UTF-8"})
    handlers: list[Any] = [urllib.request.HTTPSHandler(context=ssl.create_default_context())]
    # The WebSocket's rule (explicit proxy always, else the environment's minus NO_PROXY and
    # loopback), applied here: urllib's own ProxyHandler would skip an explicit proxy for NO_PROXY.
    handlers.append(urllib.request.ProxyHandler({}))
    chosen = choose_proxy(url, proxy)
    if chosen is not None:
        request.set_proxy(chosen.address, "http")  # https: a CONNECT tunnel, TLS verified end to end
        authorization = chosen.authorization()
        if authorization is not None:
            request.add_unredirected_header("Proxy-Authorization", authorization)
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            reply = json.loads(raw)
        except ValueError:
            raise AuthError(exc.code, f"HTTP {exc.code} {exc.reason}") from None
        code = reply.get("return_code", exc.code) if isinstance(reply, dict) else exc.code
        msg = reply.get("return_msg", exc.reason) if isinstance(reply, dict) else str(exc.reason)
        raise AuthError(code if isinstance(code, int) else exc.code, str(msg)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectError(f"cannot reach {urlsplit(url).netloc}: {reason}") from None
    try:
        reply = json.loads(raw)
    except ValueError:
        raise AuthError(None, "the token endpoint answered with something that is not JSON") from None
    if not isinstance(reply, dict):
        raise AuthError(None, "the token endpoint answered with an unexpected shape")
    return reply


def _check(reply: dict[str, Any]) -> None:
    code = reply.get("return_code", 0)
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        code = int(code)
    if code != 0:
        raise AuthError(code if isinstance(code, int) else None, str(reply.get("return_msg", "")))


def issue_token(appkey: str | None = None, secretkey: str | None = None, *, mock: bool = False,
                base_url: str | None = None, timeout: float = 10.0, proxy: str | bool | None = None) -> Token:
    """Issue an access token (au10001). Raises ``AuthError`` on refusal, ``ConnectError`` if unreachable.

    ``proxy`` follows ``RealtimeSession``'s rule: a URL is always used, False never, None means
    the environment's (``HTTPS_PROXY``, minus ``NO_PROXY`` and loopback).
    """
    appkey, secretkey = credentials_from_env(appkey, secretkey)
    reply = _post(f"{_base(mock, base_url)}/oauth2/token",
                  {"grant_type": "client_credentials", "appkey": appkey, "secretkey": secretkey}, timeout, proxy)
    _check(reply)
    token, expires = reply.get("token"), reply.get("expires_dt")
    if not isinstance(token, str) or not token or not isinstance(expires, str):
        raise AuthError(None, "the token reply lacks token or expires_dt")
    try:
        expires_at = dt.datetime.strptime(expires, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError:
        raise AuthError(None, f"unreadable expires_dt {expires!r}") from None
    register_secret(token)
    logger.info("issued a token expiring %s", expires_at.isoformat())
    return Token(token, str(reply.get("token_type", "bearer")), expires_at)


def revoke_token(token: str | Token, appkey: str | None = None, secretkey: str | None = None, *,
                 mock: bool = False, base_url: str | None = None, timeout: float = 10.0,
                 proxy: str | bool | None = None) -> None:
    """Revoke an access token (au10002); ``proxy`` as for ``issue_token``."""
    appkey, secretkey = credentials_from_env(appkey, secretkey)
    value = token.token if isinstance(token, Token) else token
    reply = _post(f"{_base(mock, base_url)}/oauth2/revoke",
                  {"appkey": appkey, "secretkey": secretkey, "token": value}, timeout, proxy)
    _check(reply)
    logger.info("revoked a token")


class TokenProvider:
    """A thread-safe token source for ``RealtimeSession(token=provider)``.

    Caches the token, issues a new one ``renew_margin`` seconds before it expires, and after the
    server refused it (the session calls ``invalidate()``). Credentials come from the arguments
    or from KIWOOM_APPKEY / KIWOOM_SECRETKEY; ``proxy`` as for ``issue_token``.
    """

    def __init__(self, appkey: str | None = None, secretkey: str | None = None, *, mock: bool = False,
                 base_url: str | None = None, renew_margin: float = 600.0, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time, proxy: str | bool | None = None) -> None:
        self._appkey, self._secretkey = credentials_from_env(appkey, secretkey)
        self.mock = mock
        self.base_url = base_url
        self.renew_margin = renew_margin
        self.timeout = timeout
        self.proxy = proxy
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None
        self.issued = 0

    def __repr__(self) -> str:
        where = self.base_url or ("mock" if self.mock else "production")
        return f"<TokenProvider {where} appkey={mask(self._appkey)}>"

    def __call__(self) -> str:
        """The current token, issuing a new one when none is cached or it expires soon."""
        with self._lock:
            token = self._token
            if token is None or token.expires_in(self._clock()) <= self.renew_margin:
                token = self._token = issue_token(self._appkey, self._secretkey, mock=self.mock,
                                                  base_url=self.base_url, timeout=self.timeout, proxy=self.proxy)
                self.issued += 1
            return token.token

    @property
    def token(self) -> Token | None:
        """The cached token, if any."""
        return self._token

    def invalidate(self) -> None:
        """Forget the cached token: the next call issues a new one (after an auth refusal)."""
        with self._lock:
            self._token = None

    def revoke(self) -> None:
        """Revoke the cached token, if any, and forget it."""
        with self._lock:
            token, self._token = self._token, None
        if token is not None:
            revoke_token(token, self._appkey, self._secretkey, mock=self.mock, base_url=self.base_url,
                         timeout=self.timeout, proxy=self.proxy)
