"""When to reconnect (pure): exponential backoff with jitter, a cap, and an optional try limit."""

from __future__ import annotations

from collections.abc import Callable

import attrs

__all__ = ["ReconnectPolicy"]


@attrs.frozen
class ReconnectPolicy:
    """How a session retries after losing its connection.

    The first retry comes after ``first_delay`` (a dropped connection is usually back at once),
    then ``base_delay * multiplier ** (n - 1)`` capped at ``max_delay``, each reduced by up to
    ``jitter`` (a fraction) so that many clients do not reconnect in step. ``max_attempts``
    (None: forever) bounds consecutive failed attempts; the count starts again once a connection
    has stayed logged in for ``healthy_after`` seconds.
    """

    first_delay: float = 0.1
    base_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.5
    max_attempts: int | None = None
    healthy_after: float = 10.0

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        if min(self.first_delay, self.base_delay, self.max_delay) < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and multiplier >= 1")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError("max_attempts must be >= 0 or None")

    def delay(self, attempt: int, random: Callable[[], float]) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        if attempt <= 0:
            nominal = self.first_delay
        else:
            nominal = min(self.max_delay, self.base_delay * self.multiplier ** min(attempt - 1, 64))
        return nominal * (1.0 - self.jitter * random())

    def exhausted(self, attempt: int) -> bool:
        """True when retry number ``attempt`` is beyond ``max_attempts``."""
        return self.max_attempts is not None and attempt >= self.max_attempts
