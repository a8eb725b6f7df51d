"""The command line's arguments: the parser, its one-line errors, and the checks of items and types."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

from .. import protocol

__all__ = ["PROG", "Parser", "UsageError", "add_proxy", "add_relay_source", "add_target", "add_us", "build",
           "parse_items", "parse_types"]

PROG = "kiwoom-rt"


class UsageError(Exception):
    """Wrong input: reported as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one clear line, not usage + error
        raise UsageError(f"{message} (see: {self.prog} --help)")


def parse_types(values: Sequence[str] | None, market: str = "kr") -> list[str]:
    """The --type values (default 0E, or FE on the US socket), each known on that socket."""
    types = list(values or ["FE" if market == "us" else "0E"])
    known = protocol.types_of(market)
    for type_code in types:
        if type_code not in known:
            where = " on the US socket" if market == "us" else ""
            hint = "; US types need --us" if market != "us" and type_code in protocol.US_TYPES else ""
            raise UsageError(f"unknown realtime type {type_code!r}{where} (known: {' '.join(sorted(known))}){hint}")
    return types


def parse_items(values: Sequence[str], market: str = "kr") -> list[str]:
    """Item codes of the socket: 005930 (domestic), NASDAQ:NVDA (US, with --us)."""
    try:
        return protocol.check_items(list(values), market)
    except ValueError as exc:
        hint = " (US items need --us)" if market != "us" and any(":" in v for v in values) else ""
        raise UsageError(f"{exc}{hint}") from None


def add_us(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--us", action="store_true",
                        help="the US stock socket (/api/us/websocket): items like NASDAQ:NVDA, types FE FT F4 F5")


def add_target(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--mock", action="store_true", help="Kiwoom's mock-trading server")
    where.add_argument("--prod", action="store_true", help="Kiwoom's production server")
    where.add_argument("--url", help="another WebSocket URL (e.g. the simulator's)")
    where.add_argument("--sim", action="store_true", help="the built-in simulator (no credentials needed)")
    add_proxy(parser)


def add_proxy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--proxy", metavar="URL",
                        help="an HTTP proxy (http://[user:password@]host:port) to tunnel through; "
                             "default: HTTPS_PROXY/HTTP_PROXY minus NO_PROXY")



def add_metrics(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve Prometheus metrics on this port while running ([metrics] extra)")
    parser.add_argument("--metrics-addr", default="127.0.0.1",
                        help="the address to serve metrics on (default 127.0.0.1: this machine only)")
    parser.add_argument("--metrics-name", default="default", help="the session label of the metrics")


def add_relay_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--relay", metavar="REDIS_URL", default=os.environ.get("KIWOOM_RT_RELAY"),
                        help="read from a kiwoom-rt relay through this Redis instead of connecting to Kiwoom "
                             "(default: KIWOOM_RT_RELAY)")
    parser.add_argument("--prefix", default="kiwoom-rt", help="the relay's key prefix (default kiwoom-rt)")



def build(runners: Mapping[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    """The parser; ``runners`` maps each command to the function that runs it."""
    parser = Parser(prog=PROG, description="Kiwoom realtime feed from the command line.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log connection events")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    demo = commands.add_parser("demo", help="live after-hours board on the built-in simulator")
    demo.add_argument("items", nargs="*", help="item codes (default: eight large caps)")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    demo.add_argument("--rate", type=float, default=20.0, help="simulated events per second")
    demo.add_argument("--regular", action="store_true",
                      help="the regular session: trades (0B) and a ten-level order book (0D)")
    demo.add_argument("--board", action=argparse.BooleanOptionalAction, default=None,
                      help="refreshing board (default: when stdout is a terminal)")
    demo.add_argument("--us", action="store_true",
                      help="US stocks: trades (FE) and a ten-level book (FT) on the simulator's US socket")
    demo.set_defaults(func=runners["demo"], timeout=10.0)

    for name, text in (("watch", "print decoded events"), ("record", "record every received frame to a file")):
        sub = commands.add_parser(name, help=text)
        if name == "record":
            sub.add_argument("out", help="recording file (.jsonl, or .jsonl.gz to compress)")
        sub.add_argument("items", nargs="*" if name == "watch" else "+",
                         help="item codes, e.g. 005930 005930_NX (with --us: NASDAQ:NVDA NYSE:KO)")
        sub.add_argument("--type", action="append", help="realtime type (repeatable; default 0E, or FE with --us)")
        add_target(sub)
        add_us(sub)
        if name == "watch":
            add_relay_source(sub)
            sub.add_argument("--json", action="store_true", help="JSON lines instead of text")
            sub.add_argument("--bars", metavar="INTERVAL",
                             help="print bars built from the trades as they finish (e.g. 10s, 1m, 5m)")
            sub.add_argument("--condition", metavar="SEQ",
                             help="a live membership board of condition SEQ instead of quotes")
        sub.add_argument("--duration", type=float, help="stop after this many seconds")
        sub.add_argument("--timeout", type=float, default=10.0, help="seconds to connect and subscribe")
        add_metrics(sub)
        sub.set_defaults(func=runners[name])

    health = commands.add_parser("health", help="the per-subscription health table, live (stale rows marked)")
    health.add_argument("items", nargs="*", help="item codes (default: the demo's eight large caps)")
    health.add_argument("--type", action="append", help="realtime type (repeatable; default 0E, or FE with --us)")
    add_target(health)
    add_us(health)
    add_relay_source(health)
    health.add_argument("--stale-after", type=float, metavar="SECONDS",
                        help="one threshold for every type (default: by type, e.g. 0B 120 s, 0D 60 s)")
    health.add_argument("--resubscribe", action="store_true", help="send REG again for stale subscriptions")
    health.add_argument("--silence", action="append", metavar="ITEM",
                        help="with --sim: the simulator stops sending this item (to see a stale row)")
    health.add_argument("--every", type=float, default=1.0, help="seconds between refreshes (default 1)")
    health.add_argument("--board", action=argparse.BooleanOptionalAction, default=None,
                        help="refreshing table (default: when stdout is a terminal)")
    health.add_argument("--duration", type=float, help="stop after this many seconds")
    health.add_argument("--timeout", type=float, default=10.0, help="seconds to connect and subscribe")
    add_metrics(health)
    health.set_defaults(func=runners["health"])

    conditions = commands.add_parser("conditions", help="list your condition searches (조건검색)")
    add_target(conditions)
    add_us(conditions)
    conditions.add_argument("--timeout", type=float, default=10.0)
    conditions.set_defaults(func=runners["conditions"])

    search = commands.add_parser("search", help="run condition SEQ once and print its stocks")
    search.add_argument("seq")
    add_target(search)
    add_us(search)
    search.add_argument("--timeout", type=float, default=10.0)
    search.set_defaults(func=runners["search"])

    replay = commands.add_parser("replay", help="play a recording through the same decoding")
    replay.add_argument("file")
    speed = replay.add_mutually_exclusive_group()
    speed.add_argument("--speed", type=float, default=1.0, help="1 = recorded timing, 10 = ten times faster")
    speed.add_argument("--max", action="store_true", help="as fast as possible")
    replay.add_argument("--type", action="append", help="only these types (default: all)")
    replay.add_argument("--json", action="store_true", help="JSON lines instead of text")
    replay.set_defaults(func=runners["replay"])

    export = commands.add_parser("export", help="write one type of a recording to Parquet or CSV ([frames] extra)")
    export.add_argument("recording", help="a recording made by 'kiwoom-rt record'")
    export.add_argument("out", help="OUT.parquet or OUT.csv")
    export.add_argument("--type", required=True, help="the realtime type to export, e.g. 0B")
    export.set_defaults(func=runners["export"])

    bars = commands.add_parser("bars", help="build bars from a recording's trades, to Parquet or CSV ([frames] extra)")
    bars.add_argument("recording", help="a recording made by 'kiwoom-rt record'")
    bars.add_argument("out", help="OUT.parquet or OUT.csv")
    kind = bars.add_mutually_exclusive_group()
    kind.add_argument("--interval", help="time bars, e.g. 10s, 1m (the default), 5m, 1h")
    kind.add_argument("--ticks", type=int, help="a bar every N trades")
    kind.add_argument("--volume", type=int, help="a bar every N shares")
    bars.add_argument("--type", action="append", help="the trade type (default 0B, or FE in a US recording)")
    bars.add_argument("--fill-empty", action="store_true", help="flat bars for empty intervals between trades")
    bars.set_defaults(func=runners["bars"])

    token = commands.add_parser("token", help="issue or revoke an access token (KIWOOM_APPKEY/SECRETKEY)")
    token.add_argument("action", choices=("issue", "revoke"))
    token.add_argument("token", nargs="?", help="revoke: the token (default: KIWOOM_TOKEN)")
    where = token.add_mutually_exclusive_group()
    where.add_argument("--mock", action="store_true", help="the mock-trading REST server")
    where.add_argument("--base-url", help="another REST base URL (e.g. the simulator's)")
    token.add_argument("--json", action="store_true", help="issue: print token and expiry as JSON")
    token.add_argument("--timeout", type=float, default=10.0)
    add_proxy(token)
    token.set_defaults(func=runners["token"])

    relay = commands.add_parser("relay", help="share one Kiwoom session through Redis Streams ([relay] extra)")
    relay.add_argument("--redis", metavar="URL", help="redis://[:password@]HOST:6379/0 or rediss:// for TLS "
                                                      "(default: KIWOOM_RT_REDIS)")
    add_target(relay)
    add_us(relay)
    relay.add_argument("--prefix", default="kiwoom-rt", help="key prefix, to run several relays on one Redis "
                                                             "(a domestic and a US relay need two)")
    relay.add_argument("--retention", type=float, default=3600.0, help="seconds of feed to keep (default 3600)")
    relay.add_argument("--expected-rate", type=float, default=5000.0,
                       help="frames per second the retention is sized for (default 5000)")
    relay.add_argument("--maxlen", type=int, help="keep about this many frames (overrides --retention)")
    relay.add_argument("--buffer", type=int, default=100_000, help="frames held while Redis is away")
    relay.add_argument("--lease", type=float, default=15.0, help="seconds before a silent consumer is dropped")
    relay.add_argument("--every", type=float, default=5.0, help="seconds between status lines")
    relay.add_argument("--duration", type=float, help="stop after this many seconds")
    relay.add_argument("--timeout", type=float, default=10.0)
    add_metrics(relay)
    relay.set_defaults(func=runners["relay"])

    sim = commands.add_parser("sim", help="serve the simulator until Ctrl-C")
    try:
        from ..sim.__main__ import add_arguments
    except ImportError:  # the sim extra (websockets) is not installed
        sim.set_defaults(func=needs_sim_extra)
    else:
        add_arguments(sim)
        sim.set_defaults(func=runners["sim"])
    return parser


def needs_sim_extra(args: argparse.Namespace) -> int:
    raise UsageError("the simulator needs the sim extra: pip install 'kiwoom-rt[sim]'")



