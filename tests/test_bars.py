"""Bars on real sessions: live against the simulator, from a recording, through a relay, behind a
conflating dispatcher; the same trades give the same bars, and what was missed is marked."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiwoom_rt import LateTradeError, QueueDispatcher, RealtimeSession
from kiwoom_rt.bars import Bar, BarFeed
from kiwoom_rt.recording import Recorder
from kiwoom_rt.replay import ReplaySession
from kiwoom_rt.sim import DEFAULT_TOKEN, SimClock, SimServer

from .helpers import Collector, RedisServer, wait_until


def trade(item: str, hhmmss: str, price: int, volume: int, type_code: str = "0B",
          extra: dict[str, str] | None = None) -> dict[str, Any]:
    values = {"20": hhmmss, "10": f"+{price}", "11": "+100", "12": "+0.15", "15": f"{volume:+d}", "13": "1000",
              **(extra or {})}
    return {"trnm": "REAL", "data": [{"type": type_code, "name": "x", "item": item, "values": values}]}


class Bars:
    """``on_bar`` receiver: the final bars, in order, with a wait."""

    def __init__(self) -> None:
        self.bars: list[Bar] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def __call__(self, item: str, bar: Bar) -> None:
        assert item == bar.item
        with self._lock:
            self.bars.append(bar)
            self.threads.add(threading.current_thread().name)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Bar]:
        with self._lock:
            if not self._changed.wait_for(lambda: len(self.bars) >= count, timeout):
                raise AssertionError(f"{len(self.bars)} bars of {count} within {timeout} s")
            return list(self.bars)


@pytest.fixture
def quiet_sim() -> Iterator[SimServer]:
    """Streams nothing by itself: the tests push trades with the times they choose."""
    with SimServer(rate=0.0, ping_interval=10.0, condition_churn=0.0, tokens={DEFAULT_TOKEN: "key-a",
                                                                               "second": "key-b"}) as sim:
        yield sim


def test_the_feed_is_validated() -> None:
    session = RealtimeSession(DEFAULT_TOKEN, url="ws://127.0.0.1:9/api/dostk/websocket")
    try:
        with pytest.raises(ValueError, match="one kind of bar"):
            BarFeed(session, "1m", ticks=10)
        with pytest.raises(ValueError, match="no trade time, price and volume"):
            BarFeed(session, types="0D")
        with pytest.raises(ValueError, match="unknown realtime type"):
            BarFeed(session, types="ZZ")
        with pytest.raises(ValueError, match="fill_empty"):
            BarFeed(session, ticks=5, fill_empty=True)
        with BarFeed(session) as feed:
            assert feed.spec.kind == "time"
            assert feed.spec.size == 60
            assert feed.types == {"0B"}
            assert "1m" in repr(feed)
        assert feed.closed
    finally:
        session.close()


def test_trades_pushed_live_make_bars_late_trades_are_reported(quiet_sim: SimServer, no_thread_leak: None) -> None:
    errors = Collector()
    with RealtimeSession(DEFAULT_TOKEN, url=quiet_sim.url) as session:
        session.on_error.connect(errors)
        feed = BarFeed(session, "10s", grace=0.5)
        bars, updates = Bars(), Collector()
        feed.on_bar.connect(bars)
        feed.on_update.connect(updates)
        session.subscribe(["005930"], ["0B"]).wait(5)
        for hhmmss, price, volume in [("090001", 100, 5), ("090004", 103, -2), ("090009", 99, 1),
                                      ("090010", 101, 7), ("090008", 50, 9)]:  # the last one is late
            quiet_sim.push(trade("005930", hhmmss, price, volume))
        [bar] = bars.wait_for(1)
        updates.wait_for(4)
        errors.wait_for(1)
        wait_until(lambda: feed.late == 1)
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (100, 103, 99, 99, 8)
        assert (bar.buy_volume, bar.sell_volume, bar.trades) == (6, 2, 3)
        assert bar.start.time() == dt.time(9, 0, 0)
        assert bar.start.utcoffset() == dt.timedelta(hours=9)
        assert not bar.complete  # the feed started inside it
        error = errors.kwargs("error")[0]
        assert isinstance(error, LateTradeError)
        assert error.trade.price == 50
        current = feed.current("005930")
        assert current is not None
        assert current.volume == 7  # the late trade changed nothing
        assert [u.final for u in updates.kwargs("bar")] == [False] * 4
        # the market clock finishes the last bar of an item that stops trading
        quiet_sim.push(trade("005930", "090019", 101, 1))
        assert bars.wait_for(2, timeout=10)[1].start.time() == dt.time(9, 0, 10)
    wait_until(lambda: feed.closed, message="closing the session stops the feed")


def test_final_bars_updates_and_late_trades_reach_receivers_in_order(quiet_sim: SimServer,
                                                                   no_thread_leak: None) -> None:
    """Final bars and late-trade errors are posted in runs (a notice per run, not per bar): an
    update after them, or before them, still reaches its receivers in the order it happened."""
    seen: list[tuple[str, str, str]] = []
    lock = threading.Lock()

    def record(kind: str) -> Any:
        def receiver(sender: Any, **values: Any) -> None:
            with lock:
                if kind == "error":
                    trade_ = values["error"].trade
                    seen.append((kind, trade_.item, f"{trade_.time:%H%M%S}"))
                else:
                    seen.append((kind, values["bar"].item, f"{values['bar'].start:%H%M}"))
        return receiver

    receivers = {kind: record(kind) for kind in ("final", "update", "error")}
    with RealtimeSession(DEFAULT_TOKEN, url=quiet_sim.url) as session:
        session.on_error.connect(receivers["error"])
        feed = BarFeed(session, "1m", grace=30)
        feed.on_bar.connect(receivers["final"])
        feed.on_update.connect(receivers["update"])
        session.subscribe(["005930", "000660"], ["0B"]).wait(5)
        for item, hhmmss in [("005930", "090001"), ("000660", "090002"), ("005930", "090100"),
                             ("005930", "090005"), ("000660", "090101")]:  # the fourth is late
            quiet_sim.push(trade(item, hhmmss, 100, 1))
        wait_until(lambda: len(seen) >= 7, timeout=10)
    assert seen == [("update", "005930", "0900"), ("update", "000660", "0900"),
                    ("final", "005930", "0900"), ("update", "005930", "0901"),
                    ("error", "005930", "090005"),
                    ("final", "000660", "0900"), ("update", "000660", "0901"),
                    ("final", "005930", "0901"), ("final", "000660", "0901")]  # (the session's end)


def test_a_dropped_connection_marks_the_open_bars_and_the_next_ones_are_complete(
        quiet_sim: SimServer, no_thread_leak: None) -> None:
    logins = Collector()
    with RealtimeSession(DEFAULT_TOKEN, url=quiet_sim.url) as session:
        session.on_login.connect(logins)
        feed = BarFeed(session, "10s")
        bars = Bars()
        feed.on_bar.connect(bars)
        session.subscribe(["005930"], ["0B"]).wait(5)
        for hhmmss in ("090001", "090011", "090021", "090031"):
            quiet_sim.push(trade("005930", hhmmss, 100, 1))
        bars.wait_for(3)
        quiet_sim.drop_all()
        logins.wait_for(1, timeout=10)  # (connected after the first login)
        for hhmmss in ("090035", "090045", "090055", "090105"):
            quiet_sim.push(trade("005930", hhmmss, 102, 1))
        got = {bar.start.strftime("%H%M%S"): bar for bar in bars.wait_for(6)}
    assert [got[k].complete for k in ("090000", "090010", "090020")] == [False, True, True]
    assert not got["090030"].complete  # open while the connection was down
    assert got["090030"].trades == 2  # the trades before and after the drop: one bar
    assert got["090040"].complete  # and the next ones are complete again
    assert got["090050"].complete


def test_live_bars_equal_the_bars_built_from_its_own_recording(tmp_path: Path, no_thread_leak: None) -> None:
    path = tmp_path / "day.jsonl"
    live = Bars()
    with SimServer(rate=300, clock=SimClock(dt.time(10, 0), speed=20), condition_churn=0.0) as sim, \
            Recorder(path) as recorder:
        session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, frame_hook=recorder)
        feed = BarFeed(session, "10s")
        feed.on_bar.connect(live)
        session.start()
        session.subscribe(["005930", "000660", "035420"], ["0B", "0D"]).wait(5)
        live.wait_for(12, timeout=20)
        session.close()
    assert any(bar.complete for bar in live.bars)
    replayed = Bars()
    replay = ReplaySession(path, speed=None)
    replay_feed = BarFeed(replay, "10s")
    replay_feed.on_bar.connect(replayed)
    with replay:
        assert replay.wait(20)
    by_key = {(bar.item, bar.start): bar for bar in replayed.bars}
    for bar in live.bars:
        assert by_key[bar.item, bar.start] == bar
    assert replay_feed.closed


def test_a_conflating_dispatcher_never_costs_the_feed_a_trade(quiet_sim: SimServer, no_thread_leak: None) -> None:
    dispatcher = QueueDispatcher(conflate=True)
    session = RealtimeSession(DEFAULT_TOKEN, url=quiet_sim.url, dispatcher=dispatcher)
    feed = BarFeed(session, "1m")
    assert feed.conflate_updates
    seen, bars, updates = Collector(), Bars(), Collector()
    session.signal("0B").connect(seen)
    feed.on_bar.connect(bars)
    feed.on_update.connect(updates)
    try:
        session.start()
        sub = session.subscribe(["005930"], ["0B"])
        wait_until(lambda: (dispatcher.drain(), sub.done)[1], timeout=5)
        for second in range(40):
            quiet_sim.push(trade("005930", f"0900{second:02d}", 100 + second, 1))
        quiet_sim.push(trade("005930", "090100", 1, 1))
        wait_until(lambda: (dispatcher.drain(), bars.bars)[1], timeout=10)
    finally:
        session.close()
    [bar] = bars.bars
    assert bar.trades == 40
    assert bar.volume == 40
    assert (bar.open, bar.close) == (100, 139)
    assert len(seen.events) < 41  # the receivers saw the latest trades only
    assert len(updates.events) < 41  # and the updates were conflated too
    assert bars.threads == {threading.current_thread().name}  # delivered by drain(), on this thread


def test_a_relay_consumers_bars_equal_a_direct_sessions(quiet_sim: SimServer, redis_server: RedisServer,
                                                        no_thread_leak: None) -> None:
    from kiwoom_rt.relay import Relay, RelaySession

    relay = Relay.for_url(redis_server.url, DEFAULT_TOKEN, url=quiet_sim.url, heartbeat=0.2)
    consumer = RelaySession(redis_server.url)
    direct = RealtimeSession("second", url=quiet_sim.url)
    try:
        relay.start()
        consumer.start()
        direct.start()
        direct_bars, relayed_bars = Bars(), Bars()
        BarFeed(direct, "10s", grace=0.5).on_bar.connect(direct_bars)
        BarFeed(consumer, "10s", grace=0.5).on_bar.connect(relayed_bars)
        consumer.subscribe(["005930", "000660"], ["0B"]).wait(5)
        direct.subscribe(["005930", "000660"], ["0B"]).wait(5)
        prices = [100, 104, 97, 101, 99, 120, 88, 105]
        buckets = set()
        for second in range(0, 80, 3):
            item = "005930" if second % 2 else "000660"
            buckets.add((item, second // 10))
            quiet_sim.push(trade(item, f"0900{second:02d}" if second < 60 else f"0901{second - 60:02d}",
                                 prices[second % len(prices)], (-1) ** second * (second + 1)))
        expected = direct_bars.wait_for(len(buckets))  # the last ones finished by the market clock
        relayed = relayed_bars.wait_for(len(buckets))
    finally:
        direct.close()
        consumer.close()
        relay.close()
    assert sorted(relayed, key=lambda b: (b.item, b.start)) == sorted(expected, key=lambda b: (b.item, b.start))
    assert sum(bar.trades for bar in expected) == 27


def test_us_bars_are_in_eastern_time(quiet_sim: SimServer, no_thread_leak: None) -> None:
    with RealtimeSession(DEFAULT_TOKEN, url=quiet_sim.us_url) as us:
        feed = BarFeed(us, "1m", items=["NASDAQ:NVDA"])
        assert feed.types == {"FE"}
        assert feed.items == {"NVDA"}
        bars = Bars()
        feed.on_bar.connect(bars)
        us.subscribe(["NASDAQ:NVDA"], ["FE"]).wait(5)
        for hhmmss in ("093001", "093059", "093100"):
            frame = trade("NVDA", hhmmss, 180, 10, "FE", {"51020": hhmmss, "22": "20260701"})
            frame["data"][0]["stexTp"] = "ND"
            quiet_sim.push(frame)
        [bar] = bars.wait_for(1)
    assert bar.start == dt.datetime(2026, 7, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=-4)))
    assert bar.trades == 2


def test_tick_and_volume_bars_on_a_session(quiet_sim: SimServer, no_thread_leak: None) -> None:
    with RealtimeSession(DEFAULT_TOKEN, url=quiet_sim.url) as session:
        ticks, volume = Bars(), Bars()
        BarFeed(session, ticks=3).on_bar.connect(ticks)
        BarFeed(session, volume=10).on_bar.connect(volume)
        session.subscribe(["005930"], ["0B"]).wait(5)
        for n, size in enumerate([4, 4, 4, 1, 1, 9]):
            quiet_sim.push(trade("005930", f"09000{n}", 100 + n, size))
        assert [bar.trades for bar in ticks.wait_for(2)] == [3, 3]
        assert [bar.volume for bar in volume.wait_for(2)] == [12, 11]



def test_bars_from_a_recording_cli_frames_and_build_bars_agree(quiet_sim: SimServer, tmp_path: Path,
                                                               no_thread_leak: None) -> None:
    import subprocess
    import sys

    import pandas

    from kiwoom_rt.bars import build_bars, recording_bars
    from kiwoom_rt.frames import BAR_COLUMNS, iter_events, to_frame

    from .test_cli import BASE_ENV, ROOT

    path = tmp_path / "day.jsonl.gz"
    live = Bars()
    with Recorder(path) as recorder:
        session = RealtimeSession(DEFAULT_TOKEN, url=quiet_sim.url, frame_hook=recorder)
        feed = BarFeed(session, "10s")
        feed.on_bar.connect(live)
        with session:
            session.subscribe(["005930", "000660"], ["0B"]).wait(5)
            for second in range(0, 45, 2):
                item = "005930" if second % 4 else "000660"
                quiet_sim.push(trade(item, f"0900{second:02d}", 100 + second % 7, second + 1))
            quiet_sim.push({"trnm": "REAL", "data": "junk"})  # a lost frame: the bars open then are incomplete
            for second in (46, 52, 58):
                quiet_sim.push(trade("005930", f"0900{second}", 99, 1))
            live.wait_for(4)
            wait_until(lambda: session.stats().events.get("0B", 0) == 26)  # all recorded
    built = list(recording_bars(path, "10s"))
    unmarked = list(build_bars(iter_events(path), "10s"))  # the events alone: the lost frame is not seen
    assert [bar.complete for bar in unmarked] != [bar.complete for bar in built], (unmarked, built)
    by_key = {(bar.item, bar.start): bar for bar in built}
    for bar in live.bars:  # what the live feed finished, the recording gives the same
        assert by_key[bar.item, bar.start] == bar
    assert sum(bar.trades for bar in built) == 26
    assert any(not bar.complete for bar in built if bar.start.second == 40)
    frame = to_frame(built)
    assert list(frame.columns) == list(BAR_COLUMNS)
    assert frame["volume"].sum() == sum(bar.volume for bar in built)
    for out in ("bars.csv", "bars.parquet"):
        result = subprocess.run([sys.executable, "-m", "kiwoom_rt", "bars", str(path), str(tmp_path / out),
                                 "--interval", "10s"], cwd=ROOT, env=BASE_ENV, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        assert f"{len(built)} bars written" in result.stderr
        read = (pandas.read_csv if out.endswith(".csv") else pandas.read_parquet)(tmp_path / out)
        assert list(read["volume"]) == [bar.volume for bar in built]
        assert list(read["complete"]) == [bar.complete for bar in built]
    refused = subprocess.run([sys.executable, "-m", "kiwoom_rt", "bars", str(path), str(tmp_path / "x.csv"),
                              "--interval", "7m"], cwd=ROOT, env=BASE_ENV, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "interval" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_watch_bars_on_the_simulator_prints_finished_bars() -> None:
    import json
    import subprocess
    import sys

    from .test_cli import BASE_ENV, ROOT

    result = subprocess.run([sys.executable, "-m", "kiwoom_rt", "watch", "005930", "--bars", "10s", "--sim",
                             "--duration", "4", "--json"], cwd=ROOT, env=BASE_ENV, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    bars = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(bars) >= 2
    assert all(bar["item"] == "005930" and bar["final"] for bar in bars)
    assert bars[0]["start"].endswith("+09:00")


def test_an_unusable_trade_is_reported_counted_and_marks_its_bar(quiet_sim: SimServer, no_thread_leak: None) -> None:
    from kiwoom_rt import DecodeError

    errors = Collector()
    with RealtimeSession(DEFAULT_TOKEN, url=quiet_sim.url) as session:
        session.on_error.connect(errors)
        feed = BarFeed(session, "10s")
        bars = Bars()
        feed.on_bar.connect(bars)
        session.subscribe(["005930"], ["0B"]).wait(5)
        quiet_sim.push(trade("005930", "090000", 100, 1))
        quiet_sim.push(trade("005930", "090010", 100, 1))
        bad = trade("005930", "090012", 100, 1)
        bad["data"][0]["values"]["15"] = "1x"  # an unusable volume
        quiet_sim.push(bad)
        quiet_sim.push(trade("005930", "090020", 100, 1))
        got = bars.wait_for(2)
        errors.wait_for(1)
    assert [bar.complete for bar in got] == [True, False]  # the second bar missed a trade
    assert feed.unusable == 1
    assert isinstance(errors.kwargs("error")[0], DecodeError)
