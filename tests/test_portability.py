"""Windows portability: the library runs without the POSIX-only names of ``socket``, ``os`` and
``signal``, and its source never refers to them. (Most users run Windows; CI runs Linux.)"""

from __future__ import annotations

import os
import re
import signal
import socket
from pathlib import Path

import pytest

from kiwoom_rt import RealtimeSession, ReconnectPolicy
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

from .helpers import Collector, wait_until

#: Names that exist on Linux but not on Windows (a sample of what a library might reach for).
POSIX_ONLY = {
    socket: ["MSG_DONTWAIT", "MSG_NOSIGNAL", "SO_REUSEPORT", "AF_UNIX", "TCP_KEEPIDLE", "SOCK_NONBLOCK"],
    os: ["fork", "getuid", "setsid", "killpg", "O_NONBLOCK", "set_blocking"],
    signal: ["SIGPIPE", "SIGHUP", "SIGKILL", "alarm", "setitimer", "pthread_kill"],
}
LIBRARY = Path(__file__).resolve().parent.parent / "kiwoom_rt"
#: The same names however they are reached (``getattr(socket, "MSG_DONTWAIT")`` included), and the
#: POSIX-only modules.
BARE = re.compile(r"\bMSG_DONTWAIT\b|\bO_NONBLOCK\b|\bimport (?:fcntl|termios|resource|pwd|grp)\b"
                  r"|\bfrom (?:fcntl|termios|resource|pwd|grp) import\b")


def test_start_abort_reconnect_and_close_work_without_posix_only_names(
        monkeypatch: pytest.MonkeyPatch, sim: SimServer, no_thread_leak: None) -> None:
    for module, names in POSIX_ONLY.items():
        for name in names:
            monkeypatch.delattr(module, name, raising=False)
    assert not hasattr(socket, "MSG_DONTWAIT")
    session = RealtimeSession(DEFAULT_TOKEN, url=sim.url,
                              reconnect=ReconnectPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.1))
    disconnected, errors = Collector(), Collector()
    session.on_disconnected.connect(disconnected)
    session.on_error.connect(errors)
    try:
        session.start()
        session.subscribe(["005930"]).wait(5)
        sim.drop_all()  # abrupt loss: the abort and reconnect paths
        disconnected.wait_for(1)
        wait_until(lambda: session.connected and sim.logged_in_count == 1, timeout=5)
        session.subscribe(["000660"]).wait(5)  # registrations work on the new connection
    finally:
        session.close()  # the close path, with its close frame
    assert session.state == "closed"
    wait_until(lambda: sim.connection_count == 0)
    assert errors.calls == []


def test_library_and_cli_source_use_no_posix_only_names() -> None:
    pattern = re.compile(r"\b(?:socket|os|signal)\.(" + "|".join(
        name for names in POSIX_ONLY.values() for name in names) + r")\b")
    found = [f"{path.relative_to(LIBRARY.parent)}:{number}: {line.strip()}"
             for path in LIBRARY.rglob("*.py")
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if pattern.search(line) or BARE.search(line)]
    assert found == []
