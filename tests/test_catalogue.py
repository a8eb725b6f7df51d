"""The catalogue of realtime types (issue 38): one row per type, and every module reads it."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from kiwoom_rt import NEVER_STALE, STALE_AFTER, markets, protocol, us
from kiwoom_rt._catalogue import (
    ACCOUNT_TYPES,
    CONDITION_TYPES,
    DOMESTIC_TYPES,
    TRADE_TYPES,
    TYPES,
    US_TYPES,
    registrable,
    stale_after,
    trade_fields,
    type_flows,
)
from kiwoom_rt.events import EVENT_TYPES
from kiwoom_rt.fids import TYPE_NAMES

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT.parent / "shared" / "kiwoom"


def test_one_row_per_class_and_per_published_type() -> None:
    assert set(TYPES) == set(EVENT_TYPES) == set(TYPE_NAMES)
    for code, row in TYPES.items():
        assert row.code == code
        assert row.cls is EVENT_TYPES[code]
        assert row.cls.type == code
        assert row.name == TYPE_NAMES[code]
        assert row.socket in ("kr", "us")


def test_the_sets_are_the_rows() -> None:
    assert {c for c, r in TYPES.items() if r.socket == "kr" and r.registered} == DOMESTIC_TYPES
    assert {"FE", "FT", "F4", "F5"} == US_TYPES
    assert {"00", "04", "F4", "F5"} == ACCOUNT_TYPES
    assert {"02", "S2"} == CONDITION_TYPES
    assert registrable("kr") == DOMESTIC_TYPES
    assert registrable("us") == US_TYPES
    assert TRADE_TYPES == {"kr": "0B", "us": "FE"}


def test_every_module_reads_the_catalogue() -> None:
    """protocol, us, _health and markets agree with the rows (they keep no list of their own)."""
    assert protocol.KNOWN_TYPES == DOMESTIC_TYPES
    assert protocol.US_TYPES == us.US_TYPES == US_TYPES
    assert protocol.PRIVATE_TYPES == ACCOUNT_TYPES
    assert {c for c, r in TYPES.items() if r.stale_after is None} == NEVER_STALE
    assert dict(STALE_AFTER) == {c: r.stale_after for c, r in TYPES.items() if r.stale_after is not None}
    for code, row in TYPES.items():
        assert stale_after(code) == row.stale_after
        for phase in markets.PHASES:
            expected = row.flows_in is None or phase in row.flows_in
            assert type_flows(code, phase) == markets.type_flows(code, phase) == expected


def test_trade_fields_come_from_the_classes() -> None:
    assert trade_fields("0B") == ("20", "10", "15")
    assert trade_fields("FE") == ("20", "10", "15")
    assert trade_fields("0D") is None
    assert {"0B", "FE"} <= {code for code in TYPES if trade_fields(code)}  # (0H and 0J have them too)


def test_the_socket_of_each_type_is_the_specs() -> None:
    """The US rows are exactly the US spec's realtime types; every other published type is domestic."""
    spec = json.loads((SPEC / "us_realtime_spec.json").read_text(encoding="utf-8"))
    text = json.dumps(spec)
    for code, row in TYPES.items():
        if row.socket == "us" and row.registered:
            assert f'"{code}"' in text, code


TYPE_CODE = re.compile(r"[0-9A-Z][0-9A-Za-z]\Z")
OWN_TABLES = {"_catalogue.py", "fids.py", "spec_examples.py"}  # the catalogue, and generated tables


def test_no_module_keeps_a_list_of_type_codes_of_its_own() -> None:
    """A set literal of two or more type codes outside the catalogue is a second list."""
    problems = []
    for path in sorted((ROOT / "kiwoom_rt").rglob("*.py")):
        if path.name in OWN_TABLES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Set):
                codes = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
                         and TYPE_CODE.match(e.value) and e.value in TYPES]
                if len(codes) >= 2:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: {sorted(codes)}")
    assert problems == []
