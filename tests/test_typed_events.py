"""Typed events for every realtime type: published examples, parsing rules, fuzzing, both paths."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiwoom_rt import (
    EVENT_TYPES,
    AfterHoursQuote,
    BookLevel,
    ConditionEvent,
    DecodeError,
    OrderBook,
    ProtocolError,
    RealtimeEvent,
    Trade,
    protocol,
)
from kiwoom_rt.events import FIELD_NAMES, US_EVENT_TYPES, headline_fields
from kiwoom_rt.messages import RealBatch
from kiwoom_rt.sim.spec_examples import EXAMPLE_VALUES

from .helpers import careful_build, decoded

T = dt.time

#: The published example of every type, decoded: the headline values a trader would read off it.
EXPECTED: dict[str, dict[str, Any]] = {
    "00": {"account": "1111111111", "order_no": "0000018", "status": "접수", "order_kind": "+매수",
           "side": "2", "time": T(9, 40, 22), "order_quantity": 1, "order_price": 0, "unfilled_quantity": 1,
           "fill_price": None, "fill_quantity": None, "price": 60700, "best_ask": 60700, "best_bid": 60000},
    "04": {"account": "1111111111", "stock_name": "삼성전자", "price": 60150, "quantity": 102,
           "average_price": 154116, "best_ask": 60200, "best_bid": 60100, "base_price": 60300,
           "profit_rate": 0.0},
    "0A": {"price": 86800, "change": 19500, "rate": 28.97, "best_ask": 85200, "best_bid": 85100,
           "cumulative_volume": 367090, "open": 87400, "high": 87400, "low": 67300},
    "0B": {"time": T(16, 52, 8), "price": 20800, "change": -50, "rate": -0.24, "volume": 82,
           "cumulative_volume": 30379732, "open": 20850, "high": 21150, "low": 20450, "best_ask": 20800,
           "best_bid": 20700},
    "0C": {"best_ask": 20800, "best_bid": 20700},
    "0D": {"time": T(16, 52, 7), "ask_total": 12622527, "ask_total_change": -1036021, "bid_total": 14453430,
           "bid_total_change": 1062126, "expected_price": 20850, "expected_volume": 332941},
    "0E": {"time": T(16, 52, 8), "ask_total": 43955, "ask_total_change": 156, "bid_total": 0,
           "bid_total_change": 0},
    "0F": {"foreign_sell": 0, "foreign_buy": 0, "foreign_net": 0},
    "0G": {"time": T(10, 57, 32), "nav": 7488.27, "nav_change": 9.57, "nav_rate": 0.13, "tracking_error": 1.82,
           "price": 7485, "change": 45, "rate": 0.6, "cumulative_volume": 16874, "nav_price_gap": -0.04},
    "0H": {"time": T(11, 2, 6), "price": 60500, "change": 200, "rate": 0.33, "volume": -7805,
           "cumulative_volume": 768293},
    "0I": {"price": 337782, "change": -1674, "rate": -0.49},
    "0J": {"time": T(11, 4, 30), "price": 1762.61, "change": -189.51, "rate": -9.71, "volume": 2800,
           "cumulative_volume": 725277, "open": 1949.04, "high": 1961.28, "low": 1756.13},
    "0U": {"time": T(11, 7, 10), "advancing": 46, "upper_limit": 1, "unchanged": 166, "declining": 204,
           "lower_limit": 16, "traded": 416, "price": 1757.42, "change": -194.7, "rate": -9.97},
    "0g": {"upper_limit": 78300, "lower_limit": 42300, "base_price": 60300, "extension": "동정적VI"},
    "0m": {"time": T(14, 0), "price": 450, "theoretical_price": 0, "implied_volatility": 0.0,
           "lp_implied_volatility": 0.0},
    "0s": {"phase": "b", "time": T(17, 0), "remaining": dt.timedelta(0)},
    "0u": {"time": T(11, 18, 47), "parity": 69.13, "premium": 0.0, "gearing": 1037.04,
           "break_even_rate": 44.73, "capital_support": 44.78},
    "0w": {"time": T(11, 34, 42), "price": 60200, "change": -100, "rate": -0.17,
           "cumulative_volume": 128152628, "buy_quantity": 8043, "buy_amount": 483, "net_quantity": 8043},
    "1h": {"stock_name": "삼성전자", "vi_type": "정적", "trigger_price": 4125, "trigger_rate": 10.0,
           "trigger_time": T(11, 14, 54), "release_time": T(11, 17, 3), "static_base_price": 3750,
           "count": 1, "cumulative_volume": 1077818},
    "02": {"seq": "4", "entered": True, "time": T(15, 20, 28)},
}


def real(type_code: str, values: dict[str, Any], item: str = "005930") -> str:
    return json.dumps({"trnm": "REAL", "data": [{"type": type_code, "name": "x", "item": item,
                                                 "values": values}]}, ensure_ascii=False)


def decode_one(type_code: str, values: dict[str, Any], item: str = "005930") -> tuple[Any, tuple[DecodeError, ...]]:
    """The decoded event, and the problems reported once every field was read (events are typed
    lazily: a problem is found when its field is first read)."""
    events: list[Any] = []
    reports: list[Any] = []
    _, found = protocol.decode_frames([real(type_code, values, item)], events, received_at=5.0,
                                      report=reports.append)
    (event,) = events
    repr(event)  # every headline field read
    return event, tuple(error for _, error in found or ()) + tuple(reports)


def test_every_type_has_a_class_and_an_expectation() -> None:
    # the US types' expectations are in test_us_events.py
    assert set(EVENT_TYPES) - set(US_EVENT_TYPES) == set(EXPECTED)
    assert set(EVENT_TYPES) == set(EXAMPLE_VALUES) == set(FIELD_NAMES)
    for type_code, cls in EVENT_TYPES.items():
        assert cls.type == type_code
        assert issubclass(cls, RealtimeEvent)
        for field in headline_fields(cls):  # every headline FID is a published FID of its type
            assert field.fid in FIELD_NAMES[type_code], (type_code, field)


@pytest.mark.parametrize("type_code", sorted(EXPECTED))
def test_published_example_decodes_to_its_class(type_code: str) -> None:
    event, errors = decode_one(type_code, EXAMPLE_VALUES[type_code])
    assert errors == ()
    assert type(event) is EVENT_TYPES[type_code]
    for attr, expected in EXPECTED[type_code].items():
        actual = getattr(event, attr)
        if isinstance(expected, float):
            assert actual == pytest.approx(expected), attr
            assert isinstance(actual, float), attr
        else:
            assert actual == expected, attr
            assert type(actual) is type(expected), attr
    # the common base
    assert (event.item, event.code, event.exchange, event.received_at) == ("005930", "005930", "KRX", 5.0)
    assert dict(event.values) == EXAMPLE_VALUES[type_code]
    for fid, value in EXAMPLE_VALUES[type_code].items():
        assert event[fid] == event.get(fid) == value
    with pytest.raises(TypeError):
        event.values["10"] = "1"  # read-only
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.item = "x"
    assert type(event).__name__ in repr(event)


def test_trade_signs() -> None:
    values = dict(EXAMPLE_VALUES["0B"], **{"10": "+20900", "11": "+50", "12": "+0.24", "15": "-300",
                                          "16": "-20700", "27": "+20900", "28": "20850"})
    trade, errors = decode_one("0B", values)
    assert errors == ()
    assert isinstance(trade, Trade)
    assert (trade.price, trade.change, trade.rate) == (20900, 50, 0.24)
    assert trade.volume == -300  # seller-initiated keeps its sign
    assert (trade.open, trade.best_ask, trade.best_bid) == (20700, 20900, 20850)  # prices absolute


def test_padding_and_blanks() -> None:
    values = dict(EXAMPLE_VALUES["0B"], **{"10": " -20800", "13": "  30379732 ", "12": " ", "15": ""})
    trade, errors = decode_one("0B", values)
    assert errors == ()
    assert (trade.price, trade.cumulative_volume) == (20800, 30379732)
    assert trade.rate is None
    assert trade.volume is None


def test_an_entry_with_only_a_few_fields_is_delivered() -> None:
    trade, errors = decode_one("0B", {"10": "+100", "20": "090000"})
    assert errors == ()
    assert (trade.price, trade.time, trade.volume, trade.best_bid) == (100, T(9, 0), None, None)


@pytest.mark.parametrize(("fid", "attr", "raw"), [
    ("10", "price", "abc"), ("10", "price", "1.5.2"), ("11", "change", "--5"), ("12", "rate", "nan"),
    ("12", "rate", "inf"), ("12", "rate", "1_0"), ("13", "cumulative_volume", "-5"),
    ("20", "time", "250000"), ("20", "time", "12345"), ("15", "volume", "١٢"), ("16", "open", 20850),
    ("17", "high", ["21150"]), ("18", "low", {"a": 1}), ("20", "time", True),
])
def test_unusable_value_is_none_reported_once_and_the_rest_still_parses(fid: str, attr: str, raw: Any) -> None:
    values = dict(EXAMPLE_VALUES["0B"], **{fid: raw})
    trade, errors = decode_one("0B", values)
    assert getattr(trade, attr) is None
    (error,) = errors
    assert isinstance(error, DecodeError)
    assert (error.type, error.item) == ("0B", "005930")
    assert f"FID {fid}" in str(error)
    others = {k: v for k, v in EXPECTED["0B"].items() if k != attr}
    assert {k: getattr(trade, k) for k in others} == pytest.approx(others)


def test_two_bad_values_make_one_error() -> None:
    values = dict(EXAMPLE_VALUES["0B"], **{"10": "x", "11": "y"})
    trade, errors = decode_one("0B", values)
    assert (trade.price, trade.change) == (None, None)
    (error,) = errors
    assert "FID 10" in str(error)
    assert "FID 11" in str(error)


def book_values(**overrides: str) -> dict[str, str]:
    return dict(EXAMPLE_VALUES["0D"], **overrides)


def test_order_book_levels_best_first() -> None:
    book, errors = decode_one("0D", book_values())
    assert errors == ()
    assert isinstance(book, OrderBook)
    assert len(book.asks) == len(book.bids) == 10
    assert book.asks[0] == BookLevel(20800, 82, 0)
    assert book.asks[1] == BookLevel(20900, 393, 0)
    assert book.bids[0] == BookLevel(20700, 23847, 0)
    assert book.bids[-1] == BookLevel(20250, 1062405, 0)
    assert [level.price for level in book.asks] == sorted(level.price for level in book.asks)
    assert book.asks is book.asks  # parsed once, cached


def test_order_book_skips_empty_levels_and_keeps_the_rest() -> None:
    book, errors = decode_one("0D", book_values(**{"42": "", "62": "", "82": "", "43": "0", "53": "  ",
                                                   "91": "-15", "71": "+23847"}))
    assert errors == ()
    assert [level.price for level in book.asks][:3] == [20800, 21050, 21100]
    assert len(book.asks) == 8
    assert len(book.bids) == 9
    assert book.bids[0] == BookLevel(20700, 23847, -15)


def test_order_book_expected_fields_none_when_blank() -> None:
    book, errors = decode_one("0D", book_values(**{"23": "", "24": " "}))
    assert errors == ()
    assert (book.expected_price, book.expected_volume) == (None, None)
    assert book.ask_total == 12622527


def test_order_book_unusable_level_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    book, errors = decode_one("0D", book_values(**{"41": "12x"}))
    assert errors == ()  # levels are parsed on first use, after decoding reported on the entry
    with caplog.at_level("WARNING", logger="kiwoom_rt.events"):
        assert book.asks[0].price == 20900
    assert "41" in caplog.text


def test_condition_event() -> None:
    event, errors = decode_one("02", {"841": "4 ", "9001": "A005930", "843": "D", "20": "152028", "907": "2"},
                               item="A005930")
    assert errors == ()
    assert isinstance(event, ConditionEvent)
    assert (event.seq, event.entered, event.code, event.item) == ("4", False, "005930", "A005930")
    bad, errors = decode_one("02", {"841": "4", "843": "X", "20": "152028"})
    assert bad.entered is None
    assert "843" in str(errors[0])


def test_exchange_from_suffix_and_market_prefix_dropped() -> None:
    for item, code, exchange in (("005930_NX", "005930", "NXT"), ("005930_AL", "005930", "SOR"),
                                 ("A005930", "005930", "KRX"), ("001", "001", "KRX"), ("", "", "")):
        event, _ = decode_one("0B", EXAMPLE_VALUES["0B"], item=item)
        assert (event.code, event.exchange) == (code, exchange)


def test_equality_ignores_received_at_and_compares_values() -> None:
    a, _ = decode_one("0B", EXAMPLE_VALUES["0B"])
    b = protocol.decode(real("0B", EXAMPLE_VALUES["0B"]), received_at=99.0).events[0]  # type: ignore[union-attr]
    c, _ = decode_one("0B", dict(EXAMPLE_VALUES["0B"], **{"14": "1"}))  # a non-headline value differs
    assert a == b
    assert a != c


def test_after_hours_quote_shares_the_base() -> None:
    quote, _ = decode_one("0E", EXAMPLE_VALUES["0E"])
    assert isinstance(quote, AfterHoursQuote)
    assert isinstance(quote, RealtimeEvent)
    assert quote["시간외매도호가총잔량"] == "43955"
    assert quote.quantity_of("132") == 156
    assert quote.time_of("호가시간") == T(16, 52, 8)


# --- fuzzing: no exception escapes, and the fast path agrees with the careful one -----------------

EDGE_VALUES = ["", " ", "0", "+0", "-0", "+156", "-20800", " 43955", "12.5", "-0.24", "165208",
                     "000000", "235959", "240000", "I", "D", "1_0", "nan", "inf", "1e3", "١٢", "+", "-",
                     # the quick readers' edges: other digits, a sign with them, two signs, padding,
                     # huge and non-finite numbers
                     "²", "+١", "-²", "0001", "+-5", "-+5", " +5", "+5 ", "1e999", "-inf", "Infinity", "+.5",
                     "5.", "99999999999999999999999", "-0.0", "+NaN", "x5", "_5", ".5", "\t7"]
RAW_VALUES = st.one_of(
    st.sampled_from(EDGE_VALUES),
    st.text(alphabet="0123456789+-. _eaID", max_size=9),
    st.text(max_size=6),
    st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.none(), st.booleans(),
    st.lists(st.integers(), max_size=2),
)


@pytest.mark.parametrize("type_code", sorted(EVENT_TYPES))
def test_every_field_reads_every_edge_as_the_careful_path_does(type_code: str) -> None:
    """Each headline field of each type, given each edge value in turn, reads as the careful
    typing reads it, with one report when it is unusable: the quick readers of each kind
    (canonical digits, cached prices and times, finite rates) take nothing else."""
    cls = EVENT_TYPES[type_code]
    edges = [*EDGE_VALUES, 7, -7, 1.5, None, True, ["1"], {"1": 1}, b"5"]
    for field in headline_fields(cls):
        for raw in edges:
            values = dict(EXAMPLE_VALUES[type_code], **{field.fid: raw})
            reports: list[Any] = []
            lazy_event = decoded(cls, "005930", dict(values), 1.0, reports.append)
            careful = careful_build(cls, "005930", dict(values), 1.0)
            careful_event, careful_problem = careful if type(careful) is tuple else (careful, None)
            a, b = getattr(lazy_event, field.attr), getattr(careful_event, field.attr)
            assert a == b, (field, raw, a, b)
            assert type(a) is type(b), (field, raw, a, b)
            for other in headline_fields(cls):  # (the rest of the entry, read after it)
                assert getattr(lazy_event, other.attr) == getattr(careful_event, other.attr)
            assert len(reports) == (0 if careful_problem is None else 1), (field, raw)


@st.composite
def typed_entries(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    type_code = draw(st.sampled_from(sorted(EVENT_TYPES)))
    values: dict[str, Any] = dict(EXAMPLE_VALUES[type_code])
    fids = sorted(FIELD_NAMES[type_code])
    for fid in draw(st.lists(st.sampled_from(fids), max_size=6)):
        if draw(st.booleans()):
            values[fid] = draw(RAW_VALUES)
        else:
            values.pop(fid, None)
    return type_code, values


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(typed_entries())
def test_fuzzed_values_never_raise_and_both_paths_agree(entry: tuple[str, dict[str, Any]]) -> None:
    type_code, values = entry
    cls = EVENT_TYPES[type_code]
    reports: list[Any] = []
    lazy_event = decoded(cls, "005930", dict(values), 1.0, reports.append)
    careful = careful_build(cls, "005930", dict(values), 1.0)
    careful_event, careful_problem = careful if type(careful) is tuple else (careful, None)
    assert type(lazy_event) is cls
    for field in headline_fields(cls):  # read one by one, in declaration order, as a receiver does
        a, b = getattr(lazy_event, field.attr), getattr(careful_event, field.attr)
        assert a == b or (a != a and b != b), (field, values.get(field.fid))  # NaN never comes out, though
        value = a
        assert value is None or not isinstance(value, float) or value == value
    assert len(reports) == (0 if careful_problem is None else 1)  # once per entry, whatever was read
    assert lazy_event == careful_event
    # and through the whole decoder, lazily parsed parts included
    text = json.dumps({"trnm": "REAL", "data": [{"type": type_code, "item": "005930", "values": values}]})
    try:
        batch = protocol.decode(text)
    except ProtocolError as exc:  # NaN or a lone surrogate: json.dumps writes them, JSON has neither
        reason = exc.reason
    else:
        reason = ""
    if reason:
        assert reason.startswith("frame is not valid JSON")
        return
    assert isinstance(batch, RealBatch)
    (event,) = batch.events
    assert batch.errors == ()  # the entry's shape is right; its values are judged when read
    if isinstance(event, OrderBook):
        assert all(isinstance(level, BookLevel) for level in (*event.asks, *event.bids))
    repr(event)


def test_brokers_sides() -> None:
    brokers, errors = decode_one("0F", dict(EXAMPLE_VALUES["0F"], **{"145": 5, "170": "x"}))
    assert errors == ()  # the sides are read on use; their bad values are logged and skipped there
    assert [b.broker_code for b in brokers.buyers] == ["993", "991", "994", "992", "005"]
    assert brokers.buyers[-1].broker == "미래에셋"
    assert brokers.buyers[0].quantity == 9321128
    assert brokers.buyers[0].change == 8557163
    assert [b.broker_code for b in brokers.sellers] == ["993", "994", "991", "992"]  # the fifth is unusable


def test_market_session_remaining_time() -> None:
    session, errors = decode_one("0s", {"215": "3", "20": "085000", "214": "001000"})
    assert errors == ()
    assert (session.phase, session.time, session.remaining) == ("3", T(8, 50), dt.timedelta(minutes=10))


ALL_FIELDS = [(type_code, field) for type_code, cls in sorted(EVENT_TYPES.items())
              for field in headline_fields(cls)]
SAMPLE = {"price": "-20800", "last": "-20800", "number": "-1762.61", "last_number": "-1762.61",
           "int": "-50", "uint": "43955", "rate": "-0.24",
          "time": "165208", "text": "접수", "entered": "I", "duration": "000130", "date": "20260630",
          "side": "01"}
PARSED = {"price": 20800, "last": 20800, "number": 1762.61, "last_number": 1762.61,
           "int": -50, "uint": 43955, "rate": -0.24,
          "time": T(16, 52, 8), "text": "접수", "entered": True, "duration": dt.timedelta(seconds=90),
          "date": dt.date(2026, 6, 30), "side": "sell"}


@pytest.mark.parametrize(("type_code", "field"), ALL_FIELDS, ids=[f"{t}-{f.attr}" for t, f in ALL_FIELDS])
def test_every_field_signs_padding_blanks_and_bad_values(type_code: str, field: Any) -> None:
    def one(raw: Any) -> tuple[Any, tuple[DecodeError, ...]]:
        event, errors = decode_one(type_code, dict(EXAMPLE_VALUES[type_code], **{field.fid: raw}))
        return getattr(event, field.attr), errors

    value, errors = one(SAMPLE[field.kind])
    assert errors == ()
    assert value == pytest.approx(PARSED[field.kind]) if isinstance(value, float) else value == PARSED[field.kind]
    padded, errors = one(f"  {SAMPLE[field.kind]} ")
    assert errors == ()
    assert padded == value
    for blank in ("", "   "):
        assert one(blank) == (None, ())
    missing = {k: v for k, v in EXAMPLE_VALUES[type_code].items() if k != field.fid}
    event, errors = decode_one(type_code, missing)
    assert getattr(event, field.attr) is None
    assert errors == ()
    if field.kind == "text":
        bad: Any = 12345  # any text is text; a number is not
    else:
        bad = "1_0" if field.kind in ("int", "uint", "price", "last") else "x9"
    value, errors = one(bad)
    assert value is None
    (error,) = errors
    assert f"FID {field.fid}" in str(error)
    if field.kind in ("price", "last"):  # the direction sign is dropped either way
        assert one("+20800")[0] == one("20800")[0] == 20800
    if field.kind in ("last", "last_number"):  # a traded price is positive and finite (issue 37)
        for unusable in ("0", "+0", "-0", "0.00", "1e400", "-1e400"):
            value, errors = one(unusable)
            assert value is None, unusable
            assert len(errors) == 1
    if field.kind in ("number", "rate", "last_number"):  # overflowing text is not a number
        value, errors = one("1e400")
        assert value is None
        assert len(errors) == 1
    if field.kind in ("int", "rate", "number"):
        assert one("+5")[0] == 5


_INT_TEXTS = st.one_of(
    st.from_regex(r"\A[+-]?[0-9]{1,9}\Z"),  # what Kiwoom sends
    st.text(alphabet="+- 0123456789_.e٣²", max_size=8),  # near misses: spaces, signs, other digits
    st.text(max_size=6),
)


@given(raw=_INT_TEXTS)
def test_canonical_int_reads_what_the_strict_parsers_read_and_nothing_they_refuse(raw: str) -> None:
    """The bars' quick road (``values.canonical_int``) agrees with the strict parsers."""
    from kiwoom_rt.values import canonical_int, parse_abs_int, parse_signed_int

    quick = canonical_int(raw)
    if quick is None:
        return  # refused: the caller takes the strict road
    assert quick == parse_signed_int(raw)
    assert abs(quick) == parse_abs_int(raw)
    assert raw.lstrip("+-").isdigit()
    assert raw[:2] not in ("++", "--", "+-", "-+")


def test_canonical_int_examples() -> None:
    from kiwoom_rt.values import canonical_int

    assert [canonical_int(raw) for raw in ("+60700", "-50", "0", "007")] == [60700, -50, 0, 7]
    assert [canonical_int(raw) for raw in ("", " 5", "5 ", "1_000", "+-5", "--5", "1.5", "٣", "²", None, 5)] == \
        [None] * 11
