"""The examples run as a newcomer would run them: as scripts, against the built-in simulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONUNBUFFERED="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")


def test_print_0e_prints_decoded_events_and_stops_by_itself() -> None:
    result = subprocess.run([sys.executable, "examples/print_0e.py", "--duration", "1.5", "--rate", "40"],
                            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "ask" in line and "bid" in line]
    assert len(lines) >= 10
    assert "Traceback" not in result.stderr


def test_print_0e_stops_cleanly_on_ctrl_c() -> None:
    proc = subprocess.Popen([sys.executable, "examples/print_0e.py", "--rate", "40"], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "ask" in proc.stdout.readline()  # running and printing
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_print_0e_without_token_for_mock_says_so() -> None:
    env = {k: v for k, v in ENV.items() if k != "KIWOOM_TOKEN"}
    result = subprocess.run([sys.executable, "examples/print_0e.py", "--mock"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "KIWOOM_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_condition_alerts_follows_entries_with_trades() -> None:
    result = subprocess.run([sys.executable, "examples/condition_alerts.py", "--duration", "4", "--churn", "20",
                             "--rate", "60"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    entered = [(i, line.split()[2]) for i, line in enumerate(lines) if "entered condition 4" in line]
    assert entered, result.stdout
    # some stock that entered is followed: its trades appear after its entry
    assert any(any(line.split()[1:2] == [code] for line in lines[i + 1:]) for i, code in entered), result.stdout
    assert "Traceback" not in result.stderr
