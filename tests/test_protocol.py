"""The sans-I/O protocol: builders and the decoder, without any socket."""

from __future__ import annotations

import ast
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiwoom_rt import EVENT_TYPES, AfterHoursQuote, DecodeError, ProtocolError, RealEvent, RealtimeEvent, protocol
from kiwoom_rt.fids import TYPE_NAMES
from kiwoom_rt.messages import Ack, ConditionReply, LoginReply, Ping, RealBatch, SystemNotice, Unknown

SPEC = json.loads((Path(__file__).parent / "data" / "realtime_spec.json").read_text("utf-8"))
REALTIME_TYPES = [code for code, entry in SPEC.items()
                  if entry["transport"] == "WEBSOCKET" and len(code) == 2]

EXAMPLE_0E = (
    '{"trnm":"REAL","data":[{"type":"0E","name":"주식시간외호가","item":"005930",'
    '"values":{"21":"165208","131":"43955","132":"+156","135":"0","136":"0"}}]}'
)


def published_example(type_code: str) -> dict[str, Any]:
    text = SPEC[type_code]["response_example"]
    marker = "#실시간 수신"
    body = text[text.index(marker) + len(marker):] if marker in text else text
    frame: dict[str, Any] = ast.literal_eval(body.strip())
    return frame


# --- builders -------------------------------------------------------------------------------

def test_login_frame_carries_the_raw_token() -> None:
    assert json.loads(protocol.login("abc")) == {"trnm": "LOGIN", "token": "abc"}


def test_login_refuses_an_empty_token() -> None:
    with pytest.raises(ValueError, match="token"):
        protocol.login("")


def test_reg_frame_matches_the_published_shape() -> None:
    frame = json.loads(protocol.reg(["005930", "000660"], ["0E"]))
    assert frame == {"trnm": "REG", "grp_no": "1", "refresh": "1",
                     "data": [{"item": ["005930", "000660"], "type": ["0E"]}]}


def test_reg_without_refresh_and_a_single_item_string() -> None:
    frame = json.loads(protocol.reg("005930_NX", "0B", grp_no="12", refresh=False))
    assert frame["refresh"] == "0"
    assert frame["grp_no"] == "12"
    assert frame["data"] == [{"item": ["005930_NX"], "type": ["0B"]}]


def test_remove_frame_has_no_refresh_key() -> None:
    frame = json.loads(protocol.remove(["005930"], ["0E"]))
    assert frame == {"trnm": "REMOVE", "grp_no": "1", "data": [{"item": ["005930"], "type": ["0E"]}]}


@pytest.mark.parametrize(("items", "types", "grp_no"), [
    ([], ["0E"], "1"),
    (["005930"], [], "1"),
    (["005930"], ["0EE"], "1"),
    (["005930"], ["0E"], "12345"),
    (["005930"], ["0E"], ""),
    ([" 005930"], ["0E"], "1"),
])
def test_builders_refuse_malformed_arguments(items: list[str], types: list[str], grp_no: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        protocol.reg(items, types, grp_no=grp_no)


def test_builders_refuse_non_string_items() -> None:
    with pytest.raises(TypeError):
        protocol.reg([5930], ["0E"])  # type: ignore[list-item]


def test_ping_echo_is_the_frame_unchanged() -> None:
    raw = '{ "trnm" : "PING" , "extra": 1 }'
    message = protocol.decode(raw)
    assert isinstance(message, Ping)
    assert protocol.echo_ping(message) == raw
    assert protocol.echo_ping(protocol.decode(b'{"trnm":"PING"}')) == b'{"trnm":"PING"}'  # type: ignore[arg-type]


def test_bare_text_ping_is_a_ping() -> None:
    assert protocol.decode("PING") == Ping("PING")


# --- decoder: message kinds -----------------------------------------------------------------

def test_login_reply_with_extra_keys() -> None:
    message = protocol.decode('{"trnm":"LOGIN","return_code":0,"return_msg":"","sor_yn":"Y"}')
    assert message == LoginReply(0, "", message.extra)  # type: ignore[union-attr]
    assert isinstance(message, LoginReply)
    assert message.ok
    assert dict(message.extra) == {"sor_yn": "Y"}


@pytest.mark.parametrize("code", ["0", " 0", 0])
def test_return_code_as_int_or_numeric_string(code: Any) -> None:
    message = protocol.decode(json.dumps({"trnm": "REG", "return_code": code, "return_msg": ""}))
    assert message == Ack("REG", 0, "")


def test_login_refusal_with_wrapped_auth_code() -> None:
    message = protocol.decode(json.dumps({
        "trnm": "LOGIN", "return_code": 805004,
        "return_msg": "토큰 인증에 실패했습니다. 접속을 종료합니다 [CODE=8005, MESSAGE=Token이 유효하지 않습니다]",
    }, ensure_ascii=False))
    assert isinstance(message, LoginReply)
    assert not message.ok
    assert protocol.auth_failure_code(message.return_code, message.return_msg) == 8005


@pytest.mark.parametrize(("code", "msg", "expected"), [
    (8031, "", 8031),
    (1, "인증에 실패했습니다[8103:...]", 8103),
    (1, "something else [CODE=1999]", None),
    (805004, "no code at all", None),
])
def test_auth_failure_code(code: int, msg: str, expected: int | None) -> None:
    assert protocol.auth_failure_code(code, msg) == expected


def test_remove_ack() -> None:
    assert protocol.decode('{"trnm":"REMOVE","return_code":1,"return_msg":"x"}') == Ack("REMOVE", 1, "x")


@pytest.mark.parametrize("frame", [
    '{"trnm":"SYSTEM","code":"R10001","message":"dup"}',
    '{"trnm":"SYSTEM","return_code":"R10001","return_msg":"dup"}',
])
def test_system_notice_accepts_both_key_styles(frame: str) -> None:
    assert protocol.decode(frame) == SystemNotice("R10001", "dup")


def test_unknown_trnm_is_kept() -> None:
    message = protocol.decode('{"trnm":"XCNSRLST","return_code":0,"data":[]}')
    assert isinstance(message, Unknown)
    assert message.trnm == "XCNSRLST"
    assert message.raw["data"] == []


# --- decoder: REAL --------------------------------------------------------------------------

def test_published_0e_example_decodes_to_typed_quote() -> None:
    batch = protocol.decode(EXAMPLE_0E.encode(), received_at=123.5)
    assert isinstance(batch, RealBatch)
    assert batch.errors == ()
    (quote,) = batch.events
    assert isinstance(quote, AfterHoursQuote)
    assert (quote.item, quote.code, quote.exchange) == ("005930", "005930", "KRX")
    assert quote.time == dt.time(16, 52, 8)
    assert (quote.ask_total, quote.ask_total_change) == (43955, 156)
    assert (quote.bid_total, quote.bid_total_change) == (0, 0)
    assert quote.received_at == 123.5
    assert quote.values["132"] == "+156"
    with pytest.raises(TypeError):
        quote.values["131"] = "1"  # type: ignore[index]


def test_after_hours_quote_has_exactly_the_issue_fields() -> None:
    import attrs

    assert [f.name for f in attrs.fields(AfterHoursQuote)] == [
        "item", "code", "exchange", "values", "received_at", "time", "ask_total", "ask_total_change",
        "bid_total", "bid_total_change"]
    quote = protocol.decode(EXAMPLE_0E).events[0]  # type: ignore[union-attr]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        quote.ask_total = 1  # type: ignore[misc]


@pytest.mark.parametrize(("item", "code", "exchange"), [
    ("000660_NX", "000660", "NXT"), ("039490_AL", "039490", "SOR"), ("039490", "039490", "KRX")])
def test_exchange_suffixes(item: str, code: str, exchange: str) -> None:
    frame = EXAMPLE_0E.replace('"005930"', json.dumps(item))
    quote = protocol.decode(frame).events[0]  # type: ignore[union-attr]
    assert (quote.item, quote.code, quote.exchange) == (item, code, exchange)


def test_signs_kept_and_spaces_stripped() -> None:
    frame = EXAMPLE_0E.replace('"+156"', '" -42"').replace('"43955"', '" 43955"')
    quote = protocol.decode(frame).events[0]  # type: ignore[union-attr]
    assert quote.ask_total_change == -42
    assert quote.ask_total == 43955


@pytest.mark.parametrize(("fid", "attr", "value", "reported"), [
    ("131", "ask_total", "", False), ("131", "ask_total", " ", False), ("21", "time", None, False),
    ("132", "ask_total_change", "+", True), ("21", "time", "1652", True), ("21", "time", "256000", True),
    ("135", "bid_total", "-5", True), ("136", "bid_total_change", "1_0", True),
    ("131", "ask_total", 43955, True), ("136", "bid_total_change", "١٢", True)])
def test_blank_or_unusable_value_is_none_and_unusable_is_reported(fid: str, attr: str, value: Any,
                                                                   reported: bool) -> None:
    frame = json.loads(EXAMPLE_0E)
    frame["data"][0]["values"][fid] = value
    events: list[Any] = []
    reports: list[DecodeError] = []
    _, found = protocol.decode_frames([json.dumps(frame)], events, report=reports.append)
    assert found is None  # nothing wrong with the entry's shape
    (quote,) = events  # delivered either way
    assert reports == []  # typed lazily: nothing is judged before a field is read
    assert getattr(quote, attr) is None
    assert quote.bid_total_change == (None if fid == "136" else 0)  # the other fields still parse
    repr(quote)  # every field read again: reported once per entry, not once per read
    if reported:
        (error,) = reports
        assert isinstance(error, DecodeError)
        assert (error.type, error.item) == ("0E", "005930")
        assert f"FID {fid}" in str(error)
    else:
        assert reports == []


def test_missing_fid_is_none_and_the_entry_still_delivered() -> None:
    frame = json.loads(EXAMPLE_0E)
    del frame["data"][0]["values"]["135"]
    batch = protocol.decode(json.dumps(frame))
    assert isinstance(batch, RealBatch)
    assert batch.errors == ()
    (quote,) = batch.events
    assert quote.bid_total is None
    assert quote.ask_total == 43955


def test_one_bad_entry_does_not_spoil_the_others() -> None:
    good = json.loads(EXAMPLE_0E)["data"][0]
    frame = {"trnm": "REAL", "data": [
        good, {"type": "0E", "item": "1"}, "junk", {"item": "2", "values": {}},
        {"type": "0B", "values": {}}, dict(good, item="000660"), {"type": "0B", "item": "x", "values": {"10": 5}},
    ]}
    batch = protocol.decode(json.dumps(frame))
    assert isinstance(batch, RealBatch)
    assert [e.item for e in batch.events] == ["005930", "000660", "x"]
    assert len(batch.errors) == 4  # the entries that are not entries
    assert all(isinstance(e, DecodeError) for e in batch.errors)
    assert batch.events[2].price is None  # type: ignore[attr-defined]  # unusable: None (and logged)


@pytest.mark.parametrize("type_code", REALTIME_TYPES)
def test_every_published_example_decodes(type_code: str) -> None:
    frame = published_example(type_code)
    batch = protocol.decode(json.dumps(frame, ensure_ascii=False))
    assert isinstance(batch, RealBatch)
    assert batch.errors == ()
    (event,) = batch.events
    assert event.type == type_code
    assert type(event) is EVENT_TYPES[type_code]
    assert event.name == TYPE_NAMES[type_code]  # the published type name (04's example sends 현물잔고)


def test_type_codes_are_case_sensitive() -> None:
    upper = protocol.decode(json.dumps(published_example("0G"))).events[0]  # type: ignore[union-attr]
    lower = protocol.decode(json.dumps(published_example("0g"))).events[0]  # type: ignore[union-attr]
    assert (upper.type, upper.name) == ("0G", "ETF NAV")
    assert (lower.type, lower.name) == ("0g", "주식종목정보")


def test_lookup_by_fid_and_korean_name_and_generic_parsers() -> None:
    event = protocol.decode(json.dumps(published_example("0B"))).events[0]  # type: ignore[union-attr]
    assert event["10"] == event["현재가"] == "-20800"
    assert event.price_of("현재가") == 20800  # the direction sign is dropped
    assert event.quantity_of("거래량") == 82
    assert event.quantity_of("전일거래량대비(계약,주)") == -1057122
    assert event.rate_of("등락율") == pytest.approx(-0.24)
    assert event.time_of("체결시간") == dt.time(16, 52, 8)
    assert event.price_of("1890") is None  # blank means missing
    assert event.price_of("9999") is None  # absent too
    assert event.get("9999") is None
    assert "현재가" in event
    with pytest.raises(KeyError):
        event["없는필드"]
    with pytest.raises(ValueError, match="HHmmss"):
        event.time_of("10")


def test_ambiguous_korean_name_is_refused_with_the_fids() -> None:
    event = protocol.decode(json.dumps(published_example("0D"))).events[0]  # type: ignore[union-attr]
    with pytest.raises(KeyError, match="ambiguous"):
        event["예상체결가"]


def test_index_prices_keep_decimals() -> None:
    event = protocol.decode(json.dumps(published_example("0J"))).events[0]  # type: ignore[union-attr]
    assert event.price == pytest.approx(1762.61)
    assert event.price_of("10") == pytest.approx(1762.61)
    assert event.change == pytest.approx(-189.51)


def test_unpublished_type_is_a_real_event_with_raw_values() -> None:
    frame = {"trnm": "REAL", "data": [{"type": "9Z", "name": "new", "item": "005930", "values": {"10": "+5"}}]}
    (event,) = protocol.decode(json.dumps(frame)).events  # type: ignore[union-attr]
    assert isinstance(event, RealEvent)
    assert (event.type, event.name) == ("9Z", "new")
    assert event.price_of("10") == 5


# --- decoder: anything else is a ProtocolError ----------------------------------------------

@pytest.mark.parametrize("frame", [
    b"", b"\xff\xfe\x00", "not json", "[1,2]", "null", '{"no":"trnm"}', '{"trnm":5}',
    '{"trnm":"REAL"}', '{"trnm":"REAL","data":"x"}', '{"trnm":"LOGIN"}',
    '{"trnm":"REG","return_code":"abc"}', '{"trnm":"REG","return_code":true}',
    '{"trnm":"SYSTEM"}', "[" * 100_000 + "]" * 100_000,
])
def test_unusable_frames_raise_protocol_error(frame: str | bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.decode(frame)
    assert len(info.value.frame) < 300  # a truncated copy, never the whole frame


def test_non_frame_input_raises_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        protocol.decode(12)  # type: ignore[arg-type]


def _decode_never_raises_anything_else(frame: Any) -> None:
    try:
        message = protocol.decode(frame)
    except ProtocolError:
        return
    assert isinstance(message, (LoginReply, Ping, Ack, SystemNotice, RealBatch, ConditionReply, Unknown))
    if isinstance(message, RealBatch):
        assert all(isinstance(e, RealtimeEvent) for e in message.events)
        assert all(isinstance(e, DecodeError) for e in message.errors)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_property_arbitrary_bytes(frame: bytes) -> None:
    _decode_never_raises_anything_else(frame)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=256))
def test_property_arbitrary_text(frame: str) -> None:
    _decode_never_raises_anything_else(frame)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)
TRNMS = st.sampled_from(["REAL", "PING", "LOGIN", "REG", "REMOVE", "SYSTEM", "CNSRLST", "CNSRREQ", "CNSRCLR"])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_property_arbitrary_json_values(value: Any) -> None:
    _decode_never_raises_anything_else(json.dumps(value))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(TRNMS, st.dictionaries(st.sampled_from(
    ["data", "return_code", "return_msg", "code", "message", "token"]), JSON_VALUES, max_size=4))
def test_property_arbitrary_objects_with_known_trnm(trnm: str, body: dict[str, Any]) -> None:
    _decode_never_raises_anything_else(json.dumps({"trnm": trnm, **body}))


def _mutations() -> st.SearchStrategy[Any]:
    examples = [published_example(code) for code in REALTIME_TYPES]

    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        frame = json.loads(json.dumps(draw(st.sampled_from(examples)), ensure_ascii=False))
        entry = frame["data"][0]
        action = draw(st.sampled_from(["drop_key", "replace_value", "replace_entry_field",
                                       "add_entry", "wrap_data", "text_edit"]))
        if action == "drop_key" and entry["values"]:
            del entry["values"][draw(st.sampled_from(sorted(entry["values"])))]
        elif action == "replace_value" and entry["values"]:
            entry["values"][draw(st.sampled_from(sorted(entry["values"])))] = draw(JSON_VALUES)
        elif action == "replace_entry_field":
            entry[draw(st.sampled_from(["type", "item", "values", "name"]))] = draw(JSON_VALUES)
        elif action == "add_entry":
            frame["data"].append(draw(JSON_VALUES))
        elif action == "wrap_data":
            frame["data"] = draw(st.sampled_from([entry, None, 5, "x", [[entry]]]))
        text = json.dumps(frame, ensure_ascii=False)
        if action == "text_edit":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.text(max_size=3)) + text[at + draw(st.integers(0, 3)):]
        return draw(st.sampled_from([text, text.encode("utf-8")]))

    return mutate()


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_property_mutations_of_published_examples(frame: str | bytes) -> None:
    _decode_never_raises_anything_else(frame)


@pytest.fixture
def stdlib_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run with the standard library's json as the default install does without the optional
    orjson: the C scanner called directly, known names dropped before scanning."""
    from kiwoom_rt import _json

    monkeypatch.setattr(protocol, "_loads", _json._stdlib_loads)
    monkeypatch.setattr(protocol, "_SCAN", _json._scan_once)
    monkeypatch.setattr(protocol, "_DECODE_ERRORS", (ValueError, TypeError, RecursionError, MemoryError,
                                                     StopIteration))


def _decoded_both_ways(monkeypatch: pytest.MonkeyPatch, frame: bytes) -> tuple[Any, Any]:
    """(what the default install's decoder gives, what plain ``json.loads`` of the frame gives)."""
    from kiwoom_rt import _json

    results = []
    for scan, loads in ((_json._scan_once, _json._stdlib_loads), (None, json.loads)):
        monkeypatch.setattr(protocol, "_SCAN", scan)
        monkeypatch.setattr(protocol, "_loads", loads)
        monkeypatch.setattr(protocol, "_DECODE_ERRORS", (ValueError, TypeError, RecursionError, MemoryError,
                                                         StopIteration))
        events: list[Any] = []
        real, found = protocol.decode_frames([frame], events, received_at=1.0)
        results.append((real, events, [(at, type(thing).__name__, str(thing)) for at, thing in found or ()]))
    return results[0], results[1]


_NAMES = [*TYPE_NAMES.values(), "주식체결X", "", "가나다", 'a"name":"b', "주식체결\\"]


@st.composite
def _named_frames(draw: st.DrawFn) -> bytes:
    """REAL frames written as Kiwoom writes them (compact, names in place) with several
    entries: known and unknown types, known names, other names, names last, Korean values."""
    entries = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["0E", "0B", "0D", "0s", "0Z", "zz"]))
        entry: dict[str, Any] = {"type": kind}
        name = draw(st.sampled_from([TYPE_NAMES.get(kind, "이름"), *_NAMES, None]))
        if kind not in TYPE_NAMES and name in TYPE_NAMES.values():
            name = "이름"  # (an unpublished type with a published type's name: see the test below)
        if name is not None and draw(st.booleans()):
            entry["name"] = name
        entry["item"] = draw(st.sampled_from(["005930", "000660_NX", "가"]))
        entry["values"] = draw(st.dictionaries(
            st.sampled_from(["20", "10", "15", "215", "9001"]),
            st.sampled_from(["+100", "090000", "-7", "주식체결", '"name":"주식체결",', "", " "]), max_size=4))
        if name is not None and "name" not in entry:
            entry["name"] = name  # last, after values
        entries.append(entry)
    return json.dumps({"trnm": "REAL", "data": entries}, ensure_ascii=False, separators=(",", ":")).encode()


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(_named_frames())
def test_dropping_known_names_before_scanning_changes_nothing_decoded(monkeypatch: pytest.MonkeyPatch,
                                                                      frame: bytes) -> None:
    """The default install drops a known type's Korean name from a frame before scanning it (to
    keep every string ASCII); what it decodes equals what plain json.loads of the frame gives."""
    fast, plain = _decoded_both_ways(monkeypatch, frame)
    assert fast == plain


def test_names_are_dropped_from_every_entry_of_a_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [{"type": "0B", "name": TYPE_NAMES["0B"], "item": f"00{index}", "values": {"10": f"+{index}"}}
               for index in range(5)]
    entries.insert(2, {"type": "0Z", "name": "주식체결X", "item": "x", "values": {}})
    frame = json.dumps({"trnm": "REAL", "data": entries}, ensure_ascii=False, separators=(",", ":")).encode()
    fast, plain = _decoded_both_ways(monkeypatch, frame)
    assert fast == plain
    assert [event.item for event in fast[1]] == ["000", "001", "x", "002", "003", "004"]
    assert fast[1][2].name == "주식체결X"  # an unpublished type keeps a name of its own


def test_an_unpublished_type_with_a_published_types_name_loses_it_without_orjson(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The one difference the name dropping makes, kept because checking that each name follows
    its own type costs 0.2-0.3 us a frame (measured): an entry of an unpublished type that carries
    a published type's name (Kiwoom never sends one) is an event named "" without orjson."""
    frame = json.dumps({"trnm": "REAL", "data": [{"type": "0Z", "name": TYPE_NAMES["0B"], "item": "x",
                                                  "values": {}}]}, ensure_ascii=False, separators=(",", ":")).encode()
    fast, plain = _decoded_both_ways(monkeypatch, frame)
    assert (fast[1][0].name, plain[1][0].name) == ("", TYPE_NAMES["0B"])
    assert fast[1][0].values == plain[1][0].values


@pytest.mark.usefixtures("stdlib_json")
@pytest.mark.parametrize("frame", [
    b"", b"\xff\xfe\x00", "not json", "[1,2]", '{"trnm":5}', "[" * 100_000 + "]" * 100_000,
    '{"trnm":"REAL","data":"x"}'])
def test_stdlib_json_path_raises_protocol_error(frame: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode(frame)


@pytest.mark.usefixtures("stdlib_json")
def test_stdlib_json_path_decodes_the_example() -> None:
    quote = protocol.decode(EXAMPLE_0E.encode()).events[0]  # type: ignore[union-attr]
    assert quote.ask_total_change == 156


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(_mutations())
def test_property_mutations_with_stdlib_json(stdlib_json: None, frame: str | bytes) -> None:
    _decode_never_raises_anything_else(frame)


def test_old_orjson_without_a_depth_limit_is_not_used() -> None:
    from kiwoom_rt import _json

    assert _json._version("3.8.3") < _json.SAFE_ORJSON <= _json._version("3.9.15") <= _json._version("3.13.0")
    assert _json._version("3.10.0rc1") >= _json.SAFE_ORJSON


def test_deep_nesting_is_a_protocol_error_on_a_worker_thread() -> None:
    import threading

    outcome: list[BaseException] = []

    def run() -> None:
        try:
            protocol.decode("[" * 300_000 + "]" * 300_000)
        except ProtocolError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(30)
    assert len(outcome) == 1


def test_the_bad_input_corpus_decodes_alike_with_and_without_the_scanner_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default install's hot path (the C scanner called directly, names dropped first) finds
    in every frame of ``tests/corpus`` what plain json.loads finds: the same events, the same
    unusable frames and entries."""
    import gzip

    corpus = sorted(p for p in (Path(__file__).parent / "corpus").iterdir() if p.name != "README.md")
    checked = 0
    for path in corpus:
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        fast, plain = _decoded_both_ways(monkeypatch, data)
        assert fast[:2] == plain[:2], path.name
        assert [(at, kind) for at, kind, _ in fast[2]] == [(at, kind) for at, kind, _ in plain[2]], path.name
        checked += 1
    assert checked >= 10
