"""The sans-I/O session core, tested by calling it: no sockets, threads or clocks."""

from __future__ import annotations

from typing import Any

from kiwoom_rt import ConnectError, LoginError, ReconnectPolicy, SessionClosedError, SubscribeError
from kiwoom_rt._actions import (
    Abort,
    Completed,
    Echo,
    Failed,
    GiveUp,
    InvalidateToken,
    Report,
    Retry,
    Send,
)
from kiwoom_rt._core import Outcome, SessionCore
from kiwoom_rt._notices import Connected, Disconnected, LoggedIn, Reconnecting
from kiwoom_rt._notices import GaveUp as GaveUpNotice
from kiwoom_rt._state import SessionState
from kiwoom_rt.messages import Ack, LoginReply, Ping, SystemNotice, Unknown

OK = LoginReply(0, "")


def logged_in_core(**kwargs: object) -> SessionCore:
    core = SessionCore(random=lambda: 0.0, **kwargs)  # type: ignore[arg-type]
    core.start()
    core.connection_started()
    core.connection_opened(0.0)
    core.login_sent(0.0)
    core.on_message(OK, 0.0)
    return core


def of(kind: type, actions: list[Any]) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def test_a_subscription_made_before_login_is_sent_at_login_and_acked() -> None:
    core = SessionCore()
    core.start()
    request, actions = core.subscribe("1", ["005930"], ["0E"], True, 0.0)
    assert actions == []  # not logged in: waits
    core.connection_started()
    assert core.connection_opened(0.0) == [Connected()]
    actions = core.on_message(OK, 1.0)
    assert core.state is SessionState.CONNECTED
    assert [type(a) for a in actions] == [LoggedIn, Send]
    assert '"REG"' in str(actions[1].frame)  # type: ignore[union-attr]
    assert core.on_message(Ack("REG", 0, ""), 1.1) == [Completed(request)]


def test_requests_go_one_at_a_time_and_acks_pair_in_order() -> None:
    core = logged_in_core(chunk_size=2)
    request, sent = core.subscribe("1", ["000001", "000002", "000003", "000004", "000005"], ["0E"], True, 0.0)
    assert len(sent) == 1  # three chunks, one in flight
    assert core.pipeline.pending == 3
    assert [type(a) for a in core.on_message(Ack("REG", 0, ""), 0.1)] == [Send]
    assert [type(a) for a in core.on_message(Ack("REG", 0, ""), 0.2)] == [Send]
    assert core.on_message(Ack("REG", 0, ""), 0.3) == [Completed(request)]  # done once all three were acked


def test_a_refused_reg_fails_the_request_and_is_not_restored() -> None:
    core = logged_in_core()
    request, _ = core.subscribe("1", ["005930"], ["0E"], True, 0.0)
    (failed,) = core.on_message(Ack("REG", 1, "no"), 0.1)
    assert isinstance(failed, Failed)
    assert failed.request == request
    assert isinstance(failed.error, SubscribeError)
    assert core.registrations.snapshot() == {}


def test_an_unsubscribe_while_offline_is_done_at_once() -> None:
    core = SessionCore()
    core.start()
    core.subscribe("1", ["005930"], ["0E"], True, 0.0)
    request, actions = core.unsubscribe("1", ["005930"], ["0E"], 0.0)
    assert actions == [Completed(request)]
    assert core.registrations.snapshot() == {}


def test_an_unpaired_ack_is_reported() -> None:
    core = logged_in_core()
    (action,) = core.on_message(Ack("REG", 0, ""), 0.0)
    assert isinstance(action, Report)


def test_ping_is_echoed_verbatim_and_counted() -> None:
    core = logged_in_core()
    assert core.on_message(Ping(b'{"trnm":"PING"}'), 0.0) == [Echo(b'{"trnm":"PING"}')]
    assert core.pings_echoed == 1


def test_unknown_message_is_reported() -> None:
    core = logged_in_core()
    (action,) = core.on_message(Unknown("CNSRLST", {"trnm": "CNSRLST"}), 0.0)
    assert isinstance(action, Report)
    assert "CNSRLST" in str(action.error)


def test_after_a_drop_registrations_are_restored_and_waiting_requests_reattached() -> None:
    core = logged_in_core(policy=ReconnectPolicy(first_delay=0.1))
    request, _ = core.subscribe("1", ["005930"], ["0E"], True, 0.0)  # in flight when the line drops
    actions = core.on_connection_ended(Outcome("lost", reason="reset"), 20.0)
    assert [type(a) for a in actions] == [Disconnected, Reconnecting, Retry]
    assert actions[0] == Disconnected(None, "reset", True)
    assert core.state is SessionState.RECONNECTING
    core.connection_started()
    core.connection_opened(21.0)
    restore = core.on_message(OK, 21.0)
    assert of(Send, restore)
    assert core.on_message(Ack("REG", 0, ""), 21.1) == [Completed(request)]


def test_a_refused_token_is_retried_once_with_a_fresh_one_then_given_up() -> None:
    core = logged_in_core()
    core.on_connection_ended(Outcome("lost"), 100.0)
    core.connection_started()
    core.connection_opened(101.0)
    refusal = LoginReply(805004, "[CODE=8005, MESSAGE=Token이 유효하지 않습니다]")
    assert [type(a) for a in core.on_message(refusal, 101.0)] == [Abort]
    actions = core.on_connection_ended(Outcome("lost"), 101.0)
    assert InvalidateToken() in actions
    assert isinstance(actions[-1], Retry)
    core.connection_started()
    core.connection_opened(102.0)
    core.on_message(refusal, 102.0)
    actions = core.on_connection_ended(Outcome("lost"), 102.0)
    assert isinstance(actions[-1], GiveUp)
    assert isinstance(actions[-1].error, LoginError)
    assert core.state is SessionState.GAVE_UP


def test_r10001_gives_up_unless_told_otherwise() -> None:
    for reconnect_on_kicked, last in ((False, GiveUp), (True, Retry)):
        core = logged_in_core(reconnect_on_kicked=reconnect_on_kicked)
        core.on_message(SystemNotice("R10001", "elsewhere"), 1.0)
        assert isinstance(core.on_connection_ended(Outcome("closed", code=1000), 1.0)[-1], last)


def test_the_first_connection_must_work() -> None:
    core = SessionCore()
    core.start()
    core.connection_started()
    actions = core.on_connection_ended(Outcome("connect_failed", reason="refused", error=ConnectError("x")), 0.0)
    assert isinstance(actions[-1], GiveUp)
    assert of(GaveUpNotice, actions)
    assert of(Disconnected, actions) == []  # never opened


def test_timeouts_login_idle_and_ack() -> None:
    core = SessionCore(login_timeout=10, idle_timeout=60, ack_timeout=5)
    core.start()
    core.connection_started()
    core.connection_opened(0.0)
    core.login_sent(0.0)
    assert core.next_deadline() == 10.0
    assert core.check_timeouts(9.9) == []
    (abort,) = core.check_timeouts(10.1)
    assert isinstance(abort, Abort)
    assert "LOGIN" in abort.reason

    core = logged_in_core(idle_timeout=60, ack_timeout=5)
    core.frames_seen(100.0)
    assert core.next_deadline() == 160.0
    core.subscribe("1", ["005930"], ["0E"], True, 101.0)
    assert core.next_deadline() == 106.0
    report, abort = core.check_timeouts(106.5)
    assert isinstance(report, Report)
    assert isinstance(abort, Abort)
    assert core.ack_timeouts == 1
    assert core.check_timeouts(500.0) == []  # the connection already has its outcome

    core = logged_in_core(idle_timeout=60)
    core.frames_seen(0.0)
    (abort,) = core.check_timeouts(60.5)
    assert "nothing received" in abort.reason


def test_backoff_grows_and_resets_after_a_healthy_spell() -> None:
    policy = ReconnectPolicy(first_delay=0.1, base_delay=1, multiplier=2, max_delay=4, jitter=0, healthy_after=10)
    core = logged_in_core(policy=policy)
    delays = []
    for _ in range(4):
        delays.append(core.on_connection_ended(Outcome("lost"), 0.0)[-1].delay)  # type: ignore[union-attr]
        core.connection_started()
    assert delays == [0.1, 1, 2, 4]
    core.connection_opened(0.0)
    core.on_message(OK, 0.0)
    assert core.on_connection_ended(Outcome("lost"), 30.0)[-1] == Retry(0.1)


def test_close_fails_unfinished_requests_and_refuses_more() -> None:
    core = logged_in_core()
    request, _ = core.subscribe("1", ["005930"], ["0E"], True, 0.0)
    (failed,) = core.close()
    assert isinstance(failed, Failed)
    assert failed.request == request
    assert isinstance(failed.error, SessionClosedError)
    assert not core.accepting
    assert core.on_connection_ended(Outcome("lost"), 1.0)[-1] == Disconnected(None, "closed by user", False)


def test_giving_up_fails_what_waits_before_it_says_so() -> None:
    core = logged_in_core(reconnect_on_kicked=False)
    request, _ = core.subscribe("1", ["005930"], ["0E"], True, 0.0)
    core.on_message(SystemNotice("R10001", "elsewhere"), 1.0)
    actions = core.on_connection_ended(Outcome("closed", code=1000), 1.0)
    kinds = [type(a) for a in actions]
    assert kinds.index(GaveUpNotice) < kinds.index(Failed) < kinds.index(GiveUp)  # GiveUp ends it, last
    assert of(Failed, actions)[0].request == request


def test_the_standby_looks_less_often_while_the_gil_is_contended() -> None:
    from kiwoom_rt._core import CALM_LOOKS, LATE_LOOK, MAX_CONTENDED_POLL, StandbyPace

    pace = StandbyPace(0.015, 0.015)
    for _ in range(20):  # every look came late: a busy main thread held the GIL
        pace = pace.after_look(0.004)
    assert pace.period == MAX_CONTENDED_POLL
    lucky = pace.after_look(0.0)  # one on-time look can be luck: the period stays
    assert lucky.period == MAX_CONTENDED_POLL
    assert lucky.after_look(LATE_LOOK * 2).calm == 0  # and a late one resets the streak
    calm = pace
    for _ in range(CALM_LOOKS):
        calm = calm.after_look(0.0)
    assert calm.period == MAX_CONTENDED_POLL / 2  # a calm streak: look more often again
    for _ in range(20):
        calm = calm.after_look(0.0)
    assert calm.period == 0.015  # never more often than handover_after
    assert StandbyPace(0.5, 0.5).after_look(1.0).period == 1.0
    assert StandbyPace(0.5, 0.5).after_look(1.0).after_look(1.0).after_look(1.0).period == 4.0  # 8 x floor
