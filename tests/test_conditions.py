"""Condition search against the simulator, over real sockets."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from kiwoom_rt import ConditionError, ConnectError, RealtimeSession, protocol
from kiwoom_rt.conditions import Condition
from kiwoom_rt.events import ConditionEvent
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

from .helpers import Collector, wait_until

CONDITIONS = {"0": "급등주", "4": "골든크로스", "12": "눌림목"}


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(conditions=CONDITIONS, condition_page_size=2, condition_churn=0) as server:
        server.set_condition_members("4", ["005930", "000660", "035720", "051910", "006400"])
        server.set_condition_members("0", ["005380"])
        server.set_condition_members("12", [])
        yield server


@pytest.fixture
def session(sim: SimServer) -> Iterator[RealtimeSession]:
    live = RealtimeSession(DEFAULT_TOKEN, url=sim.url, idle_timeout=3.0)
    yield live
    live.close()


def sent(sim: SimServer, conn: int = -1) -> list[dict[str, Any]]:
    frames = []
    for raw in sim.frames_received(conn):
        try:
            frame = json.loads(raw)
        except ValueError:
            continue
        if isinstance(frame, dict) and str(frame.get("trnm", "")).startswith("CNSR"):
            frames.append(frame)
    return frames


def test_list_and_one_shot_search_with_paging(sim: SimServer, session: RealtimeSession) -> None:
    session.start()
    assert session.conditions() == [Condition("0", "급등주"), Condition("4", "골든크로스"),
                                    Condition("12", "눌림목")]
    hits = session.search("4")
    assert [h.code for h in hits] == ["000660", "005930", "006400", "035720", "051910"]  # 'A' dropped
    assert all(h.price is not None and h.price > 0 for h in hits)
    pages = [f for f in sent(sim) if f["trnm"] == "CNSRREQ"]
    assert [(f["cont_yn"], f["next_key"]) for f in pages] == [("N", ""), ("Y", "2"), ("Y", "4")]
    assert session.search("12") == []  # the padded seq "12 " pairs with its request


def test_refusal_and_timeout_leave_the_session_running(sim: SimServer, session: RealtimeSession) -> None:
    session.start()
    with pytest.raises(ConditionError) as info:
        session.search("9")
    assert info.value.return_code == 1
    sim.refuse_next_condition_requests(1)
    with pytest.raises(ConditionError):
        session.search("0")
    assert [h.code for h in session.search("0")] == ["005380"]
    sim.hold_condition_replies()
    with pytest.raises(TimeoutError):
        session.search("0", timeout=0.3)
    assert session.connected


def test_requests_before_start_wait_for_the_login(sim: SimServer, session: RealtimeSession) -> None:
    result: list[Any] = []
    caller = threading.Thread(target=lambda: result.append(session.conditions(timeout=10)))
    caller.start()
    watch = session.watch_condition("4")
    session.start()
    caller.join(10)
    assert len(result) == 1
    assert len(result[0]) == 3
    assert watch.wait(5).members == {"005930", "000660", "035720", "051910", "006400"}
    first = sent(sim)
    assert first[0]["trnm"] == "CNSRLST"  # the list before any search on the connection
    assert {"trnm": "CNSRREQ", "seq": "4", "search_type": "1", "stex_tp": "K"} in first


def test_watch_hits_signals_and_membership(sim: SimServer, session: RealtimeSession) -> None:
    every, only_4, type_02, real = Collector(), Collector(), Collector(), Collector()
    session.on_condition.connect(every)
    session.on_condition.connect(only_4, sender="4")
    session.signal("02").connect(type_02)
    session.on_real.connect(real)
    session.start()
    watch = session.watch_condition("4")
    assert session.watch_condition("4") is watch
    watch.wait(5)
    other = session.watch_condition("0").wait(5)
    assert every.calls == []  # no event for the initial member list
    sim.condition_hit("4", "000270", True)
    sim.condition_hit("4", "005930", False)
    sim.condition_hit("0", "000660", True)
    every.wait_for(3)
    assert [(seq, kwargs["event"].code, kwargs["event"].entered) for seq, kwargs in every.calls] == [
        ("4", "000270", True), ("4", "005930", False), ("0", "000660", True)]
    assert all(isinstance(e, ConditionEvent) and not e.resync for e in every.events)
    assert [e.code for e in only_4.events] == ["000270", "005930"]
    type_02.wait_for(3)
    real.wait_for(3)
    assert watch.members == {"000660", "035720", "051910", "006400", "000270"}
    assert other.members == {"005380", "000660"}


def test_hit_for_an_unwatched_seq_is_delivered_and_changes_nothing(sim: SimServer,
                                                                   session: RealtimeSession) -> None:
    got = Collector()
    session.on_condition.connect(got)
    session.start()
    watch = session.watch_condition("4").wait(5)
    before = watch.members
    sim.push(json.dumps({"trnm": "REAL", "data": [{"type": "02", "name": "조건검색", "item": "A068270", "values": {
        "841": "7", "9001": "A068270", "843": "I", "20": "100000", "907": "2"}}]}))
    got.wait_for(1)
    assert (got.calls[0][0], got.events[0].code) == ("7", "068270")
    assert watch.members == before


def test_watch_restored_after_an_abrupt_drop_with_resync(sim: SimServer, session: RealtimeSession) -> None:
    got = Collector()
    session.on_condition.connect(got)
    session.start()
    watch = session.watch_condition("4").wait(5)
    connections = sim.connections_total
    sim.set_condition_members("4", ["000660", "035720", "051910", "006400", "068270"])  # while down
    sim.drop_all()
    wait_until(lambda: sim.connections_total > connections and len(got.calls) >= 2, 10)
    frames = sent(sim, -1)
    assert frames[0]["trnm"] == "CNSRLST"  # the list first on the new connection
    assert frames[1] == {"trnm": "CNSRREQ", "seq": "4", "search_type": "1", "stex_tp": "K"}
    assert [(e.code, e.entered, e.resync) for e in got.events] == [("005930", False, True), ("068270", True, True)]
    assert watch.members == {"000660", "035720", "051910", "006400", "068270"}


def test_cancel_sends_cnsrclr_and_is_never_restored(sim: SimServer, session: RealtimeSession) -> None:
    session.start()
    watch = session.watch_condition("4").wait(5)
    watch.cancel()
    wait_until(lambda: any(f["trnm"] == "CNSRCLR" for f in sent(sim)), 5)
    assert {"trnm": "CNSRCLR", "seq": "4"} in sent(sim)
    connections = sim.connections_total
    sim.drop_all()
    wait_until(lambda: sim.connections_total > connections and session.connected, 10)
    session.conditions()  # a round trip on the new connection
    assert not any(f["trnm"] == "CNSRREQ" for f in sent(sim, -1))
    assert session.watch_condition("4") is not watch  # a new watch, on request


def test_one_shot_in_flight_when_the_connection_drops_fails(sim: SimServer, session: RealtimeSession) -> None:
    session.start()
    session.conditions()
    sim.hold_condition_replies()  # received, never answered
    errors: list[BaseException] = []
    caller = threading.Thread(target=lambda: _capture(errors, lambda: session.search("4", timeout=10)))
    caller.start()
    wait_until(lambda: any(f.get("seq") == "4" for f in sent(sim)), 5)
    sim.drop_all()
    caller.join(10)
    assert len(errors) == 1
    assert isinstance(errors[0], ConnectError)


def _capture(errors: list[BaseException], call: Any) -> None:
    try:
        call()
    except BaseException as exc:
        errors.append(exc)


def test_requests_are_paced(sim: SimServer) -> None:
    session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, condition_rate=2)
    try:
        session.start()
        callers = [threading.Thread(target=session.search, args=(seq,)) for seq in ("0", "12", "0", "12", "0")]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(15)
        stamps = [t for t, raw in sim.received_log() if isinstance(raw, str) and '"CNSR' in raw]
        assert len(stamps) == 6  # the list, then five searches: none dropped
        for index in range(len(stamps) - 2):
            assert stamps[index + 2] - stamps[index] >= 0.95  # at most two in any second
    finally:
        session.close()


def test_hits_keep_their_order_among_quotes(sim: SimServer, session: RealtimeSession) -> None:
    real = Collector()
    session.on_real.connect(real)
    session.start()
    session.watch_condition("4").wait(5)
    quote = {"trnm": "REAL", "data": [{"type": "0E", "item": "005930", "values": {
        "21": "160000", "131": "1", "132": "0", "135": "2", "136": "0"}}]}
    hit = {"trnm": "REAL", "data": [{"type": "02", "item": "000270", "values": {
        "841": "4", "9001": "000270", "843": "I", "20": "160000"}}]}
    sim.push_burst([quote, hit, quote, hit, quote])
    real.wait_for(5)
    assert [e.type for e in real.events] == ["0E", "02", "0E", "02", "0E"]


def test_seq_is_validated() -> None:
    with pytest.raises(ValueError, match="seq"):
        protocol.cnsrreq("x", realtime=True)


def test_hits_are_recorded_and_replayed_on_on_condition(sim: SimServer, tmp_path: Any) -> None:
    from kiwoom_rt.recording import Recorder
    from kiwoom_rt.replay import ReplaySession

    path = tmp_path / "hits.jsonl"
    live = Collector()
    with Recorder(path) as recorder:
        session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, frame_hook=recorder)
        session.on_condition.connect(live)
        try:
            session.start()
            session.watch_condition("4").wait(5)
            sim.condition_hit("4", "000270", True)
            sim.condition_hit("4", "000270", False)
            live.wait_for(2)
        finally:
            session.close()
    replayed = Collector()
    replay = ReplaySession(path, speed=None)
    replay.on_condition.connect(replayed, sender="4")
    with replay:
        assert replay.wait(10)
    replay.close()
    assert [(e.code, e.entered) for e in replayed.events] == [("000270", True), ("000270", False)]
    assert replayed.events == live.events


def test_watch_requested_while_reconnecting(sim: SimServer, session: RealtimeSession) -> None:
    session.start()
    connections = sim.connections_total
    sim.hold_logins()  # the next connection waits at LOGIN: the session is reconnecting
    sim.drop_all()
    wait_until(lambda: not session.connected, 5)
    watch = session.watch_condition("4")
    assert not watch.ready
    sim.hold_logins(False)
    sim.drop_all()  # the held connection goes; the next one logs in
    assert watch.wait(15).members == {"005930", "000660", "035720", "051910", "006400"}
    assert sim.connections_total > connections


def test_condition_events_through_a_queue_dispatcher_on_the_draining_thread(sim: SimServer) -> None:
    from kiwoom_rt import QueueDispatcher

    dispatcher = QueueDispatcher()
    session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, dispatcher=dispatcher)
    got = Collector()
    session.on_condition.connect(got)
    try:
        session.start()
        session.watch_condition("4").wait(5)
        sim.condition_hit("4", "000270", True)
        wait_until(lambda: dispatcher.drain() > 0 or bool(got.calls), 5)
        wait_until(lambda: (dispatcher.drain(), bool(got.calls))[1], 5)
    finally:
        session.close()
    assert got.threads == [threading.current_thread()]
    assert got.events[0].code == "000270"
