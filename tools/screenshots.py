"""Render a screenshot of each example board into docs/, with no screen needed.

    python tools/screenshots.py

Qt renders offscreen (QT_QPA_PLATFORM=offscreen); Tk needs an X server, so when DISPLAY is unset
this starts Xvfb (Debian's xvfb) for the run. Both boards are fed by the built-in simulator.
Needs the extras: pip install -e ".[test]" (PySide6 and Pillow).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def run_board(script: str, png: Path, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, f"examples/{script}", "--duration", "3", "--rate", "20",
                    "--screenshot", str(png)], cwd=ROOT, env={**os.environ, **env}, check=True, timeout=120)
    print(f"wrote {png.relative_to(ROOT)}")


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise SystemExit("Tk needs an X server: set DISPLAY or install Debian's xvfb")
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            pass_fds=(write_end,), stderr=subprocess.DEVNULL)
    os.close(write_end)
    number = os.read(read_end, 16).decode().strip()
    os.close(read_end)
    return proc, f":{number}"


def main() -> int:
    DOCS.mkdir(exist_ok=True)
    run_board("qt_board.py", DOCS / "qt_board.png", {"QT_QPA_PLATFORM": "offscreen"})
    subprocess.run([sys.executable, "examples/candles.py", "--duration", "12", "--screenshot",
                    str(DOCS / "candles.png")], cwd=ROOT, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
                   check=True, timeout=120)
    print("wrote docs/candles.png")
    xvfb = None
    display = os.environ.get("DISPLAY", "")
    if not display:
        xvfb, display = start_xvfb()
    try:
        run_board("tk_board.py", DOCS / "tk_board.png", {"DISPLAY": display})
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
