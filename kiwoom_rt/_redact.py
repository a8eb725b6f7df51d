"""Keeping access tokens out of every log line.

Our own code never formats a token. A token is redacted whatever characters it holds: its
JSON-escaped and ``repr`` spellings are redacted too. But ``websocket.enableTrace(True)`` makes websocket-client
log every frame it sends, LOGIN included. ``TokenRedactor`` sits on the ``websocket`` and
``kiwoom_rt`` loggers and replaces every token a live session uses with ``***``.
"""

from __future__ import annotations

import json
import logging
import threading
from urllib.parse import urlsplit

__all__ = ["mask", "redact", "redact_url", "register_secret", "unregister_secret"]

_lock = threading.Lock()
_secrets: dict[str, int] = {}  # secret -> number of users
_forms: list[str] = []  # every spelling of every secret, longest first
_MIN_SECRET_CHARS = 6  # never redact trivially short strings out of every message


def mask(secret: str) -> str:
    """A safe stand-in for a secret in reprs: its length only."""
    return f"<{len(secret)} chars hidden>"


def _spellings(secret: str) -> set[str]:
    """The ways a secret can appear in a message: as it is; JSON-escaped (a LOGIN frame as
    websocket-client's trace shows it), with and without ASCII escapes; as Python's ``repr`` of the
    text and of its UTF-8 bytes (a frame's raw data in a trace or an exception)."""
    forms = {secret}
    for ensure_ascii in (False, True):
        escaped = json.dumps(secret, ensure_ascii=ensure_ascii)[1:-1]
        forms.add(escaped)
        forms.add(repr(escaped.encode("utf-8"))[2:-1])
        forms.add(repr(escaped)[1:-1])
    forms.add(repr(secret)[1:-1])
    forms.add(repr(secret.encode("utf-8", "surrogatepass"))[2:-1])
    return {form for form in forms if len(form) >= _MIN_SECRET_CHARS}


def redact(text: str) -> str:
    """``text`` with every registered secret, in any of its spellings, replaced by ``***``."""
    forms = _forms
    for form in forms:
        if form in text:
            text = text.replace(form, "***")
    return text


def _rebuild() -> None:
    """(lock held)"""
    global _forms
    _forms = sorted({form for secret in _secrets for form in _spellings(secret)}, key=len, reverse=True)


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
        _rebuild()
    _install()


def unregister_secret(secret: str) -> None:
    with _lock:
        count = _secrets.get(secret, 0) - 1
        if count > 0:
            _secrets[secret] = count
        else:
            _secrets.pop(secret, None)
        _rebuild()


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
