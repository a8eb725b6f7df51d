"""Small URL facts shared by the WebSocket runtime and the token client (no I/O)."""

from __future__ import annotations

__all__ = ["LOOPBACK_HOSTS", "is_loopback"]

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """True for a loopback host name or address (127.0.0.0/8, ::1, localhost)."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")
