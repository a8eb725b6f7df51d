"""The relay's promises under faults (issue 37), tried as they were found: real redis-server,
real processes killed with SIGKILL and stopped with SIGSTOP, entries written by hand."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("redis")

from kiwoom_rt import SessionState
from kiwoom_rt.relay import RelayGap, RelaySession
from kiwoom_rt.relay._redis import client_for
from kiwoom_rt.relay._wire import RelayKeys, feed_frames, feed_notice, number_entry

from .helpers import Collector, RedisServer, wait_until
from .test_session import quote_frame

ROOT = Path(__file__).resolve().parent.parent


def frame(item: str, type_code: str = "0E") -> bytes:
    return json.dumps(quote_frame(item, type_code=type_code)).encode()


class Feed:
    """Writes feed entries as a relay would, numbered (relay ``relay``)."""

    def __init__(self, redis: RedisServer, prefix: str, relay: str = "r1") -> None:
        self.client = client_for(redis.url, 5.0)
        self.keys = RelayKeys(prefix)
        self.relay = relay
        self.seq = 0

    def add(self, entry: dict[bytes, bytes], *, number: bool = True) -> bytes:
        if number:
            self.seq += 1
            entry = number_entry(entry, self.relay, self.seq)
        return bytes(self.client.xadd(self.keys.feed, entry))

    def frames(self, *items: str, type_code: str = "0E") -> bytes:
        return self.add(feed_frames([frame(item, type_code) for item in items], time.time()))

    def frames_raw(self, *frames: bytes) -> bytes:
        return self.add(feed_frames(frames, time.time()))

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def feed(redis_server: RedisServer) -> Iterator[Feed]:
    writer = Feed(redis_server, "faults")
    yield writer
    writer.close()


def consumer(redis: RedisServer, **options: Any) -> RelaySession:
    return RelaySession(redis.url, prefix="faults", receive="all", silence=30.0, **options)


def test_a_consumer_survives_any_entry_and_says_so(redis_server: RedisServer, feed: Feed,
                                                   no_thread_leak: None) -> None:
    session = consumer(redis_server, max_entry_bytes=1_000_000)
    quotes, errors = Collector(), Collector()
    session.on_0e.connect(quotes)
    session.on_error.connect(errors)
    session.start()
    try:
        feed.frames("000001")
        quotes.wait_for(1)
        bad = [
            feed_notice("on_reconnecting", time.time(), relay="r1", kwargs={"attempt": "x"}),
            feed_notice("on_reconnecting", time.time(), relay="r1", kwargs={"attempt": [1], "delay": {}}),
            {b"k": b"n", b"d": b"[" * 200_000, b"t": b"1.0"},
            {b"k": b"n", b"d": b'{"name": "gap", "lost": "many"}', b"t": b"nan"},
            {b"k": b"r", b"d": b"\x00\x00\x00\x09abc", b"t": b"1.0"},  # truncated
            {b"k": b"z", b"d": b"{}", b"t": b"1.0"},
            {b"k": b"r", b"d": (2_000_000).to_bytes(4, "big") + b"x" * 2_000_000, b"t": b"1.0"},  # too large
        ]
        for entry in bad:
            feed.add(entry)
        feed.frames("000002", type_code="0E")
        feed.add(feed_frames([frame("NVDA", "FE")], time.time()))  # a US trade in a domestic feed
        feed.frames("000003")
        quotes.wait_for(3)
        wait_until(lambda: session.stats().bad_entries >= len(bad), 5)  # (and the FE frame)
        assert [event.item for event in quotes.events] == ["000001", "000002", "000003"]
        assert session._thread is not None
        assert session._thread.is_alive()
        assert session.state is not SessionState.CLOSED
        assert len(errors.calls) >= len(bad)
        assert all(kwargs["error"] is not None for _, kwargs in errors.calls)
    finally:
        session.close()


def test_a_us_consumer_on_a_domestic_relay_is_refused_at_once(redis_server: RedisServer, feed: Feed,
                                                              no_thread_leak: None) -> None:
    session = RelaySession(redis_server.url, prefix="faults", market="us", silence=30.0)
    relay = Collector()
    session.on_relay.connect(relay)
    session.start()
    try:
        feed.add(feed_notice("relay_alive", time.time(), relay="r1", upstream="connected", market="kr"))
        wait_until(lambda: "wrong_market" in relay.kwargs("kind"), 5)
        started = time.monotonic()
        with pytest.raises(Exception, match="serves the 'kr' socket"):
            session.subscribe(["NASDAQ:NVDA"], ["FE"]).wait(4)
        assert time.monotonic() - started < 1.0
        assert session.state is SessionState.GAVE_UP
    finally:
        session.close()


def test_an_entry_published_twice_is_delivered_once_and_a_missing_one_is_a_gap(
        redis_server: RedisServer, feed: Feed, no_thread_leak: None) -> None:
    session = consumer(redis_server)
    quotes, relay = Collector(), Collector()
    session.on_0e.connect(quotes)
    session.on_relay.connect(relay)
    session.start()
    try:
        entry = number_entry(feed_frames([frame("000001")], time.time()), "r1", 1)
        feed.add(dict(entry), number=False)
        feed.add(dict(entry), number=False)  # the write retried after a stall
        feed.seq = 1
        feed.frames("000002")
        feed.seq += 3  # three entries lost
        feed.frames("000003")
        quotes.wait_for(3)
        wait_until(lambda: "gap" in relay.kwargs("kind"), 5)
        assert [event.item for event in quotes.events] == ["000001", "000002", "000003"]
        assert session.stats().duplicates == 1
        gap = relay.kwargs("detail")[relay.kwargs("kind").index("gap")]
        assert isinstance(gap, RelayGap)
        assert gap.lost == 3
        assert gap.since is not None
        assert gap.until is not None
        assert gap.until >= gap.since
    finally:
        session.close()


def run_consumer(redis: RedisServer, name: str, out: Path, prefix: str = "faults",
                 *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests._relay_consumer_proc", redis.url, prefix, name, str(out),
                             *extra], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    return proc


@pytest.mark.slow
def test_a_consumer_killed_mid_batch_resumes_without_losing_it(redis_server: RedisServer, feed: Feed,
                                                               tmp_path: Path) -> None:
    """A consumer with a 5 ms receiver, killed with SIGKILL mid-batch and started again with
    ``start_from="last"``: every frame arrives (at least once), and nothing stays pending."""
    out = tmp_path / "delivered.txt"
    proc = run_consumer(redis_server, "strategy", out)
    try:
        total = 3000
        for start in range(0, total, 50):  # reads of 50 frames, as a busy feed writes them
            feed.frames(*(f"{n:06d}" for n in range(start, start + 50)))
        wait_until(lambda: out.exists() and out.read_text().count("\n") > 600, 30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        before = set(out.read_text().split())
        assert len(before) < total
        proc = run_consumer(redis_server, "strategy", out)
        wait_until(lambda: len(set(out.read_text().split())) >= total, 60,
                   "frames were lost across the restart")
        delivered = out.read_text().split()
        assert set(delivered) == {f"{n:06d}" for n in range(total)}
        client = client_for(redis_server.url, 5.0)
        wait_until(lambda: client.xpending(feed.keys.feed, "strategy")["pending"] == 0, 10)
        client.close()
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.slow
def test_a_redis_stall_longer_than_the_timeout_neither_repeats_nor_loses_a_frame(
        redis_server: RedisServer, feed: Feed, no_thread_leak: None) -> None:
    """``kill -STOP`` the redis-server for 6 s while frames flow, then ``kill -CONT``."""
    session = consumer(redis_server)
    quotes = Collector()
    session.on_0e.connect(quotes)
    session.start()
    assert redis_server.proc is not None
    pid = redis_server.proc.proc.pid
    stop = threading.Event()
    written: list[str] = []

    def write() -> None:
        """As the relay publishes: each entry numbered once, and retried as it is after a timeout."""
        writer = Feed(redis_server, "faults", relay="r2")
        n = 0
        while not stop.is_set() and n < 400:
            item = f"{n:06d}"
            entry = number_entry(feed_frames([frame(item)], time.time()), "r2", n + 1)
            while True:
                try:
                    writer.client.xadd(writer.keys.feed, entry)
                    break
                except Exception:  # the stall: the same entry is written again
                    stop.wait(0.05)
            written.append(item)
            n += 1
            stop.wait(0.02)
        writer.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        wait_until(lambda: len(quotes.calls) >= 20, 10)
        os.kill(pid, signal.SIGSTOP)
        stop.wait(6.0)
        os.kill(pid, signal.SIGCONT)
        writer.join(60)
        wait_until(lambda: len(quotes.calls) >= len(set(written)), 30, "frames were lost in the stall")
        delivered = [event.item for event in quotes.events]
        assert len(delivered) == len(set(delivered)), "a frame was delivered twice"
        assert set(delivered) == set(written)
    finally:
        stop.set()
        os.kill(pid, signal.SIGCONT)
        writer.join(10)
        session.close()


def run_relay(redis: RedisServer, sim_url: str) -> subprocess.Popen[str]:
    """``kiwoom-rt relay`` in its own process (to be killed), on the simulator; returns once it is up."""
    from kiwoom_rt.sim import DEFAULT_TOKEN

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "KIWOOM_TOKEN": DEFAULT_TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "kiwoom_rt", "relay", "--redis", redis.url, "--url", sim_url,
                             "--every", "600"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    banner = proc.stderr.readline()
    assert banner.startswith("relay "), banner
    return proc


@pytest.mark.slow
def test_a_relay_killed_and_restarted_under_a_bar_feed_leaves_its_bars_incomplete(
        redis_server: RedisServer, no_thread_leak: None) -> None:
    """Issue 37, case 1, as found: a ``BarFeed`` on a ``RelaySession`` with 100 trades per 10 s
    bar; ``kill -9`` the relay, wait 2.5 s, start it again. The bars that overlapped the outage
    are ``complete=False``; the bars before and after it are complete and whole."""
    from kiwoom_rt.bars import BarFeed
    from kiwoom_rt.sim import SimServer

    from .test_bars import Bars, trade

    items = ("005930", "000660")

    def hhmmss(second: int) -> str:
        return f"09{second // 60:02d}{second % 60:02d}"

    def push(sim: SimServer, seconds: range) -> int:
        pushed = 0
        for second in seconds:  # ten trades a second of each item: 100 per 10 s bar
            for tenth in range(10):
                for item in items:
                    sim.push(trade(item, hhmmss(second), 100 + tenth, 1))
                    pushed += 1
        return pushed

    with SimServer(rate=0.0, ping_interval=10.0, condition_churn=0.0) as sim:
        relay = run_relay(redis_server, sim.url)
        consumer = RelaySession(redis_server.url, name="bars")
        bars, trades = Bars(), Collector()
        try:
            BarFeed(consumer, "10s", grace=0.5).on_bar.connect(bars)
            consumer.signal("0B").connect(trades)
            consumer.start()
            consumer.subscribe(list(items), ["0B"]).wait(10)
            sent = push(sim, range(0, 15))  # bar 09:00:00 whole, bar 09:00:10 half
            trades.wait_for(sent, 10)
            market_at = time.monotonic()  # the market stands at 09:00:15 now, and moves with the wall clock
            relay.send_signal(signal.SIGKILL)
            relay.wait(10)
            push(sim, range(15, 20))  # nobody listens: lost
            threading.Event().wait(2.5)
            relay = run_relay(redis_server, sim.url)
            wait_until(lambda: sim.connections_total >= 2 and len(sim.registrations()) > 0, 20,
                       "the restarted relay never registered the consumer's items")
            # trades go on at the market's time, from a bar boundary after the restart
            resume = 10 * math.ceil((15 + time.monotonic() - market_at) / 10) + 10
            heard = len(trades.calls)
            pushed = push(sim, range(resume, resume + 35))
            trades.wait_for(heard + pushed, 10)
            final = bars.wait_for(10, 15)  # 09:00:00, 09:00:10, resume, +10, +20; both items
        finally:
            consumer.close()
            relay.kill()
            relay.wait(10)
            assert relay.stderr is not None
            relay.stderr.close()
    by_start = {(bar.item, bar.start.strftime("%H%M%S")): bar for bar in final}
    for item in items:
        first, outage = by_start[item, "090000"], by_start[item, "090010"]
        after = [by_start[item, hhmmss(resume + offset)] for offset in (0, 10, 20)]
        assert first.complete
        assert first.volume == 100
        assert not outage.complete, f"{item}'s bar over the outage says complete with {outage.volume} of 100"
        assert outage.volume == 50
        assert [bar.volume for bar in after] == [100, 100, 100]  # nothing lost once it is back
        # The bar of the first trade after the outage may be marked (only a trade tells when the
        # feed was back, as after a live reconnect); every bar after it is complete. (A silence
        # followed by a gap once left the outage open, so that every later bar was marked:
        # test_an_outage_ends_with_the_first_trade_back_whatever_came_in_between.)
        assert [bar.complete for bar in after[1:]] == [True, True], after


def stream_numbers(redis: RedisServer, prefix: str) -> set[int]:
    """The frame numbers the relay's feed stream holds (what reached Redis)."""
    from kiwoom_rt.relay._wire import read_entry

    client = client_for(redis.url, 10.0)
    try:
        entries = client.xrange(RelayKeys(prefix).feed)
    finally:
        client.close()
    found = set()
    for _, fields in entries:
        entry = read_entry(fields)
        for raw in entry.frames if entry.kind == "real" else ():
            for data in json.loads(raw)["data"]:
                found.add(int(data["values"]["131"]))
    return found


@pytest.mark.slow
def test_a_consumer_through_twenty_random_kills_and_restarts(tmp_path: Path, no_thread_leak: None) -> None:
    """Issue 37's chaos proof: frames flow from the simulator through a relay process and a real
    redis-server (with its append-only file, as in production) to a consumer process. Twenty
    faults, drawn at random: the consumer or the relay killed with SIGKILL and started again,
    Redis stalled with SIGSTOP (1-6 s) or restarted. Then, against the stream: every frame it
    holds was delivered at least once, and no frame was delivered twice within one life of the
    consumer (a killed consumer loses its memory; what it had not acknowledged comes again)."""
    import random

    from kiwoom_rt.sim import SimServer

    from .test_session import quote_frame

    seed = int(os.environ.get("KIWOOM_RT_CHAOS_SEED", "37"))
    chance = random.Random(seed)
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis", appendonly=True)
    out = tmp_path / "delivered.txt"
    stop = threading.Event()
    pushed: list[int] = []
    faults: list[str] = []
    with SimServer(rate=0.0, ping_interval=10.0, condition_churn=0.0) as sim:
        relay = run_relay(redis, sim.url)
        consumer_proc = run_consumer(redis, "chaos", out, "kiwoom-rt", "numbers")

        def push() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                sim.push(quote_frame("005930", ask=str(n)))
                pushed.append(n)
                stop.wait(0.01)

        pusher = threading.Thread(target=push, name="chaos-pusher")
        try:
            pusher.start()
            wait_until(lambda: out.exists() and out.read_text().count("\n") > 20, 30, "nothing flowed")
            for _ in range(20):
                stop.wait(chance.uniform(0.5, 1.5))  # frames flow between faults
                fault = chance.choice(["consumer", "relay", "redis_stall", "redis_restart"])
                faults.append(fault)
                if fault == "consumer":
                    consumer_proc.kill()
                    consumer_proc.wait(10)
                    consumer_proc = run_consumer(redis, "chaos", out, "kiwoom-rt", "numbers")
                elif fault == "relay":
                    relay.kill()
                    relay.wait(10)
                    stop.wait(chance.uniform(0.0, 2.5))
                    relay = run_relay(redis, sim.url)
                elif fault == "redis_stall":
                    assert redis.proc is not None
                    pid = redis.proc.proc.pid
                    os.kill(pid, signal.SIGSTOP)
                    try:
                        stop.wait(chance.uniform(1.0, 6.0))
                    finally:
                        os.kill(pid, signal.SIGCONT)
                else:
                    redis.stop()
                    stop.wait(chance.uniform(0.2, 2.0))
                    redis.start()
            stop.wait(1.0)
            stop.set()
            pusher.join(10)
            held = stream_numbers(redis, "kiwoom-rt")
            assert len(held) > len(pushed) / 3, f"only {len(held)} of {len(pushed)} frames reached the stream"

            def lives() -> list[list[int]]:
                found: list[list[int]] = []
                for line in out.read_text().splitlines():
                    if line == "# life":
                        found.append([])
                    elif line and not line.startswith("#"):
                        found[-1].append(int(line))
                return found

            wait_until(lambda: held <= {n for life in lives() for n in life}, 90,
                       f"frames in the stream never delivered (seed {seed}, faults {faults})")
        finally:
            stop.set()
            if pusher.is_alive():
                pusher.join(10)
            consumer_proc.kill()
            consumer_proc.wait(10)
            assert consumer_proc.stdout is not None
            consumer_proc.stdout.close()
            relay.kill()
            relay.wait(10)
            assert relay.stderr is not None
            relay.stderr.close()
            redis.stop()
    for number, life in enumerate(lives()):
        repeated = sorted({n for n in life if life.count(n) > 1})
        assert not repeated, f"life {number} delivered {repeated[:10]} twice (seed {seed}, faults {faults})"
    notices = out.read_text().splitlines()
    if "relay" in faults:
        assert any(line in ("# gap", "# relay_started") for line in notices), "a relay restart went unsaid"


def test_a_gap_in_the_feed_marks_the_bars_it_spans(redis_server: RedisServer, feed: Feed,
                                                   no_thread_leak: None) -> None:
    """Entries missing from the feed (numbers skip): a typed ``RelayGap`` names the span, and the
    ``BarFeed`` marks the bars open in it incomplete; the bars before and after stay whole."""
    from kiwoom_rt.bars import BarFeed

    from .test_bars import Bars, trade

    session = consumer(redis_server)
    bars, notices = Bars(), Collector()
    BarFeed(session, "10s", grace=0.5).on_bar.connect(bars)
    session.on_relay.connect(notices)
    session.start()
    try:
        def write(second: int) -> None:
            feed.frames_raw(json.dumps(trade("005930", f"0900{second:02d}", 100, 1)).encode())

        for second in range(0, 14):
            write(second)
        feed.seq += 2  # two entries never reach the feed
        for second in range(16, 35):
            write(second)
        final = bars.wait_for(3)
        gap = next(detail for kind, detail in zip(notices.kwargs("kind"), notices.kwargs("detail"),
                                                                 strict=True)
                   if kind == "gap")
    finally:
        session.close()
    assert isinstance(gap, RelayGap)
    assert gap.lost == 2
    assert gap.since is not None
    assert gap.until is not None
    assert [(bar.start.strftime("%H%M%S"), bar.complete, bar.volume) for bar in final[:3]] == [
        ("090000", True, 10), ("090010", False, 8), ("090020", True, 10)]
