"""A live after-hours board (type 0E) in Tkinter: ask and bid totals, their changes, last update.

    python examples/tk_board.py --duration 10            # the built-in simulator
    KIWOOM_TOKEN=... python examples/tk_board.py --mock   # Kiwoom's mock server

Receivers run on the Tk thread (TkDispatcher drains a thread-safe queue with ``after``; no other
thread touches Tk), conflated to the latest quote per item per tick. Closing the window closes
the session.
"""

from __future__ import annotations

import argparse
import sys
import tkinter as tk
from typing import Any

from _common import CHANGE_COLUMNS, COLUMNS, add_feed_arguments, board_row, direction, feed

from kiwoom_rt import AfterHoursQuote, KiwoomError, RealtimeSession
from kiwoom_rt.tk import TkDispatcher, close_with

UP, DOWN, FLAT = "#d32f2f", "#1565c0", "#202020"  # Korean convention: up red, down blue


class Board(tk.Frame):
    """One row of labels per item, updated in place (a grid lets each cell have its colour)."""

    def __init__(self, master: tk.Misc, items: list[str]) -> None:
        super().__init__(master, padx=8, pady=8, bg="white")
        self.cells: dict[str, list[tk.Label]] = {}
        for column, title in enumerate(COLUMNS):
            tk.Label(self, text=title, font=("TkDefaultFont", 10, "bold"), bg="#eeeeee", padx=10,
                     anchor="e" if column >= 2 else "w").grid(row=0, column=column, sticky="nsew")
        for row, item in enumerate(items, start=1):
            labels = [tk.Label(self, text="", bg="white", fg=FLAT, padx=10, anchor="e" if column >= 2 else "w")
                      for column in range(len(COLUMNS))]
            for column, label in enumerate(labels):
                label.grid(row=row, column=column, sticky="nsew")
            labels[0].configure(text=item)
            self.cells[item] = labels
        self.status = tk.Label(self, text="connecting", anchor="w", bg="white", fg="#555555")
        self.status.grid(row=len(items) + 1, column=0, columnspan=len(COLUMNS), sticky="we", pady=(8, 0))
        self.updates = 0
        self.updated_rows: set[str] = set()

    def show_quote(self, item: str, event: AfterHoursQuote) -> None:
        labels = self.cells.get(item)
        if labels is None:
            return
        self.updates += 1
        self.updated_rows.add(item)
        for label, text in zip(labels, board_row(event), strict=True):
            label.configure(text=text)
        for column in CHANGE_COLUMNS:
            way = direction(event, column)
            labels[column].configure(fg=UP if way > 0 else DOWN if way < 0 else FLAT)

    def show_state(self, session: RealtimeSession, **_: Any) -> None:
        stats = session.stats()
        self.status.configure(
            text=f"{session.state} · {stats['events_total']:,} events · {stats['reconnects']} reconnects")


def save_screenshot(root: tk.Tk, path: str) -> None:
    """Save the window as PNG (X11 only; needs Pillow)."""
    import os

    from PIL import ImageGrab

    root.update()
    x, y = root.winfo_rootx(), root.winfo_rooty()
    box = (x, y, x + root.winfo_width(), y + root.winfo_height())
    ImageGrab.grab(bbox=box, xdisplay=os.environ.get("DISPLAY")).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_feed_arguments(parser)
    parser.add_argument("--screenshot", help="save a PNG of the window just before quitting (needs Pillow)")
    args = parser.parse_args(argv)
    root = tk.Tk()
    root.title("kiwoom-rt: after-hours board (0E)")
    root.configure(bg="white")
    board = Board(root, args.items)
    board.pack(fill="both", expand=True)
    try:
        with feed(args) as (url, token):
            session = RealtimeSession(token, url=url, dispatcher=TkDispatcher(root, interval_ms=50, conflate=True))
            session.on_0e.connect(board.show_quote)
            for signal in (session.on_login, session.on_disconnected, session.on_reconnecting):
                signal.connect(board.show_state)
            session.on_gave_up.connect(lambda s, error: board.status.configure(text=f"gave up: {error}"))
            close_with(session, root)
            session.start()
            session.subscribe(args.items)

            def refresh_status() -> None:
                board.show_state(session)
                root.after(500, refresh_status)

            refresh_status()
            if args.duration is not None:
                def finish() -> None:
                    if args.screenshot:
                        save_screenshot(root, args.screenshot)
                    root.destroy()
                root.after(int(args.duration * 1000), finish)
            root.mainloop()
            session.close()
    except (KiwoomError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        root.destroy()
        return 1
    print(f"rows {len(board.cells)}, rows updated {len(board.updated_rows)}, updates {board.updates}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
