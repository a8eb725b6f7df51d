"""``kiwoom-rt``: the command line (``python -m kiwoom_rt`` works too).

    kiwoom-rt demo [--regular]                       live board on the built-in simulator
    kiwoom-rt watch 005930 --mock [--type 0B --type 0D] [--json]
    kiwoom-rt record out.jsonl.gz 005930 --mock
    kiwoom-rt replay out.jsonl.gz [--speed 10 | --max]
    kiwoom-rt export out.jsonl.gz trades.parquet --type 0B
    kiwoom-rt conditions --sim | kiwoom-rt search 4 --sim | kiwoom-rt watch --condition 4 --sim
    kiwoom-rt token issue --mock | kiwoom-rt token revoke --mock
    kiwoom-rt sim --port 8765

Credentials come from the environment: KIWOOM_TOKEN, or KIWOOM_APPKEY and KIWOOM_SECRETKEY.
Nothing contacts Kiwoom unless --mock, --prod or --url says so. Wrong input gives one line on
stderr and a non-zero exit code; Ctrl-C stops any command cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit

from . import protocol
from .errors import KiwoomError
from .events import AfterHoursQuote, OrderBook, RealEvent, RealtimeEvent, Trade, headline_fields
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

def _signed(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value:+,}" if value else "0"


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _clock(value: dt.time | None) -> str:
    return "--:--:--" if value is None else value.isoformat()


def _show(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dt.time):
        return value.isoformat()
    return str(value)


def format_line(event: RealtimeEvent) -> str:
    """One readable line per event: its typed fields (raw values for a type without a class)."""
    if isinstance(event, AfterHoursQuote):
        return (f"{_clock(event.time)}  {event.code:>6} {event.exchange}  ask {_number(event.ask_total):>10} "
                f"({_signed(event.ask_total_change)})  bid {_number(event.bid_total):>10} "
                f"({_signed(event.bid_total_change)})")
    if isinstance(event, RealEvent):
        fields = " ".join(f"{name}={value}" for name, value in event.named().items() if str(value).strip())
        return f"{event.type} {event.name} {event.item}  {fields}"
    when = getattr(event, "time", None)
    head = f"{_clock(when if isinstance(when, dt.time) else None)}  {event.code:>6} {event.exchange}  {event.type}"
    if isinstance(event, Trade):
        return (f"{head} trade {_number(event.price):>9} {_signed(event.change):>8} ({_show(event.rate)}%)  "
                f"vol {_signed(event.volume):>7}  cum {_number(event.cumulative_volume)}  "
                f"ask {_number(event.best_ask)} bid {_number(event.best_bid)}")
    if isinstance(event, OrderBook):
        ask = event.asks[0] if event.asks else None
        bid = event.bids[0] if event.bids else None
        best = (f"ask {_number(ask.price) if ask else '-'} x {_number(ask.quantity) if ask else '-'}  "
                f"bid {_number(bid.price) if bid else '-'} x {_number(bid.quantity) if bid else '-'}")
        return (f"{head} book  {best}  totals ask {_number(event.ask_total)} ({_signed(event.ask_total_change)}) "
                f"bid {_number(event.bid_total)} ({_signed(event.bid_total_change)})  "
                f"{len(event.asks)}/{len(event.bids)} levels")
    fields = " ".join(f"{field.attr}={_show(getattr(event, field.attr))}"
                      for field in headline_fields(type(event)) if field.attr != "time")
    return f"{head} {type(event).__name__}  {fields}"


def _json_value(value: object) -> object:
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def format_json(event: RealtimeEvent) -> str:
    """One JSON object per event: the raw values plus the typed fields."""
    record: dict[str, Any] = {"type": event.type, "name": event.name, "item": event.item, "code": event.code,
                              "exchange": event.exchange, "received_at": event.received_at,
                              "values": dict(event.values)}
    for field in headline_fields(type(event)):
        record[field.attr] = _json_value(getattr(event, field.attr))
    if isinstance(event, OrderBook):
        record["asks"] = [list(level) for level in event.asks]
        record["bids"] = [list(level) for level in event.bids]
    return json.dumps(record, ensure_ascii=False)


def _printer(as_json: bool, stop: threading.Event | None = None) -> Callable[..., None]:
    fmt = format_json if as_json else format_line

    def show(item: str, event: RealtimeEvent) -> None:
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
    where.add_argument("--sim", action="store_true", help="the built-in simulator (no credentials needed)")
    _add_proxy(parser)


def _add_proxy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--proxy", metavar="URL",
                        help="an HTTP proxy (http://[user:password@]host:port) to tunnel through; "
                             "default: HTTPS_PROXY/HTTP_PROXY minus NO_PROXY")


def _session(args: argparse.Namespace, url: str, token: str | Callable[[], str], **options: Any) -> RealtimeSession:
    """The command's session, through --proxy if given."""
    return RealtimeSession(token, url=url, proxy=getattr(args, "proxy", None), **options)


def _target(args: argparse.Namespace) -> tuple[str, str | Callable[[], str]]:
    """(url, token source) from --mock/--prod/--url and the environment."""
    if args.url:
        url = args.url
    elif args.mock:
        url = MOCK_URL
    elif args.prod:
        url = PRODUCTION_URL
    else:
        raise UsageError("say where to connect: --mock, --prod, --url URL or --sim")
    token = os.environ.get("KIWOOM_TOKEN", "").strip()
    if token:
        return url, token
    if os.environ.get("KIWOOM_APPKEY", "").strip() and os.environ.get("KIWOOM_SECRETKEY", "").strip():
        from .auth import TokenProvider

        base_url = None
        if args.url:
            parts = urlsplit(args.url)
            base_url = f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"
        return url, TokenProvider(mock=bool(args.mock), base_url=base_url, proxy=args.proxy)
    raise UsageError("missing credentials: set KIWOOM_TOKEN, or KIWOOM_APPKEY and KIWOOM_SECRETKEY")


@contextlib.contextmanager
def _connection(args: argparse.Namespace) -> Iterator[tuple[str, str | Callable[[], str]]]:
    """(url, token source) for the command; with --sim, a simulator runs for the command's life."""
    if getattr(args, "sim", False):
        from .sim import DEFAULT_TOKEN, SimServer

        with SimServer(rate=20) as sim:
            yield sim.url, DEFAULT_TOKEN
        return
    yield _target(args)


@contextlib.contextmanager
def _source(args: argparse.Namespace) -> Iterator[Any]:
    """The command's session: a relay consumer with --relay, else a live session."""
    relay_url = getattr(args, "relay", None)
    if relay_url:
        if any(getattr(args, name, None) for name in ("mock", "prod", "url", "sim", "proxy")):
            raise UsageError("--relay reads from a relay: it takes no --mock/--prod/--url/--sim/--proxy")
        from .relay import RelaySession

        yield RelaySession(relay_url, prefix=args.prefix)
        return
    with _connection(args) as (url, token):
        yield _session(args, url, token)


def _run_until(stop: threading.Event, duration: float | None) -> None:
    """Block until ``stop`` or ``duration``; Ctrl-C ends it too (KeyboardInterrupt)."""
    deadline = None if duration is None else time.monotonic() + duration
    while not stop.is_set():
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        stop.wait(0.25 if remaining is None else min(0.25, remaining))


# --- commands -----------------------------------------------------------------------------------

def _live(args: argparse.Namespace, setup: Callable[[RealtimeSession, threading.Event], None],
          begin: Callable[[RealtimeSession], None]) -> int:
    """Run one session until --duration, Ctrl-C or giving up: ``setup`` connects receivers before
    the start, ``begin`` makes the requests once logged in."""
    stop = threading.Event()
    failure: list[BaseException] = []
    with _source(args) as session:
        setup(session, stop)
        session.on_gave_up.connect(_on_gave_up(stop, failure))
        try:
            session.start(timeout=args.timeout)
            _report_lifecycle(session)  # from now on: start() itself reports its failures
            begin(session)
            _run_until(stop, args.duration)
        finally:
            session.close()
    if failure:
        raise failure[0]
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    if args.condition is not None and args.relay:
        raise UsageError("--condition lists conditions from Kiwoom: use it without --relay")
    if args.condition is not None:
        return _watch_condition(args)
    if not args.items:
        raise UsageError("say which items to watch (or --condition SEQ)")
    items, types = _items(args.items), _types(args.type)

    def setup(session: RealtimeSession, stop: threading.Event) -> None:
        show = _printer(args.json, stop)
        for type_code in types:
            session.signal(type_code).connect(show)

    def begin(session: RealtimeSession) -> None:
        session.subscribe(items, types).wait(args.timeout)

    return _live(args, setup, begin)


def _watch_condition(args: argparse.Namespace) -> int:
    """A live membership board of one condition: the members, then every entry and exit."""
    seq = args.condition

    def show(sender: str, event: Any) -> None:
        mark = "+" if event.entered else "-"
        what = "entered" if event.entered else "left"
        note = " (found on reconnect)" if event.resync else ""
        print(f"{_clock(event.time)}  {mark} {event.code:<8} {what} condition {sender}{note}", flush=True)

    def begin(session: RealtimeSession) -> None:
        names = {c.seq: c.name for c in session.conditions(timeout=args.timeout)}
        if seq not in names:
            raise UsageError(f"no condition {seq!r} (there are: {', '.join(sorted(names)) or 'none'})")
        watch = session.watch_condition(seq).wait(args.timeout)
        print(f"condition {seq} {names[seq]}: {len(watch.members)} members: "
              f"{' '.join(sorted(watch.members)) or '-'}", flush=True)

    def setup(session: RealtimeSession, stop: threading.Event) -> None:
        session.on_condition.connect(show, sender=seq)

    return _live(args, setup, begin)


def cmd_conditions(args: argparse.Namespace) -> int:
    with _connection(args) as (url, token), _session(args, url, token) as session:
        for condition in session.conditions(timeout=args.timeout):
            print(f"{condition.seq:>4}  {condition.name}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    with _connection(args) as (url, token), _session(args, url, token) as session:
        hits = session.search(args.seq, timeout=args.timeout)
    print(f"{'code':<8}{'name':<14}{'price':>10}{'change':>9}{'rate':>8}{'volume':>12}")
    for hit in hits:
        rate = "-" if hit.rate is None else f"{hit.rate:+.2f}"
        print(f"{hit.code:<8}{hit.name[:12]:<14}{_number(hit.price):>10}{_signed(hit.change):>9}{rate:>8}"
              f"{_number(hit.volume):>12}")
    print(f"{len(hits)} stocks in condition {args.seq}", file=sys.stderr)
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    items, types = _items(args.items), _types(args.type)
    with _connection(args) as (url, token):
        return _record(args, items, types, url, token)


def _record(args: argparse.Namespace, items: list[str], types: list[str], url: str,
            token: str | Callable[[], str]) -> int:
    from .recording import Recorder

    stop = threading.Event()
    failure: list[BaseException] = []
    recorder = Recorder(args.out, meta={"url": url, "items": items, "types": types})
    session = _session(args, url, token, frame_hook=recorder)
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
    from .sim import DEFAULT_TOKEN, SimClock, SimServer

    items = _items(args.items or DEMO_ITEMS)
    tty = sys.stdout.isatty() if args.board is None else args.board
    # the regular session (trades and books) runs 09:00-15:30 KST; the default clock is 16:00
    clock = SimClock(dt.time(10, 0)) if args.regular else None
    types = ["0B", "0D"] if args.regular else ["0E"]
    with SimServer(rate=args.rate, clock=clock) as sim:
        dispatcher = QueueDispatcher(conflate=tty)  # receivers run here, on the main thread
        session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, dispatcher=dispatcher)
        board: _Board | None = None
        if tty:
            board = _RegularBoard(items) if args.regular else _TerminalBoard(items)
        stop = threading.Event()
        receiver = board.update if board is not None else _printer(False, stop)
        for type_code in types:
            session.signal(type_code).connect(receiver)
        try:
            session.start(timeout=args.timeout)
            session.subscribe(items, types).wait(args.timeout)
            if not tty:
                what = "trades (0B) and order books (0D)" if args.regular else "after-hours quotes (0E)"
                print(f"live {what} from the built-in simulator at {sim.url}", flush=True)
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


class _Board:
    """A refreshing board drawn with ANSI escapes (when stdout is a terminal)."""

    UP, DOWN, RESET = "\x1b[31m", "\x1b[34m", "\x1b[0m"  # Korean convention: up red, down blue
    TITLE = ""

    def __init__(self, items: list[str]) -> None:
        self.items = items

    def update(self, item: str, event: RealtimeEvent) -> None:
        raise NotImplementedError

    def lines(self) -> list[str]:
        raise NotImplementedError

    def _colored(self, text: str, value: float | None) -> str:
        color = self.UP if value and value > 0 else self.DOWN if value and value < 0 else ""
        return f"{color}{text}{self.RESET}" if color else text

    def _change(self, value: int | None, width: int) -> str:
        return self._colored(f"{_signed(value):>{width}}", value)

    def draw(self, session: RealtimeSession, final: bool = False) -> None:
        stats = session.stats()
        lines = [f"kiwoom-rt demo: {self.TITLE} from the built-in simulator   Ctrl-C stops", "", *self.lines(),
                 "", f"{session.state} · {stats['events_total']:,} events · {stats['reconnects']} reconnects"]
        out = ("" if final else "\x1b[H\x1b[2J") + "\n".join(lines) + "\n"
        sys.stdout.write(out)
        sys.stdout.flush()


class _TerminalBoard(_Board):
    """The after-hours board: total ask and bid quantities per item (0E)."""

    TITLE = "after-hours order book (0E)"

    def __init__(self, items: list[str]) -> None:
        super().__init__(items)
        self.latest: dict[str, AfterHoursQuote] = {}

    def update(self, item: str, event: RealtimeEvent) -> None:
        if isinstance(event, AfterHoursQuote):
            self.latest[item] = event

    def lines(self) -> list[str]:
        lines = [f"{'code':<10}{'ask total':>12}{'change':>10}{'bid total':>12}{'change':>10}{'time':>10}"]
        for item in self.items:
            event = self.latest.get(item)
            if event is None:
                lines.append(f"{item:<10}{'-':>12}")
                continue
            ask = f"{_number(event.ask_total):>12}{self._change(event.ask_total_change, 10)}"
            bid = f"{_number(event.bid_total):>12}{self._change(event.bid_total_change, 10)}"
            lines.append(f"{item:<10}{ask}{bid}{_clock(event.time):>10}")
        return lines


class _RegularBoard(_Board):
    """The regular-session board: last trade per item (0B) and the first item's ten-level book (0D)."""

    TITLE = "trades (0B) and the order book (0D)"

    def __init__(self, items: list[str]) -> None:
        super().__init__(items)
        self.trades: dict[str, Trade] = {}
        self.books: dict[str, OrderBook] = {}

    def update(self, item: str, event: RealtimeEvent) -> None:
        if isinstance(event, Trade):
            self.trades[item] = event
        elif isinstance(event, OrderBook):
            self.books[item] = event

    def lines(self) -> list[str]:
        lines = [f"{'code':<10}{'price':>10}{'change':>10}{'rate':>8}{'volume':>9}{'cum volume':>13}{'time':>10}"]
        for item in self.items:
            trade = self.trades.get(item)
            if trade is None:
                lines.append(f"{item:<10}{'-':>10}")
                continue
            rate = "-" if trade.rate is None else f"{trade.rate:+.2f}%"
            lines.append(f"{item:<10}{_number(trade.price):>10}{self._change(trade.change, 10)}"
                         f"{self._colored(f'{rate:>8}', trade.rate)}{self._change(trade.volume, 9)}"
                         f"{_number(trade.cumulative_volume):>13}{_clock(trade.time):>10}")
        book = self.books.get(self.items[0])
        lines += ["", f"order book of {self.items[0]}"]
        if book is None:
            return [*lines, "  (waiting)"]
        for level in reversed(book.asks):
            lines.append(f"{_number(level.quantity):>12}{self._change(level.change, 9)}  {_number(level.price):>10}")
        for level in book.bids:
            lines.append(f"{'':>21}  {_number(level.price):>10}  {_number(level.quantity):>12}"
                         f"{self._change(level.change, 9)}")
        lines.append(f"{'ask total ' + _number(book.ask_total):>21}  {'':>10}  bid total {_number(book.bid_total)}")
        return lines


def cmd_export(args: argparse.Namespace) -> int:
    from .frames import export

    type_code = args.type
    if type_code not in protocol.KNOWN_TYPES and type_code != "02":
        raise UsageError(f"unknown realtime type {type_code!r} (known: {' '.join(sorted(protocol.KNOWN_TYPES))})")
    if not os.path.exists(args.recording):
        raise UsageError(f"no such recording: {args.recording}")
    errors: list[BaseException] = []
    rows = export(args.recording, args.out, type_code, errors=errors)
    if errors:
        print(f"{PROG}: warning: {len(errors)} frames or entries could not be decoded; first: {errors[0]}",
              file=sys.stderr)
    print(f"{rows} {type_code} rows written to {args.out}", file=sys.stderr)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from .auth import issue_token, revoke_token

    base_url = args.base_url
    if args.action == "issue":
        token = issue_token(mock=args.mock, base_url=base_url, timeout=args.timeout, proxy=args.proxy)
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
    revoke_token(value, mock=args.mock, base_url=base_url, timeout=args.timeout, proxy=args.proxy)
    print("revoked", file=sys.stderr)
    return 0


def _add_relay_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--relay", metavar="REDIS_URL", default=os.environ.get("KIWOOM_RT_RELAY"),
                        help="read from a kiwoom-rt relay through this Redis instead of connecting to Kiwoom "
                             "(default: KIWOOM_RT_RELAY)")
    parser.add_argument("--prefix", default="kiwoom-rt", help="the relay's key prefix (default kiwoom-rt)")


def cmd_relay(args: argparse.Namespace) -> int:
    """One Kiwoom session, published to Redis Streams for any number of consumers."""
    from ._redact import redact_url
    from .relay import Relay

    redis_url = args.redis or os.environ.get("KIWOOM_RT_REDIS", "")
    if not redis_url:
        raise UsageError("say which Redis: --redis redis://HOST:6379/0 (or set KIWOOM_RT_REDIS)")
    maxlen = args.maxlen or int(args.retention * args.expected_rate)
    with _connection(args) as (url, token):
        relay = Relay.for_url(redis_url, token, url=url, proxy=args.proxy, prefix=args.prefix, maxlen=maxlen,
                              buffer=args.buffer, lease=args.lease)
        relay.start(timeout=args.timeout)
        _report_lifecycle(relay.session)
        print(f"relay {relay.id}: {url} -> {redact_url(redis_url)} (prefix {args.prefix}, keeps ~{maxlen:,} "
              f"frames); Ctrl-C stops", file=sys.stderr, flush=True)
        stop = threading.Event()
        failure: list[BaseException] = []
        relay.session.on_gave_up.connect(_on_gave_up(stop, failure))
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while not stop.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                stop.wait(args.every if remaining is None else min(args.every, remaining))
                stats = relay.stats()
                print(f"{time.strftime('%H:%M:%S')}  frames {stats.frames:,}  published {stats.published:,}  "
                      f"buffered {stats.buffered:,}  lost {stats.lost:,}  consumers {stats.consumers}  "
                      f"pairs {stats.wanted_pairs}  redis {'up' if stats.redis_up else 'DOWN'}", flush=True)
        finally:
            relay.close()
    if failure:
        raise failure[0]
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
    demo.add_argument("--regular", action="store_true",
                      help="the regular session: trades (0B) and a ten-level order book (0D)")
    demo.add_argument("--board", action=argparse.BooleanOptionalAction, default=None,
                      help="refreshing board (default: when stdout is a terminal)")
    demo.set_defaults(func=cmd_demo, timeout=10.0)

    for name, func, text in (("watch", cmd_watch, "print decoded events"),
                             ("record", cmd_record, "record every received frame to a file")):
        sub = commands.add_parser(name, help=text)
        if name == "record":
            sub.add_argument("out", help="recording file (.jsonl, or .jsonl.gz to compress)")
        sub.add_argument("items", nargs="*" if name == "watch" else "+", help="item codes, e.g. 005930 005930_NX")
        sub.add_argument("--type", action="append", help="realtime type (repeatable; default 0E)")
        _add_target(sub)
        if name == "watch":
            _add_relay_source(sub)
            sub.add_argument("--json", action="store_true", help="JSON lines instead of text")
            sub.add_argument("--condition", metavar="SEQ",
                             help="a live membership board of condition SEQ instead of quotes")
        sub.add_argument("--duration", type=float, help="stop after this many seconds")
        sub.add_argument("--timeout", type=float, default=10.0, help="seconds to connect and subscribe")
        sub.set_defaults(func=func)

    conditions = commands.add_parser("conditions", help="list your condition searches (조건검색)")
    _add_target(conditions)
    conditions.add_argument("--timeout", type=float, default=10.0)
    conditions.set_defaults(func=cmd_conditions)

    search = commands.add_parser("search", help="run condition SEQ once and print its stocks")
    search.add_argument("seq")
    _add_target(search)
    search.add_argument("--timeout", type=float, default=10.0)
    search.set_defaults(func=cmd_search)

    replay = commands.add_parser("replay", help="play a recording through the same decoding")
    replay.add_argument("file")
    speed = replay.add_mutually_exclusive_group()
    speed.add_argument("--speed", type=float, default=1.0, help="1 = recorded timing, 10 = ten times faster")
    speed.add_argument("--max", action="store_true", help="as fast as possible")
    replay.add_argument("--type", action="append", help="only these types (default: all)")
    replay.add_argument("--json", action="store_true", help="JSON lines instead of text")
    replay.set_defaults(func=cmd_replay)

    export = commands.add_parser("export", help="write one type of a recording to Parquet or CSV ([frames] extra)")
    export.add_argument("recording", help="a recording made by 'kiwoom-rt record'")
    export.add_argument("out", help="OUT.parquet or OUT.csv")
    export.add_argument("--type", required=True, help="the realtime type to export, e.g. 0B")
    export.set_defaults(func=cmd_export)

    token = commands.add_parser("token", help="issue or revoke an access token (KIWOOM_APPKEY/SECRETKEY)")
    token.add_argument("action", choices=("issue", "revoke"))
    token.add_argument("token", nargs="?", help="revoke: the token (default: KIWOOM_TOKEN)")
    where = token.add_mutually_exclusive_group()
    where.add_argument("--mock", action="store_true", help="the mock-trading REST server")
    where.add_argument("--base-url", help="another REST base URL (e.g. the simulator's)")
    token.add_argument("--json", action="store_true", help="issue: print token and expiry as JSON")
    token.add_argument("--timeout", type=float, default=10.0)
    _add_proxy(token)
    token.set_defaults(func=cmd_token)

    relay = commands.add_parser("relay", help="share one Kiwoom session through Redis Streams ([relay] extra)")
    relay.add_argument("--redis", metavar="URL", help="redis://[:password@]HOST:6379/0 or rediss:// for TLS "
                                                      "(default: KIWOOM_RT_REDIS)")
    _add_target(relay)
    relay.add_argument("--prefix", default="kiwoom-rt", help="key prefix, to run several relays on one Redis")
    relay.add_argument("--retention", type=float, default=3600.0, help="seconds of feed to keep (default 3600)")
    relay.add_argument("--expected-rate", type=float, default=5000.0,
                       help="frames per second the retention is sized for (default 5000)")
    relay.add_argument("--maxlen", type=int, help="keep about this many frames (overrides --retention)")
    relay.add_argument("--buffer", type=int, default=100_000, help="frames held while Redis is away")
    relay.add_argument("--lease", type=float, default=15.0, help="seconds before a silent consumer is dropped")
    relay.add_argument("--every", type=float, default=5.0, help="seconds between status lines")
    relay.add_argument("--duration", type=float, help="stop after this many seconds")
    relay.add_argument("--timeout", type=float, default=10.0)
    relay.set_defaults(func=cmd_relay)

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
        root = (exc.name or "").split(".")[0]
        extra = "frames" if root in ("pandas", "pyarrow") else "relay" if root == "redis" else "sim"
        print(f"{PROG}: error: {exc.name or exc} is not installed (pip install 'kiwoom-rt[{extra}]')",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: stopped", file=sys.stderr)
        return 0
