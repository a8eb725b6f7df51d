"""The FID tables are Kiwoom's published ones: regenerated from the vendored specs
(tests/data/realtime_spec.json, and us_realtime_spec.json for the US socket), they are identical."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from kiwoom_rt import fids
from kiwoom_rt.events import FIELD_NAMES, fid_for
from kiwoom_rt.sim import spec_examples

ROOT = Path(__file__).resolve().parent.parent
VENDORED_SPEC = ROOT / "tests" / "data" / "realtime_spec.json"
VENDORED_US_SPEC = ROOT / "tests" / "data" / "us_realtime_spec.json"


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("generate_fids", ROOT / "tools" / "generate_fids.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tables_match_the_published_spec() -> None:
    generator = _generator()
    spec = json.loads(VENDORED_SPEC.read_text("utf-8"))
    us_spec = json.loads(VENDORED_US_SPEC.read_text("utf-8"))
    tables = {**generator.realtime_tables(spec), **generator.us_tables(us_spec)}
    assert set(fids.FIELDS) == set(tables) == {
        "00", "04", "0A", "0B", "0C", "0D", "0E", "0F", "0G", "0H", "0I", "0J", "0U", "0g",
        "0m", "0s", "0u", "0w", "1h", "02",  # 02: condition hits, published inside ka10173
        "FE", "FT", "F4", "F5", "S2"}  # the US socket; S2: its condition hits (usa20290)
    for type_code, (name, fields) in tables.items():
        assert fids.TYPE_NAMES[type_code] == name
        assert list(fids.FIELDS[type_code]) == [tuple(f) for f in fields]
    assert fids.WIRE_NAMES == {"FE": "미국체결", "FT": "미국10호가", "F4": "해외주식주문", "F5": "해외주식체결"}
    assert (ROOT / "kiwoom_rt" / "fids.py").read_text("utf-8") == generator.render_fids(
        tables, generator.us_wire_names(us_spec))


def test_us_tables_have_the_published_fids() -> None:
    assert len(fids.FIELDS["FE"]) == 18
    assert len(fids.FIELDS["FT"]) == 65  # ten levels of price, quantity and change, four totals, the time
    assert {fid for fid, _, _ in fids.FIELDS["S2"]} == {"841", "9001", "843", "20", "907"}


def test_simulator_examples_match_the_published_spec() -> None:
    generator = _generator()
    spec = json.loads(VENDORED_SPEC.read_text("utf-8"))
    us_spec = json.loads(VENDORED_US_SPEC.read_text("utf-8"))
    assert {**generator.example_values(spec), **generator.us_example_values(us_spec)} == spec_examples.EXAMPLE_VALUES


def test_0e_table_is_the_after_hours_order_book_totals() -> None:
    assert dict(FIELD_NAMES["0E"]) == {
        "21": "호가시간", "131": "시간외매도호가총잔량", "132": "시간외매도호가총잔량직전대비",
        "135": "시간외매수호가총잔량", "136": "시간외매수호가총잔량직전대비"}


def test_korean_names_resolve_to_fids() -> None:
    assert fid_for("0B", "현재가") == "10"
    assert fid_for("0E", "시간외매수호가총잔량") == "135"
    with pytest.raises(KeyError):
        fid_for("0B", "없는이름")
