"""Keeping access tokens out of every log line.

Our own code never formats a token. But ``websocket.enableTrace(True)`` makes websocket-client
log every frame it sends, LOGIN included. ``TokenRedactor`` sits on the ``websocket`` and
``kiwoom_rt`` loggers and replaces every token a live session uses with ``***``.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit

__all__ = ["mask", "redact", "redact_url", "register_secret", "unregister_secret"]

_lock = threading.Lock()
_secrets: dict[str, int] = {}  # secret -> number of users
_MIN_SECRET_CHARS = 6  # never redact trivially short strings out of every message


def mask(secret: str) -> str:
    """A safe stand-in for a secret in reprs: its length only."""
    return f"<{len(secret)} chars hidden>"


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    with _lock:
        secrets = list(_secrets)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def redact_url(url: str) -> str:
    """``url`` with its password (``scheme://user:password@host``) masked, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def register_secret(secret: str) -> None:
    if len(secret) < _MIN_SECRET_CHARS:
        return
    with _lock:
        _secrets[secret] = _secrets.get(secret, 0) + 1
    _install()


def unregister_secret(secret: str) -> None:
    with _lock:
        count = _secrets.get(secret, 0) - 1
        if count > 0:
            _secrets[secret] = count
        else:
            _secrets.pop(secret, None)


class TokenRedactor(logging.Filter):
    """Rewrites a log record whose message contains a registered secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_installed = False


def _install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    redactor = TokenRedactor()
    for name in ("websocket", "kiwoom_rt"):
        logging.getLogger(name).addFilter(redactor)
