"""RealtimeSession against the simulator, over real loopback sockets."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kiwoom_rt import (
    AfterHoursQuote,
    ConnectError,
    DecodeError,
    LoginError,
    ProtocolError,
    RealtimeSession,
    ReceiverError,
    ReconnectPolicy,
    SessionClosedError,
    StockInfo,
    SubscribeError,
)
from kiwoom_rt.sim import DEFAULT_TOKEN, SimClock, SimServer

from .helpers import Collector, wait_until

FAST_RETRY = ReconnectPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.1, healthy_after=0.5)
Factory = Callable[..., RealtimeSession]


@pytest.fixture
def make_session(no_thread_leak: None) -> Iterator[Factory]:
    """Build sessions; every one is closed at the end of the test."""
    sessions: list[RealtimeSession] = []

    def factory(sim: SimServer, token: Any = DEFAULT_TOKEN, **kwargs: Any) -> RealtimeSession:
        kwargs.setdefault("reconnect", FAST_RETRY)
        session = RealtimeSession(token, url=sim.url, **kwargs)
        sessions.append(session)
        return session

    yield factory
    for session in sessions:
        session.close()


def reg_frames(sim: SimServer, conn: int = -1) -> list[dict[str, Any]]:
    frames = [json.loads(f) for f in sim.frames_received(conn) if isinstance(f, str) and f.startswith("{")]
    return [f for f in frames if f.get("trnm") in ("REG", "REMOVE")]


# --- start, login, close --------------------------------------------------------------------

def test_start_logs_in_and_close_leaves_nothing(sim: SimServer, make_session: Factory) -> None:
    session = make_session(sim)
    login = Collector()
    session.on_login.connect(login)
    assert session.start() is session
    assert session.connected
    login.wait_for(1)
    started = time.monotonic()
    session.close()
    assert time.monotonic() - started < 1.0
    assert session.state == "closed"
    wait_until(lambda: sim.connection_count == 0)


def test_context_manager_starts_and_closes(sim: SimServer, make_session: Factory) -> None:
    with make_session(sim) as session:
        assert session.connected
    assert session.state == "closed"


def test_refused_login_raises_login_error_and_stops(sim: SimServer, make_session: Factory) -> None:
    session = make_session(sim, token="bad-token-123")
    with pytest.raises(LoginError) as info:
        session.start(timeout=5)
    assert info.value.return_code == 805004
    assert "8005" in info.value.return_msg
    assert session.state == "closed"
    assert sim.login_attempts == 2  # refused, retried once with a fresh token, refused again


def test_unreachable_server_raises_connect_error(make_session: Factory) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = RealtimeSession(DEFAULT_TOKEN, url=f"ws://127.0.0.1:{port}/api/dostk/websocket")
    with pytest.raises(ConnectError):
        session.start(timeout=5)
    assert session.state == "closed"


def test_wrong_path_raises_connect_error(sim: SimServer, make_session: Factory) -> None:
    session = RealtimeSession(DEFAULT_TOKEN, url=sim.url.replace("/api/dostk/websocket", "/nope"))
    with pytest.raises(ConnectError):
        session.start(timeout=5)


def test_start_times_out_when_login_never_answered(make_session: Factory) -> None:
    with SimServer() as sim:
        sim.hold_logins()
        session = make_session(sim, login_timeout=30)
        with pytest.raises(TimeoutError):
            session.start(timeout=1.0)
        assert session.state == "closed"


def test_start_runs_once(sim: SimServer, make_session: Factory) -> None:
    session = make_session(sim).start()
    with pytest.raises(RuntimeError):
        session.start()


def test_plain_ws_to_remote_host_is_refused() -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        RealtimeSession("t" * 20, url="ws://example.com/api/dostk/websocket")


# --- PING -----------------------------------------------------------------------------------

def ping_delays(sim: SimServer, conn: int = -1) -> list[float]:
    """Seconds between each PING the server sent and the client's echo."""
    sent = [t for t, frame in sim.sent_log(conn) if frame == '{"trnm":"PING"}']
    echoed = [t for t, frame in sim.received_log(conn) if frame == '{"trnm":"PING"}']
    return [e - s for s, e in zip(sent, echoed, strict=False)]


def test_ping_is_echoed_unchanged() -> None:
    with SimServer(ping_interval=0.05) as sim, RealtimeSession(DEFAULT_TOKEN, url=sim.url) as session:
        wait_until(lambda: sim.pings_echoed() >= 3)
        assert session.stats()["pings_echoed"] >= 3
        assert '{"trnm":"PING"}' in sim.frames_received()


def test_ping_is_echoed_while_a_receiver_sleeps(no_thread_leak: None) -> None:
    with SimServer(ping_interval=0.05, rate=50) as sim:
        session = RealtimeSession(DEFAULT_TOKEN, url=sim.url)
        release = threading.Event()
        entered = threading.Event()

        def slow(item: str, event: Any) -> None:
            entered.set()
            release.wait(10)

        session.on_0e.connect(slow)
        try:
            session.start()
            session.subscribe(["005930"]).wait(5)
            assert entered.wait(5)
            before = sim.pings_echoed()
            wait_until(lambda: sim.pings_echoed() >= before + 10, timeout=5)
            delays = ping_delays(sim)[-10:]
            assert max(delays) < 0.05, delays  # milliseconds, though the receiver is stuck
        finally:
            release.set()
            session.close()


def test_bare_text_ping_is_echoed(sim: SimServer, make_session: Factory) -> None:
    make_session(sim).start()
    sim.push("PING")
    wait_until(lambda: "PING" in sim.frames_received())


# --- decoding and routing -------------------------------------------------------------------

def quote_frame(item: str, ask: str = "100", type_code: str = "0E") -> dict[str, Any]:
    values = {"21": "165208", "131": ask, "132": "+1", "135": "7", "136": "-2"}
    return {"trnm": "REAL", "data": [{"type": type_code, "name": "x", "item": item, "values": values}]}


def test_events_are_decoded_and_routed_by_type_and_item(sim: SimServer, make_session: Factory) -> None:
    session = make_session(sim)
    all_0e, one_item, every, upper_g, lower_g = Collector(), Collector(), Collector(), Collector(), Collector()
    session.on_0e.connect(all_0e)
    session.on_0e.connect(one_item, sender="000660_NX")
    session.on_real.connect(every)
    session.signal("0G").connect(upper_g)
    session.signal("0g").connect(lower_g)
    session.start()
    sim.push(quote_frame("005930"))
    sim.push(quote_frame("000660_NX", ask="5"))
    sim.push({"trnm": "REAL", "data": [{"type": "0g", "name": "주식종목정보", "item": "005930",
                                        "values": {"305": "+1000"}}]})
    all_0e.wait_for(2)
    every.wait_for(3)
    lower_g.wait_for(1)
    first, _ = all_0e.events
    assert isinstance(first, AfterHoursQuote)
    assert (first.item, first.ask_total, first.ask_total_change, first.bid_total_change) == ("005930", 100, 1, -2)
    assert [sender for sender, _ in one_item.calls] == ["000660_NX"]
    assert one_item.events[0].exchange == "NXT"
    assert isinstance(lower_g.events[0], StockInfo)
    assert lower_g.events[0].type == "0g"
    assert lower_g.events[0].upper_limit == 1000
    assert upper_g.calls == []
    assert session.stats()["events"] == {"0E": 2, "0g": 1}


def test_events_arrive_in_order_from_a_subscription(make_session: Factory) -> None:
    with SimServer(rate=500, batch=5, clock=SimClock(speed=0)) as sim:
        session = make_session(sim)
        got = Collector()
        session.on_0e.connect(got, sender="005930")
        session.start()
        session.subscribe(["005930", "000660"]).wait(5)
        got.wait_for(50)
        events = got.events
        totals = [e.ask_total for e in events]
        changes = [e.ask_total_change for e in events]
        assert all(b - a == c for a, b, c in zip(totals, totals[1:], changes[1:], strict=False))


def test_bad_entry_goes_to_on_error_and_good_ones_flow(sim: SimServer, make_session: Factory) -> None:
    session = make_session(sim)
    quotes, errors = Collector(), Collector()
    session.on_0e.connect(lambda item, event: quotes(item, event=event, time=event.time))  # reads a field
    session.on_error.connect(errors)
    session.start()
    frame = quote_frame("005930")
    frame["data"].append({"type": "0E", "item": "1", "values": {"21": "x"}})  # found when its time is read
    sim.push(frame)
    sim.push("{not json")
    sim.push(b"\x00binary")
    sim.push({"trnm": "NEWTHING"})
    sim.push(quote_frame("000660"))
    quotes.wait_for(2)
    errors.wait_for(4)
    kinds = [type(e) for e in errors.kwargs("error")]
    assert kinds.count(DecodeError) == 1
    assert kinds.count(ProtocolError) == 3
    assert session.connected
    assert session.stats()["decode_errors"] == 4


# --- receivers ------------------------------------------------------------------------------

def test_lambda_receivers_are_held_strongly(sim: SimServer, make_session: Factory) -> None:
    import gc

    session = make_session(sim)
    seen: list[str] = []
    session.on_0e.connect(lambda item, event: seen.append(item))
    gc.collect()
    session.start()
    sim.push(quote_frame("005930"))
    wait_until(lambda: seen == ["005930"])


def test_weak_receivers_stay_available(sim: SimServer, make_session: Factory) -> None:
    import gc

    session = make_session(sim)
    seen: list[str] = []
    session.on_0e.connect(lambda item, event: seen.append(item), weak=True)
    gc.collect()
    assert not session.on_0e.receivers


def test_raising_receiver_is_isolated(sim: SimServer, make_session: Factory, caplog: Any) -> None:
    session = make_session(sim)
    errors, after = Collector(), Collector()

    def broken(item: str, event: Any) -> None:
        raise RuntimeError("boom")

    session.on_0e.connect(broken)
    session.on_0e.connect(after)
    session.on_error.connect(errors)
    session.on_error.connect(lambda s, error: 1 / 0)  # a raising on_error receiver is only logged
    session.start()
    with caplog.at_level(logging.ERROR, logger="kiwoom_rt"):
        sim.push(quote_frame("005930"))
        sim.push(quote_frame("000660"))
        after.wait_for(2)
        errors.wait_for(2)
    error = errors.kwargs("error")[0]
    assert isinstance(error, ReceiverError)
    assert isinstance(error.__cause__, RuntimeError)
    assert any("boom" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    assert session.connected


def test_connect_and_disconnect_while_sending(make_session: Factory) -> None:
    with SimServer(rate=5000, batch=20) as sim:
        session = make_session(sim)
        counter = Collector()
        session.on_0e.connect(counter)
        session.start()
        session.subscribe([f"{i:06d}" for i in range(50)]).wait(5)
        errors = Collector()
        session.on_error.connect(errors)
        for _ in range(300):
            def receiver(item: str, event: Any) -> None:
                pass
            session.on_0e.connect(receiver)
            session.on_0e.connect(receiver, sender="000001")
            session.on_0e.disconnect(receiver)
        counter.wait_for(2000, timeout=10)
        assert errors.calls == []


def test_receivers_run_on_the_thread_that_read_the_events_in_both_modes(
        sim: SimServer, make_session: Factory) -> None:
    sim.add_token("second-token", appkey="second-app")  # one session per app key
    threaded, inline = make_session(sim), make_session(sim, token="second-token", inline=True)
    a, b = Collector(), Collector()
    threaded.on_0e.connect(a)
    inline.on_0e.connect(b)
    threaded.start()
    inline.start()
    sim.push(quote_frame("005930"))
    a.wait_for(1)
    b.wait_for(1)
    # no handoff to another thread: the I/O thread delivers what it read
    assert a.threads[0].name == "kiwoom-rt-io"
    assert b.threads[0].name == "kiwoom-rt-io"


# --- subscriptions --------------------------------------------------------------------------

def test_subscribe_before_start_is_sent_at_login(sim: SimServer, make_session: Factory) -> None:
    session = make_session(sim)
    sub = session.subscribe(["005930", "000660"], ["0E", "0B"], grp_no="2")
    assert not sub.done
    session.start()
    sub.wait(5)
    assert sim.registrations() == {"2": {(i, t) for i in ("005930", "000660") for t in ("0E", "0B")}}


def test_chunks_of_at_most_100_one_at_a_time(make_session: Factory) -> None:
    with SimServer(ack_delay=0.02, max_items=None) as sim:
        session = make_session(sim, max_items=None).start()  # 250 items: past the default limit
        items = [f"{i:06d}" for i in range(250)]
        session.subscribe(items).wait(5)
        regs = reg_frames(sim)
        assert [len(r["data"][0]["item"]) for r in regs] == [100, 100, 50]
        assert len(sim.registrations()["1"]) == 250
        # each REG left the client only after the previous one was acknowledged
        sent_acks = [t for t, frame in sim.sent_log() if '"trnm": "REG"' in frame]
        received = [t for t, frame in sim.received_log() if isinstance(frame, str) and '"REG"' in frame]
        assert len(sent_acks) == 3
        assert received[1] >= sent_acks[0]
        assert received[2] >= sent_acks[1]


def test_chunk_size_is_configurable(sim: SimServer, make_session: Factory) -> None:
    session = make_session(sim, chunk_size=7).start()
    session.subscribe([str(i) for i in range(20)]).wait(5)
    assert [len(r["data"][0]["item"]) for r in reg_frames(sim)] == [7, 7, 6]


def test_refused_reg_raises_subscribe_error(make_session: Factory) -> None:
    with SimServer(max_items_per_reg=5) as sim:
        session = make_session(sim, chunk_size=10).start()
        handle = session.subscribe([str(i) for i in range(6)])
        with pytest.raises(SubscribeError) as info:
            handle.wait(5)
        assert info.value.return_code == 1
        assert session.registrations() == {}  # a refused registration is not restored later


def test_unknown_type_is_refused_before_sending(sim: SimServer, make_session: Factory) -> None:
    session = make_session(sim)
    with pytest.raises(ValueError, match="unknown realtime type"):
        session.subscribe(["005930"], ["0Z"])


def test_cancel_sends_remove(sim: SimServer, make_session: Factory) -> None:
    session = make_session(sim).start()
    sub = session.subscribe(["005930", "000660"]).wait(5)
    sub.cancel().wait(5)
    assert sim.registrations() == {}
    assert reg_frames(sim)[-1]["trnm"] == "REMOVE"


# --- reconnect ------------------------------------------------------------------------------

def lifecycle(session: RealtimeSession) -> dict[str, Collector]:
    collectors = {name: Collector() for name in (
        "on_connected", "on_login", "on_disconnected", "on_reconnecting", "on_gave_up", "on_system")}
    for name, collector in collectors.items():
        getattr(session, name).connect(collector)
    return collectors


@pytest.mark.parametrize("fault", ["drop", "close", "silent", "r10002"])
def test_reconnect_and_restore_after_fault(fault: str, make_session: Factory) -> None:
    with SimServer(rate=100, ping_interval=0.2) as sim:
        session = make_session(sim, idle_timeout=0.6)
        events = lifecycle(session)
        quotes = Collector()
        session.on_0e.connect(quotes)
        session.start()
        session.subscribe(["005930", "000660"]).wait(5)
        session.subscribe(["035720"], ["0B"], grp_no="7").wait(5)
        quotes.wait_for(5)
        if fault == "drop":
            sim.drop_all()
        elif fault == "close":
            sim.close_all(1001, "restart")
        elif fault == "silent":
            sim.go_silent()
        else:
            sim.send_system("R10002", "no heartbeat")
            sim.close_all()
        events["on_login"].wait_for(2, timeout=5)
        wait_until(lambda: sim.registrations() == {
            "1": {("005930", "0E"), ("000660", "0E")}, "7": {("035720", "0B")}})
        disconnected = events["on_disconnected"].calls[0][1]
        assert disconnected["will_retry"] is True
        if fault == "close":
            assert disconnected["code"] == 1001
        assert events["on_reconnecting"].kwargs("attempt")[0] == 1
        count = len(quotes.calls)
        quotes.wait_for(count + 5)
        assert session.stats()["reconnects"] >= 1


def test_unsubscribe_survives_a_reconnect(make_session: Factory) -> None:
    with SimServer() as sim:
        session = make_session(sim)
        logins = Collector()
        session.on_login.connect(logins)
        session.start()
        session.subscribe(["005930", "000660", "035720"]).wait(5)
        session.unsubscribe(["000660"]).wait(5)
        sim.drop_all()
        logins.wait_for(2)
        wait_until(lambda: sim.registrations() == {"1": {("005930", "0E"), ("035720", "0E")}})


def test_subscribe_and_unsubscribe_while_reconnecting(make_session: Factory) -> None:
    with SimServer() as sim:
        slow_retry = ReconnectPolicy(first_delay=0.3, healthy_after=60)
        session = make_session(sim, reconnect=slow_retry)
        reconnecting = Collector()
        session.on_reconnecting.connect(reconnecting)
        session.start()
        session.subscribe(["005930", "000660"]).wait(5)
        sim.drop_all()
        reconnecting.wait_for(1)
        added = session.subscribe(["035720"])
        removed = session.unsubscribe(["000660"])
        removed.wait(5)
        added.wait(5)
        assert sim.registrations() == {"1": {("005930", "0E"), ("035720", "0E")}}


def test_token_callable_is_consulted_before_every_connect(make_session: Factory) -> None:
    with SimServer(tokens={"first-token": "app", "second-token": "app"}) as sim:
        tokens = iter(["first-token", "second-token"])
        calls: list[str] = []

        def source() -> str:
            calls.append(next(tokens))
            return calls[-1]

        session = make_session(sim, token=source)
        logins = Collector()
        session.on_login.connect(logins)
        session.start()
        sim.drop_all()
        logins.wait_for(2)
        assert calls == ["first-token", "second-token"]
        assert json.loads(sim.frames_received()[0])["token"] == "second-token"


def test_refused_token_is_retried_once_with_a_fresh_one_then_given_up(make_session: Factory) -> None:
    with SimServer(tokens={"good-token": "app"}) as sim:
        invalidated: list[bool] = []

        class Source:
            def __init__(self) -> None:
                self.calls = 0

            def __call__(self) -> str:
                self.calls += 1
                return "good-token"

            def invalidate(self) -> None:
                invalidated.append(True)

        source = Source()
        session = make_session(sim, token=source)
        events = lifecycle(session)
        session.start()
        sim.refuse_next_logins(1)
        sim.drop_all()
        events["on_login"].wait_for(2)  # refused once, the fresh token got in
        assert invalidated == [True]
        sim.refuse_next_logins(2)
        sim.drop_all()
        events["on_gave_up"].wait_for(1)
        error = events["on_gave_up"].kwargs("error")[0]
        assert isinstance(error, LoginError)
        assert session.state == "gave_up"
        attempts = sim.login_attempts
        time.sleep(0.3)  # a reconnect storm would show up here
        assert sim.login_attempts == attempts == 5
        with pytest.raises(SessionClosedError):
            session.subscribe(["005930"])


def test_r10001_gives_up_by_default(make_session: Factory) -> None:
    with SimServer() as sim:
        first = make_session(sim)
        events = lifecycle(first)
        first.start()
        second = make_session(sim).start()
        events["on_gave_up"].wait_for(1)
        assert events["on_system"].kwargs("code") == ["R10001"]
        assert "R10001" in str(events["on_gave_up"].kwargs("error")[0])
        assert second.connected
        assert sim.logins == 2


def test_r10001_may_reconnect_when_asked(make_session: Factory) -> None:
    with SimServer(tokens={"a-token": "app", "b-token": "other"}) as sim:
        session = make_session(sim, token="a-token", reconnect_on_kicked=True)
        logins = Collector()
        session.on_login.connect(logins)
        session.start()
        sim.send_system("R10001", "elsewhere")
        sim.close_all()
        logins.wait_for(2)


def test_max_attempts_then_gave_up(make_session: Factory) -> None:
    sim = SimServer().start()
    session = make_session(sim, reconnect=ReconnectPolicy(first_delay=0.01, base_delay=0.01, max_attempts=2))
    events = lifecycle(session)
    session.start()
    sim.stop()
    events["on_gave_up"].wait_for(1)
    assert events["on_reconnecting"].kwargs("attempt") == [1, 2]


def test_backoff_grows_and_is_capped() -> None:
    policy = ReconnectPolicy(first_delay=0.1, base_delay=0.5, multiplier=2, max_delay=30, jitter=0)
    assert [policy.delay(n, lambda: 0.0) for n in range(8)] == [0.1, 0.5, 1, 2, 4, 8, 16, 30]
    jittered = ReconnectPolicy(jitter=0.5)
    assert 0.25 <= jittered.delay(1, lambda: 1.0) <= jittered.delay(1, lambda: 0.0) == 0.5


# --- close ----------------------------------------------------------------------------------

@pytest.mark.parametrize("inline", [False, True])
def test_close_from_a_receiver(inline: bool, no_thread_leak: None) -> None:
    with SimServer() as sim:
        session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, inline=inline)
        closed = threading.Event()

        def close_now(item: str, event: Any) -> None:
            session.close()
            closed.set()

        session.on_0e.connect(close_now)
        session.start()
        sim.push(quote_frame("005930"))
        assert closed.wait(5)
        assert session.state == "closed"
    # no_thread_leak checks that the session's threads ended right after


def test_close_returns_fast_when_the_server_is_silent(no_thread_leak: None) -> None:
    with SimServer() as sim:
        session = RealtimeSession(DEFAULT_TOKEN, url=sim.url).start()
        sim.go_silent()
        started = time.monotonic()
        session.close()
        assert time.monotonic() - started < 1.0


def test_close_is_idempotent_and_fails_pending_handles(sim: SimServer, make_session: Factory) -> None:
    session = make_session(sim)
    pending = session.subscribe(["005930"])
    session.close()
    session.close()
    with pytest.raises(SessionClosedError):
        pending.wait(1)


def test_close_leaves_no_socket_open(sim: SimServer, no_thread_leak: None) -> None:
    import psutil

    process = psutil.Process()
    before = len(process.net_connections(kind="tcp"))
    for _ in range(5):
        RealtimeSession(DEFAULT_TOKEN, url=sim.url).start().close()
    wait_until(lambda: sim.connection_count == 0)
    mine = [c for c in process.net_connections(kind="tcp")
            if c.raddr and c.raddr.port == sim.port and c.status != psutil.CONN_TIME_WAIT]
    assert mine == []
    assert len(process.net_connections(kind="tcp")) <= before + 1


# --- overflow, idle, stats, secrets ---------------------------------------------------------

def test_overflow_drops_oldest_and_is_signalled(make_session: Factory) -> None:
    with SimServer(rate=3000, batch=10) as sim:
        session = make_session(sim, queue_size=50, overflow="drop_oldest")
        overflow = Collector()
        release = threading.Event()
        first = threading.Event()
        received: list[int] = []

        def stuck(item: str, event: Any) -> None:
            received.append(1)
            first.set()
            release.wait(10)

        session.on_0e.connect(stuck)
        session.on_overflow.connect(overflow)
        session.start()
        session.subscribe(["005930", "000660"])
        assert first.wait(5)
        wait_until(lambda: session.stats()["dropped"] > 500)
        assert session.stats()["queue_depth"] <= 50
        release.set()
        overflow.wait_for(1)
        assert sum(overflow.kwargs("dropped")) > 0


def test_stats_counts(sim: SimServer, make_session: Factory) -> None:
    session = make_session(sim).start()
    sim.push(quote_frame("005930"))
    wait_until(lambda: session.stats()["events"].get("0E") == 1)
    stats = session.stats()
    for key in ("frames", "events", "decode_errors", "dropped", "reconnects", "last_frame_time", "queue_depth"):
        assert key in stats
    assert stats["last_frame_age"] < 5


# --- frame shapes through both decoding paths -----------------------------------------------

@pytest.mark.parametrize("inline", [False, True])
def test_frame_spellings_and_key_orders_all_decode(inline: bool, sim: SimServer, make_session: Factory) -> None:
    session = make_session(sim, inline=inline)
    quotes, errors = Collector(), Collector()
    session.on_0e.connect(quotes)
    session.on_error.connect(errors)
    session.start()
    entry = quote_frame("005930")["data"][0]
    body = json.dumps(entry)
    sim.push('{"trnm":"REAL","data":[' + body + "]}")  # compact
    sim.push('{"trnm": "REAL", "data": [' + body + "]}")  # spaced
    sim.push('{"data": [' + body + '], "trnm" : "REAL"}')  # data first, odd spacing
    sim.push({"trnm": "REAL", "data": [entry, dict(entry, item="000660"), dict(entry, item="035720")]})
    quotes.wait_for(6)
    assert errors.calls == []
    assert [e.item for e in quotes.events][-3:] == ["005930", "000660", "035720"]
    assert session.stats()["events"]["0E"] == 6


def test_nested_trnm_real_inside_another_message_is_still_protocol(
        sim: SimServer, make_session: Factory) -> None:
    session = make_session(sim)
    system = Collector()
    session.on_system.connect(system)
    session.start()
    sim.push('{"trnm":"SYSTEM","code":"X1","message":"m","detail":{"trnm":"REAL"}}')
    system.wait_for(1)
    assert system.kwargs("code") == ["X1"]


def test_oversized_frame_is_refused_and_reported_then_events_flow(sim: SimServer, make_session: Factory) -> None:
    from kiwoom_rt import FrameTooLargeError

    session = make_session(sim, max_frame_bytes=64 * 1024)
    quotes, errors = Collector(), Collector()
    session.on_0e.connect(quotes)
    session.on_error.connect(errors)
    session.start()
    sim.push('{"trnm":"REAL","data":[],"pad":"%s"}' % ("x" * 200_000))
    sim.push(quote_frame("005930"))
    quotes.wait_for(1)
    errors.wait_for(1)
    error = errors.kwargs("error")[0]
    assert isinstance(error, FrameTooLargeError)
    assert error.size > 200_000
    assert session.connected


def test_a_frame_hook_can_take_real_frames_but_nothing_else(sim: SimServer, make_session: Factory) -> None:
    taken: list[bytes] = []

    def forward(frame: bytes, received_at: float) -> bool:
        taken.append(frame)
        return True  # "mine": the relay forwards frames this way, undecoded

    session = make_session(sim, frame_hook=forward)
    quotes = Collector()
    session.on_0e.connect(quotes)
    session.start()
    session.subscribe(["005930"]).wait(5)  # the REG ack was not taken: it had to be handled
    sim.push('{"trnm":"REAL","data":[{"type":"0E","name":"x","item":"005930","values":{"131":"1"}}]}')
    sim.push('{"data":[{"type":"0E","name":"x","item":"000660","values":{"131":"2"}}],"trnm":"REAL"}')
    sim.push({"trnm": "PING"})
    wait_until(lambda: sim.pings_echoed() >= 1)  # a PING the hook claimed is still echoed
    wait_until(lambda: session.stats().real_frames == 2)  # REAL in any key order is recognised
    assert quotes.events == []  # both were taken, undecoded
    stats = session.stats()
    assert stats.events == {}
    assert len(taken) >= 4
