"""Per-subscription health against the simulator: a silenced item turns stale while the others
flow, and fresh again; nothing is stale while the market is closed; resubscribe_stale sends REG
again; a relay consumer judges the relay's feed."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kiwoom_rt import Health, RealtimeSession
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer
from kiwoom_rt.sim.clock import SimClock

from .helpers import wait_until

KST = dt.timezone(dt.timedelta(hours=9))
MONDAY_1630 = dt.datetime(2026, 12, 7, 16, 30, tzinfo=KST)  # 시간외 단일가: 0E flows
SATURDAY_1630 = dt.datetime(2026, 12, 5, 16, 30, tzinfo=KST)
STALE_AFTER = 1.0
INTERVAL = 0.2


class Transitions:
    """on_stale / on_fresh receivers, with the time each call came."""

    def __init__(self, session: Any) -> None:
        self.lock = threading.Lock()
        self.stale: list[tuple[str, str, float, float]] = []
        self.fresh: list[tuple[str, str, float]] = []
        session.on_stale.connect(self.on_stale)
        session.on_fresh.connect(self.on_fresh)

    def on_stale(self, item: str, type: str, age: float) -> None:
        with self.lock:
            self.stale.append((item, type, age, time.monotonic()))

    def on_fresh(self, item: str, type: str) -> None:
        with self.lock:
            self.fresh.append((item, type, time.monotonic()))

    def stale_items(self) -> list[str]:
        with self.lock:
            return [item for item, *_ in self.stale]

    def fresh_items(self) -> list[str]:
        with self.lock:
            return [item for item, *_ in self.fresh]


@pytest.fixture
def monday_sim() -> Iterator[SimServer]:
    with SimServer(rate=100, ping_interval=10.0, condition_churn=0.0, clock=SimClock(MONDAY_1630)) as sim:
        yield sim


def session_on(sim: SimServer, clock: Callable[[], dt.datetime] | None = None, **options: Any) -> RealtimeSession:
    options.setdefault("stale_after", {"0E": STALE_AFTER})
    return RealtimeSession(DEFAULT_TOKEN, url=sim.url, health_interval=INTERVAL,
                           market_clock=clock or sim.clock.now, **options)


def flowing(session: RealtimeSession, *items: str) -> Callable[[], bool]:
    def check() -> bool:
        health = session.health()
        return all(health[(item, "0E")].last_event_age is not None
                   and health[(item, "0E")].last_event_age < 1.0 for item in items)  # type: ignore[operator]
    return check


def test_a_silenced_item_turns_stale_within_stale_after_and_fresh_when_it_resumes(
        no_thread_leak: None, monday_sim: SimServer) -> None:
    with session_on(monday_sim) as session:
        seen = Transitions(session)
        session.subscribe(["005930", "000660"], "0E").wait(5)
        session.subscribe("", "00").wait(5)  # an account type: never stale
        wait_until(flowing(session, "005930", "000660"), timeout=10)
        health = session.health()
        assert isinstance(health, Health)
        assert health.ok
        assert dict(health.phases) == {"KRX": "post_single"}
        assert health.confirmed == {("005930", "0E"), ("000660", "0E"), ("", "00")}
        assert health.last_frame_age is not None
        assert health.last_frame_age < 1.0

        monday_sim.silence_item("005930")
        silenced = time.monotonic()
        wait_until(lambda: seen.stale_items() == ["005930"], timeout=STALE_AFTER + 4 * INTERVAL + 2.0)
        _item, kind, age, when = seen.stale[0]
        assert kind == "0E"
        assert age > STALE_AFTER
        # judged at the first check after the threshold: silent for at most stale_after + one interval
        # (plus the thread's wake-up slack); from the control, frames in flight may add a little
        assert age <= STALE_AFTER + INTERVAL + 0.25, age
        assert when - silenced <= STALE_AFTER + INTERVAL + 1.0, when - silenced
        health = session.health()
        assert health.stale == (("005930", "0E"),)
        assert not health.ok
        assert health[("005930", "0E")].stale
        assert not health[("000660", "0E")].stale
        assert health[("000660", "0E")].last_event_age < STALE_AFTER  # type: ignore[operator]
        assert not health[("", "00")].stale
        assert health[("", "00")].stale_after is None
        assert session.stats().stale == 1
        assert session.stats().resubscriptions == 0
        assert session.state == "connected"

        monday_sim.resume_item("005930")
        wait_until(lambda: seen.fresh_items() == ["005930"], timeout=3.0)
        assert session.health().stale == ()
        assert seen.stale_items() == ["005930"]  # once


def test_nothing_is_stale_while_the_market_is_closed(no_thread_leak: None, monday_sim: SimServer) -> None:
    with session_on(monday_sim, clock=lambda: SATURDAY_1630) as session:
        seen = Transitions(session)
        session.subscribe(["005930", "000660"], "0E").wait(5)
        wait_until(flowing(session, "005930", "000660"), timeout=10)
        monday_sim.silence_item("005930")

        def long_silent() -> bool:
            age = session.health()[("005930", "0E")].last_event_age
            return age is not None and age > 3 * STALE_AFTER
        wait_until(long_silent, timeout=6.0)
        health = session.health()
        assert health.stale == ()
        assert dict(health.phases) == {"KRX": "closed"}
        assert not health[("005930", "0E")].flowing
        assert health[("005930", "0E")].silent_for is None
        assert seen.stale_items() == []


def test_resubscribe_stale_sends_reg_again_at_most_once_per_stale_after(
        no_thread_leak: None, monday_sim: SimServer) -> None:
    with session_on(monday_sim, resubscribe_stale=True) as session:
        seen = Transitions(session)
        session.subscribe(["005930", "000660"], "0E").wait(5)
        wait_until(flowing(session, "005930", "000660"), timeout=10)
        before = len(regs_for(monday_sim, "005930"))
        monday_sim.silence_item("005930")
        started = time.monotonic()
        wait_until(lambda: len(regs_for(monday_sim, "005930")) >= before + 2, timeout=STALE_AFTER * 3 + 3.0)
        elapsed = time.monotonic() - started
        again = regs_for(monday_sim, "005930")[before:]
        assert all(frame["data"][0]["item"] == ["005930"] and frame["data"][0]["type"] == ["0E"]
                   and frame["refresh"] == "1" for frame in again)  # only the stale pair, kept with the others
        assert len(again) <= elapsed / STALE_AFTER + 1
        assert session.stats().resubscriptions >= 2
        assert seen.stale_items() == ["005930"]
        assert session.health()[("000660", "0E")].confirmed


def regs_for(sim: SimServer, item: str) -> list[dict[str, Any]]:
    frames = []
    for raw in sim.frames_received():
        try:
            frame = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if frame.get("trnm") == "REG" and any(item in (entry.get("item") or []) for entry in frame.get("data", [])):
            frames.append(frame)
    return frames


def test_a_relay_consumer_judges_the_relays_feed(no_thread_leak: None, monday_sim: SimServer,
                                                 redis_server: Any) -> None:
    pytest.importorskip("redis")
    from kiwoom_rt.relay import Relay, RelaySession

    with Relay.for_url(redis_server.url, DEFAULT_TOKEN, url=monday_sim.url, heartbeat=0.2) as relay, \
            RelaySession(redis_server.url, stale_after={"0E": STALE_AFTER}, health_interval=INTERVAL,
                         market_clock=monday_sim.clock.now, resubscribe_stale=True) as consumer:
        seen = Transitions(consumer)
        consumer.subscribe(["005930", "000660"], "0E").wait(10)
        wait_until(lambda: consumer.state == "connected", timeout=5)

        def both_flow() -> bool:
            health = consumer.health()
            return all((row.last_event_age or 99) < 1.0 for row in health)
        wait_until(both_flow, timeout=10)
        assert consumer.health().confirmed == {("005930", "0E"), ("000660", "0E")}
        before = len(regs_for(monday_sim, "005930"))
        monday_sim.silence_item("005930")
        wait_until(lambda: seen.stale_items() == ["005930"], timeout=STALE_AFTER + 4 * INTERVAL + 3.0)
        assert consumer.health().stale == (("005930", "0E"),)
        # the relay sent REG again for it, asked by the consumer
        wait_until(lambda: len(regs_for(monday_sim, "005930")) > before, timeout=5)
        assert relay.resubscriptions >= 1
        assert consumer.stats().resubscriptions >= 1
        monday_sim.resume_item("005930")
        wait_until(lambda: seen.fresh_items() == ["005930"], timeout=5)


def test_us_subscriptions_are_judged_by_us_hours(no_thread_leak: None) -> None:
    from kiwoom_rt.sim import us_clock

    clock = us_clock(dt.time(10, 30), day=dt.date(2026, 12, 7))  # a Monday, regular session (EST)
    with SimServer(rate=100, ping_interval=10.0, condition_churn=0.0, clock=clock) as sim, \
            RealtimeSession(DEFAULT_TOKEN, url=sim.us_url, stale_after={"FE": STALE_AFTER},
                            health_interval=INTERVAL, market_clock=sim.clock.now) as session:
        seen = Transitions(session)
        session.subscribe(["NASDAQ:NVDA", "NASDAQ:AAPL"], "FE").wait(5)

        def both() -> bool:
            return all((row.last_event_age or 99) < 1.0 for row in session.health())
        wait_until(both, timeout=10)
        health = session.health()
        assert dict(health.phases) == {"US": "regular"}
        assert health.confirmed == {("NASDAQ:NVDA", "FE"), ("NASDAQ:AAPL", "FE")}
        sim.silence_item("NVDA")
        wait_until(lambda: seen.stale_items() == ["NASDAQ:NVDA"], timeout=STALE_AFTER + 4 * INTERVAL + 3.0)
        assert session.health().stale == (("NASDAQ:NVDA", "FE"),)
        sim.resume_item("NVDA")
        wait_until(lambda: seen.fresh_items() == ["NASDAQ:NVDA"], timeout=5)
