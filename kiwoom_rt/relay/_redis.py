"""What the relay and its consumers share about Redis: clients, the errors that mean "retry",
the pacing of retries, and stream ids."""

from __future__ import annotations

import threading
from typing import Any

import redis

__all__ = ["ANY_REDIS_ERROR", "REDIS_ERRORS", "Backoff", "client_for", "id_tuple"]

#: Redis is unreachable (retried); ``ANY_REDIS_ERROR`` adds refusals such as a wrong password.
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)
ANY_REDIS_ERROR: tuple[type[BaseException], ...] = (*REDIS_ERRORS, redis.RedisError)


def client_for(url: str, timeout: float) -> Any:
    """A client for ``redis://`` or ``rediss://`` (TLS verified by default) URLs, passwords
    included. (redis-py's own annotations are too loose to help, hence ``Any``.)"""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                health_check_interval=0, decode_responses=False)


class Backoff:
    """Retry pacing for Redis outages: 50 ms doubling to 1 s."""

    def __init__(self) -> None:
        self.delay = 0.05

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.delay)
        self.delay = min(1.0, self.delay * 2)

    def reset(self) -> None:
        self.delay = 0.05


def id_tuple(entry_id: bytes | str) -> tuple[int, int]:
    """A stream entry id as (milliseconds, sequence), for comparing."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)
