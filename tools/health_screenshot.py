"""A screenshot of ``kiwoom-rt health`` taken from a tmux capture: docs/health.txt and docs/health.png.

    python tools/health_screenshot.py

Runs ``kiwoom-rt health --sim --silence 000660 --stale-after 5`` in a detached tmux session of
104 x 16 cells, captures the pane with its colours (``tmux capture-pane -e``) after 9 seconds,
writes the plain text and renders the capture with Pillow (DejaVu Sans Mono). Needs tmux and the
test extra (Pillow).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
COMMAND = "kiwoom-rt health --sim --silence 000660 --stale-after 5 --duration 30"
SGR = re.compile(r"\x1b\[([0-9;]*)m")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"


def capture() -> str:
    tmux = shutil.which("tmux")
    if tmux is None:
        raise SystemExit("needs tmux (Debian's tmux)")
    subprocess.run([tmux, "new-session", "-d", "-s", "kiwoom-rt-health", "-x", "104", "-y", "16",
                    f"cd {ROOT} && {sys.executable} -m kiwoom_rt {COMMAND.removeprefix('kiwoom-rt ')}; sleep 5"],
                   check=True)
    try:
        time.sleep(9)  # (a screenshot is taken at a moment: nothing to wait for but the clock)
        return subprocess.run([tmux, "capture-pane", "-e", "-p", "-t", "kiwoom-rt-health"], check=True,
                              capture_output=True, text=True).stdout
    finally:
        subprocess.run([tmux, "kill-session", "-t", "kiwoom-rt-health"], check=False)


def render(text: str, png: Path) -> None:
    font, bold = ImageFont.truetype(FONT, 15), ImageFont.truetype(BOLD, 15)
    width, height = font.getbbox("M")[2], 20
    lines = text.rstrip("\n").split("\n")
    image = Image.new("RGB", (104 * width + 24, len(lines) * height + 24), (30, 30, 30))
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        column, color, face = 0, (220, 220, 220), font
        parts = SGR.split(line)  # text, codes, text, codes, ... (the group splits them)
        for index, part in enumerate(parts):
            if index % 2:  # an SGR sequence's parameters
                codes = part.split(";")
                if "31" in codes:
                    color, face = (255, 95, 95), bold if "1" in codes else font
                elif part in ("", "0", "39"):
                    color, face = (220, 220, 220), font
                continue
            draw.text((12 + column * width, 12 + row * height), part, font=face, fill=color)
            column += len(part)
    image.save(png)


def main() -> int:
    raw = capture()
    plain = SGR.sub("", raw).rstrip() + "\n"
    (DOCS / "health.txt").write_text(f"$ {COMMAND}\n{plain}", encoding="utf-8")
    render(raw, DOCS / "health.png")
    print("wrote docs/health.txt and docs/health.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
