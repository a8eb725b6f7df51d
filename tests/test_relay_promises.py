"""The relay's promises, tried the way users start things: relay and consumers at the same
moment, consumers that hear only what they asked for, and everything stopped in any order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytest.importorskip("redis")

from kiwoom_rt.relay import Relay, RelaySession
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

from .helpers import Collector, RedisServer, wait_until
from .test_session import quote_frame


@pytest.fixture
def quiet_sim() -> Iterator[SimServer]:
    with SimServer(rate=0.0, ping_interval=10.0, condition_churn=0.0) as sim:
        yield sim


def relay_for(sim: SimServer, redis: RedisServer, prefix: str) -> Relay:
    return Relay.for_url(redis.url, DEFAULT_TOKEN, url=sim.url, prefix=prefix, heartbeat=0.2)


def test_relay_and_consumers_started_at_the_same_moment_acknowledge_every_request(
        quiet_sim: SimServer, redis_server: RedisServer, no_thread_leak: None) -> None:
    for attempt in range(20):
        prefix = f"together-{attempt}"
        relay = relay_for(quiet_sim, redis_server, prefix)
        consumers = [RelaySession(redis_server.url, prefix=prefix) for _ in range(2)]
        start = threading.Barrier(3)

        def run_relay(relay: Relay, start: threading.Barrier) -> None:
            start.wait(5)
            relay.start()

        def run_consumer(consumer: RelaySession, items: list[str], start: threading.Barrier) -> float:
            start.wait(5)
            consumer.start()
            handle = consumer.subscribe(items)
            handle.wait(15)  # raises TimeoutError if the request was lost
            return time.monotonic()

        try:
            with ThreadPoolExecutor(3) as pool:
                started = pool.submit(run_relay, relay, start)
                acked = [pool.submit(run_consumer, consumers[0], ["005930"], start),
                         pool.submit(run_consumer, consumers[1], ["005930", "000660"], start)]
                started.result(15)
                relay_up = time.monotonic()
                for future in acked:
                    assert future.result(20) - relay_up < 1.5, f"attempt {attempt}: acknowledged late"
        finally:
            for consumer in consumers:
                consumer.close()
            relay.close()


def test_a_request_made_before_the_relay_exists_is_acknowledged_once_it_is_up(
        quiet_sim: SimServer, redis_server: RedisServer, no_thread_leak: None) -> None:
    consumer = RelaySession(redis_server.url, prefix="early", lease=30.0).start()
    relay = relay_for(quiet_sim, redis_server, "early")
    try:
        handle = consumer.subscribe(["005930"])
        watch = consumer.watch_condition("4")
        with pytest.raises(TimeoutError):
            handle.wait(0.5)  # nobody serves it yet
        relay.start()
        relay_up = time.monotonic()
        handle.wait(5)
        watch.wait(5)
        assert time.monotonic() - relay_up < 1.0  # within a second, no lease period in between
    finally:
        consumer.close()
        relay.close()


def test_a_consumer_hears_only_what_it_asked_for_unless_it_asks_for_everything(
        quiet_sim: SimServer, redis_server: RedisServer, no_thread_leak: None) -> None:
    relay = relay_for(quiet_sim, redis_server, "mine").start()
    a = RelaySession(redis_server.url, prefix="mine").start()
    b = RelaySession(redis_server.url, prefix="mine").start()
    everything = RelaySession(redis_server.url, prefix="mine", receive="all").start()
    try:
        heard: dict[str, Collector] = {}
        hits: dict[str, Collector] = {}
        for name, consumer in (("a", a), ("b", b), ("all", everything)):
            heard[name], hits[name] = Collector(), Collector()
            consumer.on_0e.connect(heard[name])
            consumer.on_condition.connect(hits[name])
        a.subscribe(["005930"]).wait(5)
        b.subscribe(["005930", "000660"]).wait(5)
        a.watch_condition("4").wait(5)
        b.watch_condition("1").wait(5)
        quiet_sim.push(quote_frame("005930", ask="1"))
        quiet_sim.push(quote_frame("000660", ask="2"))
        quiet_sim.condition_hit("1", "035420")
        quiet_sim.condition_hit("4", "005380")
        quiet_sim.push(quote_frame("005930", ask="3"))
        heard["a"].wait_for(2)
        heard["b"].wait_for(3)
        heard["all"].wait_for(3)
        hits["a"].wait_for(1)
        hits["b"].wait_for(1)
        hits["all"].wait_for(2)
        assert [(e.item, e.ask_total) for e in heard["a"].events] == [("005930", 1), ("005930", 3)]
        assert [e.item for e in heard["b"].events] == ["005930", "000660", "005930"]
        assert [e.item for e in heard["all"].events] == ["005930", "000660", "005930"]
        assert [e.seq for e in hits["a"].events] == ["4"]
        assert [e.seq for e in hits["b"].events] == ["1"]
        assert sorted(e.seq for e in hits["all"].events) == ["1", "4"]
        assert a.stats().events == {"0E": 2, "02": 1}  # what it delivered
    finally:
        for consumer in (a, b, everything):
            consumer.close()
        relay.close()


@pytest.mark.parametrize("order", ["consumers first", "relay first", "together"])
def test_consumers_leaving_while_the_relay_shuts_down_kill_no_thread(
        order: str, quiet_sim: SimServer, redis_server: RedisServer, no_thread_leak: None) -> None:
    died: list[Any] = []
    previous = threading.excepthook
    threading.excepthook = died.append
    relay = relay_for(quiet_sim, redis_server, f"leave-{order}").start()
    consumers = [RelaySession(redis_server.url, prefix=f"leave-{order}").start() for _ in range(3)]
    try:
        for index, consumer in enumerate(consumers):
            consumer.subscribe([f"00{index}930"]).wait(5)
            consumer.watch_condition(("0", "1", "4")[index]).wait(5)
        if order == "consumers first":
            closers = [*(c.close for c in consumers), relay.close]
        elif order == "relay first":
            closers = [relay.close, *(c.close for c in consumers)]
        else:
            closers = [relay.close, *(c.close for c in consumers)]
        if order == "together":
            with ThreadPoolExecutor(len(closers)) as pool:
                for future in [pool.submit(close) for close in closers]:
                    future.result(15)
        else:
            for close in closers:
                close()
        wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith("kiwoom-rt-relay")])
    finally:
        threading.excepthook = previous
        for consumer in consumers:
            consumer.close()
        relay.close()
    assert died == []
