"""The Redis relay end to end: a real redis-server, the simulator over real sockets, relays and
consumers (some in their own processes, to be killed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("redis")

import redis

from kiwoom_rt import ConnectError, QueueDispatcher
from kiwoom_rt.relay import Relay, RelaySession
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

from .helpers import Collector, RedisServer, wait_until
from .test_session import quote_frame

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def quiet_sim() -> Iterator[SimServer]:
    """A simulator that streams nothing by itself: the tests push numbered frames."""
    with SimServer(rate=0.0, ping_interval=10.0, condition_churn=0.0) as sim:
        yield sim


@pytest.fixture
def make_relay(no_thread_leak: None, redis_server: RedisServer) -> Iterator[Callable[..., Relay]]:
    """Relays made by the test, closed before the thread-leak check runs."""
    relays: list[Relay] = []

    def make(sim: SimServer, redis_url: str | None = None, **options: Any) -> Relay:
        options.setdefault("heartbeat", 0.2)
        relay = Relay.for_url(redis_url or redis_server.url, DEFAULT_TOKEN, url=sim.url, **options)
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        relay.close()


@pytest.fixture
def make_consumer(no_thread_leak: None, redis_server: RedisServer) -> Iterator[Callable[..., RelaySession]]:
    consumers: list[RelaySession] = []

    def make(redis_url: str | None = None, **options: Any) -> RelaySession:
        consumer = RelaySession(redis_url or redis_server.url, **options)
        consumers.append(consumer)
        return consumer

    yield make
    for consumer in consumers:
        consumer.close()


def numbered(n: int, item: str = "005930") -> dict[str, Any]:
    return quote_frame(item, ask=str(n))


def numbers(collector: Collector) -> list[int]:
    return [event.ask_total for event in collector.events]


def reg_frames(sim: SimServer, trnm: str, item: str) -> int:
    """How many ``trnm`` (REG/REMOVE) requests naming ``item`` the relay's connection sent."""
    found = 0
    for frame in sim.frames_received(0):
        body = json.loads(frame) if isinstance(frame, str) else {}
        if body.get("trnm") == trnm and any(item in d.get("item", []) for d in body.get("data", [])):
            found += 1
    return found


# --- sharing one connection ---------------------------------------------------------------------

def test_two_consumers_share_one_kiwoom_connection(quiet_sim: SimServer, make_relay: Callable[..., Relay],
                                                   make_consumer: Callable[..., RelaySession],
                                                   no_thread_leak: None) -> None:
    relay = make_relay(quiet_sim).start()
    a, b = make_consumer(name="a").start(), make_consumer().start()
    got_a, got_b, real_b = Collector(), Collector(), Collector()
    a.on_0e.connect(got_a)
    b.on_0e.connect(got_b)
    b.on_real.connect(real_b)
    a.subscribe(["005930"]).wait(5)
    b.subscribe(["005930"]).wait(5)
    for n in range(1, 51):
        quiet_sim.push(numbered(n))
    got_a.wait_for(50)
    got_b.wait_for(50)
    assert numbers(got_a) == numbers(got_b) == list(range(1, 51))  # order kept per stream
    assert real_b.wait_for(50)
    assert quiet_sim.connections_total == 1  # one Kiwoom connection for both
    assert quiet_sim.logged_in_count == 1
    event = got_a.events[0]
    assert event.received_at > 0  # the relay's receive time travels with the frame
    assert relay.stats().consumers == 2


def test_subscriptions_merge_reg_once_remove_when_the_last_leaves(
        quiet_sim: SimServer, make_relay: Callable[..., Relay], make_consumer: Callable[..., RelaySession],
        no_thread_leak: None) -> None:
    relay = make_relay(quiet_sim).start()
    a, b = make_consumer().start(), make_consumer().start()
    a.subscribe(["005930", "000660"]).wait(5)
    b.subscribe(["005930"]).wait(5)
    assert reg_frames(quiet_sim, "REG", "005930") == 1  # REG once, for the first consumer
    assert relay.book.count("005930", "0E") == 2
    a.unsubscribe(["005930"]).wait(5)
    assert reg_frames(quiet_sim, "REMOVE", "005930") == 0  # b still wants it
    b.unsubscribe(["005930"]).wait(5)
    assert reg_frames(quiet_sim, "REMOVE", "005930") == 1  # the last one left
    assert ("005930", "0E") not in {p for g in quiet_sim.registrations(0).values() for p in g}
    assert ("000660", "0E") in {p for g in quiet_sim.registrations(0).values() for p in g}
    a.close()  # leaving releases a's items at once
    wait_until(lambda: reg_frames(quiet_sim, "REMOVE", "000660") == 1)


def test_a_killed_consumer_loses_its_items_when_its_lease_expires(
        quiet_sim: SimServer, redis_server: RedisServer, make_relay: Callable[..., Relay],
        no_thread_leak: None) -> None:
    relay = make_relay(quiet_sim, lease=1.0).start()
    code = ("import sys, threading; from kiwoom_rt.relay import RelaySession\n"
            "s = RelaySession(sys.argv[1], lease=1.0).start()\n"
            "s.subscribe(['035720']).wait(10); print('subscribed', flush=True)\n"
            "threading.Event().wait(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, redis_server.url], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "subscribed"
        assert relay.book.count("035720", "0E") == 1
        proc.kill()  # no goodbye: only the lease can tell
        proc.wait(10)
        wait_until(lambda: reg_frames(quiet_sim, "REMOVE", "035720") == 1, timeout=5,
                   message="the relay did not release a dead consumer's items")
        assert relay.book.consumers == frozenset()
        client = redis.Redis.from_url(redis_server.url)
        wait_until(lambda: client.xinfo_groups(relay.keys.feed) == [],
                   message="the dead unnamed consumer's group was left behind")
        client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


# --- resuming, restarts and outages ---------------------------------------------------------------

def test_a_named_consumer_resumes_from_last_with_no_gap(
        quiet_sim: SimServer, make_relay: Callable[..., Relay], make_consumer: Callable[..., RelaySession],
        no_thread_leak: None) -> None:
    make_relay(quiet_sim).start()
    first = make_consumer(name="recorder", start_from="last", receive="all").start()
    got = Collector()
    first.on_0e.connect(got)
    for n in range(1, 101):
        quiet_sim.push(numbered(n))
    got.wait_for(100)
    first.close()
    for n in range(101, 201):  # published while the consumer is away
        quiet_sim.push(numbered(n))
    watcher = make_consumer(receive="all").start()  # proves the relay published them before we come back
    seen = Collector()
    watcher.on_0e.connect(seen)
    quiet_sim.push(numbered(201))
    seen.wait_for(1)
    again = make_consumer(name="recorder", start_from="last", receive="all").start()
    resumed = Collector()
    again.on_0e.connect(resumed)
    resumed.wait_for(101)
    assert numbers(got) + numbers(resumed) == list(range(1, 202))  # nothing lost, nothing twice
    fresh = make_consumer(name="recorder", start_from="now", receive="all")
    again.close()
    fresh.start()
    late = Collector()
    fresh.on_0e.connect(late)
    quiet_sim.push(numbered(202))
    late.wait_for(1)
    assert numbers(late) == [202]  # "now" skips the backlog


def test_redis_restart_under_a_stream_loses_only_what_is_counted(
        quiet_sim: SimServer, tmp_path: Path, make_relay: Callable[..., Relay],
        make_consumer: Callable[..., RelaySession], no_thread_leak: None) -> None:
    store = RedisServer(tmp_path, appendonly=True)  # its data survives a restart, as in production
    try:
        relay = make_relay(quiet_sim, redis_url=store.url, buffer=300).start()
        consumer = make_consumer(redis_url=store.url, name="steady", receive="all").start()
        got, notices = Collector(), Collector()
        consumer.on_0e.connect(got)
        consumer.on_relay.connect(notices)
        stop, sent = threading.Event(), [0]

        def stream() -> None:  # 2,000 frames/s: 20 every 10 ms
            while not stop.is_set():
                quiet_sim.push_burst([numbered(sent[0] + i + 1) for i in range(20)])
                sent[0] += 20
                stop.wait(0.01)

        pusher = threading.Thread(target=stream)
        pusher.start()
        try:
            got.wait_for(400)
            store.stop()  # Redis goes away under the stream
            wait_until(lambda: not relay.redis_up and relay.outbox.lost_total > 0, timeout=10)
            store.start()
            wait_until(lambda: relay.redis_up, timeout=10)
        finally:
            stop.set()
            pusher.join()
        total = sent[0]
        wait_until(lambda: numbers(got)[-1:] == [total], timeout=10, message="the stream did not catch up")
        received = numbers(got)
        assert received == sorted(received)  # in order
        assert len(received) == len(set(received))  # nothing twice
        missing = total - len(received)
        lost = relay.stats().lost
        assert 0 < lost == missing  # exactly the counted overflow is missing
        wait_until(lambda: consumer.stats().relay_lost == lost)
        kinds = [kind for kind in notices.kwargs("kind")]
        assert {"redis_lost", "redis_back", "gap"} <= set(kinds)
        assert quiet_sim.connections_total == 1  # the Kiwoom session stayed up throughout
    finally:
        store.stop()


def test_a_relay_restart_keeps_consumers_and_their_handles(
        quiet_sim: SimServer, make_relay: Callable[..., Relay], make_consumer: Callable[..., RelaySession],
        no_thread_leak: None) -> None:
    first = make_relay(quiet_sim).start()
    consumer = make_consumer(lease=3.0, silence=0.5).start()
    got, notices = Collector(), Collector()
    consumer.on_0e.connect(got, sender="005930")
    consumer.on_relay.connect(notices)
    handle = consumer.subscribe(["005930"]).wait(5)
    first.close()
    wait_until(lambda: quiet_sim.connection_count == 0)
    wait_until(lambda: "relay_silent" in notices.kwargs("kind"), message="a stopped relay went unnoticed")
    assert "relay_stopped" in notices.kwargs("kind")
    assert "relay_back" not in notices.kwargs("kind")
    second = make_relay(quiet_sim).start()  # a new relay (and Kiwoom connection) knows nothing yet
    wait_until(lambda: ("005930", "0E") in second.book.wanted(), timeout=5,
               message="the consumer did not re-send its subscriptions to the new relay")
    wait_until(lambda: reg_frames(quiet_sim, "REG", "005930") == 1 if quiet_sim.connections_total == 2 else False)
    quiet_sim.push(numbered(7))
    got.wait_for(1)
    assert numbers(got) == [7]
    assert handle.done
    assert handle.error is None
    assert {"relay_started", "relay_back"} <= set(notices.kwargs("kind"))


def test_upstream_disconnects_arrive_as_lifecycle_signals(
        quiet_sim: SimServer, make_relay: Callable[..., Relay], make_consumer: Callable[..., RelaySession],
        no_thread_leak: None) -> None:
    consumer = make_consumer().start()
    connected, disconnected = Collector(), Collector()
    consumer.on_connected.connect(connected)
    consumer.on_disconnected.connect(disconnected)
    make_relay(quiet_sim, session_options={"reconnect": None}).start()
    connected.wait_for(1)
    quiet_sim.drop_all()
    disconnected.wait_for(1)
    connected.wait_for(2)
    sender, kwargs = disconnected.calls[0]
    assert sender is consumer
    assert kwargs["will_retry"] is True
    wait_until(lambda: consumer.connected)  # connected again: the relay's session logged in


def test_a_slow_consumer_leaves_its_backlog_in_redis(
        quiet_sim: SimServer, make_relay: Callable[..., Relay], make_consumer: Callable[..., RelaySession],
        no_thread_leak: None) -> None:
    make_relay(quiet_sim).start()
    dispatcher = QueueDispatcher(max_events=10)  # nobody drains it: the consumer stops reading when full
    slow = make_consumer(dispatcher=dispatcher, batch=10, receive="all").start()
    for n in range(1, 301):  # one push per read, mostly: one feed entry each
        quiet_sim.push(numbered(n))
    wait_until(lambda: (slow.stats().lag or 0) > 50, timeout=5, message="no lag reported")
    stats = slow.stats()
    assert stats.dropped == 0
    assert stats.lag_seconds is not None


def test_conditions_through_the_relay(make_relay: Callable[..., Relay], make_consumer: Callable[..., RelaySession],
                                      no_thread_leak: None) -> None:
    with SimServer(rate=0.0, conditions={"1": "골든크로스"}) as sim:
        make_relay(sim).start()
        a, b = make_consumer().start(), make_consumer().start()
        hits = Collector()
        b.on_condition.connect(hits)
        sim.set_condition_members("1", ["005930", "000660"])
        watch_a = a.watch_condition("1").wait(5)
        watch_b = b.watch_condition("1").wait(5)
        assert watch_a.members == watch_b.members == {"005930", "000660"}
        assert [c.name for c in b.conditions()] == ["골든크로스"]  # one-shot queries pass through the relay
        assert sorted(hit.code for hit in a.search("1")) == ["000660", "005930"]
        sim.condition_hit("1", "035720", entered=True)
        hits.wait_for(1)
        assert hits.calls[0][0] == "1"
        wait_until(lambda: "035720" in watch_b.members)
        cnsrreq = [f for f in sim.frames_received(0) if isinstance(f, str) and '"search_type":"1"' in f]
        assert len(cnsrreq) == 1  # one realtime request upstream for both consumers


def test_consumer_with_a_queue_dispatcher(quiet_sim: SimServer, make_relay: Callable[..., Relay],
                                          make_consumer: Callable[..., RelaySession], no_thread_leak: None) -> None:
    make_relay(quiet_sim).start()
    dispatcher = QueueDispatcher()
    consumer = make_consumer(dispatcher=dispatcher, receive="all").start()
    got = Collector()
    consumer.on_0e.connect(got)
    quiet_sim.push_burst([numbered(n) for n in range(1, 21)])
    wait_until(lambda: dispatcher.depth >= 20)
    assert got.calls == []  # nothing runs until the host loop drains
    dispatcher.drain()
    assert numbers(got) == list(range(1, 21))
    assert set(got.threads) == {threading.current_thread()}


# --- security ------------------------------------------------------------------------------------

def test_the_kiwoom_token_never_reaches_redis(tmp_path: Path, make_consumer: Callable[..., RelaySession],
                                              redis_server: RedisServer, no_thread_leak: None) -> None:
    secret = "TOKEN-" + "s3cr3t" * 8
    with SimServer(tokens={secret: "sim-appkey"}, rate=50.0) as sim:
        relay = Relay.for_url(redis_server.url, secret, url=sim.url, heartbeat=0.2).start()
        consumer = make_consumer().start()
        got = Collector()
        consumer.on_0e.connect(got)
        try:
            consumer.subscribe(["005930"]).wait(5)
            got.wait_for(5)
            sim.drop_all()  # a reconnect logs in again with the token
            wait_until(lambda: sim.logged_in_count == 1 and sim.connections_total == 2)
        finally:
            relay.close()
    client = redis.Redis.from_url(redis_server.url)
    dump = b""
    for key in client.scan_iter():
        kind = client.type(key)
        if kind == b"stream":
            for _, fields in client.xrange(key):
                dump += b"".join(k + v for k, v in fields.items())
        elif kind == b"string":
            dump += client.get(key) or b""
    client.close()
    assert b"005930" in dump  # the dump does hold the feed
    assert secret.encode() not in dump


def assert_a_relay_carries_events(redis_url: str, sim: SimServer) -> None:
    """A relay and a consumer on ``redis_url`` (a password or TLS URL) deliver a pushed event."""
    relay = Relay.for_url(redis_url, DEFAULT_TOKEN, url=sim.url, heartbeat=0.2).start()
    consumer = RelaySession(redis_url).start()
    try:
        got = Collector()
        consumer.on_0e.connect(got)
        consumer.subscribe(["005930"]).wait(5)
        sim.push(numbered(1))
        got.wait_for(1)
        assert numbers(got) == [1]
    finally:
        consumer.close()
        relay.close()


def test_password_urls_and_clear_errors(tmp_path: Path, quiet_sim: SimServer, no_thread_leak: None) -> None:
    guarded = RedisServer(tmp_path, password="hunter2-redis")
    try:
        assert_a_relay_carries_events(guarded.url, quiet_sim)
        wrong = guarded.url.replace("hunter2-redis", "wrong-password")
        with pytest.raises(ConnectError) as refused:
            RelaySession(wrong).start()
        assert "wrong-password" not in str(refused.value)
        assert "hunter2" not in repr(RelaySession(guarded.url))
    finally:
        guarded.stop()


def test_rediss_tls_is_verified(tmp_path: Path, quiet_sim: SimServer, self_signed: tuple[Path, Path],
                                no_thread_leak: None) -> None:
    secure = RedisServer(tmp_path, tls=self_signed)
    try:
        with pytest.raises(ConnectError, match="cannot reach Redis"):
            RelaySession(secure.url).start()  # an unknown certificate is refused
        trusted = f"{secure.url}?ssl_ca_certs={self_signed[0]}"
        assert_a_relay_carries_events(trusted, quiet_sim)
    finally:
        secure.stop()


def test_relay_and_consumer_without_redis_fail_clearly(quiet_sim: SimServer) -> None:
    url = "redis://127.0.0.1:9/0"
    with pytest.raises(ConnectError, match="cannot reach Redis"):
        RelaySession(url).start()
    with pytest.raises(ConnectError, match="cannot reach Redis"):
        Relay.for_url(url, DEFAULT_TOKEN, url=quiet_sim.url).start()
    assert quiet_sim.connections_total == 0  # Kiwoom is not contacted without Redis


def test_cli_relay_on_the_simulator_and_a_watch_through_it(redis_server: RedisServer) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "KIWOOM_RT_REDIS": redis_server.url}
    env = {k: v for k, v in env.items() if not k.startswith("KIWOOM_TOKEN")}
    relay = subprocess.Popen([sys.executable, "-m", "kiwoom_rt", "relay", "--sim", "--every", "0.5",
                              "--duration", "30"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert relay.stderr is not None
        banner = relay.stderr.readline()
        assert banner.startswith("relay "), banner
        assert redis_server.url.split("@")[-1].split("/")[0] in banner
        watch = subprocess.run([sys.executable, "-m", "kiwoom_rt", "watch", "--relay", redis_server.url,
                                "005930", "--json", "--duration", "2"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=60)
        assert watch.returncode == 0, watch.stderr
        lines = [json.loads(line) for line in watch.stdout.splitlines()]
        assert lines
        assert {line["item"] for line in lines} == {"005930"}
        refused = subprocess.run([sys.executable, "-m", "kiwoom_rt", "watch", "--relay", redis_server.url,
                                  "--sim", "005930"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2
        assert "--relay reads from a relay" in refused.stderr
    finally:
        relay.terminate()
        relay.wait(20)
    assert relay.stdout is not None
    assert relay.stderr is not None
    status = relay.stdout.read()
    relay.stdout.close()
    relay.stderr.close()
    assert "published" in status
    assert "redis up" in status


def test_gui_code_runs_unchanged_on_a_relay_session(quiet_sim: SimServer, make_relay: Callable[..., Relay],
                                                    make_consumer: Callable[..., RelaySession]) -> None:
    from kiwoom_rt.qt import QtDispatcher, qt_module

    from .test_gui import pump_until

    widgets = qt_module("QtWidgets")
    app = widgets.QApplication.instance() or widgets.QApplication([])
    make_relay(quiet_sim).start()
    consumer = make_consumer(dispatcher=QtDispatcher(conflate=False), receive="all").start()
    got = Collector()
    consumer.on_0e.connect(got)
    quiet_sim.push_burst([numbered(n) for n in range(1, 31)])
    pump_until(app.processEvents, lambda: len(got.calls) == 30)
    assert numbers(got) == list(range(1, 31))
    assert set(got.threads) == {threading.main_thread()}  # on the GUI thread


def test_requests_before_start_refusals_and_raising_receivers(
        quiet_sim: SimServer, make_relay: Callable[..., Relay], make_consumer: Callable[..., RelaySession]) -> None:
    from kiwoom_rt import ConditionError, ReceiverError

    relay = make_relay(quiet_sim).start()
    consumer = make_consumer()
    early = consumer.subscribe(["005930"])  # asked before start(): sent once Redis is reached
    got, errors = Collector(), Collector()
    consumer.on_0e.connect(got)
    consumer.on_error.connect(errors)

    def broken(session: Any, kind: str, detail: Any) -> None:
        raise RuntimeError("a bug in a notice receiver")

    consumer.on_relay.connect(broken)
    consumer.start()
    early.wait(5)
    quiet_sim.push(numbered(1))
    got.wait_for(1)
    with pytest.raises(ConditionError):  # the relay passes Kiwoom's refusal on
        consumer.watch_condition("99").wait(5)
    relay.close()  # relay_stopped reaches the broken receiver...
    errors.wait_for(1)
    error = errors.kwargs("error")[0]
    assert isinstance(error, ReceiverError)  # ...which is reported, and the consumer carries on
    assert consumer.state == "reconnecting"  # the relay stopped: the consumer carries on, waiting for one


def test_the_feed_is_trimmed_to_its_retention(quiet_sim: SimServer, redis_server: RedisServer,
                                              make_relay: Callable[..., Relay],
                                              make_consumer: Callable[..., RelaySession]) -> None:
    relay = make_relay(quiet_sim, maxlen=100).start()
    consumer = make_consumer(receive="all").start()
    got = Collector()
    consumer.on_0e.connect(got)
    for n in range(1, 801):  # one push per read, mostly: one entry each
        quiet_sim.push(numbered(n))
    got.wait_for(800)
    client = redis.Redis.from_url(redis_server.url)
    try:
        length = client.xlen(relay.keys.feed)
    finally:
        client.close()
    assert 100 <= length < 400  # approximate MAXLEN: Redis trims whole nodes (100 entries each)
