"""The commands: each runs one session (live, replayed or relayed) and prints what it sees."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from .._catalogue import TRADE_TYPES
from .._surface import Session
from ..events import EVENT_TYPES
from ..markets import KST
from ..session import MOCK_URL, PRODUCTION_URL, US_MOCK_URL, US_PRODUCTION_URL, RealtimeSession
from ..us import parse_us_item
from ._boards import AfterHoursBoard, Board, RegularBoard, UsBoard
from ._format import bar_printer, clock, number, printer, signed
from ._parser import PROG, UsageError, parse_items, parse_types

__all__ = ["COMMANDS", "DEMO_ITEMS", "DEMO_US_ITEMS"]

DEMO_ITEMS = ["005930", "000660", "035420", "035720", "005380", "051910", "006400", "000270"]
DEMO_US_ITEMS = ["NASDAQ:NVDA", "NASDAQ:AAPL", "NASDAQ:MSFT", "NASDAQ:TSLA", "NYSE:KO", "NYSE:JPM", "AMEX:SPY",
                 "NASDAQ:COIN"]


def _market(args: argparse.Namespace) -> str:
    return "us" if getattr(args, "us", False) else "kr"


def report_lifecycle(session: Session) -> None:
    """Tell the user on stderr about reconnects and bad frames (the library's log stays quiet)."""

    def reconnecting(s: Any, attempt: int, delay: float) -> None:
        print(f"{PROG}: connection lost; reconnecting (attempt {attempt}, in {delay:.1f} s)", file=sys.stderr)

    def error(s: Any, error: BaseException) -> None:
        print(f"{PROG}: warning: {error}", file=sys.stderr)

    session.on_reconnecting.connect(reconnecting)
    session.on_error.connect(error)


def stop_when_given_up(stop: threading.Event, failure: list[BaseException]) -> Callable[..., None]:
    def gave_up(session: Any, error: BaseException) -> None:
        failure.append(error)
        stop.set()

    return gave_up


def _session(args: argparse.Namespace, url: str, token: str | Callable[[], str], **options: Any) -> RealtimeSession:
    """The command's session, through --proxy if given (a US session with --us, whatever the URL)."""
    return RealtimeSession(token, url=url, proxy=getattr(args, "proxy", None), market=_market(args), **options)


def _target(args: argparse.Namespace) -> tuple[str, str | Callable[[], str]]:
    """(url, token source) from --mock/--prod/--url and the environment."""
    us = _market(args) == "us"
    if args.url:
        url = args.url
    elif args.mock:
        url = US_MOCK_URL if us else MOCK_URL
    elif args.prod:
        url = US_PRODUCTION_URL if us else PRODUCTION_URL
    else:
        raise UsageError("say where to connect: --mock, --prod, --url URL or --sim")
    token = os.environ.get("KIWOOM_TOKEN", "").strip()
    if token:
        return url, token
    if os.environ.get("KIWOOM_APPKEY", "").strip() and os.environ.get("KIWOOM_SECRETKEY", "").strip():
        from ..auth import TokenProvider

        base_url = None
        if args.url:
            parts = urlsplit(args.url)
            base_url = f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"
        return url, TokenProvider(mock=bool(args.mock), base_url=base_url, proxy=args.proxy)
    raise UsageError("missing credentials: set KIWOOM_TOKEN, or KIWOOM_APPKEY and KIWOOM_SECRETKEY")


@contextlib.contextmanager
def _connection(args: argparse.Namespace) -> Iterator[tuple[str, str | Callable[[], str]]]:
    """(url, token source) for the command; with --sim, a simulator runs for the command's life
    (with --us: its US socket, on a clock in the US regular session)."""
    if getattr(args, "sim", False):
        from ..sim import DEFAULT_TOKEN, SimClock, SimServer, us_clock

        us = _market(args) == "us"
        bars = bool(getattr(args, "bars", None))
        clock = None  # after hours (16:00 KST): 0E flows
        if us:
            clock = us_clock(speed=10.0 if bars else 1.0)
        elif bars or any(code != "0E" for code in getattr(args, "type", None) or ()):
            # trades and books flow in the regular session; bars come ten times faster
            clock = SimClock(dt.time(10, 0), speed=10.0 if bars else 1.0)
        if clock is None and not us:
            clock = SimClock(dt.time(16, 0))
        if clock is not None and not us:  # a weekday: market phases (health, notes) read the day as trading
            clock.set(dt.datetime.combine(_latest_weekday(), clock.now().time(), tzinfo=KST))
        with SimServer(rate=20, clock=clock) as sim:
            args.market_clock = sim.clock.now  # health judges phases by the simulator's clock
            for item in getattr(args, "silence", None) or ():
                sim.silence_item(item)
            yield sim.us_url if us else sim.url, DEFAULT_TOKEN
        return
    yield _target(args)


def _latest_weekday() -> dt.date:
    day = dt.datetime.now(KST).date()
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


@contextlib.contextmanager
def _source(args: argparse.Namespace, **options: Any) -> Iterator[Any]:
    """The command's session: a relay consumer with --relay, else a live session (``options``
    go to either)."""
    relay_url = getattr(args, "relay", None)
    if relay_url:
        if any(getattr(args, name, None) for name in ("mock", "prod", "url", "sim", "proxy")):
            raise UsageError("--relay reads from a relay: it takes no --mock/--prod/--url/--sim/--proxy")
        from ..relay import RelaySession

        yield RelaySession(relay_url, prefix=args.prefix, market=_market(args), **options)
        return
    with _connection(args) as (url, token):
        yield _session(args, url, token, market_clock=getattr(args, "market_clock", None), **options)


@contextlib.contextmanager
def _metrics(args: argparse.Namespace, target: Any) -> Iterator[None]:
    """Serve ``target``'s Prometheus metrics on --metrics-port while the command runs."""
    port = getattr(args, "metrics_port", None)
    if port is None:
        yield
        return
    try:
        from ..metrics import serve_metrics
    except ImportError:
        raise UsageError("--metrics-port needs the metrics extra: pip install 'kiwoom-rt[metrics]'") from None
    try:
        server = serve_metrics(target, port=port, addr=args.metrics_addr, name=args.metrics_name)
    except OSError as exc:
        raise UsageError(f"cannot serve metrics on {args.metrics_addr}:{port}: {exc}") from None
    print(f"{PROG}: metrics at {server.url}", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        server.close()


def _run_until(stop: threading.Event, duration: float | None, every: float = 0.25,
               tick: Callable[[], None] | None = None) -> None:
    """Block until ``stop`` or ``duration``, calling ``tick`` every ``every`` seconds; Ctrl-C ends
    it too (KeyboardInterrupt)."""
    deadline = None if duration is None else time.monotonic() + duration
    while not stop.is_set():
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        if tick is not None:
            tick()
        stop.wait(every if remaining is None else min(every, remaining))


def _live(args: argparse.Namespace, setup: Callable[[Session, threading.Event], None],
          begin: Callable[[RealtimeSession], None], *, tick: Callable[[Session], None] | None = None,
          every: float = 0.25, **options: Any) -> int:
    """Run one session until --duration, Ctrl-C or giving up: ``setup`` connects receivers before
    the start, ``begin`` makes the requests once logged in, ``tick`` runs every ``every`` seconds
    after that; ``options`` go to the session."""
    stop = threading.Event()
    failure: list[BaseException] = []
    with _source(args, **options) as session:
        setup(session, stop)
        session.on_gave_up.connect(stop_when_given_up(stop, failure))
        try:
            session.start(timeout=args.timeout)
            report_lifecycle(session)  # from now on: start() itself reports its failures
            with _metrics(args, session):
                begin(session)
                _run_until(stop, args.duration, every, None if tick is None else lambda: tick(session))
        finally:
            session.close()
    if failure:
        raise failure[0]
    return 0


def run_watch(args: argparse.Namespace) -> int:
    if args.condition is not None and args.relay:
        raise UsageError("--condition lists conditions from Kiwoom: use it without --relay")
    if args.condition is not None:
        return _watch_condition(args)
    if not args.items:
        raise UsageError("say which items to watch (or --condition SEQ)")
    market = _market(args)
    items = parse_items(args.items, market)
    types = parse_types(args.type or ([TRADE_TYPES[market]] if args.bars else None), market)

    def setup(session: Session, stop: threading.Event) -> None:
        show = printer(args.json, stop)
        if args.bars:
            from ..bars import BarFeed

            try:
                feed = BarFeed(session, args.bars, types=types)
            except ValueError as exc:  # a malformed interval, a type that is not a trade ...
                raise UsageError(str(exc)) from exc
            feed.on_bar.connect(bar_printer(args.json, stop))
            return
        for type_code in types:
            session.signal(type_code).connect(show)

    def begin(session: Session) -> None:
        session.subscribe(items, types).wait(args.timeout)
        if not getattr(args, "sim", False):  # (the simulator's clock is its own)
            _say_when_types_flow(items, types, market)

    return _live(args, setup, begin)


def _say_when_types_flow(items: list[Any], types: list[str], market: str) -> None:
    """One line on stderr for each requested type that the market's phase keeps from flowing."""
    from .. import markets

    venues = {"US"} if market == "us" else {"NXT" if str(item).endswith("_NX") else "KRX" for item in items}
    for type_code in types:
        for venue in sorted(venues):
            reason = markets.describe(type_code, venue)
            if reason is not None:
                print(f"{PROG}: note: {reason}", file=sys.stderr)


def _watch_condition(args: argparse.Namespace) -> int:
    """A live membership board of one condition: the members, then every entry and exit."""
    seq = args.condition

    def show(sender: str, event: Any) -> None:
        mark = "+" if event.entered else "-"
        what = "entered" if event.entered else "left"
        note = " (found on reconnect)" if event.resync else ""
        print(f"{clock(event.time)}  {mark} {event.code:<8} {what} condition {sender}{note}", flush=True)

    def begin(session: Session) -> None:
        names = {c.seq: c.name for c in session.conditions(timeout=args.timeout)}
        if seq not in names:
            raise UsageError(f"no condition {seq!r} (there are: {', '.join(sorted(names)) or 'none'})")
        watch = session.watch_condition(seq).wait(args.timeout)
        print(f"condition {seq} {names[seq]}: {len(watch.members)} members: "
              f"{' '.join(sorted(watch.members)) or '-'}", flush=True)

    def setup(session: Session, stop: threading.Event) -> None:
        session.on_condition.connect(show, sender=seq)

    return _live(args, setup, begin)


def run_conditions(args: argparse.Namespace) -> int:
    with _connection(args) as (url, token), _session(args, url, token) as session:
        for condition in session.conditions(timeout=args.timeout):
            print(f"{condition.seq:>4}  {condition.name}")
    return 0


def run_search(args: argparse.Namespace) -> int:
    with _connection(args) as (url, token), _session(args, url, token) as session:
        hits = session.search(args.seq, timeout=args.timeout)
    print(f"{'code':<8}{'name':<14}{'price':>10}{'change':>9}{'rate':>8}{'volume':>12}")
    for hit in hits:
        rate = "-" if hit.rate is None else f"{hit.rate:+.2f}"
        print(f"{hit.code:<8}{hit.name[:12]:<14}{number(hit.price):>10}{signed(hit.change):>9}{rate:>8}"
              f"{number(hit.volume):>12}")
    print(f"{len(hits)} stocks in condition {args.seq}", file=sys.stderr)
    return 0


def run_record(args: argparse.Namespace) -> int:
    items, types = parse_items(args.items, _market(args)), parse_types(args.type, _market(args))
    with _connection(args) as (url, token):
        return _record(args, items, types, url, token)


def _record(args: argparse.Namespace, items: list[str], types: list[str], url: str,
            token: str | Callable[[], str]) -> int:
    from ..recording import Recorder

    stop = threading.Event()
    failure: list[BaseException] = []
    recorder = Recorder(args.out, meta={"url": url, "items": items, "types": types}, market=_market(args))
    session = _session(args, url, token, frame_hook=recorder)
    session.on_gave_up.connect(stop_when_given_up(stop, failure))
    try:
        session.start(timeout=args.timeout)
        report_lifecycle(session)  # from now on: start() itself reports its failures
        session.subscribe(items, types).wait(args.timeout)
        print(f"recording {len(items)} items ({' '.join(types)}) to {args.out}; Ctrl-C stops", file=sys.stderr)
        if not getattr(args, "sim", False):
            _say_when_types_flow(items, types, _market(args))
        with _metrics(args, session):
            _run_until(stop, args.duration)
    finally:
        session.close()
        recorder.close()
        print(f"{recorder.frames_written} frames recorded", file=sys.stderr)
    if failure:
        raise failure[0]
    return 0


def run_replay(args: argparse.Namespace) -> int:
    from ..replay import ReplaySession

    types = list(args.type) if args.type else None
    for type_code in types or ():
        if type_code not in EVENT_TYPES:
            raise UsageError(f"unknown realtime type {type_code!r} (known: {' '.join(sorted(EVENT_TYPES))})")
    replay = ReplaySession(args.file, speed=None if args.max else args.speed)
    stop = threading.Event()
    show = printer(args.json, stop)
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


def run_demo(args: argparse.Namespace) -> int:
    from ..queued import QueueDispatcher
    from ..sim import DEFAULT_TOKEN, SimClock, SimServer, us_clock

    market = _market(args)
    items = parse_items(args.items or (DEMO_US_ITEMS if args.us else DEMO_ITEMS), market)
    tty = sys.stdout.isatty() if args.board is None else args.board
    # the regular session (trades and books) runs 09:00-15:30 KST; the default clock is 16:00;
    # the US board runs in the US regular session (10:30 US Eastern)
    clock = us_clock() if args.us else SimClock(dt.time(10, 0)) if args.regular else None
    types = ["FE", "FT"] if args.us else ["0B", "0D"] if args.regular else ["0E"]
    with SimServer(rate=args.rate, clock=clock) as sim:
        dispatcher = QueueDispatcher(conflate=tty)  # receivers run here, on the main thread
        session = RealtimeSession(DEFAULT_TOKEN, url=sim.us_url if args.us else sim.url, dispatcher=dispatcher)
        board: Board | None = None
        if tty:
            if args.us:  # the board is keyed by what events carry: the symbol
                board = UsBoard([parse_us_item(item).symbol for item in items])
            else:
                board = RegularBoard(items) if args.regular else AfterHoursBoard(items)
        stop = threading.Event()
        receiver = board.update if board is not None else printer(False, stop)
        for type_code in types:
            session.signal(type_code).connect(receiver)
        try:
            session.start(timeout=args.timeout)
            session.subscribe(items, types).wait(args.timeout)
            if not tty:
                what = ("US trades (FE) and order books (FT)" if args.us else
                        "trades (0B) and order books (0D)" if args.regular else "after-hours quotes (0E)")
                print(f"live {what} from the built-in simulator at {session.url}", flush=True)
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


def run_export(args: argparse.Namespace) -> int:
    from ..frames import export

    type_code = args.type
    if type_code not in EVENT_TYPES:
        raise UsageError(f"unknown realtime type {type_code!r} (known: {' '.join(sorted(EVENT_TYPES))})")
    if not os.path.exists(args.recording):
        raise UsageError(f"no such recording: {args.recording}")
    errors: list[BaseException] = []
    rows = export(args.recording, args.out, type_code, errors=errors)
    if errors:
        print(f"{PROG}: warning: {len(errors)} frames or entries could not be decoded; first: {errors[0]}",
              file=sys.stderr)
    print(f"{rows} {type_code} rows written to {args.out}", file=sys.stderr)
    return 0


def run_bars(args: argparse.Namespace) -> int:
    from ..frames import export_bars

    if not os.path.exists(args.recording):
        raise UsageError(f"no such recording: {args.recording}")
    errors: list[BaseException] = []
    late: list[Any] = []
    try:
        written = export_bars(args.recording, args.out, args.interval, ticks=args.ticks, volume=args.volume,
                              types=args.type, fill_empty=args.fill_empty, errors=errors, late=late)
    except ValueError as exc:  # a malformed interval, a type that is not a trade ...
        raise UsageError(str(exc)) from exc
    if errors:
        print(f"{PROG}: warning: {len(errors)} frames or entries could not be decoded; first: {errors[0]}",
              file=sys.stderr)
    if late:
        print(f"{PROG}: warning: {len(late)} late trades left out (their bars were already final)", file=sys.stderr)
    print(f"{written} bars written to {args.out}", file=sys.stderr)
    return 0


def run_token(args: argparse.Namespace) -> int:
    from ..auth import issue_token, revoke_token

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


def run_relay(args: argparse.Namespace) -> int:
    """One Kiwoom session, published to Redis Streams for any number of consumers."""
    from .._redact import redact_url
    from ..relay import Relay

    redis_url = args.redis or os.environ.get("KIWOOM_RT_REDIS", "")
    if not redis_url:
        raise UsageError("say which Redis: --redis redis://HOST:6379/0 (or set KIWOOM_RT_REDIS)")
    maxlen = args.maxlen or int(args.retention * args.expected_rate)
    with _connection(args) as (url, token):
        relay = Relay.for_url(redis_url, token, url=url, proxy=args.proxy, prefix=args.prefix, maxlen=maxlen,
                              buffer=args.buffer, lease=args.lease, session_options={"market": _market(args)})
        relay.start(timeout=args.timeout)
        report_lifecycle(relay.session)
        print(f"relay {relay.id}: {url} -> {redact_url(redis_url)} (prefix {args.prefix}, keeps ~{maxlen:,} "
              f"frames); Ctrl-C stops", file=sys.stderr, flush=True)
        stop = threading.Event()
        failure: list[BaseException] = []
        relay.session.on_gave_up.connect(stop_when_given_up(stop, failure))
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            with _metrics(args, relay):
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


def run_health(args: argparse.Namespace) -> int:
    """The per-subscription health table, live: stale rows marked."""
    from ._health_view import health_lines

    market = _market(args)
    if getattr(args, "silence", None) and not args.sim:
        raise UsageError("--silence silences an item of the built-in simulator: use it with --sim")
    items = parse_items(args.items or (DEMO_US_ITEMS if market == "us" else DEMO_ITEMS), market)
    types = parse_types(args.type, market)
    options: dict[str, Any] = {"resubscribe_stale": args.resubscribe}
    if args.stale_after is not None:
        options["stale_after"] = args.stale_after
    tty = sys.stdout.isatty() if args.board is None else args.board
    title = f"{PROG} health: {_where(args)}   Ctrl-C stops"

    def begin(session: Session) -> None:
        session.subscribe(items, types).wait(args.timeout)
        if not args.sim and not args.relay:
            _say_when_types_flow(items, types, market)

    def draw(session: Session) -> None:
        lines = health_lines(session.health(), title, color=tty)
        sys.stdout.write(("\x1b[H\x1b[2J" if tty else "") + "\n".join(lines) + "\n" + ("" if tty else "\n"))
        sys.stdout.flush()

    return _live(args, lambda session, stop: None, begin, tick=draw, every=args.every, **options)


def _where(args: argparse.Namespace) -> str:
    if getattr(args, "relay", None):
        from .._redact import redact_url

        return f"relay {redact_url(args.relay)} (prefix {args.prefix})"
    if args.sim:
        return "the built-in simulator"
    return "Kiwoom mock" if args.mock else "Kiwoom production" if args.prod else str(args.url)


def run_sim(args: argparse.Namespace) -> int:
    from ..sim.__main__ import serve

    result: int = serve(args)
    return result


#: Each command and the function that runs it.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": run_demo, "watch": run_watch, "record": run_record, "conditions": run_conditions,
    "search": run_search, "replay": run_replay, "export": run_export, "bars": run_bars, "token": run_token,
    "relay": run_relay, "health": run_health,
    "sim": run_sim,
}
