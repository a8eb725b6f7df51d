"""The one ordered delivery path, over real sockets: order across spellings and notices,
backpressure without loss, and the standby thread taking over from a slow receiver."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from kiwoom_rt import RealtimeSession
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

from .helpers import Collector, wait_until


def entry(n: int, item: str = "005930") -> dict[str, Any]:
    values = {"21": "165208", "131": str(n), "132": "+1", "135": "7", "136": "-2"}
    return {"type": "0E", "name": "x", "item": item, "values": values}


def spelled(n: int) -> str:
    """Frame ``n`` in one of four spellings Kiwoom's (unpublished) serializer could use."""
    body = json.dumps(entry(n))
    return [
        '{"trnm":"REAL","data":[' + body + "]}",
        '{"trnm": "REAL", "data": [' + body + "]}",
        '{"data": [' + body + '], "trnm" : "REAL"}',
        '{\n  "trnm" :\t"REAL", "data":[' + body + "]}",
    ][n % 4]


@pytest.mark.parametrize("inline", [False, True])
def test_a_burst_with_mixed_spellings_arrives_in_order(inline: bool, sim: SimServer, no_thread_leak: None) -> None:
    session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, inline=inline)
    got = Collector()
    session.on_0e.connect(got)
    try:
        session.start()
        for burst in range(5):  # 400 frames back to back, each burst coalescing in a few reads
            sim.push_burst([spelled(burst * 400 + i) for i in range(400)])
        got.wait_for(2000, timeout=20)
        assert [e.ask_total for e in got.events] == list(range(2000))
    finally:
        session.close()


def test_notices_keep_their_place_among_events(sim: SimServer, no_thread_leak: None) -> None:
    session = RealtimeSession(DEFAULT_TOKEN, url=sim.url)
    seen: list[str] = []
    done = threading.Event()
    session.on_0e.connect(lambda item, event: seen.append(f"q{event.ask_total}"))
    session.on_system.connect(lambda s, code, message: seen.append(code))
    session.on_error.connect(lambda s, error: seen.append("error"))
    session.on_system.connect(lambda s, code, message: code == "END" and done.set())
    try:
        session.start()
        sim.push_burst([spelled(0), '{"trnm":"SYSTEM","code":"S1","message":"m"}', spelled(1), "not json",
                        spelled(2), '{"trnm":"SYSTEM","code":"END","message":"m"}'])
        assert done.wait(5)
        assert seen == ["q0", "S1", "q1", "error", "q2", "END"]
    finally:
        session.close()


def test_backpressure_delivers_everything_to_a_slow_receiver_and_pings_are_answered(
        no_thread_leak: None) -> None:
    with SimServer(ping_interval=0.1, max_missed_pings=1000) as sim:
        session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, queue_size=500)
        received: list[int] = []
        pause = threading.Event()

        def slow(item: str, event: Any) -> None:  # about 5,000 events/s at most
            received.append(event.ask_total)
            if len(received) % 50 == 0:
                pause.wait(0.01)

        session.on_0e.connect(slow)
        overflow = Collector()
        session.on_overflow.connect(overflow)
        try:
            session.start()
            total = 20_000
            for start in range(0, total, 1000):
                sim.push_burst([spelled(n) for n in range(start, start + 1000)])
            wait_until(lambda: len(received) >= total, timeout=60)
            stats = session.stats()
            assert received == list(range(total))  # everything, in order
            assert stats.dropped == 0
            assert overflow.calls == []
            pings_sent = sum(1 for _, frame in sim.sent_log() if frame == '{"trnm":"PING"}')
            wait_until(lambda: sim.pings_echoed() >= pings_sent, timeout=5)  # every PING answered
            assert session.connected
            assert stats.reconnects == 0
        finally:
            session.close()


def test_a_receiver_that_blocks_hands_reading_to_the_standby_and_order_holds(
        no_thread_leak: None) -> None:
    with SimServer(ping_interval=0.05) as sim:
        session = RealtimeSession(DEFAULT_TOKEN, url=sim.url)
        received: list[int] = []
        entered, release = threading.Event(), threading.Event()
        threads: set[str] = set()

        def receiver(item: str, event: Any) -> None:
            received.append(event.ask_total)
            threads.add(threading.current_thread().name)
            if event.ask_total == 0:
                entered.set()
                release.wait(5)

        session.on_0e.connect(receiver)
        try:
            session.start()
            sim.push(spelled(0))
            assert entered.wait(5)
            sim.push_burst([spelled(n) for n in range(1, 301)])  # read by the standby meanwhile
            echoed = sim.pings_echoed()
            wait_until(lambda: sim.pings_echoed() >= echoed + 5, timeout=5)  # PINGs still answered
            assert received == [0]  # nothing overtakes the delivery in progress
            release.set()
            wait_until(lambda: len(received) == 301, timeout=5)
            assert received == list(range(301))
            assert session.stats().handovers >= 1
            assert threads <= {"kiwoom-rt-io", "kiwoom-rt-standby"}
        finally:
            release.set()
            session.close()
