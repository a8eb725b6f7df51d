"""The simulator's token store: what its REST endpoints (au10001 ``/oauth2/token``, au10002
``/oauth2/revoke``, served by ``sim/_token_endpoint.py``) answer, and which tokens LOGIN accepts.

Request and reply shapes follow Kiwoom's published examples: HTTP 200 in every case, with a
non-zero ``return_code`` and a message for a refusal. Sans-I/O: the time and new tokens come
from the callables the server passes in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .market import KST

__all__ = ["DEFAULT_APPKEY", "DEFAULT_SECRETKEY", "DEFAULT_TOKEN", "TokenStore"]

DEFAULT_TOKEN = "sim-token"
DEFAULT_APPKEY = "sim-appkey"
DEFAULT_SECRETKEY = "sim-secretkey"

CREDENTIALS_REFUSED = "인증에 실패했습니다[8001:App Key와 Secret Key 검증에 실패했습니다]"
DONE = "정상적으로 처리되었습니다"


class TokenStore:
    """Valid tokens (each belonging to an app key), their expiry, and the accepted credentials.
    ``clock()`` is the current time (epoch seconds), ``new_token()`` a fresh unguessable token."""

    def __init__(self, tokens: Mapping[str, str] | Iterable[str], credentials: Mapping[str, str],
                 *, clock: Callable[[], float], new_token: Callable[[], str], expiry: float = 86_400.0) -> None:
        self._clock = clock
        self._new_token = new_token
        if not isinstance(tokens, Mapping):
            tokens = dict.fromkeys(tokens, DEFAULT_APPKEY)
        self._appkeys: dict[str, str] = dict(tokens)
        self._expires_at: dict[str, float] = {}
        self.credentials = dict(credentials)
        self.expiry = expiry

    def add(self, token: str, appkey: str = DEFAULT_APPKEY) -> None:
        self._appkeys[token] = appkey

    def remove(self, token: str) -> None:
        self._appkeys.pop(token, None)
        self._expires_at.pop(token, None)

    def appkey_for(self, token: Any) -> str | None:
        """The app key a valid, unexpired token belongs to; None for anything else."""
        if not isinstance(token, str):
            return None
        expires = self._expires_at.get(token)
        if expires is not None and expires < self._clock():
            return None
        return self._appkeys.get(token)

    def _check_credentials(self, payload: Any) -> str | None:
        if not isinstance(payload, dict):
            return None
        appkey, secretkey = payload.get("appkey"), payload.get("secretkey")
        if isinstance(appkey, str) and self.credentials.get(appkey) == secretkey:
            return appkey
        return None

    def issue(self, payload: Any) -> dict[str, Any]:
        """The reply to ``POST /oauth2/token``."""
        appkey = self._check_credentials(payload)
        if appkey is None or payload.get("grant_type") != "client_credentials":
            return {"return_code": 1, "return_msg": CREDENTIALS_REFUSED}
        now = self._clock()
        token = next((t for t, k in self._appkeys.items()
                      if k == appkey and self._expires_at.get(t, 0) > now), None)
        if token is None:  # re-issuing while valid returns the same token, as the real one does
            token = self._new_token()
            self._appkeys[token] = appkey
            self._expires_at[token] = now + self.expiry
        expires = dt.datetime.fromtimestamp(self._expires_at[token], KST)
        return {"expires_dt": expires.strftime("%Y%m%d%H%M%S"), "token_type": "bearer", "token": token,
                "return_code": 0, "return_msg": DONE}

    def revoke(self, payload: Any) -> dict[str, Any]:
        """The reply to ``POST /oauth2/revoke``."""
        appkey = self._check_credentials(payload)
        token = payload.get("token") if isinstance(payload, dict) else None
        if appkey is None or not isinstance(token, str):
            return {"return_code": 1, "return_msg": CREDENTIALS_REFUSED}
        if self._appkeys.get(token) == appkey:
            self.remove(token)
        return {"return_code": 0, "return_msg": DONE}
