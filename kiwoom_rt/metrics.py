"""Prometheus metrics for a session or a relay (extra ``metrics``: ``prometheus_client``).

::

    from kiwoom_rt.metrics import serve_metrics
    server = serve_metrics(session, port=9108)          # http://127.0.0.1:9108/metrics
    ...
    server.close()

    register_metrics(session, registry, name="desk1")   # into an application's own registry

Everything is read when Prometheus scrapes (``session.stats()`` and ``session.health()``), so
the only work on the reading thread is a clock reading per read batch and, ten times a second at
most, one lag sample. A scrape reads counters only (no per-subscription rows unless
``per_item=True``): it holds the interpreter for well under a millisecond. Every
series has a ``session`` label (the ``name`` given; default ``"default"``); other labels are
bounded: ``type`` (realtime types), ``state``, and on a relay ``consumer`` (its consumers).
Items appear as labels only with ``per_item=True``. No label or value ever holds a token.

Exported (``kiwoom_rt_`` prefix; counters end in ``_total``):

- counters: ``frames``, ``events`` (by ``type``), ``decode_errors``, ``reconnects``,
  ``connections``, ``dropped_events``, ``conflated_events``, ``handovers``, ``pings_echoed``,
  ``reads``, ``bytes_read``, ``late_trades`` (bar feeds' late trades, counted from ``on_error``),
  ``resubscriptions``;
- gauges: ``connected``, ``state`` (one series per state, 1 for the current one),
  ``queue_depth``, ``last_frame_age_seconds``, ``subscriptions``, ``stale_subscriptions``,
  and on a relay consumer ``relay_lag_entries``, ``relay_lag_seconds``; with ``per_item=True``
  ``subscription_age_seconds`` and ``subscription_stale`` by ``item`` and ``type``;
- histogram: ``exchange_lag_seconds`` by ``type``: receive time minus the exchange's time stamp,
  sampled from a read batch's newest event that carries a time, at most ten times a second.
  Kiwoom stamps whole seconds, so a sample reads up to one second high.

A relay (``kiwoom_rt.relay.Relay``) exports its upstream session's metrics plus
``relay_published``, ``relay_frames``, ``relay_lost`` (counters), ``relay_buffered``,
``relay_consumers``, ``relay_redis_up``, and per consumer ``relay_consumer_lag_entries`` and
``relay_consumer_lease_seconds`` (seconds until its lease runs out).
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import prometheus_client
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from ._bars import trade_timestamp
from ._http_endpoint import HttpEndpoint
from ._notices import Notice
from ._state import SessionState
from .errors import LateTradeError

__all__ = ["LAG_BUCKETS", "MetricsServer", "RelayCollector", "SessionCollector", "register_metrics",
           "serve_metrics"]

#: Upper bounds of the exchange-lag histogram, in seconds.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
PREFIX = "kiwoom_rt_"


class LagSampler:
    """Observes a session's queue: one exchange-lag sample per batch (the runtime's only per-batch
    work for metrics), kept as histogram buckets per type."""

    def __init__(self, market: str, every: float = 0.1) -> None:
        self.market = market
        self.every = every  # seconds between samples at most
        self._next = 0.0
        self._lock = threading.Lock()
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}

    def queued_events(self, events: Sequence[Any]) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        for event in reversed(events):
            clock = getattr(event, "time", None)
            received = getattr(event, "received_at", None)
            if clock is None or received is None or not hasattr(clock, "hour"):
                continue
            stamp, _ = trade_timestamp(clock, received, self.market)
            self.add(event.type, received - stamp)
            return

    def queued_notice(self, notice: Notice) -> None:
        pass

    def add(self, type_code: str, lag: float) -> None:
        index = bisect.bisect_left(LAG_BUCKETS, lag)
        with self._lock:
            counts = self._buckets.get(type_code)
            if counts is None:
                counts = self._buckets[type_code] = [0] * (len(LAG_BUCKETS) + 1)
                self._sums[type_code] = 0.0
            counts[index] += 1
            self._sums[type_code] += lag

    def family(self, session_name: str) -> HistogramMetricFamily:
        family = HistogramMetricFamily(PREFIX + "exchange_lag_seconds",
                                       "Receive time minus the exchange's time stamp (whole seconds), one sample "
                                       "per read batch", labels=["session", "type"])
        with self._lock:
            snapshot = {kind: (list(counts), self._sums[kind]) for kind, counts in self._buckets.items()}
        for kind, (counts, total) in sorted(snapshot.items()):
            cumulative, running = [], 0
            for bound, count in zip((*LAG_BUCKETS, math.inf), counts, strict=True):
                running += count
                cumulative.append(("+Inf" if bound == math.inf else repr(bound), running))
            family.add_metric([session_name, kind], cumulative, total)
        return family


def _counter(name: str, text: str, value: float, labels: dict[str, str]) -> CounterMetricFamily:
    family = CounterMetricFamily(PREFIX + name, text, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def _gauge(name: str, text: str, value: float | None, labels: dict[str, str]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(PREFIX + name, text, labels=list(labels))
    family.add_metric(list(labels.values()), math.nan if value is None else value)
    return family


class SessionCollector(Collector):
    """Reads a ``kiwoom_rt.Session`` at every scrape (see the module docstring)."""

    def __init__(self, session: Any, name: str = "default", *, per_item: bool = False, prefix: str = "") -> None:
        self.session = session
        self.name = name
        self.per_item = per_item
        self.prefix = prefix
        self.late_trades = 0
        self.lag = LagSampler(session.market)
        self._unobserve = session.observe(self.lag)
        session.on_error.connect(self._on_error)

    def _on_error(self, sender: Any, error: BaseException | None = None, **_: Any) -> None:
        if isinstance(error, LateTradeError):
            self.late_trades += 1

    def detach(self) -> None:
        """Stop observing the session (the registry keeps answering with the last counts)."""
        self._unobserve()
        self.session.on_error.disconnect(self._on_error)

    def collect(self) -> Iterator[Metric]:
        session = self.session
        stats = session.stats()
        health = session.health() if self.per_item else None  # (rows for every subscription: only if asked)
        labels = {"session": self.name}
        yield from self._counters(stats, labels)
        yield _gauge("connected", "1 while connected and logged in", 1.0 if stats.state == "connected" else 0.0,
                     labels)
        state = GaugeMetricFamily(PREFIX + "state", "The session's state (1 for the current one)",
                                  labels=["session", "state"])
        for value in SessionState:
            state.add_metric([self.name, value.value], 1.0 if stats.state == value.value else 0.0)
        yield state
        yield _gauge("queue_depth", "Events waiting for a receiver", stats.queue_depth, labels)
        frame_age = stats.last_frame_age
        if frame_age is None and stats.last_frame_time is not None and stats.state == "connected":
            frame_age = max(0.0, time.time() - stats.last_frame_time)  # (a relay consumer's view)
        yield _gauge("last_frame_age_seconds", "Seconds since the last frame (NaN when not connected)", frame_age,
                     labels)
        yield _gauge("subscriptions", "Wanted (item, type) subscriptions", stats.subscriptions, labels)
        yield _gauge("stale_subscriptions", "Subscriptions silent longer than stale_after while their market trades",
                     stats.stale, labels)
        lag = getattr(stats, "lag", None)
        if hasattr(stats, "lag_seconds"):
            yield _gauge("relay_lag_entries", "Feed entries this relay consumer has not read yet", lag, labels)
            yield _gauge("relay_lag_seconds", "Seconds between the feed's newest entry and the last one read",
                         stats.lag_seconds, labels)
        if health is not None:
            age = GaugeMetricFamily(PREFIX + "subscription_age_seconds", "Seconds since the subscription's last event",
                                    labels=["session", "item", "type"])
            stale = GaugeMetricFamily(PREFIX + "subscription_stale", "1 while the subscription is stale",
                                      labels=["session", "item", "type"])
            for row in health.subscriptions:
                age.add_metric([self.name, row.item, row.type],
                               math.nan if row.last_event_age is None else row.last_event_age)
                stale.add_metric([self.name, row.item, row.type], 1.0 if row.stale else 0.0)
            yield age
            yield stale
        yield self.lag.family(self.name)

    def _counters(self, stats: Any, labels: dict[str, str]) -> Iterable[Metric]:
        yield _counter("frames", "WebSocket messages received", stats.frames, labels)
        events = CounterMetricFamily(PREFIX + "events", "Events decoded, by realtime type", labels=["session", "type"])
        for kind, count in sorted(stats.events.items()):
            events.add_metric([self.name, kind], count)
        yield events
        yield _counter("decode_errors", "Frames or entries that could not be used", stats.decode_errors, labels)
        yield _counter("reconnects", "Reconnects", stats.reconnects, labels)
        yield _counter("connections", "Connections opened", stats.connections, labels)
        yield _counter("dropped_events", "Events dropped under overflow=drop_oldest", stats.dropped, labels)
        yield _counter("conflated_events", "Events a conflating dispatcher superseded", stats.conflated, labels)
        yield _counter("handovers", "Times the standby thread took over reading", stats.handovers, labels)
        yield _counter("pings_echoed", "PINGs answered", stats.pings_echoed, labels)
        yield _counter("reads", "Socket reads that returned data", stats.reads, labels)
        yield _counter("bytes_read", "Bytes those reads returned", stats.bytes_read, labels)
        yield _counter("late_trades", "Trades that came after their bar was final", self.late_trades, labels)
        yield _counter("resubscriptions", "REGs re-sent for stale subscriptions", stats.resubscriptions, labels)


class RelayCollector(Collector):
    """A relay's own numbers, per consumer included (its upstream session has a
    ``SessionCollector`` of its own)."""

    def __init__(self, relay: Any, name: str = "default") -> None:
        self.relay = relay
        self.name = name

    def collect(self) -> Iterator[Metric]:
        relay = self.relay
        stats = relay.stats()
        labels = {"session": self.name}
        yield _counter("relay_published", "Feed entries Redis accepted", stats.published, labels)
        yield _counter("relay_frames", "REAL frames received from upstream", stats.frames, labels)
        yield _counter("relay_lost", "Entries lost while Redis was away", stats.lost, labels)
        yield _gauge("relay_buffered", "Entries waiting for Redis", stats.buffered, labels)
        yield _gauge("relay_consumers", "Consumers holding a lease", stats.consumers, labels)
        yield _gauge("relay_redis_up", "1 while Redis accepts the feed", 1.0 if stats.redis_up else 0.0, labels)
        lag = GaugeMetricFamily(PREFIX + "relay_consumer_lag_entries", "Feed entries a consumer has not read yet",
                                labels=["session", "consumer"])
        lease = GaugeMetricFamily(PREFIX + "relay_consumer_lease_seconds", "Seconds until a consumer's lease runs out",
                                  labels=["session", "consumer"])
        now = time.time()
        lags = relay.consumer_lags()
        for consumer, expires in sorted(relay.leases().items()):
            lease.add_metric([self.name, consumer], max(0.0, expires - now))
            value = lags.get(consumer)
            lag.add_metric([self.name, consumer], math.nan if value is None else value)
        yield lag
        yield lease


class MetricsServer:
    """The HTTP endpoint ``serve_metrics`` started: ``url``, ``port``, ``close()``.

    One daemon thread (``kiwoom-rt-metrics``) that sleeps until a scraper writes and answers with
    one read and one write over a kept-alive connection (``_http_endpoint``): a scrape costs the
    reading thread as little interpreter time as a scrape can. Plain (uncompressed) responses."""

    def __init__(self, registry: CollectorRegistry, port: int, addr: str,
                 collectors: Sequence[SessionCollector]) -> None:
        self.registry = registry
        self.collectors = collectors
        self._endpoint = HttpEndpoint(self.render, addr, port, name="kiwoom-rt-metrics")
        self.addr = addr
        self.port: int = self._endpoint.port

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition a scrape gets: ``(body, content_type)``, Prometheus text or OpenMetrics
        as ``accept`` asks (``prometheus_client``'s encoders)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    @property
    def url(self) -> str:
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving (idempotent) and stop observing the session."""
        self._endpoint.close()
        for collector in self.collectors:
            collector.detach()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def register_metrics(target: Any, registry: CollectorRegistry | None = None, *, name: str = "default",
                     per_item: bool = False) -> list[SessionCollector]:
    """Register the metrics of ``target`` (a session, or a ``Relay``: its upstream session's and its
    own) in ``registry`` (default: ``prometheus_client.REGISTRY``). Returns the session collectors
    (``detach()`` stops their observing)."""
    registry = prometheus_client.REGISTRY if registry is None else registry
    session = getattr(target, "session", None) if hasattr(target, "book") else None
    collector = SessionCollector(session if session is not None else target, name, per_item=per_item)
    registry.register(collector)
    if session is not None:
        registry.register(RelayCollector(target, name))
    return [collector]


def serve_metrics(target: Any, port: int = 9108, addr: str = "127.0.0.1", *, name: str = "default",
                  per_item: bool = False) -> MetricsServer:
    """Serve ``target``'s metrics (a session or a ``Relay``) over HTTP at ``http://addr:port/metrics``
    from a registry of their own (``port=0`` picks a free port: see ``server.port``). Loopback by
    default: pass ``addr="0.0.0.0"`` deliberately to let other hosts scrape."""
    registry = CollectorRegistry(auto_describe=False)
    collectors = register_metrics(target, registry, name=name, per_item=per_item)
    return MetricsServer(registry, port, addr, collectors)
