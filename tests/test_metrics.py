"""Prometheus metrics scraped over HTTP from a real ``serve_metrics`` endpoint, parsed with
prometheus_client's own parser, and compared with ``stats()``."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kiwoom_rt import RealtimeSession
from kiwoom_rt.bars import BarFeed
from kiwoom_rt.metrics import register_metrics, serve_metrics
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

from .helpers import Collector, wait_until
from .test_bars import trade

SECRET_TOKEN = "metrics-test-token-7f3a9c1e5b"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from one HTTP scrape (no proxy: loopback)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        text = response.read().decode()
    assert SECRET_TOKEN not in text
    assert DEFAULT_TOKEN not in text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    labels.setdefault("session", "desk")
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(rate=50, ping_interval=0.3, condition_churn=0.0, tokens=[SECRET_TOKEN, DEFAULT_TOKEN]) as server:
        yield server


def test_scraped_metrics_match_stats(no_thread_leak: None, sim: SimServer) -> None:
    with RealtimeSession(SECRET_TOKEN, url=sim.url) as session, \
            serve_metrics(session, port=0, name="desk") as server:
        assert server.url.startswith("http://127.0.0.1:")
        session.subscribe(["005930", "000660"], "0E").wait(5)
        wait_until(lambda: session.stats().events.get("0E", 0) >= 20 and session.stats().pings_echoed >= 2)
        sim.set_rate(0.0)
        sim.go_silent()  # no PINGs either: the counters hold still
        wait_until(lambda: session.stats().queue_depth == 0)
        stable = session.stats()
        wait_until(lambda: session.stats().frames == stable.frames and scrape(server.url) is not None)
        samples = scrape(server.url)
        stats = session.stats()
        assert value(samples, "kiwoom_rt_frames_total") == stats.frames
        assert value(samples, "kiwoom_rt_events_total", type="0E") == stats.events["0E"]
        assert value(samples, "kiwoom_rt_pings_echoed_total") == stats.pings_echoed >= 2
        assert value(samples, "kiwoom_rt_reconnects_total") == stats.reconnects == 0
        assert value(samples, "kiwoom_rt_decode_errors_total") == stats.decode_errors
        assert value(samples, "kiwoom_rt_dropped_events_total") == stats.dropped == 0
        assert value(samples, "kiwoom_rt_conflated_events_total") == stats.conflated == 0
        assert value(samples, "kiwoom_rt_handovers_total") == stats.handovers
        assert value(samples, "kiwoom_rt_reads_total") == stats.reads > 0
        assert value(samples, "kiwoom_rt_resubscriptions_total") == 0
        assert value(samples, "kiwoom_rt_queue_depth") == stats.queue_depth
        assert value(samples, "kiwoom_rt_connected") == 1.0
        assert value(samples, "kiwoom_rt_state", state="connected") == 1.0
        assert value(samples, "kiwoom_rt_state", state="reconnecting") == 0.0
        assert value(samples, "kiwoom_rt_subscriptions") == 2
        assert value(samples, "kiwoom_rt_stale_subscriptions") == 0
        assert 0 <= value(samples, "kiwoom_rt_last_frame_age_seconds") < 60
        # the lag histogram: one sample per read batch of 0E (the simulator stamps its own clock)
        batches = value(samples, "kiwoom_rt_exchange_lag_seconds_count", type="0E")
        assert 1 <= batches <= stats.events["0E"]
        assert value(samples, "kiwoom_rt_exchange_lag_seconds_bucket", type="0E", le="+Inf") == batches
        # bounded labels: no item anywhere unless per_item=True
        assert not any(dict(labels).get("item") for _, labels in samples)


def test_per_item_series_and_a_registry_of_the_applications_own(no_thread_leak: None, sim: SimServer) -> None:
    registry = CollectorRegistry()
    with RealtimeSession(SECRET_TOKEN, url=sim.url) as session:
        [collector] = register_metrics(session, registry, name="desk", per_item=True)
        try:
            session.subscribe(["005930"], "0E").wait(5)
            wait_until(lambda: session.stats().events.get("0E", 0) >= 3)
            text = generate_latest(registry).decode()
            assert SECRET_TOKEN not in text
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for family in text_string_to_metric_families(text) for s in family.samples}
            assert value(samples, "kiwoom_rt_subscription_stale", item="005930", type="0E") == 0.0
            assert value(samples, "kiwoom_rt_subscription_age_seconds", item="005930", type="0E") < 5
        finally:
            collector.detach()


def test_late_trades_of_bar_feeds_are_counted(no_thread_leak: None) -> None:
    registry = CollectorRegistry()
    errors = Collector()
    with SimServer(rate=0.0, ping_interval=10.0, condition_churn=0.0) as quiet, \
            RealtimeSession(DEFAULT_TOKEN, url=quiet.url) as session:
        session.on_error.connect(errors)
        [collector] = register_metrics(session, registry, name="desk")
        with BarFeed(session, "10s", grace=0.5):
            session.subscribe(["005930"], ["0B"]).wait(5)
            for hhmmss, price, volume in [("090001", 100, 5), ("090011", 101, 7), ("090008", 50, 9)]:
                quiet.push(trade("005930", hhmmss, price, volume))
            errors.wait_for(1)
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(generate_latest(registry).decode())
                   for s in family.samples}
        assert value(samples, "kiwoom_rt_late_trades_total") == 1
        collector.detach()


def test_a_relays_metrics_show_each_consumer_lag_and_lease(no_thread_leak: None, sim: SimServer,
                                                          redis_server: Any) -> None:
    pytest.importorskip("redis")
    from kiwoom_rt.relay import Relay, RelaySession

    with Relay.for_url(redis_server.url, SECRET_TOKEN, url=sim.url, heartbeat=0.2, lease=30.0) as relay, \
            serve_metrics(relay, port=0, name="desk") as server, \
            RelaySession(redis_server.url, name="reader-1") as consumer:
        consumer.subscribe(["005930"], "0E").wait(10)
        wait_until(lambda: consumer.stats().events.get("0E", 0) >= 3, timeout=10)
        samples = scrape(server.url)
        assert 0 < value(samples, "kiwoom_rt_relay_consumer_lease_seconds", consumer="reader-1") <= 30
        assert value(samples, "kiwoom_rt_relay_consumer_lag_entries", consumer="reader-1") >= 0
        assert value(samples, "kiwoom_rt_relay_consumers") == 1
        assert value(samples, "kiwoom_rt_relay_frames_total") == relay.stats().frames or \
            value(samples, "kiwoom_rt_relay_frames_total") <= relay.stats().frames
        assert value(samples, "kiwoom_rt_connected") == 1.0
        with serve_metrics(consumer, port=0, name="desk") as own:
            consumer_samples = scrape(own.url)
            assert value(consumer_samples, "kiwoom_rt_relay_lag_entries") >= 0
            assert value(consumer_samples, "kiwoom_rt_subscriptions") == 1
