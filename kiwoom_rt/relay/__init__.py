"""One Kiwoom feed shared by many processes and machines, through Redis Streams (extra ``relay``).

Kiwoom allows one realtime session per app key. A ``Relay`` owns that session. It publishes
every REAL frame as received, with its receive time, to a Redis stream, together with the
session's lifecycle notices. Any number of ``RelaySession`` consumers read that stream, on this
machine or others, through the same surface as a live session (``kiwoom_rt.Session``)::

    kiwoom-rt relay --redis redis://127.0.0.1:6379/0 --sim          # or --mock / --prod

    session = RelaySession("redis://127.0.0.1:6379/0", name="strategy-a", start_from="last")
    session.on_0e.connect(handler)                  # unchanged from RealtimeSession code
    session.start()
    session.subscribe(["005930"]).wait(5)           # the relay REGs it, once for everyone

Requests travel over a control stream. The relay merges them with reference counts per
consumer: it sends REG when the first consumer wants a pair and REMOVE when the last one leaves.
Consumers hold leases, so a crashed consumer's items go once its lease expires. Each consumer
reads through its own Redis consumer group: a named consumer that restarts with
``start_from="last"`` resumes after the last entry it processed. docs/relay.md has the details,
including how to run a relay and its consumers on different machines safely.

The package's rooms: ``_wire`` (key names, feed entries, control messages) and ``_book`` (who
wants what) are sans-I/O; ``publisher`` is the relay, ``consumer`` the consumer; ``_outbox`` and
``_redis`` serve them. ``redis`` (redis-py) is imported by this package only; ``import
kiwoom_rt`` never imports it.
"""

from __future__ import annotations

try:
    import redis  # noqa: F401  (checked here, so a missing extra says what to install)
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("kiwoom_rt.relay needs redis-py: pip install 'kiwoom-rt[relay]'") from exc

from .consumer import RELAY_KINDS, RelayConsumerStats, RelayGap, RelaySession
from .publisher import DEFAULT_MAXLEN, Relay, RelayStats

__all__ = ["DEFAULT_MAXLEN", "RELAY_KINDS", "Relay", "RelayConsumerStats", "RelayGap", "RelaySession", "RelayStats"]
