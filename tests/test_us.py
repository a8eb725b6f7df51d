"""The US socket, sans-I/O: items, REG/REMOVE frames, the published examples, decoding rules,
condition search frames and replies, and a fuzz of the US decoders."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiwoom_rt import (
    EVENT_TYPES,
    US_MOCK_URL,
    US_PRODUCTION_URL,
    BookLevel,
    ConditionEvent,
    DecodeError,
    RealtimeSession,
    UsConditionEvent,
    UsFill,
    UsItem,
    UsOrder,
    UsOrderBook,
    UsTrade,
    protocol,
)
from kiwoom_rt._actions import MembershipChange, WatchMembers
from kiwoom_rt._conditions import ConditionCore, resync_event
from kiwoom_rt._registrations import Registrations
from kiwoom_rt.conditions import parse_hit
from kiwoom_rt.events import US_EVENT_TYPES, headline_fields
from kiwoom_rt.messages import ConditionReply
from kiwoom_rt.us import check_us_items, market_of_url, to_eastern, wire_items

from .helpers import careful_build

SPEC = json.loads((Path(__file__).parent / "data" / "us_realtime_spec.json").read_text("utf-8"))
T = dt.time


# --- URLs and markets ---------------------------------------------------------------------------

def test_urls_and_market_detection() -> None:
    assert US_PRODUCTION_URL == "wss://api.kiwoom.com:10000/api/us/websocket"
    assert US_MOCK_URL == "wss://mockapi.kiwoom.com:10000/api/us/websocket"
    assert SPEC["endpoints"]["us_realtime_production"]["url"] == US_PRODUCTION_URL
    assert SPEC["endpoints"]["us_realtime_mock"]["url"] == US_MOCK_URL
    import kiwoom_rt.session

    source = Path(kiwoom_rt.session.__file__).read_text("utf-8")
    assert "whether it serves US realtime at all is unknown" in source  # US_MOCK_URL's docstring
    assert market_of_url(US_PRODUCTION_URL) == "us"
    assert market_of_url("ws://127.0.0.1:1/api/us/websocket/") == "us"
    assert market_of_url("wss://api.kiwoom.com:10000/api/dostk/websocket") == "kr"
    assert RealtimeSession("t", url=US_PRODUCTION_URL).market == "us"
    assert RealtimeSession("t", url=US_MOCK_URL).market == "us"
    assert RealtimeSession("t").market == "kr"
    assert RealtimeSession("t", url="ws://127.0.0.1:1/custom", market="us").market == "us"
    assert RealtimeSession("t", url=US_PRODUCTION_URL, market="kr").market == "kr"
    with pytest.raises(ValueError, match="market"):
        RealtimeSession("t", market="jp")
    with pytest.raises(ValueError, match="us_item_format"):
        RealtimeSession("t", url=US_PRODUCTION_URL, us_item_format="list")


# --- items --------------------------------------------------------------------------------------

@pytest.mark.parametrize("exchange", ["NASDAQ", "nasdaq", "ND", "nd", " Nasdaq "])
def test_us_item_accepts_names_and_codes(exchange: str) -> None:
    item = UsItem("NVDA", exchange)
    assert (item.symbol, item.exchange, item.stex_tp, str(item)) == ("NVDA", "NASDAQ", "ND", "NASDAQ:NVDA")
    assert item == UsItem("NVDA", "NASDAQ")
    assert hash(item) == hash(UsItem("NVDA", "ND"))
    assert repr(item) == "UsItem('NVDA', 'NASDAQ')"


def test_us_item_codes_and_equality() -> None:
    assert [UsItem("KO", "NY").exchange, UsItem("SPY", "na").exchange] == ["NYSE", "AMEX"]
    assert UsItem("KO", "NYSE") != UsItem("KO", "AMEX")
    assert UsItem("KO", "NYSE") != "NYSE:KO"  # an item is not its string
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        UsItem("KO", "NYSE").symbol = "X"  # type: ignore[misc]
    assert UsItem("BRK.B", "NYSE").symbol == "BRK.B"
    assert UsItem("aapl", "ND").symbol == "AAPL"  # one spelling everywhere: upper case (issue 37)


@pytest.mark.parametrize(("symbol", "exchange"), [("NVDA", "LSE"), ("NVDA", ""), ("", "ND"), ("005930", "ND"),
                                                  ("NV DA", "ND"), (None, "ND"), ("NVDA", None)])
def test_us_item_refuses_unknown_exchanges_and_domestic_codes(symbol: Any, exchange: Any) -> None:
    with pytest.raises(ValueError, match=r"US|exchange|symbol|domestic"):
        UsItem(symbol, exchange)


def test_item_spellings_on_a_us_session() -> None:
    assert check_us_items(["NASDAQ:NVDA", "ND:AAPL", "nyse:KO", UsItem("SPY", "NA")]) == [
        "NASDAQ:NVDA", "NASDAQ:AAPL", "NYSE:KO", "AMEX:SPY"]
    assert check_us_items("NASDAQ:NVDA") == ["NASDAQ:NVDA"]  # one string is one item
    assert check_us_items(UsItem("NVDA", "ND")) == ["NASDAQ:NVDA"]
    for bad in ("NVDA", "005930", "A005930", "LSE:VOD", "NASDAQ:", ":NVDA", 5930):
        with pytest.raises(ValueError, match=r"US|exchange|domestic"):
            check_us_items([bad])
    with pytest.raises(ValueError, match="at least one item"):
        check_us_items([])


def test_symbols_are_never_stripped_like_domestic_codes() -> None:
    # A7-character symbol starting with A, J or Q would lose its first letter under the domestic rule
    assert check_us_items(["NASDAQ:AAPLXYZ"]) == ["NASDAQ:AAPLXYZ"]
    events: list[Any] = []
    frame = {"trnm": "REAL", "data": [{"type": "FE", "name": "미국체결", "item": "AAPLXYZ", "stexTp": "ND",
                                       "values": {"10": "+1.0000"}}]}
    protocol.decode_frames([json.dumps(frame)], events, us={})
    assert (events[0].item, events[0].code) == ("AAPLXYZ", "AAPLXYZ")
    hit = {"type": "S2", "name": "조건검색", "item": "QQQMXYZ", "values": {"841": "1", "9001": "QQQMXYZ",
                                                                      "843": "I", "20": "230156", "907": "2"}}
    protocol.decode_frames([json.dumps({"trnm": "REAL", "data": [hit]})], events, us={})
    assert events[-1].code == "QQQMXYZ"
    assert parse_hit({"9001": "AAPLXYZ", "10": "+1.5"}, "us").code == "AAPLXYZ"
    assert parse_hit({"9001": "A005930", "10": "+100"}).code == "005930"  # the domestic rule stays domestic


def test_each_session_refuses_the_other_sockets_items() -> None:
    us = RealtimeSession("t", url=US_PRODUCTION_URL)
    kr = RealtimeSession("t")
    for bad in ("005930", "NVDA", "LSE:VOD", ["NASDAQ:NVDA", "005930"]):
        with pytest.raises(ValueError, match=r"US|exchange|domestic"):
            us.subscribe(bad, ["FE"])
    for bad in (UsItem("NVDA", "ND"), "NASDAQ:NVDA", ["005930", "ND:NVDA"]):
        with pytest.raises(ValueError, match="US"):
            kr.subscribe(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="US socket"):
        us.subscribe("NASDAQ:NVDA", ["0B"])
    with pytest.raises(ValueError, match="domestic socket"):
        kr.subscribe("005930", ["FE"])
    assert us.registrations() == kr.registrations() == {}  # nothing was sent or remembered
    handle = us.subscribe([UsItem("NVDA", "ND"), "NYSE:KO", "NASDAQ:NVDA"])
    assert (handle.items, handle.types) == (("NASDAQ:NVDA", "NYSE:KO"), ("FE",))  # FE by default, no duplicate
    assert us.registrations() == {"1": {("NASDAQ:NVDA", "FE"), ("NYSE:KO", "FE")}}
    us.close()
    kr.close()


# --- REG and REMOVE -------------------------------------------------------------------------------

def test_reg_and_remove_send_the_official_item_objects() -> None:
    official = SPEC["registration"]["reg_example_official_script"]
    assert json.loads(protocol.reg([UsItem("NVDA", "ND")], ["FE"], market="us")) == official
    assert json.loads(protocol.reg("ND:NVDA", "FE", market="us")) == official
    frame = json.loads(protocol.reg(["NASDAQ:NVDA", "NYSE:KO", "AMEX:SPY"], ["FE", "FT"], "2", False, market="us"))
    assert frame["data"][0]["item"] == [{"jmcode": "NVDA", "stex_tp": "ND"}, {"jmcode": "KO", "stex_tp": "NY"},
                                        {"jmcode": "SPY", "stex_tp": "NA"}]
    assert all(set(item) == {"jmcode", "stex_tp"} for item in frame["data"][0]["item"])
    assert (frame["grp_no"], frame["refresh"]) == ("2", "0")
    removal = json.loads(protocol.remove(["NASDAQ:NVDA"], ["FE"], market="us"))
    assert removal == {"trnm": "REMOVE", "grp_no": "1", "data": [{"item": [{"jmcode": "NVDA", "stex_tp": "ND"}],
                                                                  "type": ["FE"]}]}
    strings = json.loads(protocol.reg(["NASDAQ:NVDA", "NYSE:KO"], ["FE"], market="us", us_item_format="string"))
    assert strings["data"][0]["item"] == ["NVDA", "KO"]
    assert wire_items(["NASDAQ:NVDA"], "string") == ["NVDA"]
    with pytest.raises(ValueError, match="is a domestic code"):
        protocol.reg(["005930"], ["FE"], market="us")
    with pytest.raises(ValueError, match="is a US item"):
        protocol.reg([UsItem("NVDA", "ND")], ["0B"])  # a US item on the domestic socket


def test_restored_registrations_keep_the_us_shape() -> None:
    wanted = Registrations()
    wanted.add("1", ["NASDAQ:NVDA", "NYSE:KO"], ["FE", "FT"])
    (request,) = wanted.restore_requests(100, market="us")["1"]
    assert json.loads(request.frame)["data"][0] == {
        "item": [{"jmcode": "NVDA", "stex_tp": "ND"}, {"jmcode": "KO", "stex_tp": "NY"}], "type": ["FE", "FT"]}


# --- the published examples -----------------------------------------------------------------------

#: The published example of every US type, decoded: the headline values a trader would read off it.
EXPECTED: dict[str, dict[str, Any]] = {
    "FE": {"time": T(21, 53), "local_time": T(21, 53), "trade_date": dt.date(2026, 6, 30), "price": 198.5,
           "change": 3.53, "rate": 1.81, "volume": 15, "cumulative_volume": 166476665,
           "cumulative_amount": 36384473.963, "open": 197.24, "high": 200.63, "low": 195.11, "best_ask": 198.54,
           "best_bid": 198.48, "strength": 500.0, "session_code": "4"},
    "FT": {"time": T(21, 53), "ask_total": 590, "ask_total_change": 0, "bid_total": 437, "bid_total_change": 0},
    "F4": {"account": "8985024710", "order_no": "000000027", "original_order_no": "000000000", "symbol": "NVDA",
           "side": "buy", "quantity": 1, "price": 198.42, "status": "주문전송", "time": T(10, 52, 47),
           "currency": "USD", "order_kind": "10", "stop_price": 0.0},
    "F5": {"account": "8985024710", "order_no": "000000027", "symbol": "NVDA", "side": "buy", "quantity": 1,
           "price": 198.42, "status": "접수", "time": T(10, 52, 47), "currency": "USD", "fill_no": "000000000",
           "fill_price": 0.0, "fill_quantity": 0, "unfilled_quantity": 1, "holding_quantity": 54,
           "average_price": 185.0305, "pnl": 0.0, "pnl_rate": 0.0},
    "S2": {"seq": "2", "entered": True, "time": T(23, 1, 56)},
}
CLASSES = {"FE": UsTrade, "FT": UsOrderBook, "F4": UsOrder, "F5": UsFill, "S2": UsConditionEvent}


def published_example(type_code: str) -> dict[str, Any]:
    """The published REAL frame of a US type (S2: the values quoted from usa20290)."""
    if type_code == "S2":
        push = SPEC["condition_search"]["usa20290"]["push_example_values_quoted_from_spec_response_example"]
        return {"trnm": "REAL", "data": [dict(push)]}
    return dict(SPEC["types"][type_code]["example"])


def test_every_us_type_is_a_typed_event() -> None:
    assert set(US_EVENT_TYPES) == set(EXPECTED) == set(CLASSES)
    for type_code, cls in CLASSES.items():
        assert EVENT_TYPES[type_code] is cls
        assert cls.type == type_code
    assert issubclass(UsConditionEvent, ConditionEvent)


@pytest.mark.parametrize("type_code", sorted(EXPECTED))
@pytest.mark.parametrize("lazy", [True, False], ids=["lazy", "full"])
def test_published_examples_decode_to_their_classes(type_code: str, lazy: bool) -> None:
    events: list[Any] = []
    reports: list[Any] = []
    _, found = protocol.decode_frames([json.dumps(published_example(type_code), ensure_ascii=False).encode()],
                                      events, received_at=7.0, report=reports.append, us={})
    assert found is None
    (event,) = events
    assert type(event) is CLASSES[type_code]
    if not lazy:
        repr(event)  # every field read at once
    for attr, expected in EXPECTED[type_code].items():
        value = getattr(event, attr)
        assert value == (pytest.approx(expected) if isinstance(expected, float) else expected), attr
        assert type(value) is type(expected), attr
    item = published_example(type_code)["data"][0]["item"]
    assert (event.item, event.code) == (item, item)
    assert event.exchange == ("NASDAQ" if type_code in ("FE", "FT", "S2") else None)  # F4/F5 carry no stexTp
    assert reports == []
    built = careful_build(CLASSES[type_code], item, dict(event.values), 7.0, event.exchange)
    assert built == event
    assert built.code == item


def test_us_book_levels_are_floats_best_first() -> None:
    events: list[Any] = []
    protocol.decode_frames([json.dumps(published_example("FT"))], events, us={})
    book = events[0]
    assert book.asks[0] == BookLevel(198.54, 2, 0)
    assert book.bids[0] == BookLevel(198.48, 22, 0)
    assert [level.price for level in book.asks] == sorted(level.price for level in book.asks)
    assert [level.price for level in book.bids] == sorted((level.price for level in book.bids), reverse=True)
    assert len(book.asks) == len(book.bids) == 10
    assert all(isinstance(level.price, float) and isinstance(level.quantity, int) for level in book.asks)


# --- exchange: stexTp, else the subscription, else None -----------------------------------------------

def decode_us(entry: dict[str, Any], exchanges: dict[str, str] | None = None) -> tuple[Any, list[Any]]:
    events: list[Any] = []
    _, found = protocol.decode_frames([json.dumps({"trnm": "REAL", "data": [entry]})], events,
                                      us=exchanges if exchanges is not None else {})
    return events[0], [thing for _, thing in found or ()]


def test_exchange_comes_from_stextp_then_the_subscription_then_nothing() -> None:
    entry = {"type": "FE", "name": "미국체결", "item": "KO", "values": {"10": "+60.1000"}}
    assert decode_us({**entry, "stexTp": "NY"}, {"KO": "AMEX"})[0].exchange == "NYSE"
    assert decode_us({**entry, "stex_tp": "NA"})[0].exchange == "AMEX"  # the other spelling
    assert decode_us(entry, {"KO": "NYSE"})[0].exchange == "NYSE"
    event, found = decode_us(entry)
    assert (event.exchange, found) == (None, [])
    event, found = decode_us({**entry, "stexTp": "LSE"}, {"KO": "NYSE"})
    assert event.exchange == "NYSE"  # unknown code: reported, and the subscription still answers
    (error,) = found
    assert isinstance(error, DecodeError)
    assert "stexTp" in str(error)


def test_a_02_hit_on_the_us_socket_is_an_s2_event() -> None:
    push = published_example("S2")["data"][0]
    counts: dict[str, int] = {}
    events: list[Any] = []
    protocol.decode_frames([json.dumps({"trnm": "REAL", "data": [{**push, "type": "02"}]})], events, counts=counts,
                           us={})
    assert type(events[0]) is UsConditionEvent
    assert events[0].type == "S2"
    assert counts == {"S2": 1}
    events.clear()
    protocol.decode_frames([json.dumps({"trnm": "REAL", "data": [{**push, "type": "02"}]})], events)
    assert type(events[0]) is ConditionEvent  # the domestic socket keeps its own reading


def test_us_parsing_rules_blanks_and_unusable_values() -> None:
    values = dict(published_example("FE")["data"][0]["values"])
    values.update({"10": " ", "15": "-7", "11": "-0.5000", "22": "20261332", "228": ""})
    reports: list[Any] = []
    events: list[Any] = []
    protocol.decode_frames([json.dumps({"trnm": "REAL", "data": [{"type": "FE", "item": "NVDA", "stexTp": "ND",
                                                                 "values": values}]})],
                           events, report=reports.append, us={})
    trade = events[0]
    assert (trade.price, trade.volume, trade.change, trade.strength) == (None, -7, -0.5, None)
    assert trade.trade_date is None
    (error,) = reports  # one report for the entry, naming the bad FID
    assert "FID 22" in str(error)
    assert trade.time == T(21, 53)
    order = dict(published_example("F4")["data"][0]["values"], **{"907": "1"})
    assert decode_us({"type": "F4", "item": "NVDA", "values": order})[0].side == "sell"
    order["907"] = "03"
    reports.clear()
    events.clear()
    protocol.decode_frames([json.dumps({"trnm": "REAL", "data": [{"type": "F4", "item": "NVDA", "values": order}]})],
                           events, report=reports.append, us={})
    assert events[0].side is None
    assert len(reports) == 1


# --- condition search -------------------------------------------------------------------------------

def test_us_condition_frames_are_g_prefixed() -> None:
    assert json.loads(protocol.cnsrlst("us")) == SPEC["condition_search"]["usa20280"]["request"]
    assert json.loads(protocol.cnsrreq("0", realtime=True, market="us")) == \
        SPEC["condition_search"]["usa20290"]["request_example"]
    assert json.loads(protocol.cnsrreq("0", realtime=False, market="us")) == \
        SPEC["condition_search"]["usa20281"]["request_example"]
    assert json.loads(protocol.cnsrclr("1", "us")) == SPEC["condition_search"]["usa20291"]["request"]


@pytest.mark.parametrize(("trnm", "answers"), [("GCNSRLST", "CNSRLST"), ("GCNSRLT", "CNSRLST"),
                                               ("GCNSRREQ", "CNSRREQ"), ("CNSRREQ", "CNSRREQ"),
                                               ("GCNSRCLR", "CNSRCLR")])
def test_every_documented_reply_spelling_is_read(trnm: str, answers: str) -> None:
    reply = protocol.decode(json.dumps({"trnm": trnm, "seq": "1 ", "return_code": 0, "data": []}))
    assert isinstance(reply, ConditionReply)
    assert (reply.trnm, reply.seq) == (answers, "1")


def test_the_verbatim_list_reply_parses() -> None:
    text = SPEC["condition_search"]["usa20280"]["response_example_verbatim"].replace("],\n    ]", "]\n    ]")
    reply = protocol.decode(text)  # (the published example has a trailing comma JSON refuses)
    assert isinstance(reply, ConditionReply)
    assert reply.trnm == "CNSRLST"
    assert len(reply.data) == 5


def test_us_condition_core_members_hits_and_resync() -> None:
    core = ConditionCore(market="us")
    core.connection_ready()
    core.list_conditions(1)
    assert core.poll(0.0) == ['{"trnm":"GCNSRLST"}']
    core.on_reply(ConditionReply("CNSRLST", "", 0, "", (["0", "x"],)))
    core.watch("0")
    assert core.poll(0.0) == ['{"trnm":"GCNSRREQ","seq":"0","search_type":"1"}']
    fixture = SPEC["condition_search"]["usa20290"]["response_example_peer_fixture"]
    outputs = core.on_reply(ConditionReply("CNSRREQ", "0", 0, "", ({"stex_tp": "ND", "jmcode": "AAPL"},
                                                                   {"stexTp": "NY", "jmcode": "AAPLXYZ"})))
    assert outputs == [WatchMembers("0", frozenset({"AAPL", "AAPLXYZ"}))]
    assert fixture["data"][0]["jmcode"] == "AAPL"
    event = resync_event(MembershipChange("0", "QQQMXYZ", True), 1.0, "us")
    assert type(event) is UsConditionEvent
    assert (event.code, event.exchange, event.resync) == ("QQQMXYZ", None, True)
    hits = [parse_hit({"9001": "NVDA", "302": "엔비디아", "10": "+198.5000", "25": "5", "11": "3.5300",
                       "12": "1.81", "13": "100", "16": "+197.2400", "stex_tp": "ND"}, "us")]
    assert (hits[0].price, hits[0].change, hits[0].rate, hits[0].open, hits[0].exchange) == \
        (198.5, -3.53, -1.81, 197.24, "NASDAQ")


def test_eastern_time_follows_daylight_saving() -> None:
    kst = dt.timezone(dt.timedelta(hours=9))
    assert to_eastern(dt.datetime(2026, 6, 30, 21, 53, tzinfo=kst)).time() == T(8, 53)  # EDT
    assert to_eastern(dt.datetime(2026, 12, 3, 23, 30, tzinfo=kst)).time() == T(9, 30)  # EST
    utc = dt.UTC
    assert to_eastern(dt.datetime(2026, 3, 8, 6, 59, tzinfo=utc)).time() == T(1, 59)
    assert to_eastern(dt.datetime(2026, 3, 8, 7, 0, tzinfo=utc)).time() == T(3, 0)  # clocks spring forward
    assert to_eastern(dt.datetime(2026, 11, 1, 5, 59, tzinfo=utc)).time() == T(1, 59)
    assert to_eastern(dt.datetime(2026, 11, 1, 6, 0, tzinfo=utc)).time() == T(1, 0)  # and fall back
    with pytest.raises(ValueError, match="aware datetime"):
        to_eastern(dt.datetime(2026, 1, 1))


# --- fuzz -----------------------------------------------------------------------------------------------

_FIDS = {type_code: sorted({f.fid for f in headline_fields(cls)} | {"41", "51", "61", "71", "81", "91"})
         for type_code, cls in US_EVENT_TYPES.items()}
_VALUE = st.one_of(st.text(max_size=12), st.sampled_from(["+198.5000", "-0.0100", " 0", "", " ", "0000198.4200",
                                                          "20260630", "215300", "02", "I", "nan", "1e400"]),
                   st.integers(), st.none(), st.floats(allow_nan=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(type_code=st.sampled_from([*sorted(US_EVENT_TYPES), "02"]),
       values=st.data(), item=st.one_of(st.text(max_size=8), st.integers(), st.none()),
       stex=st.one_of(st.none(), st.sampled_from(["ND", "NY", "NA", "XX", ""]), st.integers()))
def test_us_decoders_never_raise(type_code: str, values: Any, item: Any, stex: Any) -> None:
    fids = _FIDS.get(type_code, _FIDS["S2"])
    drawn = values.draw(st.dictionaries(st.sampled_from(fids), _VALUE, max_size=len(fids)))
    entry: dict[str, Any] = {"type": type_code, "item": item, "values": drawn}
    if stex is not None:
        entry["stexTp"] = stex
    events: list[Any] = []
    reports: list[Any] = []
    protocol.decode_frames([json.dumps({"trnm": "REAL", "data": [entry]})], events, report=reports.append,
                           us={"NVDA": "NASDAQ"})
    for event in events:
        repr(event)  # every field read: unusable ones are None and reported, nothing raises
        for side in ("asks", "bids"):
            getattr(event, side, ())
        assert event.exchange in (None, "NASDAQ", "NYSE", "AMEX")
        assert event.code == event.item
