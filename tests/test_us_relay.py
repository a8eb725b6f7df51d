"""A relay of the US socket, against a real redis-server: US consumers subscribe UsItems, hear
typed FE/FT and S2 hits, query US conditions, and share one Redis with a domestic relay."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("redis")

from kiwoom_rt import UsConditionEvent, UsItem, UsOrderBook, UsTrade
from kiwoom_rt.relay import Relay, RelaySession
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer, us_clock

from .helpers import Collector, RedisServer, wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(rate=100, clock=us_clock(), condition_churn=0.0) as server:
        server.set_condition_members("1", ["AAPL", "MSFT"], market="us")
        yield server


def test_us_consumers_through_a_us_relay_beside_a_domestic_one(
        sim: SimServer, redis_server: RedisServer, no_thread_leak: None) -> None:
    us_relay = Relay.for_url(redis_server.url, DEFAULT_TOKEN, url=sim.us_url, prefix="us", heartbeat=0.2)
    kr_relay = Relay.for_url(redis_server.url, DEFAULT_TOKEN, url=sim.url, prefix="kr", heartbeat=0.2)
    assert (us_relay.market, kr_relay.market) == ("us", "kr")
    us_relay.start()
    kr_relay.start()
    nvda, ko, hits, kr_seen = Collector(), Collector(), Collector(), Collector()
    first = RelaySession(redis_server.url, prefix="us", market="us").start()
    second = RelaySession(redis_server.url, prefix="us", market="us").start()
    domestic = RelaySession(redis_server.url, prefix="kr").start()
    try:
        first.signal("FE").connect(nvda)
        second.on_real.connect(ko)
        second.on_condition.connect(hits, sender="1")
        domestic.on_real.connect(kr_seen)
        first.subscribe([UsItem("NVDA", "ND")], ["FE"]).wait(5)
        second.subscribe("NYSE:KO", ["FE", "FT"]).wait(5)
        domestic.subscribe("005930", ["0I"]).wait(5)
        with pytest.raises(ValueError, match="domestic code"):
            first.subscribe("005930")  # a domestic code on a US consumer: refused before anything is sent
        watch = second.watch_condition("1").wait(5)
        assert watch.members == {"AAPL", "MSFT"}
        nvda.wait_for(5)
        ko.wait_for(10)
        kr_seen.wait_for(3)
        sim.condition_hit("1", "TSLA", True, market="us")
        hits.wait_for(1)
        assert [c.name for c in first.conditions()] == ["나스닥 급등", "대형 기술주", "배당주"]
        found = first.search("1")
        assert {h.code for h in found} == {"AAPL", "MSFT", "TSLA"}
        assert all(h.exchange == "NASDAQ" for h in found)
    finally:
        for consumer in (first, second, domestic):
            consumer.close()
        us_relay.close()
        kr_relay.close()
    assert {(e.code, e.exchange, type(e)) for e in nvda.events} == {("NVDA", "NASDAQ", UsTrade)}
    quotes = [e for e in ko.events if e.type in ("FE", "FT")]  # on_real hears the watch's hits too
    assert {type(e) for e in quotes} == {UsTrade, UsOrderBook}
    assert {e.code for e in quotes} == {"KO"}
    assert type(hits.events[0]) is UsConditionEvent
    assert hits.events[0].code == "TSLA"
    assert {e.type for e in kr_seen.events} == {"0I"}  # the domestic relay's feed, untouched by the US one
    registered = [json.loads(f)["data"][0]["item"] for conn in range(sim.connections_total)
                  for f in sim.frames_received(conn) if '"trnm":"REG"' in str(f)]
    assert [{"jmcode": "NVDA", "stex_tp": "ND"}] in registered
    assert [{"jmcode": "KO", "stex_tp": "NY"}] in registered
    assert ["005930"] in registered


def test_a_consumer_of_the_other_socket_is_told_loudly(
        sim: SimServer, redis_server: RedisServer, no_thread_leak: None) -> None:
    relay = Relay.for_url(redis_server.url, DEFAULT_TOKEN, url=sim.url, prefix="kr-only", heartbeat=0.2).start()
    relay_notes, errors = Collector(), Collector()
    consumer = RelaySession(redis_server.url, prefix="kr-only", market="us")
    consumer.on_relay.connect(relay_notes)
    consumer.on_error.connect(errors)
    consumer.start()
    try:
        errors.wait_for(1)
        wait_until(lambda: "wrong_market" in relay_notes.kwargs("kind"))
        assert "'kr'" in str(errors.kwargs("error")[0])
        assert "market" in str(errors.kwargs("error")[0])
    finally:
        consumer.close()
        relay.close()


def test_cli_relay_us(sim: SimServer, redis_server: RedisServer) -> None:
    relay = subprocess.Popen([sys.executable, "-m", "kiwoom_rt", "relay", "--us", "--url", sim.us_url,
                              "--redis", redis_server.url, "--prefix", "us-cli", "--every", "0.5", "--duration", "8"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**__import__("os").environ, "KIWOOM_TOKEN": DEFAULT_TOKEN})
    try:
        watched = subprocess.run([sys.executable, "-m", "kiwoom_rt", "watch", "NASDAQ:NVDA", "--us", "--relay",
                                  redis_server.url, "--prefix", "us-cli", "--duration", "3"],
                                 cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert watched.returncode == 0, watched.stderr
        assert " NVDA NASDAQ  FE trade" in watched.stdout
    finally:
        relay.terminate()
        relay.communicate(timeout=20)
