"""The simulator, driven by websocket-client's low-level API over real loopback sockets."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import websocket

from kiwoom_rt.sim import DEFAULT_APPKEY, DEFAULT_SECRETKEY, DEFAULT_TOKEN, SimClock, SimServer
from kiwoom_rt.sim.market import AfterHoursMarket, in_after_hours, session_notices

NO_PROXY = ["127.0.0.1", "localhost"]


class Client:
    """A thin test client: one websocket-client WebSocket with JSON helpers."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout, http_no_proxy=NO_PROXY)

    def send(self, obj: Any) -> None:
        self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    def recv(self) -> Any:
        return json.loads(self.ws.recv())

    def recv_until(self, trnm: str, *, answer_pings: bool = True) -> dict[str, Any]:
        while True:
            frame = self.recv()
            if frame.get("trnm") == "PING" and answer_pings and trnm != "PING":
                self.send(frame)
                continue
            if frame.get("trnm") == trnm:
                return frame  # type: ignore[no-any-return]

    def login(self, token: str = DEFAULT_TOKEN) -> dict[str, Any]:
        self.send({"trnm": "LOGIN", "token": token})
        return self.recv_until("LOGIN")

    def reg(self, items: list[str], types: list[str], grp_no: str = "1", refresh: str = "1") -> dict[str, Any]:
        self.send({"trnm": "REG", "grp_no": grp_no, "refresh": refresh,
                   "data": [{"item": items, "type": types}]})
        return self.recv_until("REG")

    def close(self) -> None:
        self.ws.close(timeout=0.5)

    def expect_closed(self) -> None:
        """Read until the server's close frame or the end of the TCP connection."""
        while True:
            try:
                opcode, _ = self.ws.recv_data_frame(True)
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                return
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return


@pytest.fixture
def client(sim: SimServer) -> Iterator[Client]:
    c = Client(sim.url)
    yield c
    c.close()


def test_login_with_valid_token(sim: SimServer, client: Client) -> None:
    reply = client.login()
    assert reply["return_code"] == 0
    assert sim.wait_until(lambda: sim.logins == 1)


def test_login_refused_then_r10004_then_close(sim: SimServer, client: Client) -> None:
    reply = client.login("wrong")
    assert reply["return_code"] == 805004
    assert "8005" in reply["return_msg"]
    notice = client.recv()
    assert notice == {"trnm": "SYSTEM", "code": "R10004", "message": notice["message"]}
    client.expect_closed()


def test_refuse_next_logins_control(sim: SimServer) -> None:
    sim.refuse_next_logins(1)
    first, second = Client(sim.url), Client(sim.url)
    try:
        assert first.login()["return_code"] == 805004
        assert second.login()["return_code"] == 0
        assert sim.login_attempts == 2
    finally:
        first.close()
        second.close()


def test_ping_every_interval_and_r10002_after_missed_pings() -> None:
    with SimServer(ping_interval=0.1, max_missed_pings=2) as sim:
        client = Client(sim.url)
        try:
            client.login()
            assert client.recv() == {"trnm": "PING"}
            assert client.recv() == {"trnm": "PING"}
            notice = client.recv()
            assert (notice["trnm"], notice["code"]) == ("SYSTEM", "R10002")
            client.expect_closed()
        finally:
            client.close()


def test_answered_pings_keep_the_connection() -> None:
    with SimServer(ping_interval=0.05, max_missed_pings=1) as sim:
        client = Client(sim.url)
        try:
            client.login()
            for _ in range(6):
                ping = client.recv_until("PING")
                client.send(ping)
            assert sim.wait_until(lambda: sim.pings_echoed() >= 6)
            assert sim.connection_count == 1
        finally:
            client.close()


def test_reg_and_remove_with_acks_and_groups(sim: SimServer, client: Client) -> None:
    client.login()
    assert client.reg(["005930", "000660"], ["0E"])["return_code"] == 0
    assert client.reg(["035720"], ["0B"], grp_no="2")["return_code"] == 0
    client.send({"trnm": "REMOVE", "grp_no": "1", "data": [{"item": ["000660"], "type": ["0E"]}]})
    assert client.recv_until("REMOVE")["return_code"] == 0
    assert sim.registrations() == {"1": {("005930", "0E")}, "2": {("035720", "0B")}}


def test_refresh_zero_replaces_the_group(sim: SimServer, client: Client) -> None:
    client.login()
    client.reg(["005930"], ["0E"])
    client.reg(["000660"], ["0E"], refresh="0")
    assert sim.registrations() == {"1": {("000660", "0E")}}


def test_reg_refusals(sim: SimServer, client: Client) -> None:
    client.login()
    assert client.reg(["005930"], ["ZZ"])["return_code"] == 1
    assert client.reg([str(i) for i in range(101)], ["0E"])["return_code"] == 1


def test_reg_before_login_is_refused_with_r10004(sim: SimServer, client: Client) -> None:
    client.send({"trnm": "REG", "grp_no": "1", "refresh": "1", "data": [{"item": ["1"], "type": ["0E"]}]})
    assert client.recv()["code"] == "R10004"


def test_second_login_with_same_appkey_kicks_the_older(sim: SimServer) -> None:
    older, newer = Client(sim.url), Client(sim.url)
    try:
        older.login()
        newer.login()
        notice = older.recv_until("SYSTEM")
        assert notice["code"] == "R10001"
        older.expect_closed()
        assert newer.reg(["005930"], ["0E"])["return_code"] == 0
    finally:
        older.close()
        newer.close()


def test_market_pushes_changes_equal_to_differences() -> None:
    with SimServer(rate=200, batch=3, clock=SimClock(dt.time(16, 30), speed=0)) as sim:
        client = Client(sim.url)
        try:
            client.login()
            client.reg(["005930", "000660_NX"], ["0E"])
            previous: dict[str, tuple[int, int]] = {}
            checked = 0
            while checked < 60:
                frame = client.recv_until("REAL")
                assert 1 <= len(frame["data"]) <= 3
                for entry in frame["data"]:
                    values = entry["values"]
                    ask, bid = int(values["131"]), int(values["135"])
                    assert values["21"] == "163000"
                    if entry["item"] in previous:
                        last_ask, last_bid = previous[entry["item"]]
                        assert int(values["132"]) == ask - last_ask
                        assert int(values["136"]) == bid - last_bid
                        checked += 1
                    previous[entry["item"]] = (ask, bid)
        finally:
            client.close()


def test_market_is_deterministic_per_seed() -> None:
    first, second, other = AfterHoursMarket(7), AfterHoursMarket(7), AfterHoursMarket(8)
    moments = [dt.time(16, 0, s) for s in range(20)]
    a = [first.quote("005930", m) for m in moments]
    assert a == [second.quote("005930", m) for m in moments]
    assert a != [other.quote("005930", m) for m in moments]


def test_no_0e_outside_after_hours() -> None:
    with SimServer(rate=500, clock=SimClock(dt.time(11, 0), speed=0)) as sim:
        client = Client(sim.url, timeout=0.5)
        try:
            client.login()
            client.reg(["005930"], ["0E"])
            with pytest.raises(websocket.WebSocketTimeoutException):
                client.recv_until("REAL")
        finally:
            client.close()


@pytest.mark.parametrize(("moment", "expected"), [
    (dt.time(8, 29, 59), False), (dt.time(8, 30), True), (dt.time(8, 40), False),
    (dt.time(15, 39, 59), False), (dt.time(15, 40), True), (dt.time(17, 59, 59), True),
    (dt.time(18, 0), False)])
def test_after_hours_windows(moment: dt.time, expected: bool) -> None:
    assert in_after_hours(moment) is expected


def test_session_notices_at_boundaries() -> None:
    day = dt.datetime(2026, 11, 23, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    notices = list(session_notices(day.replace(hour=15, minute=39), day.replace(hour=18, minute=1)))
    assert [code for _, code in notices] == ["a", "b", "c", "d", "9"]


def test_accelerated_clock_sends_0s_notices() -> None:
    clock = SimClock(dt.time(15, 39, 59), speed=0)
    with SimServer(rate=0, clock=clock) as sim:
        client = Client(sim.url)
        try:
            client.login()
            client.reg([""], ["0s"])
            clock.speed = 600  # from 15:39:59 on: 15:40 in 2 ms, 16:00 in 2 s
            clock.set(dt.time(15, 39, 59))
            codes = []
            while len(codes) < 3:
                frame = client.recv_until("REAL")
                codes += [e["values"]["215"] for e in frame["data"]]
            assert codes == ["a", "b", "c"]
        finally:
            client.close()


def test_other_types_push_published_shapes(sim: SimServer) -> None:
    sim.set_rate(100)
    client = Client(sim.url)
    try:
        client.login()
        client.reg(["005930"], ["0J"])
        entry = client.recv_until("REAL")["data"][0]
        assert entry["type"] == "0J"
        assert entry["values"]["10"] == "-1762.61"
    finally:
        client.close()


def test_push_raw_text_binary_and_system(sim: SimServer, client: Client) -> None:
    client.login()
    assert sim.push("not json") == 1
    assert client.ws.recv() == "not json"
    sim.push(b"\x00\x01")
    opcode, data = client.ws.recv_data()
    assert (opcode, data) == (websocket.ABNF.OPCODE_BINARY, b"\x00\x01")
    sim.send_system("R10002", "bye")
    assert client.recv() == {"trnm": "SYSTEM", "code": "R10002", "message": "bye"}


def test_drop_all_ends_tcp_without_close_frame(sim: SimServer, client: Client) -> None:
    client.login()
    assert sim.drop_all() == 1
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        client.ws.recv_data_frame(True)  # a close frame would be returned, not raised
    assert sim.wait_until(lambda: sim.connection_count == 0)


def test_close_all_sends_close_code(sim: SimServer, client: Client) -> None:
    client.login()
    sim.close_all(4001, "maintenance")
    opcode, frame = client.ws.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 4001


def test_go_silent_keeps_tcp_open_and_sends_nothing() -> None:
    with SimServer(ping_interval=0.05) as sim:
        client = Client(sim.url, timeout=0.4)
        try:
            client.login()
            assert sim.go_silent() == 1
            client.send({"trnm": "REG", "grp_no": "1", "refresh": "1", "data": [{"item": ["1"], "type": ["0E"]}]})
            with pytest.raises(websocket.WebSocketTimeoutException):
                client.recv_until("REG", answer_pings=False)
            assert sim.connection_count == 1
            fresh = Client(sim.url)
            assert fresh.login()["return_code"] == 0
            fresh.close()
        finally:
            client.close()


def test_records_every_frame_received_per_connection(sim: SimServer) -> None:
    first, second = Client(sim.url), Client(sim.url)
    try:
        sim.add_token("other", appkey="other-app")
        first.login()
        second.login("other")
        second.send("hello")
        assert sim.wait_until(lambda: len(sim.frames_received(1)) == 2)
        assert sim.frames_received(0) == ['{"trnm": "LOGIN", "token": "sim-token"}']
        assert sim.frames_received(1)[1] == "hello"
        assert sim.connections_total == 2
        assert sim.connection_count == 2
    finally:
        first.close()
        second.close()


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json;charset=UTF-8"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_token_endpoints_issue_and_revoke() -> None:
    with SimServer(token_expiry=3600) as sim:
        issued = _post(sim.rest_url + "/oauth2/token", {
            "grant_type": "client_credentials", "appkey": DEFAULT_APPKEY, "secretkey": DEFAULT_SECRETKEY})
        assert issued["return_code"] == 0
        assert issued["token_type"] == "bearer"
        expires = dt.datetime.strptime(issued["expires_dt"], "%Y%m%d%H%M%S")
        now_kst = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).replace(tzinfo=None)
        assert 3500 < (expires - now_kst).total_seconds() <= 3601
        again = _post(sim.rest_url + "/oauth2/token", {
            "grant_type": "client_credentials", "appkey": DEFAULT_APPKEY, "secretkey": DEFAULT_SECRETKEY})
        assert again["token"] == issued["token"]
        client = Client(sim.url)
        assert client.login(issued["token"])["return_code"] == 0
        client.close()
        revoked = _post(sim.rest_url + "/oauth2/revoke", {
            "appkey": DEFAULT_APPKEY, "secretkey": DEFAULT_SECRETKEY, "token": issued["token"]})
        assert revoked["return_code"] == 0
        client = Client(sim.url)
        assert client.login(issued["token"])["return_code"] == 805004
        client.close()


def test_token_endpoint_refuses_bad_credentials(sim: SimServer) -> None:
    reply = _post(sim.rest_url + "/oauth2/token", {
        "grant_type": "client_credentials", "appkey": DEFAULT_APPKEY, "secretkey": "nope"})
    assert reply["return_code"] != 0
    assert "token" not in reply


def test_expired_token_is_refused() -> None:
    with SimServer(token_expiry=0.05) as sim:
        token = _post(sim.rest_url + "/oauth2/token", {
            "grant_type": "client_credentials", "appkey": DEFAULT_APPKEY, "secretkey": DEFAULT_SECRETKEY})["token"]
        assert sim.wait_until(lambda: False, timeout=0.1) is False
        client = Client(sim.url)
        assert client.login(token)["return_code"] == 805004
        client.close()


def test_command_line_serves_until_interrupted() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "kiwoom_rt.sim", "--port", str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert f":{port}/" in proc.stdout.readline()
        client = Client(f"ws://127.0.0.1:{port}/api/dostk/websocket")
        assert client.login()["return_code"] == 0
        client.close()
        proc.send_signal(2)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stop_leaves_no_thread() -> None:
    import threading

    before = threading.active_count()
    sim = SimServer().start()
    client = Client(sim.url)
    client.login()
    sim.stop()
    client.close()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    assert threading.active_count() == before


def test_condition_search_conventions_for_an_independent_client(sim: SimServer, client: Client) -> None:
    client.login()
    client.send({"trnm": "CNSRREQ", "seq": "4", "search_type": "1", "stex_tp": "K"})
    refused = client.recv_until("CNSRREQ")  # a realtime search before the list: refused
    assert refused["return_code"] != 0
    client.send({"trnm": "CNSRLST"})
    listed = client.recv_until("CNSRLST")
    assert ["4", "골든크로스"] in listed["data"]
    client.send({"trnm": "CNSRREQ", "seq": "4", "search_type": "1", "stex_tp": "K"})
    members = client.recv_until("CNSRREQ")
    assert members["return_code"] == 0
    assert members["seq"] == "4  "  # padded as Kiwoom pads it
    assert all(row["jmcode"].startswith("A") and len(row["jmcode"]) == 7 for row in members["data"])
    client.send({"trnm": "CNSRREQ", "seq": "99", "search_type": "0", "stex_tp": "K", "cont_yn": "N",
                 "next_key": ""})
    assert client.recv_until("CNSRREQ")["return_code"] != 0  # an unknown seq
    assert sim.condition_hit("4", "999990", True)
    hit = client.recv_until("REAL")["data"][0]
    assert (hit["type"], hit["values"]["841"], hit["values"]["843"], hit["item"]) == ("02", "4", "I", "999990")


def test_one_item_can_be_silenced_while_the_others_flow(no_thread_leak: None) -> None:
    """The "connected but silent" subscription, on demand: the connection and the other items go on."""
    import threading

    from kiwoom_rt import RealtimeSession

    from .helpers import wait_until

    seen: list[str] = []
    lock = threading.Lock()

    def on_quote(item: str, event: Any) -> None:
        with lock:
            seen.append(item)

    def count(item: str, since: int) -> int:
        with lock:
            return seen[since:].count(item)

    with SimServer(rate=200, ping_interval=10.0, condition_churn=0.0) as server, \
            RealtimeSession(DEFAULT_TOKEN, url=server.url) as session:
        session.on_0e.connect(on_quote)
        session.subscribe(["005930", "000660"]).wait(5)
        wait_until(lambda: count("005930", 0) > 5 and count("000660", 0) > 5)
        server.silence_item("005930")
        with lock:
            silenced_at = len(seen)
        wait_until(lambda: count("000660", silenced_at) > 10)  # frames in flight at the control have landed
        with lock:
            mark = len(seen)
        wait_until(lambda: count("000660", mark) > 20)
        assert count("005930", mark) == 0
        assert session.state == "connected"
        server.resume_item("005930")
        wait_until(lambda: count("005930", mark) > 5)
