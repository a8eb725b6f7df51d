"""Generate kiwoom_rt/fids.py and kiwoom_rt/sim/spec_examples.py from Kiwoom's realtime specs.

Run from the repository root:

    python tools/generate_fids.py [path/to/realtime_spec.json [path/to/us_realtime_spec.json]]

The inputs are tests/data/realtime_spec.json, the vendored copy of Kiwoom's published domestic
tables, and tests/data/us_realtime_spec.json, the US socket's tables (FE, FT, F4, F5 and the
condition hit type S2) as collected from Kiwoom's workbook, example scripts and peer clients,
each with its sources. tests/test_fids.py checks that the committed tables match them, so a hand
edit fails CI.
"""

from __future__ import annotations

import ast
import json
import pprint
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def is_realtime_type(code: str, entry: dict[str, Any]) -> bool:
    """Realtime types have two-character codes; condition search (ka1017x) shares the socket."""
    return entry.get("transport") == "WEBSOCKET" and len(code) == 2


#: Type 02 (condition search hits) has no entry of its own: its REAL push is published inside
#: the realtime condition search request, ka10173.
CONDITION_TYPE, CONDITION_SOURCE, CONDITION_NAME = "02", "ka10173", "조건검색"


def _find_values(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    for node in nodes:
        if node.get("field") == "values" and node.get("children"):
            return node
        found = _find_values(node.get("children") or [])
        if found:
            return found
    return {}


def _realtime_entries(spec: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """{type code: (name, spec entry)} for the realtime types, plus 02 from ka10173."""
    entries = {code: (entry["name"], entry) for code, entry in spec.items() if is_realtime_type(code, entry)}
    entries[CONDITION_TYPE] = (CONDITION_NAME, spec[CONDITION_SOURCE])
    return entries


def realtime_tables(spec: dict[str, Any]) -> dict[str, tuple[str, list[tuple[str, str, str]]]]:
    """Return {type_code: (name, [(fid, korean_name, description), ...])} for realtime types."""
    tables: dict[str, tuple[str, list[tuple[str, str, str]]]] = {}
    for code, (name, entry) in _realtime_entries(spec).items():
        values = _find_values(entry["response_body"])
        fields = [
            (c["field"], c["name_kr"], (c.get("description") or "").strip())
            for c in values["children"]
        ]
        fids = [f[0] for f in fields]
        assert len(set(fids)) == len(fids), f"duplicate FID in {code}"
        tables[code] = (name, fields)
    return tables


def example_values(spec: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Return {type_code: values of the published REAL example}."""
    examples: dict[str, dict[str, str]] = {}
    for code, (_, entry) in _realtime_entries(spec).items():
        text = entry["response_example"]
        for marker in ("#실시간 수신", "#실시간데이터"):
            if marker in text:
                text = text[text.index(marker) + len(marker):]
        body = text
        frame = ast.literal_eval(body.strip())
        examples[code] = dict(frame["data"][0]["values"])
    return examples


#: The US condition hit type: its FIDs are listed with the realtime search request (usa20290).
US_CONDITION_TYPE, US_CONDITION_SOURCE, US_CONDITION_NAME = "S2", "usa20290", "조건검색"


def us_tables(us_spec: dict[str, Any]) -> dict[str, tuple[str, list[tuple[str, str, str]]]]:
    """Return {type_code: (name, [(fid, korean_name, description), ...])} for the US socket."""
    tables: dict[str, tuple[str, list[tuple[str, str, str]]]] = {}
    sources = [(code, entry["name"], entry["fields"]) for code, entry in us_spec["types"].items()]
    push = us_spec["condition_search"][US_CONDITION_SOURCE]
    sources.append((US_CONDITION_TYPE, US_CONDITION_NAME, push["push_fids"]))
    for code, name, rows in sources:
        fields = [(row["fid"], row["name_ko"], (row.get("description") or "").strip()) for row in rows]
        fids = [f[0] for f in fields]
        assert len(set(fids)) == len(fids), f"duplicate FID in {code}"
        tables[code] = (name, fields)
    return tables


def us_wire_names(us_spec: dict[str, Any]) -> dict[str, str]:
    """Return {type_code: the ``name`` REAL entries carry} where it differs from the table's name."""
    names = {code: entry["real_name_in_example"] for code, entry in us_spec["types"].items()
             if entry.get("real_name_in_example") and entry["real_name_in_example"] != entry["name"]}
    return names


def us_example_values(us_spec: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Return {type_code: values of the published example} for the US socket."""
    examples = {code: dict(entry["example"]["data"][0]["values"]) for code, entry in us_spec["types"].items()}
    push = us_spec["condition_search"][US_CONDITION_SOURCE]["push_example_values_quoted_from_spec_response_example"]
    examples[US_CONDITION_TYPE] = dict(push["values"])
    return examples


HEADER = ('"""{doc}\n\nGenerated by tools/generate_fids.py from Kiwoom\'s realtime_spec.json'
          ' and us_realtime_spec.json.\nDo not edit."""\n\n')


def render_fids(tables: dict[str, tuple[str, list[tuple[str, str, str]]]],
                wire_names: dict[str, str] | None = None) -> str:
    names = {code: name for code, (name, _) in tables.items()}
    fields = {code: tuple(f) for code, (_, f) in tables.items()}
    out = HEADER.format(doc="FID tables of every Kiwoom realtime type: (fid, Korean name, description).")
    out += "from typing import Final\n\n"
    out += "TYPE_NAMES: Final[dict[str, str]] = " + pprint.pformat(names, width=99, sort_dicts=False)
    out += "\n\nFIELDS: Final[dict[str, tuple[tuple[str, str, str], ...]]] = "
    out += pprint.pformat(fields, width=99, sort_dicts=False) + "\n"
    out += "\n#: The ``name`` that REAL entries of a type carry, where it differs from TYPE_NAMES.\n"
    out += "WIRE_NAMES: Final[dict[str, str]] = " + pprint.pformat(wire_names or {}, width=99, sort_dicts=False)
    out += "\n"
    return out


def render_examples(examples: dict[str, dict[str, str]]) -> str:
    out = HEADER.format(doc="The published example values of every realtime type (used by the simulator).")
    out += "from typing import Final\n\n"
    out += "EXAMPLE_VALUES: Final[dict[str, dict[str, str]]] = "
    out += pprint.pformat(examples, width=99, sort_dicts=False) + "\n"
    return out


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else ROOT / "tests" / "data" / "realtime_spec.json"
    us_src = Path(argv[2]) if len(argv) > 2 else ROOT / "tests" / "data" / "us_realtime_spec.json"
    spec = json.loads(src.read_text(encoding="utf-8"))
    us_spec = json.loads(us_src.read_text(encoding="utf-8"))
    tables = {**realtime_tables(spec), **us_tables(us_spec)}
    (ROOT / "kiwoom_rt" / "fids.py").write_text(render_fids(tables, us_wire_names(us_spec)), encoding="utf-8")
    (ROOT / "kiwoom_rt" / "sim" / "spec_examples.py").write_text(
        render_examples({**example_values(spec), **us_example_values(us_spec)}), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
