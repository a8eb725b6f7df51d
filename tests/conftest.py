"""Shared fixtures: the simulator on an ephemeral loopback port, and leak checks."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# A test run started in the background (a shell without job control) inherits SIGINT ignored, and
# so would every command line the tests start: the Ctrl-C tests need it delivered to them.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# websocket-client >= 1.9 applies proxy variables to loopback too; keep tests off any proxy.
for _name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(_name, None)
os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost,::1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # real Qt, no screen needed


@pytest.fixture
def sim() -> Iterator[SimServer]:  # noqa: F821
    from kiwoom_rt.sim import SimServer

    with SimServer(ping_interval=10.0) as server:
        yield server


@pytest.fixture
def no_thread_leak() -> Iterator[None]:
    """Fail the test if it leaves a thread behind."""
    before = set(threading.enumerate())
    yield
    pause = threading.Event()
    for _ in range(50):
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra:
            return
        pause.wait(0.1)
    raise AssertionError(f"threads left running: {extra}")


@pytest.fixture(scope="session")
def x_display() -> Iterator[str]:
    """A virtual X screen (Xvfb) for real Tk; started here, stopped at the end of the run."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        if os.environ.get("CI"):
            pytest.fail("Xvfb is not installed (CI must install Debian's xvfb)")
        pytest.skip("Xvfb is not installed: apt-get install xvfb to run the Tk tests")
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write_end), "-screen", "0", "1280x1024x24",
                             "-nolisten", "tcp"], pass_fds=(write_end,), stderr=subprocess.DEVNULL)
    os.close(write_end)
    number = b""
    while not number.endswith(b"\n"):
        chunk = os.read(read_end, 16)
        if not chunk:
            break
        number += chunk
    os.close(read_end)
    if not number.strip():
        proc.kill()
        pytest.fail("Xvfb did not start")
    previous = os.environ.get("DISPLAY")
    display = f":{number.decode().strip()}"
    os.environ["DISPLAY"] = display
    yield display
    proc.terminate()
    proc.wait(10)
    if previous is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = previous


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: Any) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_sim(self_signed: tuple[Path, Path]) -> Iterator[SimServer]:  # noqa: F821
    from kiwoom_rt.sim import SimServer

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(*self_signed)
    with SimServer(ssl_context=server_context) as sim:
        yield sim


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Any]:
    """A real redis-server on a free port in a temporary folder, stopped afterwards."""
    from .helpers import RedisServer

    server = RedisServer(tmp_path)
    yield server
    server.stop()
