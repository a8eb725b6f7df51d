"""Condition search decisions, sans-I/O: pairing, paging, pacing, watches and resync, by calling functions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kiwoom_rt import protocol
from kiwoom_rt._actions import Completed, Failed, MembershipChange, Report, WatchFailed, WatchMembers
from kiwoom_rt._conditions import ConditionCore, apply_hit
from kiwoom_rt.conditions import Condition, ConditionHit, parse_hit
from kiwoom_rt.errors import ConditionError, ConnectError, ProtocolError
from kiwoom_rt.events import ConditionEvent
from kiwoom_rt.messages import ConditionReply


def reply(frame: dict[str, Any]) -> ConditionReply:
    message = protocol.decode(json.dumps(frame, ensure_ascii=False))
    assert isinstance(message, ConditionReply)
    return message


LIST_REPLY = {"trnm": "CNSRLST", "return_code": 0, "return_msg": "", "data": [["0", "조건1"], ["4", "급등"]]}


def trnms(frames: list[str]) -> list[tuple[str, str]]:
    return [(json.loads(f)["trnm"], json.loads(f).get("seq", "")) for f in frames]


def ready_core(rate: float = 100.0) -> ConditionCore:
    core = ConditionCore(rate=rate)
    core.connection_ready()
    assert core.poll(0.0) == []  # nothing asked: nothing sent, not even the list
    core.list_conditions(100)
    assert trnms(core.poll(0.0)) == [("CNSRLST", "")]
    assert [type(o) for o in core.on_reply(reply(LIST_REPLY))] == [Completed]
    return core


def hit(seq: str, code: str, entered: str) -> ConditionEvent:
    batch = protocol.decode(json.dumps({"trnm": "REAL", "data": [{"type": "02", "name": "조건검색", "item": code,
                                        "values": {"841": seq, "9001": code, "843": entered, "20": "152028"}}]}))
    return batch.events[0]  # type: ignore[union-attr,return-value]


def test_list_is_sent_first_on_every_connection_and_serves_the_callers() -> None:
    core = ConditionCore()
    core.list_conditions(1)
    core.list_conditions(2)  # one CNSRLST serves both callers
    core.search("4", 3)
    assert core.poll(0.0) == []  # not logged in: everything waits
    core.connection_ready()
    assert trnms(core.poll(0.0)) == [("CNSRLST", "")]  # the search waits for the list's reply
    assert core.poll(0.1) == []
    conditions = [Condition("0", "조건1"), Condition("4", "급등")]
    assert core.on_reply(reply(LIST_REPLY)) == [Completed(1, conditions), Completed(2, conditions)]
    assert trnms(core.poll(0.2)) == [("CNSRREQ", "4")]


def test_one_shot_search_follows_every_page_and_strips_padding_and_prefixes() -> None:
    core = ready_core()
    core.search("4", 7)
    frames = core.poll(1.0)
    assert json.loads(frames[0]) == {"trnm": "CNSRREQ", "seq": "4", "search_type": "0", "stex_tp": "K",
                                     "cont_yn": "N", "next_key": ""}
    row = {"9001": "A005930", "302": "삼성전자", "10": "000021850", "25": "5", "11": "000000100",
           "12": "000000.46", "13": "000012345", "16": "000021900", "17": "000022000", "18": "000021800"}
    assert core.on_reply(reply({"trnm": "CNSRREQ", "seq": "4  ", "cont_yn": "Y", "next_key": "K1",
                                "return_code": 0, "data": [row]})) == []
    (second,) = core.poll(1.1)
    assert json.loads(second)["cont_yn"] == "Y"
    assert json.loads(second)["next_key"] == "K1"
    (done,) = core.on_reply(reply({"trnm": "CNSRREQ", "seq": "4 ", "cont_yn": "N", "next_key": "",
                                   "return_code": 0,
                                   "data": [dict(row, **{"9001": "Q500001", "25": "2", "11": "+00000050"})]}))
    assert isinstance(done, Completed)
    assert done.request == 7
    first, last = done.result
    assert first == ConditionHit("005930", "삼성전자", 21850, -100, -0.46, 12345, 21900, 22000, 21800, {})
    assert first.values["9001"] == "A005930"
    assert (last.code, last.change) == ("500001", 50)


def test_refusal_and_unknown_reply() -> None:
    core = ready_core()
    core.search("9", 5)
    core.poll(1.0)
    (failed,) = core.on_reply(reply({"trnm": "CNSRREQ", "seq": "9", "return_code": 1, "return_msg": "없는 조건"}))
    assert isinstance(failed, Failed)
    assert failed.request == 5
    assert isinstance(failed.error, ConditionError)
    assert (failed.error.return_code, failed.error.return_msg) == (1, "없는 조건")
    (problem,) = core.on_reply(reply({"trnm": "CNSRREQ", "seq": "7", "return_code": 0, "data": []}))
    assert isinstance(problem, Report)
    assert isinstance(problem.error, ProtocolError)


def test_requests_are_paced_never_dropped() -> None:
    core = ready_core(rate=5)
    for seq in range(12):
        core.search(str(seq), seq)
    sent = core.poll(10.0)
    assert len(sent) == 5
    assert core.poll(10.5) == []
    assert core.next_send_at() == 11.0
    assert len(core.poll(11.0)) == 5
    assert len(core.poll(12.0)) == 2
    assert core.requests_sent == 1 + 12


def test_one_request_per_key_in_flight() -> None:
    core = ready_core()
    core.search("4", 1)
    core.search("4", 2)
    assert len(core.poll(1.0)) == 1
    core.on_reply(reply({"trnm": "CNSRREQ", "seq": "4", "return_code": 0, "data": []}))
    assert len(core.poll(1.1)) == 1


def test_watch_members_hits_and_cancel() -> None:
    core = ready_core()
    assert core.watch("4") is True
    assert core.watch("4") is False  # watched already
    (frame,) = core.poll(1.0)
    assert json.loads(frame) == {"trnm": "CNSRREQ", "seq": "4", "search_type": "1", "stex_tp": "K"}
    assert core.on_hit(hit("4", "000660", "I")) == []  # before the list: ignored, the list is the truth
    assert core.on_reply(reply({"trnm": "CNSRREQ", "seq": "4", "return_code": 0,
                                "data": [{"jmcode": "A005930"}, {"jmcode": "A035720"}]})) == [
        WatchMembers("4", frozenset({"005930", "035720"}))]
    assert core.on_hit(hit("4", "000660", "I")) == [WatchMembers("4", frozenset({"005930", "035720", "000660"}))]
    assert core.on_hit(hit("4", "000660", "I")) == []  # already a member: nothing changes
    core.on_hit(hit("4", "005930", "D"))
    assert core.on_hit(hit("7", "999999", "I")) == []  # nobody watches 7: no change anywhere
    assert core.members("4") == {"000660", "035720"}
    core.cancel("4")
    assert trnms(core.poll(2.0)) == [("CNSRCLR", "4")]
    core.on_reply(reply({"trnm": "CNSRCLR", "seq": "4", "return_code": 0, "return_msg": ""}))
    core.connection_lost()
    core.connection_ready()
    assert core.poll(3.0) == []  # a cancelled watch is never restored: nothing to ask at all


def test_watch_restored_after_a_drop_with_resync_changes() -> None:
    core = ready_core()
    core.watch("4")
    core.poll(1.0)
    core.on_reply(reply({"trnm": "CNSRREQ", "seq": "4", "return_code": 0,
                         "data": [{"jmcode": "A005930"}, {"jmcode": "A035720"}]}))
    core.search("0", 9)
    core.poll(1.1)
    (lost,) = core.connection_lost()
    assert isinstance(lost, Failed)
    assert lost.request == 9
    assert isinstance(lost.error, ConnectError)
    core.connection_ready()
    assert trnms(core.poll(5.0)) == [("CNSRLST", "")]  # the list first, again
    core.on_reply(reply(LIST_REPLY))
    assert trnms(core.poll(5.1)) == [("CNSRREQ", "4")]
    outputs = core.on_reply(reply({"trnm": "CNSRREQ", "seq": "4", "return_code": 0,
                                   "data": [{"jmcode": "A035720"}, {"jmcode": "A000660"}]}))
    assert outputs == [WatchMembers("4", frozenset({"035720", "000660"})),
                       MembershipChange("4", "005930", False), MembershipChange("4", "000660", True)]


def test_refused_watch_fails_its_wait() -> None:
    core = ready_core()
    core.watch("8")
    core.poll(1.0)
    (failed,) = core.on_reply(reply({"trnm": "CNSRREQ", "seq": "8", "return_code": 1, "return_msg": "no"}))
    assert isinstance(failed, WatchFailed)
    assert isinstance(failed.error, ConditionError)
    assert "8" not in core.watched


def test_bad_seq_and_bad_rows() -> None:
    core = ready_core()
    with pytest.raises(ValueError, match="seq"):
        core.search("abc", 1)
    with pytest.raises(ValueError, match="no code"):
        parse_hit({"302": "x"})
    core.search("4", 2)
    core.poll(1.0)
    failed, problem = core.on_reply(reply({"trnm": "CNSRREQ", "seq": "4", "return_code": 0, "data": [5]}))
    assert isinstance(failed, Failed)
    assert isinstance(failed.error, ProtocolError)
    assert isinstance(problem, Report)


def test_the_one_hit_rule() -> None:
    members = frozenset({"005930"})
    assert apply_hit(members, hit("4", "000660", "I")) == {"005930", "000660"}
    assert apply_hit(members, hit("4", "005930", "I")) is None  # no change
    assert apply_hit(members, hit("4", "005930", "D")) == frozenset()
    assert apply_hit(members, hit("4", "000660", "D")) is None
