"""``kiwoom-rt``: the command line (``python -m kiwoom_rt`` works too).

    kiwoom-rt demo                                   live after-hours board on the built-in simulator
    kiwoom-rt watch 005930 --mock [--type 0B] [--json]
    kiwoom-rt record out.jsonl.gz 005930 --mock
    kiwoom-rt replay out.jsonl.gz [--speed 10 | --max]
    kiwoom-rt token issue --mock | kiwoom-rt token revoke --mock
    kiwoom-rt sim --port 8765

Credentials come from the environment: KIWOOM_TOKEN, or KIWOOM_APPKEY and KIWOOM_SECRETKEY.
Nothing contacts Kiwoom unless --mock, --prod or --url says so. Wrong input gives one line on
stderr and a non-zero exit code; Ctrl-C stops any command cleanly.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit

from . import protocol
from .errors import KiwoomError
from .events import AfterHoursQuote, RealEvent
from .session import MOCK_URL, PRODUCTION_URL, RealtimeSession

__all__ = ["main"]

DEMO_ITEMS = ["005930", "000660", "035420", "035720", "005380", "051910", "006400", "000270"]
PROG = "kiwoom-rt"


class UsageError(Exception):
    """Wrong input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one clear line, not usage + error
        raise UsageError(f"{message} (see: {self.prog} --help)")


# --- formatting ---------------------------------------------------------------------------------

def _signed(value: int) -> str:
    return f"{value:+,}" if value else "0"


def format_line(event: AfterHoursQuote | RealEvent) -> str:
    """One readable line per event."""
    if isinstance(event, AfterHoursQuote):
        return (f"{event.time}  {event.code:>6} {event.exchange}  ask {event.ask_total:>10,} "
                f"({_signed(event.ask_total_change)})  bid {event.bid_total:>10,} ({_signed(event.bid_total_change)})")
    fields = " ".join(f"{name}={value}" for name, value in event.named().items() if value.strip())
    return f"{event.type} {event.name} {event.item}  {fields}"


def format_json(event: AfterHoursQuote | RealEvent) -> str:
    """One JSON object per event: raw values plus, for 0E, the parsed fields."""
    record: dict[str, Any] = {"type": event.type, "name": event.name, "item": event.item, "code": event.code,
                              "exchange": event.exchange, "received_at": event.received_at,
                              "values": dict(event.values)}
    if isinstance(event, AfterHoursQuote):
        record.update(time=event.time.isoformat(), ask_total=event.ask_total, ask_total_change=event.ask_total_change,
                      bid_total=event.bid_total, bid_total_change=event.bid_total_change)
    return json.dumps(record, ensure_ascii=False)


def _printer(as_json: bool, stop: threading.Event | None = None) -> Callable[..., None]:
    fmt = format_json if as_json else format_line

    def show(item: str, event: AfterHoursQuote | RealEvent) -> None:
        try:
            print(fmt(event), flush=True)
        except BrokenPipeError:  # the reader went away (| head): stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            if stop is not None:
                stop.set()

    return show


def _report_lifecycle(session: RealtimeSession) -> None:
    """Tell the user on stderr about reconnects and bad frames (the library's log stays quiet)."""

    def reconnecting(s: Any, attempt: int, delay: float) -> None:
        print(f"{PROG}: connection lost; reconnecting (attempt {attempt}, in {delay:.1f} s)", file=sys.stderr)

    def error(s: Any, error: BaseException) -> None:
        print(f"{PROG}: warning: {error}", file=sys.stderr)

    session.on_reconnecting.connect(reconnecting)
    session.on_error.connect(error)


def _on_gave_up(stop: threading.Event, failure: list[BaseException]) -> Callable[..., None]:
    def gave_up(session: Any, error: BaseException) -> None:
        failure.append(error)
        stop.set()

    return gave_up


# --- arguments ----------------------------------------------------------------------------------

def _types(values: Sequence[str] | None) -> list[str]:
    types = list(values or ["0E"])
    for type_code in types:
        if type_code not in protocol.KNOWN_TYPES:
            raise UsageError(f"unknown realtime type {type_code!r} (known: {' '.join(sorted(protocol.KNOWN_TYPES))})")
    return types


def _items(values: Sequence[str]) -> list[str]:
    try:
        return protocol.check_items(list(values))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _add_target(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--mock", action="store_true", help="Kiwoom's mock-trading server")
    where.add_argument("--prod", action="store_true", help="Kiwoom's production server")
    where.add_argument("--url", help="another WebSocket URL (e.g. the simulator's)")


def _target(args: argparse.Namespace) -> tuple[str, str | Callable[[], str]]:
    """(url, token source) from --mock/--prod/--url and the environment."""
    if args.url:
        url = args.url
    elif args.mock:
        url = MOCK_URL
    elif args.prod:
        url = PRODUCTION_URL
    else:
        raise UsageError("say where to connect: --mock, --prod or --url URL")
    token = os.environ.get("KIWOOM_TOKEN", "").strip()
    if token:
        return url, token
    if os.environ.get("KIWOOM_APPKEY", "").strip() and os.environ.get("KIWOOM_SECRETKEY", "").strip():
        from .auth import TokenProvider

        base_url = None
        if args.url:
            parts = urlsplit(args.url)
            base_url = f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"
        return url, TokenProvider(mock=bool(args.mock), base_url=base_url)
    raise UsageError("missing credentials: set KIWOOM_TOKEN, or KIWOOM_APPKEY and KIWOOM_SECRETKEY")


def _run_until(stop: threading.Event, duration: float | None) -> None:
    """Block until ``stop`` or ``duration``; Ctrl-C ends it too (KeyboardInterrupt)."""
    deadline = None if duration is None else time.monotonic() + duration
    while not stop.is_set():
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        stop.wait(0.25 if remaining is None else min(0.25, remaining))


# --- commands -----------------------------------------------------------------------------------

def cmd_watch(args: argparse.Namespace) -> int:
    items, types = _items(args.items), _types(args.type)
    stop = threading.Event()
    failure: list[BaseException] = []
    show = _printer(args.json, stop)
    url, token = _target(args)
    session = RealtimeSession(token, url=url)
    for type_code in types:
        session.signal(type_code).connect(show)
    session.on_gave_up.connect(_on_gave_up(stop, failure))
    try:
        session.start(timeout=args.timeout)
        _report_lifecycle(session)  # from now on: start() itself reports its failures
        session.subscribe(items, types).wait(args.timeout)
        _run_until(stop, args.duration)
    finally:
        session.close()
    if failure:
        raise failure[0]
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from .recording import Recorder

    items, types = _items(args.items), _types(args.type)
    url, token = _target(args)
    stop = threading.Event()
    failure: list[BaseException] = []
    recorder = Recorder(args.out, meta={"url": url, "items": items, "types": types})
    session = RealtimeSession(token, url=url, frame_hook=recorder)
    session.on_gave_up.connect(_on_gave_up(stop, failure))
    try:
        session.start(timeout=args.timeout)
        _report_lifecycle(session)  # from now on: start() itself reports its failures
        session.subscribe(items, types).wait(args.timeout)
        print(f"recording {len(items)} items ({' '.join(types)}) to {args.out}; Ctrl-C stops", file=sys.stderr)
        _run_until(stop, args.duration)
    finally:
        session.close()
        recorder.close()
        print(f"{recorder.frames_written} frames recorded", file=sys.stderr)
    if failure:
        raise failure[0]
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .recording import ReplaySession

    types = _types(args.type) if args.type else None
    replay = ReplaySession(args.file, speed=None if args.max else args.speed)
    stop = threading.Event()
    show = _printer(args.json, stop)
    if types is None:
        replay.on_real.connect(show)
    else:
        for type_code in types:
            replay.signal(type_code).connect(show)
    errors: list[BaseException] = []
    replay.on_error.connect(lambda s, error: errors.append(error))
    replay.start()
    try:
        while not replay.wait(0.25) and not stop.is_set():
            pass
    finally:
        replay.close()
    if replay.error is not None:
        raise replay.error
    stats = replay.stats()
    print(f"{stats['events_total']} events from {stats['frames']} frames", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .queued import QueueDispatcher
    from .sim import DEFAULT_TOKEN, SimServer

    items = _items(args.items or DEMO_ITEMS)
    tty = sys.stdout.isatty() if args.board is None else args.board
    with SimServer(rate=args.rate) as sim:
        dispatcher = QueueDispatcher(conflate=tty)  # receivers run here, on the main thread
        session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, dispatcher=dispatcher)
        board = _TerminalBoard(items) if tty else None
        stop = threading.Event()
        session.on_0e.connect(board.update if board is not None else _printer(False, stop))
        try:
            session.start(timeout=args.timeout)
            session.subscribe(items).wait(args.timeout)
            if not tty:
                print(f"live after-hours quotes (0E) from the built-in simulator at {sim.url}", flush=True)
            deadline = None if args.duration is None else time.monotonic() + args.duration
            while (deadline is None or time.monotonic() < deadline) and not stop.is_set():
                dispatcher.drain()
                if board is not None:
                    board.draw(session)
                stop.wait(0.2)
            dispatcher.drain()
        finally:
            session.close()
            if board is not None:
                board.draw(session, final=True)
    return 0


class _TerminalBoard:
    """A refreshing after-hours board drawn with ANSI escapes (when stdout is a terminal)."""

    UP, DOWN, RESET = "\x1b[31m", "\x1b[34m", "\x1b[0m"  # Korean convention: up red, down blue

    def __init__(self, items: list[str]) -> None:
        self.items = items
        self.latest: dict[str, AfterHoursQuote] = {}

    def update(self, item: str, event: AfterHoursQuote) -> None:
        self.latest[item] = event

    def _change(self, value: int, width: int) -> str:
        text = f"{_signed(value):>{width}}"
        color = self.UP if value > 0 else self.DOWN if value < 0 else ""
        return f"{color}{text}{self.RESET}" if color else text

    def draw(self, session: RealtimeSession, final: bool = False) -> None:
        lines = ["kiwoom-rt demo: after-hours order book (0E) from the built-in simulator   Ctrl-C stops", "",
                 f"{'code':<10}{'ask total':>12}{'change':>10}{'bid total':>12}{'change':>10}{'time':>10}"]
        for item in self.items:
            event = self.latest.get(item)
            if event is None:
                lines.append(f"{item:<10}{'-':>12}")
                continue
            ask = f"{event.ask_total:>12,}{self._change(event.ask_total_change, 10)}"
            bid = f"{event.bid_total:>12,}{self._change(event.bid_total_change, 10)}"
            lines.append(f"{item:<10}{ask}{bid}{event.time.isoformat():>10}")
        stats = session.stats()
        lines += ["", f"{session.state} · {stats['events_total']:,} events · {stats['reconnects']} reconnects"]
        out = ("" if final else "\x1b[H\x1b[2J") + "\n".join(lines) + "\n"
        sys.stdout.write(out)
        sys.stdout.flush()


def cmd_token(args: argparse.Namespace) -> int:
    from .auth import issue_token, revoke_token

    base_url = args.base_url
    if args.action == "issue":
        token = issue_token(mock=args.mock, base_url=base_url, timeout=args.timeout)
        if args.json:
            print(json.dumps({"token": token.token, "token_type": token.token_type,
                              "expires_at": token.expires_at.isoformat()}))
        else:
            print(token.token)
            print(f"expires {token.expires_at.isoformat()}", file=sys.stderr)
        return 0
    value = args.token or os.environ.get("KIWOOM_TOKEN", "").strip()
    if not value:
        raise UsageError("which token? pass it, or set KIWOOM_TOKEN")
    revoke_token(value, mock=args.mock, base_url=base_url, timeout=args.timeout)
    print("revoked", file=sys.stderr)
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from .sim.__main__ import serve

    return serve(args)


# --- parser -------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Kiwoom realtime feed from the command line.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log connection events")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = commands.add_parser("demo", help="live after-hours board on the built-in simulator")
    demo.add_argument("items", nargs="*", help="item codes (default: eight large caps)")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    demo.add_argument("--rate", type=float, default=20.0, help="simulated events per second")
    demo.add_argument("--board", action=argparse.BooleanOptionalAction, default=None,
                      help="refreshing board (default: when stdout is a terminal)")
    demo.set_defaults(func=cmd_demo, timeout=10.0)

    for name, func, text in (("watch", cmd_watch, "print decoded events"),
                             ("record", cmd_record, "record every received frame to a file")):
        sub = commands.add_parser(name, help=text)
        if name == "record":
            sub.add_argument("out", help="recording file (.jsonl, or .jsonl.gz to compress)")
        sub.add_argument("items", nargs="+", help="item codes, e.g. 005930 005930_NX")
        sub.add_argument("--type", action="append", help="realtime type (repeatable; default 0E)")
        _add_target(sub)
        if name == "watch":
            sub.add_argument("--json", action="store_true", help="JSON lines instead of text")
        sub.add_argument("--duration", type=float, help="stop after this many seconds")
        sub.add_argument("--timeout", type=float, default=10.0, help="seconds to connect and subscribe")
        sub.set_defaults(func=func)

    replay = commands.add_parser("replay", help="play a recording through the same decoding")
    replay.add_argument("file")
    speed = replay.add_mutually_exclusive_group()
    speed.add_argument("--speed", type=float, default=1.0, help="1 = recorded timing, 10 = ten times faster")
    speed.add_argument("--max", action="store_true", help="as fast as possible")
    replay.add_argument("--type", action="append", help="only these types (default: all)")
    replay.add_argument("--json", action="store_true", help="JSON lines instead of text")
    replay.set_defaults(func=cmd_replay)

    token = commands.add_parser("token", help="issue or revoke an access token (KIWOOM_APPKEY/SECRETKEY)")
    token.add_argument("action", choices=("issue", "revoke"))
    token.add_argument("token", nargs="?", help="revoke: the token (default: KIWOOM_TOKEN)")
    where = token.add_mutually_exclusive_group()
    where.add_argument("--mock", action="store_true", help="the mock-trading REST server")
    where.add_argument("--base-url", help="another REST base URL (e.g. the simulator's)")
    token.add_argument("--json", action="store_true", help="issue: print token and expiry as JSON")
    token.add_argument("--timeout", type=float, default=10.0)
    token.set_defaults(func=cmd_token)

    sim = commands.add_parser("sim", help="serve the simulator until Ctrl-C")
    try:
        from .sim.__main__ import add_arguments
    except ImportError:  # the sim extra (websockets) is not installed
        sim.set_defaults(func=_needs_sim_extra)
    else:
        add_arguments(sim)
        sim.set_defaults(func=cmd_sim)
    return parser


def _needs_sim_extra(args: argparse.Namespace) -> int:
    raise UsageError("the simulator needs the sim extra: pip install 'kiwoom-rt[sim]'")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    # errors reach the user as one line from here; the library's log only with -v
    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL + 1,
                        format=f"{PROG}: %(levelname)s: %(message)s")
    try:
        result: int = args.func(args)
        return result
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (KiwoomError, TimeoutError, ValueError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        print(f"{PROG}: error: {exc.name or exc} is not installed (the simulator needs: pip install "
              f"'kiwoom-rt[sim]')", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: stopped", file=sys.stderr)
        return 0
