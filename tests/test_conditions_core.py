"""Condition search decisions, sans-I/O: pairing, paging, pacing, watches and resync, by calling functions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kiwoom_rt import protocol
from kiwoom_rt._conditions import ConditionCore, MembershipChange
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
    core.list_conditions()
    assert trnms(core.poll(0.0)) == [("CNSRLST", "")]
    assert core.on_reply(reply(LIST_REPLY)) == []
    return core


def hit(seq: str, code: str, entered: str) -> ConditionEvent:
    batch = protocol.decode(json.dumps({"trnm": "REAL", "data": [{"type": "02", "name": "조건검색", "item": code,
                                        "values": {"841": seq, "9001": code, "843": entered, "20": "152028"}}]}))
    return batch.events[0]  # type: ignore[union-attr,return-value]


def test_list_is_sent_first_on_every_connection_and_serves_the_callers() -> None:
    core = ConditionCore()
    handle = core.list_conditions()
    search = core.search("4")
    assert core.poll(0.0) == []  # not logged in: everything waits
    core.connection_ready()
    assert trnms(core.poll(0.0)) == [("CNSRLST", "")]  # the search waits for the list's reply
    assert core.poll(0.1) == []
    core.on_reply(reply(LIST_REPLY))
    assert handle.wait(0) == [Condition("0", "조건1"), Condition("4", "급등")]
    assert trnms(core.poll(0.2)) == [("CNSRREQ", "4")]
    assert not search.done


def test_one_shot_search_follows_every_page_and_strips_padding_and_prefixes() -> None:
    core = ready_core()
    handle = core.search("4")
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
    core.on_reply(reply({"trnm": "CNSRREQ", "seq": "4 ", "cont_yn": "N", "next_key": "", "return_code": 0,
                         "data": [dict(row, **{"9001": "Q500001", "25": "2", "11": "+00000050"})]}))
    first, last = handle.wait(0)
    assert first == ConditionHit("005930", "삼성전자", 21850, -100, -0.46, 12345, 21900, 22000, 21800, {})
    assert first.values["9001"] == "A005930"
    assert (last.code, last.change) == ("500001", 50)


def test_refusal_and_unknown_reply() -> None:
    core = ready_core()
    handle = core.search("9")
    core.poll(1.0)
    assert core.on_reply(reply({"trnm": "CNSRREQ", "seq": "9", "return_code": 1, "return_msg": "없는 조건"})) == []
    with pytest.raises(ConditionError) as info:
        handle.wait(0)
    assert (info.value.return_code, info.value.return_msg) == (1, "없는 조건")
    (problem,) = core.on_reply(reply({"trnm": "CNSRREQ", "seq": "7", "return_code": 0, "data": []}))
    assert isinstance(problem, ProtocolError)


def test_requests_are_paced_never_dropped() -> None:
    core = ready_core(rate=5)
    handles = [core.search(str(seq)) for seq in range(12)]
    sent = core.poll(10.0)
    assert len(sent) == 5
    assert core.poll(10.5) == []
    assert core.next_send_at() == 11.0
    assert len(core.poll(11.0)) == 5
    assert len(core.poll(12.0)) == 2
    assert core.requests_sent == 1 + 12
    assert all(not h.done for h in handles)


def test_one_request_per_key_in_flight() -> None:
    core = ready_core()
    core.search("4")
    core.search("4")
    assert len(core.poll(1.0)) == 1
    core.on_reply(reply({"trnm": "CNSRREQ", "seq": "4", "return_code": 0, "data": []}))
    assert len(core.poll(1.1)) == 1


def test_watch_members_hits_and_cancel() -> None:
    core = ready_core()
    cancelled: list[str] = []
    watch = core.watch("4", cancelled.append)
    assert core.watch("4", cancelled.append) is watch  # the same handle
    (frame,) = core.poll(1.0)
    assert json.loads(frame) == {"trnm": "CNSRREQ", "seq": "4", "search_type": "1", "stex_tp": "K"}
    core.on_hit(hit("4", "000660", "I"))  # before the list: ignored, the list is the truth
    assert core.on_reply(reply({"trnm": "CNSRREQ", "seq": "4", "return_code": 0,
                                "data": [{"jmcode": "A005930"}, {"jmcode": "A035720"}]})) == []
    assert watch.wait(0).members == {"005930", "035720"}
    core.on_hit(hit("4", "000660", "I"))
    core.on_hit(hit("4", "005930", "D"))
    core.on_hit(hit("7", "999999", "I"))  # nobody watches 7: no change anywhere
    assert watch.members == {"000660", "035720"}
    core.cancel("4")
    assert trnms(core.poll(2.0)) == [("CNSRCLR", "4")]
    core.on_reply(reply({"trnm": "CNSRCLR", "seq": "4", "return_code": 0, "return_msg": ""}))
    core.connection_lost()
    core.connection_ready()
    assert core.poll(3.0) == []  # a cancelled watch is never restored: nothing to ask at all


def test_watch_restored_after_a_drop_with_resync_changes() -> None:
    core = ready_core()
    watch = core.watch("4", lambda seq: None)
    core.poll(1.0)
    core.on_reply(reply({"trnm": "CNSRREQ", "seq": "4", "return_code": 0,
                         "data": [{"jmcode": "A005930"}, {"jmcode": "A035720"}]}))
    one_shot = core.search("0")
    core.poll(1.1)
    core.connection_lost()
    with pytest.raises(ConnectError):
        one_shot.wait(0)
    core.connection_ready()
    assert trnms(core.poll(5.0)) == [("CNSRLST", "")]  # the list first, again
    core.on_reply(reply(LIST_REPLY))
    assert trnms(core.poll(5.1)) == [("CNSRREQ", "4")]
    changes = core.on_reply(reply({"trnm": "CNSRREQ", "seq": "4", "return_code": 0,
                                   "data": [{"jmcode": "A035720"}, {"jmcode": "A000660"}]}))
    assert changes == [MembershipChange("4", "005930", False), MembershipChange("4", "000660", True)]
    assert watch.members == {"035720", "000660"}


def test_refused_watch_fails_its_wait() -> None:
    core = ready_core()
    watch = core.watch("8", lambda seq: None)
    core.poll(1.0)
    core.on_reply(reply({"trnm": "CNSRREQ", "seq": "8", "return_code": 1, "return_msg": "no"}))
    with pytest.raises(ConditionError):
        watch.wait(0)
    assert "8" not in core.watches


def test_bad_seq_and_bad_rows() -> None:
    core = ready_core()
    with pytest.raises(ValueError, match="seq"):
        core.search("abc")
    with pytest.raises(ValueError, match="no code"):
        parse_hit({"302": "x"})
    handle = core.search("4")
    core.poll(1.0)
    (problem,) = core.on_reply(reply({"trnm": "CNSRREQ", "seq": "4", "return_code": 0, "data": [5]}))
    assert isinstance(problem, ProtocolError)
    with pytest.raises(ProtocolError):
        handle.wait(0)
