"""The kiwoom-rt command line, run as a subprocess against the simulator."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiwoom_rt.recording import read_recording
from kiwoom_rt.replay import ReplaySession
from kiwoom_rt.sim import DEFAULT_APPKEY, DEFAULT_SECRETKEY, DEFAULT_TOKEN, SimClock, SimServer

ROOT = Path(__file__).resolve().parent.parent
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("KIWOOM_")}
BASE_ENV.update(PYTHONUNBUFFERED="1", NO_PROXY="127.0.0.1,localhost")
QUOTE = ('{"trnm":"REAL","data":[{"type":"0E","item":"005930","values":'
         '{"21":"160000","131":"1","132":"0","135":"2","136":"0"}}]}')


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiwoom_rt", *args], cwd=ROOT, env={**BASE_ENV, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture
def live_sim() -> Iterator[SimServer]:
    with SimServer(rate=50, clock=SimClock(speed=0), condition_churn=0) as sim:
        yield sim


def test_demo_prints_plain_lines_when_not_a_terminal() -> None:
    result = run("demo", "--duration", "1.5")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if " ask " in line]
    assert len(lines) >= 10
    assert "\x1b[" not in result.stdout  # no escape codes in a pipe


def test_demo_board_draws_a_table() -> None:
    result = run("demo", "--duration", "1.0", "--board")
    assert result.returncode == 0, result.stderr
    assert "ask total" in result.stdout
    assert "005930" in result.stdout


def test_demo_regular_shows_trades_and_a_ten_level_book() -> None:
    plain = run("demo", "--regular", "--duration", "1.5")
    assert plain.returncode == 0, plain.stderr
    trades = [line for line in plain.stdout.splitlines() if " 0B trade " in line]
    books = [line for line in plain.stdout.splitlines() if " 0D book " in line]
    assert trades
    assert books
    assert all("10/10 levels" in line for line in books)
    board = run("demo", "--regular", "--duration", "1.5", "--board")
    assert board.returncode == 0, board.stderr
    final = board.stdout.rsplit("kiwoom-rt demo:", 1)[1]  # the last board drawn
    assert "order book of 005930" in final
    assert "ask total" in final
    assert "bid total" in final
    book_rows = final.split("order book of 005930", 1)[1].splitlines()
    assert sum(1 for line in book_rows if line.strip() and line.strip()[0].isdigit()) >= 20  # ten levels a side


@pytest.fixture
def regular_sim() -> Iterator[SimServer]:
    with SimServer(rate=100, clock=SimClock(dt.time(10, 0), speed=0)) as sim:
        yield sim


def test_watch_shows_typed_trades_and_books(regular_sim: SimServer) -> None:
    env = {"KIWOOM_TOKEN": DEFAULT_TOKEN}
    text = run("watch", "005930", "--type", "0B", "--type", "0D", "--url", regular_sim.url,
               "--duration", "1.5", env=env)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert any(" 0B trade " in line and " vol " in line for line in lines)
    assert any(" 0D book " in line and "totals ask" in line for line in lines)
    as_json = run("watch", "005930", "--type", "0B", "--type", "0D", "--url", regular_sim.url,
                  "--duration", "1.5", "--json", env=env)
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    trades = [r for r in records if r["type"] == "0B"]
    books = [r for r in records if r["type"] == "0D"]
    assert trades
    assert books
    assert all(isinstance(r["price"], int) and r["price"] > 0 for r in trades)
    assert all(len(r["asks"]) == 10 and r["ask_total"] == sum(q for _, q, _ in r["asks"]) for r in books)


def test_record_then_export_to_csv_and_parquet(regular_sim: SimServer, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    out = tmp_path / "day.jsonl.gz"
    env = {"KIWOOM_TOKEN": DEFAULT_TOKEN}
    recorded = run("record", str(out), "005930", "000660", "--type", "0B", "--type", "0D",
                   "--url", regular_sim.url, "--duration", "1.5", env=env)
    assert recorded.returncode == 0, recorded.stderr
    from kiwoom_rt.frames import iter_events

    trades = [e for e in iter_events(out) if e.type == "0B"]
    assert trades
    csv_out = tmp_path / "trades.csv"
    result = run("export", str(out), str(csv_out), "--type", "0B")
    assert result.returncode == 0, result.stderr
    assert f"{len(trades)} 0B rows" in result.stderr
    import pandas

    table = pandas.read_csv(csv_out)
    assert list(table["price"]) == [t.price for t in trades]
    assert list(table["volume"]) == [t.volume for t in trades]
    parquet_out = tmp_path / "books.parquet"
    result = run("export", str(out), str(parquet_out), "--type", "0D")
    assert result.returncode == 0, result.stderr
    books = pandas.read_parquet(parquet_out)
    assert len(books) == sum(1 for e in iter_events(out) if e.type == "0D")
    assert (books["ask_total"] == books[[f"ask_quantity_{i}" for i in range(1, 11)]].sum(axis=1)).all()
    wrong = run("export", str(out), str(tmp_path / "x.xlsx"), "--type", "0B")
    assert_one_line_error(wrong, ".parquet or .csv")


def test_condition_commands_on_the_built_in_simulator() -> None:
    listed = run("conditions", "--sim")
    assert listed.returncode == 0, listed.stderr
    assert "골든크로스" in listed.stdout
    searched = run("search", "4", "--sim")
    assert searched.returncode == 0, searched.stderr
    rows = [line for line in searched.stdout.splitlines()[1:] if line.strip()]
    assert rows
    assert all(line[:6].isdigit() for line in rows)  # codes without the A prefix
    assert f"{len(rows)} stocks in condition 4" in searched.stderr
    board = run("watch", "--condition", "4", "--sim", "--duration", "1")
    assert board.returncode == 0, board.stderr
    assert board.stdout.startswith("condition 4 골든크로스:")
    unknown = run("watch", "--condition", "9", "--sim", "--duration", "1")
    assert_one_line_error(unknown, "no condition '9'")


def test_watch_condition_prints_entries_and_exits(live_sim: SimServer) -> None:
    env = {"KIWOOM_TOKEN": DEFAULT_TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "kiwoom_rt", "watch", "--condition", "4", "--url", live_sim.url,
                                "--duration", "20"], cwd=ROOT, env={**BASE_ENV, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        header = process.stdout.readline()
        assert header.startswith("condition 4 ")
        member = header.split(": ")[-1].split()[0]
        live_sim.condition_hit("4", "999990", True)
        live_sim.condition_hit("4", member, False)
        first, second = process.stdout.readline(), process.stdout.readline()
        assert "+ 999990" in first
        assert "entered condition 4" in first
        assert f"- {member}" in second
        assert "left condition 4" in second
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_watch_prints_lines_and_json(live_sim: SimServer) -> None:
    env = {"KIWOOM_TOKEN": DEFAULT_TOKEN}
    text = run("watch", "005930", "000660_NX", "--url", live_sim.url, "--duration", "1.5", env=env)
    assert text.returncode == 0, text.stderr
    assert any("000660 NXT" in line for line in text.stdout.splitlines())
    as_json = run("watch", "005930", "--url", live_sim.url, "--duration", "1.5", "--json", env=env)
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert records
    assert {r["type"] for r in records} == {"0E"}
    assert all(isinstance(r["ask_total"], int) for r in records)


def test_watch_other_types_with_appkey_credentials(live_sim: SimServer) -> None:
    env = {"KIWOOM_APPKEY": DEFAULT_APPKEY, "KIWOOM_SECRETKEY": DEFAULT_SECRETKEY}
    result = run("watch", "005930", "--type", "0J", "--url", live_sim.url, "--duration", "1.5", "--json", env=env)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records
    assert records[0]["type"] == "0J"
    assert records[0]["values"]["10"] == "-1762.61"
    assert records[0]["price"] == 1762.61  # typed fields beside the raw values


def test_record_then_replay_reproduces_the_same_events(live_sim: SimServer, tmp_path: Path) -> None:
    out = tmp_path / "session.jsonl.gz"
    env = {"KIWOOM_TOKEN": DEFAULT_TOKEN}
    recorded = run("record", str(out), "005930", "000660", "--url", live_sim.url, "--duration", "1.5", env=env)
    assert recorded.returncode == 0, recorded.stderr
    frames = list(read_recording(out))
    assert any(b'"REAL"' in frame for _, frame in frames)
    replayed = run("replay", str(out), "--max", "--json")
    assert replayed.returncode == 0, replayed.stderr
    events = [json.loads(line) for line in replayed.stdout.splitlines()]
    expected = []
    for received_at, frame in frames:
        message = json.loads(frame)
        if message.get("trnm") == "REAL":
            expected += [(e["item"], e["values"]["131"], received_at) for e in message["data"]]
    assert [(e["item"], e["values"]["131"], e["received_at"]) for e in events] == expected


def test_in_process_record_and_replay_round_trip(live_sim: SimServer, tmp_path: Path) -> None:
    from kiwoom_rt import RealtimeSession
    from kiwoom_rt.recording import Recorder

    from .helpers import Collector

    path = tmp_path / "r.jsonl"
    live, replayed = Collector(), Collector()
    with Recorder(path) as recorder:
        session = RealtimeSession(DEFAULT_TOKEN, url=live_sim.url, frame_hook=recorder)
        session.on_real.connect(live)
        session.start()
        session.subscribe(["005930", "000660"], ["0E", "0B"]).wait(5)
        live.wait_for(40)
        session.close()
    replay = ReplaySession(path, speed=None)
    replay.on_real.connect(replayed)
    with replay:
        assert replay.wait(10)
    replay.close()
    key = [(e.type, e.item, dict(e.values), e.received_at) for e in live.events]
    assert [(e.type, e.item, dict(e.values), e.received_at) for e in replayed.events] == key


def test_replay_keeps_recorded_timing(tmp_path: Path) -> None:
    path = tmp_path / "timed.jsonl"
    lines = ['{"kiwoom_rt_recording": 1}'] + [json.dumps({"t": 1000.0 + i * 0.2, "frame": QUOTE}) for i in range(6)]
    path.write_text("\n".join(lines) + "\n")
    import time

    replay = ReplaySession(path, speed=1.0)
    started = time.monotonic()
    replay.start()
    assert replay.wait(10)
    replay.close()
    assert 0.9 < time.monotonic() - started < 3.0  # 1 s of recorded time


def test_token_issue_and_revoke(live_sim: SimServer) -> None:
    env = {"KIWOOM_APPKEY": DEFAULT_APPKEY, "KIWOOM_SECRETKEY": DEFAULT_SECRETKEY}
    issued = run("token", "issue", "--base-url", live_sim.rest_url, "--json", env=env)
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)["token"]
    revoked = run("token", "revoke", token, "--base-url", live_sim.rest_url, env=env)
    assert revoked.returncode == 0, revoked.stderr
    refused = run("watch", "005930", "--url", live_sim.url, "--duration", "1", env={"KIWOOM_TOKEN": token})
    assert_one_line_error(refused, "login refused", "805004")


@pytest.mark.parametrize(("args", "needle"), [
    (["watch", "005930", "--type", "ZZ", "--mock"], "unknown realtime type 'ZZ'"),
    (["watch", "00 5930", "--mock"], "malformed item code"),
    (["watch", "005930", "--mock"], "missing credentials"),
    (["watch", "005930"], "--mock, --prod, --url URL or --sim"),
    (["replay", "/nonexistent/recording.jsonl"], "cannot read"),
    (["token", "issue", "--mock"], "missing credentials"),
    (["frobnicate"], "invalid choice"),
])
def test_wrong_input_gives_one_clear_line(args: list[str], needle: str) -> None:
    assert_one_line_error(run(*args), needle)


def test_unreachable_server_gives_one_clear_line() -> None:
    result = run("watch", "005930", "--url", "ws://127.0.0.1:9/api/dostk/websocket", env={"KIWOOM_TOKEN": "x" * 20})
    assert_one_line_error(result, "cannot connect")


def test_unreadable_recording_gives_one_clear_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jsonl.gz"
    junk.write_bytes(b"this is not gzip")
    assert_one_line_error(run("replay", str(junk)), "not a kiwoom-rt recording")
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"kiwoom_rt_recording": 1}\n{"t": "x"}\n')
    assert_one_line_error(run("replay", str(plain)), "line 2")


@pytest.mark.parametrize("command", ["demo", "watch", "record", "sim"])
def test_ctrl_c_exits_cleanly(command: str, live_sim: SimServer, tmp_path: Path) -> None:
    args = {
        "demo": ["demo"],
        "watch": ["watch", "005930", "--url", live_sim.url],
        "record": ["record", str(tmp_path / "r.jsonl"), "005930", "--url", live_sim.url],
        "sim": ["sim", "--port", "0"],
    }[command]
    proc = subprocess.Popen([sys.executable, "-m", "kiwoom_rt", *args], cwd=ROOT,
                            env={**BASE_ENV, "KIWOOM_TOKEN": DEFAULT_TOKEN},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if command == "record":
            assert proc.stderr is not None
            assert "recording" in proc.stderr.readline()
        else:
            assert proc.stdout.readline()  # running
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_replay_waits_instead_of_dropping_when_receivers_are_slow(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    lines = ['{"kiwoom_rt_recording": 1}'] + [json.dumps({"t": 1000.0 + i, "frame": QUOTE}) for i in range(3000)]
    path.write_text("\n".join(lines) + "\n")
    count = [0]
    replay = ReplaySession(path, speed=None, queue_size=50)

    def slow(item: str, event: object) -> None:
        count[0] += 1
        if count[0] % 100 == 0:
            threading.Event().wait(0.001)

    replay.on_0e.connect(slow)
    replay.start()
    assert replay.wait(30)
    replay.close()
    assert count[0] == 3000
    assert replay.stats()["dropped"] == 0


def test_replayed_notices_come_after_the_events_recorded_before_them(tmp_path: Path) -> None:
    path = tmp_path / "system.jsonl"
    system = json.dumps({"trnm": "SYSTEM", "code": "R10001", "message": "kicked"})
    frames = [QUOTE, QUOTE, system, QUOTE]
    lines = ['{"kiwoom_rt_recording": 1}'] + [json.dumps({"t": 1000.0, "frame": f}) for f in frames]
    path.write_text("\n".join(lines) + "\n")
    seen: list[str] = []
    replay = ReplaySession(path, speed=None)
    replay.on_0e.connect(lambda item, event: seen.append("0E"))
    replay.on_system.connect(lambda session, code, message: seen.append(code))
    replay.start()
    assert replay.wait(10)
    replay.close()
    assert seen == ["0E", "0E", "R10001", "0E"]


def test_health_on_the_simulator_marks_the_silenced_item_stale() -> None:
    result = run("health", "005930", "000660", "--sim", "--silence", "000660", "--stale-after", "1",
                 "--every", "0.5", "--duration", "4", "--no-board")
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().split("\n\n")[-1].splitlines()  # the last table printed
    rows = {line.split()[0]: line for line in last if line[:6].isdigit()}
    assert rows["000660"].endswith("STALE")
    assert rows["000660"].split()[2] == "yes"
    assert rows["005930"].endswith("ok")
    header = result.stdout.splitlines()[1]
    assert "KRX post single" in header
    assert "state connected" in header


def test_health_reads_through_a_relay(live_sim: SimServer, redis_server: Any) -> None:
    pytest.importorskip("redis")
    from kiwoom_rt.relay import Relay

    with Relay.for_url(redis_server.url, DEFAULT_TOKEN, url=live_sim.url, heartbeat=0.2):
        result = run("health", "005930", "--relay", redis_server.url, "--every", "0.5", "--duration", "3",
                     "--no-board")
    assert result.returncode == 0, result.stderr
    assert "relay redis://" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("005930")]
    assert rows
    assert rows[-1].split()[2] == "yes"


def test_metrics_port_serves_prometheus_text_while_watching(live_sim: SimServer) -> None:
    pytest.importorskip("prometheus_client")
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from .helpers import free_port, wait_until

    port = free_port()
    env = {**BASE_ENV, "KIWOOM_TOKEN": DEFAULT_TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "kiwoom_rt", "watch", "005930", "--url", live_sim.url,
                                "--duration", "30", "--metrics-port", str(port), "--metrics-name", "desk"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def scraped() -> dict[str, float]:
        try:
            with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return {}
        assert DEFAULT_TOKEN not in text
        return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.labels.get("session") == "desk" and s.labels.get("type") in (None, "0E")}

    try:
        wait_until(lambda: scraped().get("kiwoom_rt_events_total", 0) > 3, timeout=15)
        assert scraped()["kiwoom_rt_connected"] == 1.0
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert f"metrics at http://127.0.0.1:{port}/metrics" in stderr
