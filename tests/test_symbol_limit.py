"""The socket's item limit (issue 37): a session setting, 200 by default, checked before anything
is sent; the simulator enforces the same limit as a server would."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kiwoom_rt import RealtimeSession, SubscribeError, SymbolLimitError
from kiwoom_rt._actions import Send
from kiwoom_rt._core import DEFAULT_MAX_ITEMS, SessionCore
from kiwoom_rt.messages import Ack
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

from .helpers import Collector, RedisServer
from .test_core import logged_in_core
from .test_session import quote_frame


def codes(count: int, start: int = 0) -> list[str]:
    return [f"{100000 + start + i:06d}" for i in range(count)]


logged_in = logged_in_core  # a core logged in on a connection (tests/test_core.py)


def ack_all(core: SessionCore, actions: list[object]) -> None:
    while any(isinstance(a, Send) for a in actions):
        actions = list(core.on_message(Ack("REG", 0, ""), 0.0))


# --- the decision (sans-I/O) -------------------------------------------------------------------

def test_the_default_is_200_items() -> None:
    assert DEFAULT_MAX_ITEMS == 200
    assert SessionCore().max_items == 200


def test_past_the_limit_is_refused_before_sending_and_nothing_registered_is_lost() -> None:
    core = logged_in()
    _, actions = core.subscribe("1", codes(150), ["0B", "0D"], True, 0.0)
    ack_all(core, actions)
    _, actions = core.subscribe("2", codes(50, 150), ["0B"], True, 0.0)
    ack_all(core, actions)
    before = core.registrations.snapshot()
    with pytest.raises(SymbolLimitError) as info:
        core.subscribe("3", codes(1, 200), ["0E"], True, 0.0)
    error = info.value
    assert (error.registered, error.requested, error.limit) == (200, 201, 200)
    assert "has 200 realtime items" in str(error)
    assert "would make 201" in str(error)
    assert "nothing was sent" in str(error)
    assert isinstance(error, SubscribeError)  # code catching refusals catches this one too
    assert core.registrations.snapshot() == before
    assert core.pipeline.pending == 0  # nothing queued, nothing sent


def test_items_count_once_whatever_their_types_and_groups() -> None:
    core = logged_in()
    core.subscribe("1", codes(200), ["0B"], True, 0.0)
    core.subscribe("2", codes(200), ["0D", "0H"], True, 0.0)  # the same 200 items: still 200
    assert core.registrations.counted_items() == 200


@pytest.mark.parametrize("types", [["00"], ["04"], ["00", "04"]])
def test_the_account_types_do_not_count(types: list[str]) -> None:
    core = logged_in(max_items=2)
    core.subscribe("1", codes(2), ["0B"], True, 0.0)
    core.subscribe("9", [""], types, True, 0.0)
    assert core.registrations.counted_items() == 2


def test_the_us_account_types_do_not_count() -> None:
    core = logged_in(max_items=1, market="us")
    core.subscribe("1", ["NASDAQ:NVDA"], ["FE"], True, 0.0)
    core.subscribe("9", ["NASDAQ:AAPL"], ["F4", "F5"], True, 0.0)  # orders and fills of AAPL
    with pytest.raises(SymbolLimitError, match="has 1 realtime items"):
        core.subscribe("1", ["NYSE:KO"], ["FE"], True, 0.0)


def test_replacing_a_group_counts_what_it_will_hold() -> None:
    core = logged_in(max_items=3)
    core.subscribe("1", codes(3), ["0B"], True, 0.0)
    core.subscribe("1", codes(3, 10), ["0B"], False, 0.0)  # refresh=False: the group is replaced
    assert core.registrations.snapshot() == {"1": {(c, "0B") for c in codes(3, 10)}}
    with pytest.raises(SymbolLimitError):
        core.subscribe("1", codes(1, 20), ["0B"], True, 0.0)  # refresh=True: adds


def test_an_unsubscribe_makes_room() -> None:
    core = logged_in(max_items=2)
    core.subscribe("1", codes(2), ["0B"], True, 0.0)
    core.unsubscribe("1", codes(1), ["0B"], 0.0)
    core.subscribe("1", codes(1, 50), ["0B"], True, 0.0)
    assert core.registrations.counted_items() == 2


def test_no_limit_and_a_bad_limit() -> None:
    core = logged_in(max_items=None)
    core.subscribe("1", codes(1000), ["0B"], True, 0.0)
    assert core.registrations.counted_items() == 1000
    with pytest.raises(ValueError, match="max_items"):
        SessionCore(max_items=0)
    with pytest.raises(ValueError, match="max_items"):
        RealtimeSession(DEFAULT_TOKEN, url="ws://127.0.0.1:1", max_items=0)


# --- a live session on the simulator ------------------------------------------------------------

@pytest.fixture
def limited_sim() -> Iterator[SimServer]:
    with SimServer(rate=200, max_items=3) as sim:
        yield sim


def reg_count(sim: SimServer) -> int:
    frames = [json.loads(f) for f in sim.frames_received() if isinstance(f, str) and f.startswith("{")]
    return sum(1 for frame in frames if frame.get("trnm") == "REG")


def test_a_session_refuses_before_sending_and_keeps_receiving(limited_sim: SimServer,
                                                              no_thread_leak: None) -> None:
    trades = Collector()
    with RealtimeSession(DEFAULT_TOKEN, url=limited_sim.url, max_items=3) as session:
        session.on_0e.connect(trades)
        session.subscribe(codes(3)).wait(5)
        sent = reg_count(limited_sim)
        with pytest.raises(SymbolLimitError) as info:
            session.subscribe(codes(2, 3))
        assert (info.value.registered, info.value.requested) == (3, 5)
        assert reg_count(limited_sim) == sent  # nothing went to the server
        assert session.registrations() == {"1": {(c, "0E") for c in codes(3)}}
        seen = len(trades.calls)
        calls = trades.wait_for(seen + 10)  # the three still flow
        assert {item for item, _ in calls[seen:]} <= set(codes(3))


def test_the_simulator_refuses_a_reg_past_its_limit_in_korean(limited_sim: SimServer,
                                                            no_thread_leak: None) -> None:
    with RealtimeSession(DEFAULT_TOKEN, url=limited_sim.url, max_items=None) as session:
        session.subscribe(codes(2), ["0B"], grp_no="1").wait(5)
        session.subscribe([""], ["00", "04"], grp_no="9").wait(5)  # account types: not counted
        handle = session.subscribe(codes(2, 2), ["0B"], grp_no="2")
        with pytest.raises(SubscribeError) as info:
            handle.wait(5)
        assert info.value.return_code != 0
        assert "종목 수(3)를 초과" in info.value.return_msg
        # the server kept what it had, and so did the session
        assert limited_sim.registrations() == {"1": {(c, "0B") for c in codes(2)},
                                               "9": {("", "00"), ("", "04")}}
        assert set(session.registrations()) == {"1", "9"}


def test_the_simulator_limit_matches_the_sessions_count() -> None:
    """The simulator counts as the session does (one shared rule): replacing a group frees its items."""
    with SimServer(max_items=2) as sim, RealtimeSession(DEFAULT_TOKEN, url=sim.url, max_items=None) as session:
        session.subscribe(codes(2), ["0B", "0D"]).wait(5)
        session.subscribe(codes(2, 5), ["0B"], refresh=False).wait(5)  # replaces group 1
        assert sim.registrations() == {"1": {(c, "0B") for c in codes(2, 5)}}


def test_the_frames_the_refusal_came_in(limited_sim: SimServer, no_thread_leak: None) -> None:
    """The refusal is an ordinary REG reply: return_code non-zero, return_msg in Korean."""
    with RealtimeSession(DEFAULT_TOKEN, url=limited_sim.url, max_items=None) as session:
        handle = session.subscribe(codes(4), ["0B"])
        with pytest.raises(SubscribeError):
            handle.wait(5)
    replies = [json.loads(f) for _, f in limited_sim.sent_log() if '"REG"' in f]
    assert replies[-1]["return_code"] == 1
    assert replies[-1]["return_msg"].startswith("실시간 등록 가능한 종목 수")


# --- through the relay -----------------------------------------------------------------------------

def test_a_relay_consumer_past_the_upstream_limit_is_told_and_nothing_is_lost(
        redis_server: RedisServer, no_thread_leak: None) -> None:
    """The relay's upstream session has the limit; the consumer that asks past it gets the
    refusal (the limit named), and what other consumers hold keeps flowing."""
    pytest.importorskip("redis")
    from kiwoom_rt.relay import Relay, RelaySession

    with SimServer(rate=0.0, condition_churn=0.0) as sim:
        relay = Relay.for_url(redis_server.url, DEFAULT_TOKEN, url=sim.url, heartbeat=0.2,
                              session_options={"max_items": 2})
        a, b = RelaySession(redis_server.url), RelaySession(redis_server.url)
        try:
            relay.start()
            a.start()
            b.start()
            a.subscribe(codes(2)).wait(5)
            b.subscribe(codes(1)).wait(5)  # shared: still two items upstream
            with pytest.raises(SubscribeError, match="limit of 2"):
                b.subscribe(codes(1, 2)).wait(5)
            assert relay.book.count(codes(1, 2)[0], "0E") == 0  # the book forgot the refused item
            assert relay.book.wants(b.name) == {(codes(1)[0], "0E")}
            assert {pair for group in sim.registrations(0).values() for pair in group} == {
                (c, "0E") for c in codes(2)}
            got = Collector()
            b.on_0e.connect(got)
            sim.push(quote_frame(codes(1)[0], ask="7"))
            got.wait_for(1)
            a.unsubscribe(codes(2)[1:]).wait(5)  # room again: the same request now passes
            b.subscribe(codes(1, 2)).wait(5)
        finally:
            b.close()
            a.close()
            relay.close()
