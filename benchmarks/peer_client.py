"""One benchmark client in its own process (run by ``bench_peers.py``; prints one JSON line).

    python benchmarks/peer_client.py CLIENT URL --mode flood|paced --count N [--shape SHAPE] [--busy]

CLIENT is one of:

- ``kiwoom-rt``: this library with its default install (orjson is made unimportable first);
- ``kiwoom-rt-fast``: this library with orjson (``pip install "kiwoom-rt[fast]"``);
- ``kiwoom-client``: kiwoom-client 0.4.0's ``KiwoomWebSocket`` (asyncio), on a thread;
- ``seed-asyncio``: the seed document's asyncio ``websockets`` loop, on a thread.

Every client subscribes the shape's items (2,000 for the varied shapes, in REGs of 100) and counts
the entries of the shape's types (``benchmarks/traffic.py``) in a plain callback that reads the
entry's values. In ``paced`` mode each entry carries its server send time (FID 9999, microseconds
since the epoch) and the callback records the latency. ``--count`` is the number of entries
expected.
With ``--busy`` the main thread runs a pure-Python CPU loop the whole time, as a busy GUI or a
computing strategy does, and the client runs on its own thread(s).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import traffic

LOGIN = {"trnm": "LOGIN", "token": "bench-token"}


def chunks(codes: list[str], size: int = 100) -> list[list[str]]:
    return [codes[start:start + size] for start in range(0, len(codes), size)]


class Tally:
    """What the callback of every client records."""

    def __init__(self, count: int, paced: bool) -> None:
        self.count = count
        self.paced = paced
        self.received = 0
        self.first: float | None = None
        self.last = 0.0
        self.latencies_us: list[float] = []
        self.done = threading.Event()
        self.first_cpu = 0.0
        self.total = 0  # the numbers a ``--receiver numbers`` receiver read, summed (so they are used)

    def on_values(self, values: dict[str, str], number: int = 0) -> None:
        now = time.perf_counter()
        self.total += number
        if self.first is None:
            self.first = now
            self.first_cpu = time.process_time()
        self.received += 1
        self.last = now
        if self.paced:
            self.latencies_us.append(time.time() * 1e6 - int(values["9999"]))
        if self.received >= self.count:
            self.done.set()


RECORDS: dict[str, Any] = {}  # the client's own counters, added to the JSON line

#: ``--receiver numbers``: each receiver takes three numbers of every event, as each client's users
#: get them. kiwoom-rt's are its typed fields; the peers hand over raw text, which their users turn
#: into numbers with ``int()`` (``abs()`` for a price, whose sign is its direction against the
#: previous close). ``--receiver values`` (the default) takes the raw values only.
TYPED: dict[str, Callable[[Any], int]] = {
    "0E": lambda event: event.ask_total + event.bid_total + event.ask_total_change,
    "0B": lambda event: event.price + event.volume + event.cumulative_volume,
    "0D": lambda event: event.ask_total + event.bid_total + event.ask_total_change,
}
RAW: dict[str, Callable[[dict[str, str]], int]] = {
    "0E": lambda values: int(values["131"]) + int(values["135"]) + int(values["132"]),
    "0B": lambda values: abs(int(values["10"])) + int(values["15"]) + int(values["13"]),
    "0D": lambda values: int(values["121"]) + int(values["125"]) + int(values["122"]),
}
NUMBERS = os.environ.get("KIWOOM_RT_BENCH_RECEIVER") == "numbers"


def run_kiwoom_rt(url: str, tally: Tally, ssl_context: Any, codes: list[str],
                  types: tuple[str, ...]) -> Callable[[], None]:
    import os

    from kiwoom_rt import RealtimeSession

    options: dict[str, Any] = {"ssl_context": ssl_context,
                               "inline": os.environ.get("KIWOOM_RT_BENCH_INLINE") == "1"}  # (diagnosis only)
    try:  # the harness registers thousands of items: the item limit (since issue 37) is lifted
        session = RealtimeSession("bench-token", url=url, max_items=None, **options)
    except TypeError:  # a release without one
        session = RealtimeSession("bench-token", url=url, **options)

    def receiver(item: str, event: Any) -> None:
        tally.on_values(event.values)

    def numbers_of(type_code: str) -> Callable[..., None]:
        numbers = TYPED[type_code]

        def receiver(item: str, event: Any) -> None:
            tally.on_values(event.values, numbers(event))
        return receiver

    for type_code in types:
        session.signal(type_code).connect(numbers_of(type_code) if NUMBERS else receiver)
    session.start()
    session.subscribe(codes, types)  # REGs of 100 items, one at a time
    scraper: Callable[[], None] | None = None
    metrics = os.environ.get("KIWOOM_RT_BENCH_METRICS")
    if metrics:  # kiwoom-rt-metrics: served, never scraped; kiwoom-rt-scraped: scraped every second
        scraper = serve_and_scrape(session, scrape=metrics == "scraped")

    def close() -> None:
        stats = session.stats()
        if scraper is not None:
            scraper()
        session.close()
        reads = getattr(stats, "reads", 0)  # (older releases do not count reads)
        RECORDS.update(handovers=stats.handovers, reads=reads, frames=stats.frames,
                       frames_per_read=round(stats.frames / reads, 1) if reads else None,
                       bytes_per_read=round(stats.bytes_read / reads) if reads else None,
                       dropped=stats.dropped, decode_errors=stats.decode_errors)

    return close


def serve_and_scrape(session: Any, scrape: bool) -> Callable[[], None]:
    """``serve_metrics`` on a free port; with ``scrape``, scraped every second from another
    process, as Prometheus would (a scraper inside this process would compete for its GIL, which
    no real one does); returns the function that stops both."""
    import subprocess

    from kiwoom_rt.metrics import serve_metrics

    server = serve_metrics(session, port=0)
    if not scrape:  # the collectors observe the session (the hot path's share); nobody asks
        return server.close
    # as Prometheus scrapes: HTTP/1.1 over one kept-alive connection, its Accept and gzip headers
    scraper = subprocess.Popen(
        [sys.executable, "-c",
         "import http.client, sys, time\n"
         "connection = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=5)\n"
         "headers = {'Accept': 'application/openmetrics-text;version=1.0.0;q=0.5,"
         "text/plain;version=0.0.4;q=0.3,*/*;q=0.1', 'Accept-Encoding': 'gzip'}\n"
         "count = 0\n"
         "while True:\n"
         "    time.sleep(1.0)\n"
         "    connection.request('GET', '/metrics', headers=headers)\n"
         "    connection.getresponse().read()\n"
         "    count += 1\n"
         "    print(count, flush=True)\n",
         str(server.port)], stdout=subprocess.PIPE, text=True)

    def close() -> None:
        scraper.terminate()
        output, _ = scraper.communicate(timeout=5)
        server.close()
        RECORDS["scrapes"] = len(output.split())

    return close


def run_in_loop_thread(main: Callable[[Any], Any]) -> Callable[[], None]:
    """Run an asyncio client on its own thread, as a Qt or Tk app would have to."""
    import asyncio

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def runner() -> None:
        task = asyncio.ensure_future(main(stop))
        await stop.wait()
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass

    thread = threading.Thread(target=lambda: loop.run_until_complete(runner()), daemon=True)
    thread.start()

    def close() -> None:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)

    return close


def run_kiwoom_client(url: str, tally: Tally, ssl_context: Any, codes: list[str],
                      types: tuple[str, ...]) -> Callable[[], None]:
    from kiwoom_client.websocket import KiwoomWebSocket

    async def main(stop: Any) -> None:
        ws = KiwoomWebSocket("bench-token", ws_url=url)
        for type_code in types:
            if NUMBERS:
                ws.on(type_code, lambda entry, numbers=RAW[type_code]: tally.on_values(
                    entry["values"], numbers(entry["values"])))
            else:
                ws.on(type_code, lambda entry: tally.on_values(entry["values"]))
        await ws.connect()
        for chunk in chunks(codes):
            await ws.subscribe(list(types), chunk)
        try:
            await ws.listen()
        finally:
            await ws.disconnect()

    return run_in_loop_thread(main)


def run_seed_asyncio(url: str, tally: Tally, ssl_context: Any, codes: list[str],
                     types: tuple[str, ...]) -> Callable[[], None]:
    """The seed document's loop: websockets.connect, LOGIN, recv + json.loads, echo PING."""
    import websockets

    async def main(stop: Any) -> None:
        async with websockets.connect(url, ssl=ssl_context) as websocket:
            await websocket.send(json.dumps(LOGIN))
            for chunk in chunks(codes):
                await websocket.send(json.dumps({"trnm": "REG", "grp_no": "1", "refresh": "1",
                                                 "data": [{"item": chunk, "type": list(types)}]}))
            while True:
                response = json.loads(await websocket.recv())
                trnm = response.get("trnm")
                if trnm == "PING":
                    await websocket.send(json.dumps(response))
                elif trnm == "REAL":
                    if NUMBERS:
                        for entry in response["data"]:
                            tally.on_values(entry["values"], RAW[entry["type"]](entry["values"]))
                    else:
                        for entry in response["data"]:
                            tally.on_values(entry["values"])

    return run_in_loop_thread(main)


CLIENTS = {
    "kiwoom-rt": run_kiwoom_rt,
    "kiwoom-rt-fast": run_kiwoom_rt,
    "kiwoom-rt-metrics": run_kiwoom_rt,
    "kiwoom-rt-scraped": run_kiwoom_rt,
    "kiwoom-client": run_kiwoom_client,
    "seed-asyncio": run_seed_asyncio,
}


def busy_until(done: threading.Event, limit: float) -> int:
    """The busy main thread: a pure-Python loop until ``done``; returns its rounds (the work the
    main thread got done meanwhile)."""
    deadline = time.monotonic() + limit
    rounds = 0
    while not done.is_set() and time.monotonic() < deadline:
        total = 0
        for i in range(2_000):
            total += i * i
        rounds += 1
    return rounds


def max_rss_mb() -> float:
    """Peak resident memory of this process (Linux: /proc; 0 where unknown)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("url")
    parser.add_argument("--mode", choices=["flood", "paced"], required=True)
    parser.add_argument("--count", type=int, required=True, help="events expected")
    parser.add_argument("--shape", choices=sorted(traffic.SHAPES), default="0e-legacy")
    parser.add_argument("--busy", action="store_true")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds before giving up")
    parser.add_argument("--cafile", help="trust this certificate (TLS runs)")
    args = parser.parse_args()
    if os.environ.get("KIWOOM_RT_BENCH_NOGC") == "1":  # diagnosis only
        gc.disable()
    switch = os.environ.get("KIWOOM_RT_BENCH_SWITCH")  # every client: the application's GIL switch interval (s)
    if switch:
        sys.setswitchinterval(float(switch))
    if args.client in ("kiwoom-rt-metrics", "kiwoom-rt-scraped"):
        os.environ["KIWOOM_RT_BENCH_METRICS"] = args.client.removeprefix("kiwoom-rt-")
    if args.client.startswith("kiwoom-rt"):
        # neither the default install nor [fast] (nor [bench]) has the calendar extra: a test
        # environment's exchange_calendars would load pandas (about 100 MB) into the session
        sys.modules["exchange_calendars"] = None  # type: ignore[assignment]
    if args.client in ("kiwoom-rt", "kiwoom-rt-metrics", "kiwoom-rt-scraped"):
        sys.modules["orjson"] = None  # type: ignore[assignment]  # the default install has no orjson
    ssl_context = None
    if args.cafile:
        import ssl

        ssl_context = ssl.create_default_context(cafile=args.cafile)
    tally = Tally(args.count, args.mode == "paced")
    gc_before = [generation["collections"] for generation in gc.get_stats()]
    codes = traffic.items(traffic.SHAPE_ITEMS[args.shape])
    close = CLIENTS[args.client](args.url, tally, ssl_context, codes, traffic.SHAPE_TYPES[args.shape])
    started = time.perf_counter()
    main_rounds = None
    if args.busy:
        main_rounds = busy_until(tally.done, args.limit)
    else:
        tally.done.wait(args.limit)
    ended = time.perf_counter()
    done_cpu = time.process_time()
    gc_runs = [generation["collections"] - before for generation, before in zip(gc.get_stats(), gc_before, strict=True)]
    close()
    parser_name = "n/a"
    if args.client.startswith("kiwoom-rt"):
        from kiwoom_rt import _json

        parser_name = _json.PARSER
    warm = tally.latencies_us[len(tally.latencies_us) // 10:]
    first = tally.first if tally.first is not None else started
    span = (tally.last - first) if tally.received >= args.count else (ended - first)
    print(json.dumps({
        "client": args.client, "parser": parser_name, "received": tally.received, "expected": args.count,
        "events_per_s": tally.received / span if span > 0 else 0.0,
        "p50_ms": percentile(warm, 0.5) / 1e3, "p99_ms": percentile(warm, 0.99) / 1e3,
        "max_rss_mb": round(max_rss_mb(), 1),
        # the busy main thread's loop rounds per second while the client ran (its share of the GIL)
        "main_rounds_per_s": round(main_rounds / (ended - started)) if main_rounds is not None else None,
        "switch_interval_s": sys.getswitchinterval(),
        "receiver": "numbers" if NUMBERS else "values",
        # CPU of the whole process per event while events flowed (meaningful with an idle main thread)
        "cpu_us_per_event": (done_cpu - tally.first_cpu) / tally.received * 1e6 if tally.received else None,
        # the garbage collector's runs per generation while the client ran (every client's own)
        "gc_collections": gc_runs,
        **RECORDS,
    }), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
