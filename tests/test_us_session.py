"""The US socket live: a RealtimeSession on the simulator's /api/us/websocket, over real sockets.

Subscriptions and typed FE/FT, orders and fills, condition search in either documented spelling,
a dropped connection (registrations and watches restored, with the resync diff), a domestic and
a US session side by side, and the recording, replay, export and CLI paths."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiwoom_rt import (
    ConditionError,
    RealtimeSession,
    Recorder,
    ReplaySession,
    UsConditionEvent,
    UsFill,
    UsItem,
    UsOrder,
    UsOrderBook,
    UsTrade,
)
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer, us_clock

from .helpers import Collector, wait_until

ROOT = Path(__file__).resolve().parent.parent
US_CONDITIONS = {"0": "나스닥 급등", "1": "대형 기술주", "7": "배당주"}


@pytest.fixture
def sim() -> Iterator[SimServer]:
    """A simulator in the US regular session, with known US conditions and no random churn."""
    with SimServer(rate=200, clock=us_clock(), us_conditions=US_CONDITIONS, condition_page_size=2,
                   condition_churn=0) as server:
        server.set_condition_members("1", ["AAPL", "MSFT", "NVDA"], market="us")
        server.set_condition_members("7", ["KO", "JPM", "XOM", "SPY", "DIS"], market="us")
        yield server


@pytest.fixture
def session(sim: SimServer, no_thread_leak: None) -> Iterator[RealtimeSession]:
    live = RealtimeSession(DEFAULT_TOKEN, url=sim.us_url, idle_timeout=3.0)
    yield live
    live.close()


def sent(sim: SimServer, prefix: str, conn: int = -1) -> list[dict[str, Any]]:
    """The client frames of a connection whose trnm starts with ``prefix``, parsed."""
    frames = []
    for raw in sim.frames_received(conn):
        try:
            frame = json.loads(raw)
        except ValueError:
            continue
        if isinstance(frame, dict) and str(frame.get("trnm", "")).startswith(prefix):
            frames.append(frame)
    return frames


def test_subscribe_and_receive_typed_trades_and_books(sim: SimServer, session: RealtimeSession) -> None:
    trades, books, nvda = Collector(), Collector(), Collector()
    session.signal("FE").connect(trades)
    session.signal("FT").connect(books)
    session.signal("FE").connect(nvda, sender="NVDA")
    assert session.market == "us"
    session.start()
    session.subscribe([UsItem("NVDA", "NASDAQ"), "NYSE:KO", "AMEX:SPY"], ["FE", "FT"]).wait(5)
    trades.wait_for(30)
    books.wait_for(30)
    nvda.wait_for(5)
    (reg,) = sent(sim, "REG")
    assert reg["data"] == [{"item": [{"jmcode": "NVDA", "stex_tp": "ND"}, {"jmcode": "KO", "stex_tp": "NY"},
                                     {"jmcode": "SPY", "stex_tp": "NA"}], "type": ["FE", "FT"]}]
    assert all(type(e) is UsTrade for e in trades.events)
    assert all(type(e) is UsOrderBook for e in books.events)
    assert {(e.code, e.exchange) for e in trades.events} == {("NVDA", "NASDAQ"), ("KO", "NYSE"), ("SPY", "AMEX")}
    assert {sender for sender, _ in nvda.calls} == {"NVDA"}
    trade, book = trades.events[-1], books.events[-1]
    assert isinstance(trade.price, float)
    assert trade.price > 0
    assert trade.trade_date is not None
    assert trade.volume != 0
    assert trade.cumulative_volume >= abs(trade.volume)
    assert len(book.asks) == len(book.bids) == 10
    assert book.asks[0].price > book.bids[0].price
    assert book.ask_total == sum(level.quantity for level in book.asks)
    assert session.stats()["decode_errors"] == 0


def test_plain_string_items_when_asked(sim: SimServer, no_thread_leak: None) -> None:
    got = Collector()
    with RealtimeSession(DEFAULT_TOKEN, url=sim.us_url, us_item_format="string") as live:
        live.signal("FE").connect(got)
        live.subscribe(["NASDAQ:NVDA"], ["FE"]).wait(5)
        got.wait_for(3)
    (reg,) = sent(sim, "REG")
    assert reg["data"][0]["item"] == ["NVDA"]
    assert got.events[0].exchange == "NASDAQ"  # from stexTp


def test_orders_and_fills(sim: SimServer, session: RealtimeSession) -> None:
    orders, fills = Collector(), Collector()
    session.signal("F4").connect(orders)
    session.signal("F5").connect(fills)
    session.start()
    session.subscribe("NASDAQ:NVDA", ["F4", "F5"]).wait(5)
    order_no = sim.us_order("NVDA", "buy", 3, 120.25)
    orders.wait_for(1)
    fills.wait_for(2)
    order, accepted, filled = orders.events[0], fills.events[0], fills.events[1]
    assert type(order) is UsOrder
    assert type(filled) is UsFill
    assert (order.order_no, order.symbol, order.side, order.quantity, order.price, order.currency) == \
        (order_no, "NVDA", "buy", 3, 120.25, "USD")
    assert (accepted.fill_quantity, accepted.unfilled_quantity) == (0, 3)
    assert (filled.fill_price, filled.fill_quantity, filled.unfilled_quantity, filled.holding_quantity) == \
        (120.25, 3, 0, 3)
    assert filled.average_price == pytest.approx(120.25)
    assert filled.status == "체결완료"
    sim.us_order("NVDA", "sell", 1, 121.0)
    fills.wait_for(4)
    assert (fills.events[-1].side, fills.events[-1].holding_quantity) == ("sell", 2)


def test_condition_search_list_paging_watch_and_hits(sim: SimServer, session: RealtimeSession) -> None:
    hits = Collector()
    session.on_condition.connect(hits, sender="1")
    session.start()
    assert [(c.seq, c.name) for c in session.conditions()] == list(US_CONDITIONS.items())
    found = session.search("7")
    assert [h.code for h in found] == ["DIS", "JPM", "KO", "SPY", "XOM"]
    assert {h.exchange for h in found} == {"NYSE", "AMEX"}
    assert all(isinstance(h.price, float) for h in found)
    pages = [f for f in sent(sim, "GCNSRREQ") if f["search_type"] == "0"]
    assert [(f["cont_yn"], f["next_key"]) for f in pages] == [("N", ""), ("Y", "2"), ("Y", "4")]
    assert "stex_tp" not in pages[0]
    watch = session.watch_condition("1").wait(5)
    assert watch.members == {"AAPL", "MSFT", "NVDA"}
    sim.condition_hit("1", "TSLA", True, market="us")
    hits.wait_for(1)
    event = hits.events[0]
    assert type(event) is UsConditionEvent
    assert (event.code, event.exchange, event.entered) == ("TSLA", "NASDAQ", True)
    wait_until(lambda: "TSLA" in watch.members)
    assert [f["trnm"] for f in sent(sim, "G")] == ["GCNSRLST", "GCNSRREQ", "GCNSRREQ", "GCNSRREQ", "GCNSRREQ"]


def test_condition_refusals(sim: SimServer, session: RealtimeSession) -> None:
    session.start()
    sim.refuse_next_condition_requests(1)
    with pytest.raises(ConditionError) as refused:
        session.conditions()
    assert refused.value.trnm == "CNSRLST"
    with pytest.raises(ConditionError):
        session.search("99")  # no such condition


@pytest.mark.parametrize("spellings", [{}, {"GCNSRLST": "GCNSRLT", "GCNSRREQ": "CNSRREQ"}],
                         ids=["example-scripts", "spec-tables"])
def test_either_reply_spelling_works(spellings: dict[str, str], no_thread_leak: None) -> None:
    with SimServer(clock=us_clock(), us_conditions=US_CONDITIONS, us_condition_spellings=spellings,
                   condition_churn=0) as server, RealtimeSession(DEFAULT_TOKEN, url=server.us_url) as live:
        assert len(live.conditions()) == 3
        assert live.search("0") != []
        assert live.watch_condition("0").wait(5).members
        replies = [json.loads(text)["trnm"] for _, text in server.sent_log() if "CNSR" in text]
        assert replies[0] == spellings.get("GCNSRLST", "GCNSRLST")


def test_a_dropped_connection_restores_registrations_and_watches_with_resync(
        sim: SimServer, session: RealtimeSession) -> None:
    resynced, trades = Collector(), Collector()
    session.on_condition.connect(resynced, sender="1")
    session.signal("FE").connect(trades)
    session.start()
    session.subscribe(["NASDAQ:NVDA", "NYSE:KO"], ["FE"]).wait(5)
    watch = session.watch_condition("1").wait(5)
    trades.wait_for(5)
    connections = sim.connections_total
    sim.set_condition_members("1", ["AAPL", "NVDA", "TSLA"], market="us")  # MSFT left, TSLA came, while down
    sim.drop_all()
    wait_until(lambda: sim.connections_total > connections and len(resynced.calls) >= 2, 10)
    (reg,) = sent(sim, "REG")
    assert sorted(reg["data"][0]["item"], key=lambda i: i["jmcode"]) == [
        {"jmcode": "KO", "stex_tp": "NY"}, {"jmcode": "NVDA", "stex_tp": "ND"}]
    frames = sent(sim, "G")
    assert frames[0] == {"trnm": "GCNSRLST"}  # the list first on the new connection
    assert frames[1] == {"trnm": "GCNSRREQ", "seq": "1", "search_type": "1"}
    assert [(e.code, e.entered, e.resync, type(e)) for e in resynced.events] == [
        ("MSFT", False, True, UsConditionEvent), ("TSLA", True, True, UsConditionEvent)]
    assert watch.members == {"AAPL", "NVDA", "TSLA"}
    before = len(trades.calls)
    trades.wait_for(before + 5)  # trades flow again on the new connection


def test_one_domestic_and_one_us_session_in_one_process(sim: SimServer, no_thread_leak: None) -> None:
    sim.set_rate(100)
    us_trades, kr_quotes = Collector(), Collector()
    with RealtimeSession(DEFAULT_TOKEN, url=sim.us_url) as us, RealtimeSession(DEFAULT_TOKEN, url=sim.url) as kr:
        assert (us.market, kr.market) == ("us", "kr")
        us.signal("FE").connect(us_trades)
        kr.on_real.connect(kr_quotes)
        us.subscribe("NASDAQ:NVDA").wait(5)
        kr.subscribe("005930", ["0B"]).wait(5)  # the US clock is the KST night: 0B does not flow, 0E does not either
        kr.subscribe("005930", ["0I"]).wait(5)  # a type the simulator streams at any hour
        us_trades.wait_for(5)
        kr_quotes.wait_for(5)
        assert us.state == kr.state == "connected"  # one token, both sockets: neither kicked the other
    assert {e.type for e in us_trades.events} == {"FE"}
    assert {e.type for e in kr_quotes.events} == {"0I"}
    assert {e.code for e in kr_quotes.events} == {"005930"}


def test_record_replay_and_export_us_frames(sim: SimServer, tmp_path: Path, no_thread_leak: None) -> None:
    path = tmp_path / "us.jsonl"
    recorder = Recorder(path, market="us", meta={"items": ["NASDAQ:NVDA", "NYSE:KO"]})
    seen = Collector()
    with RealtimeSession(DEFAULT_TOKEN, url=sim.us_url, frame_hook=recorder) as live:
        live.on_real.connect(seen)
        live.subscribe(["NASDAQ:NVDA", "NYSE:KO"], ["FE", "FT"]).wait(5)
        live.watch_condition("1").wait(5)
        sim.condition_hit("1", "TSLA", True, market="us")
        seen.wait_for(40)
    recorder.close()
    replayed = Collector()
    replay = ReplaySession(path, speed=None)
    assert replay.market == "us"
    replay.on_real.connect(replayed)
    replay.start()
    assert replay.wait(10)
    replay.close()
    assert [e.type for e in replayed.events] == [e.type for e in seen.events]
    assert replayed.events == seen.events  # the same typed events, the US way
    assert any(type(e) is UsConditionEvent for e in replayed.events)
    pandas = pytest.importorskip("pandas")
    from kiwoom_rt.frames import export, to_frame

    books = [e for e in seen.events if type(e) is UsOrderBook]
    table = to_frame(books)
    assert table["ask_price_1"].dtype == float
    assert table["ask_quantity_10"].notna().all()
    assert list(table["exchange"].unique()) in (["NASDAQ", "NYSE"], ["NYSE", "NASDAQ"], ["NASDAQ"], ["NYSE"])
    out = tmp_path / "fe.parquet"
    rows = export(path, out, "FE")
    assert rows == sum(1 for e in seen.events if e.type == "FE")
    frame = pandas.read_parquet(out)
    assert set(frame["code"]) <= {"NVDA", "KO"}
    assert frame["price"].dtype == float
    first_trade = next(e for e in seen.events if type(e) is UsTrade)
    assert frame["trade_date"].iloc[0] == first_trade.trade_date
    export(path, tmp_path / "ft.csv", "FT")


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiwoom_rt", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_cli_watch_conditions_search_and_demo_on_the_us_socket() -> None:
    watched = run_cli("watch", "NASDAQ:NVDA", "NYSE:KO", "--us", "--type", "FE", "--type", "FT", "--sim",
                      "--duration", "2")
    assert watched.returncode == 0, watched.stderr
    lines = watched.stdout.splitlines()
    assert any(" NVDA NASDAQ  FE trade" in line for line in lines)
    assert any(" KO NYSE  FT book" in line for line in lines)
    as_json = run_cli("watch", "ND:NVDA", "--us", "--sim", "--duration", "1", "--json")
    record = json.loads(as_json.stdout.splitlines()[0])
    assert (record["type"], record["code"], record["exchange"]) == ("FE", "NVDA", "NASDAQ")
    assert isinstance(record["price"], float)
    assert len(record["trade_date"]) == 10
    listed = run_cli("conditions", "--us", "--sim")
    assert listed.returncode == 0
    assert "나스닥 급등" in listed.stdout
    found = run_cli("search", "1", "--us", "--sim")
    assert found.returncode == 0
    assert "stocks in condition 1" in found.stderr
    demo = run_cli("demo", "--us", "--duration", "2", "--no-board")
    assert demo.returncode == 0
    assert "/api/us/websocket" in demo.stdout
    assert " FE trade" in demo.stdout
    wrong = run_cli("watch", "NASDAQ:NVDA", "--sim", "--duration", "1")
    assert wrong.returncode == 2
    assert "--us" in wrong.stderr
    wrong_type = run_cli("watch", "NASDAQ:NVDA", "--us", "--type", "0B", "--sim", "--duration", "1")
    assert wrong_type.returncode == 2
    assert "US socket" in wrong_type.stderr


def test_a_receiver_connected_with_any_spelling_of_a_us_item_fires(sim: SimServer,
                                                                    session: RealtimeSession) -> None:
    """US events carry the bare symbol; a receiver connected with the item as the README spells
    it (``"NASDAQ:NVDA"``), as a ``UsItem``, or in lower case hears them too (issue 37)."""
    spellings: dict[str, Collector] = {spelling: Collector() for spelling in
                                       ("NASDAQ:NVDA", "nasdaq:nvda", "ND:NVDA", "nvda", "NVDA")}
    for spelling, collector in spellings.items():
        session.signal("FE").connect(collector, sender=spelling)
    as_item = Collector()
    session.on_real.connect(as_item, sender=UsItem("nvda", "nasdaq"))
    other = Collector()
    session.signal("FE").connect(other, sender="NYSE:KO")
    session.start()
    session.subscribe(["nasdaq:nvda", "NYSE:KO"], ["FE"]).wait(5)
    for collector in (*spellings.values(), as_item, other):
        collector.wait_for(2)
    for collector in (*spellings.values(), as_item):
        assert {sender for sender, _ in collector.calls} == {"NVDA"}
    assert {sender for sender, _ in other.calls} == {"KO"}
    assert str(UsItem("nvda", "nasdaq")) == "NASDAQ:NVDA"
    with pytest.raises(ValueError, match="domestic code"):
        session.signal("FE").connect(Collector(), sender="005930")
    with pytest.raises(ValueError, match="unknown US exchange"):
        session.signal("FE").connect(Collector(), sender="LSE:VOD")
