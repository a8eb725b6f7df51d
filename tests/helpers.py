"""Test helpers: collecting receivers and waiting on conditions with timeouts."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest


class Collector:
    """A receiver that records calls and lets a test wait for a count."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []
        self.threads: list[threading.Thread] = []
        self._cond = threading.Condition()

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        with self._cond:
            self.calls.append((sender, kwargs))
            self.threads.append(threading.current_thread())
            self._cond.notify_all()

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[tuple[Any, dict[str, Any]]]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.calls) >= count, timeout):
                raise AssertionError(f"expected {count} calls within {timeout} s, got {len(self.calls)}")
            return list(self.calls)

    @property
    def events(self) -> list[Any]:
        with self._cond:
            return [kwargs.get("event") for _, kwargs in self.calls]

    def kwargs(self, key: str) -> list[Any]:
        with self._cond:
            return [kwargs.get(key) for _, kwargs in self.calls]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, message: str = "") -> None:
    """Poll ``predicate`` (every 5 ms) until true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        pause.wait(0.005)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def find_program(name: str, package: str) -> str:
    """The path of a Debian program a test needs; fails under CI, skips elsewhere, if missing."""
    for folder in ("", "/usr/sbin/", "/usr/bin/"):
        found = shutil.which(folder + name) if folder else shutil.which(name)
        if found:
            return found
    import os
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed (CI must install Debian's {package})")
    pytest.skip(f"{name} is not installed: apt-get install {package} to run this test")


class ServerProcess:
    """A server program started on ``port`` (127.0.0.1) and stopped by ``stop()``."""

    def __init__(self, argv: Sequence[str], port: int, *, log: Path, timeout: float = 10.0) -> None:
        self.argv, self.port, self.log_path = list(argv), port, log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: port_open(port) or self.proc.poll() is not None, timeout)
            if self.proc.poll() is not None:
                raise AssertionError(f"{argv[0]} exited: {log.read_text(errors='replace')[-2000:]}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


class RedisServer:
    """A real redis-server on a free loopback port in ``folder``; ``stop()``/``start()`` restart it
    on the same port (with ``appendonly=True`` its data survives, as a production Redis's does)."""

    def __init__(self, folder: Path, *, password: str | None = None, appendonly: bool = False,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.folder, self.password, self.appendonly, self.tls = folder, password, appendonly, tls
        self.binary = find_program("redis-server", "redis-server")
        self.port = free_port()
        self.proc: ServerProcess | None = None
        self.start()

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        auth = f":{self.password}@" if self.password else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [self.binary, "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", "",
                "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always",
                "--protected-mode", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        if self.tls:
            cert, key = self.tls
            argv += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                     "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
        else:
            argv += ["--port", str(self.port)]
        self.proc = ServerProcess(argv, self.port, log=self.folder / "redis.log")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


# --- events built outside the decoder: the decoder's wrapping, and the careful full typing -----------

def decoded(cls: Any, item: str, values: dict[str, Any], received_at: float,
            report: Callable[[Exception], None] | None = None) -> Any:
    """A ``cls`` event as the decoder makes it (typed lazily): it holds the values, and each
    headline field is parsed the first time it is read (``report`` gets its DecodeError)."""
    from types import MappingProxyType

    event = object.__new__(cls)
    vars(event).update({"item": item, "values": MappingProxyType(values), "received_at": received_at,
                        "_report": report})
    return event


def careful_build(cls: Any, item: str, values: dict[str, Any], received_at: float,
                  exchange: str | None = None) -> Any:
    """``cls`` typed in full at once by the same strict rules (the oracle for the lazy path): the
    event, or ``(event, problem text)`` when a value was unusable."""
    from types import MappingProxyType

    from kiwoom_rt.events import careful_values, item_parts

    parsed, problems = careful_values(cls, values)
    code, split_exchange = item_parts(cls, item)
    exchange = exchange if split_exchange is None else split_exchange
    event = cls(item, code, exchange, MappingProxyType(values), received_at, *parsed)
    if problems:
        return event, f"{cls.type} entry has unusable values: " + "; ".join(problems)
    return event
