"""A live after-hours board (type 0E) in Qt: ask and bid totals, their changes, last update.

    python examples/qt_board.py --duration 10            # the built-in simulator
    KIWOOM_TOKEN=... python examples/qt_board.py --mock   # Kiwoom's mock server

Receivers run on the GUI thread (QtDispatcher), conflated to the latest quote per item per tick,
so the table stays responsive however fast quotes come. Closing the window closes the session.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _common import CHANGE_COLUMNS, COLUMNS, add_feed_arguments, board_row, direction, feed

from kiwoom_rt import AfterHoursQuote, KiwoomError, RealtimeSession
from kiwoom_rt.qt import QtDispatcher, close_with, qt_module

# The binding kiwoom_rt.qt chose: the one already imported, else QT_API, else PySide6/PyQt6/PyQt5.
QtCore, QtGui, QtWidgets = (qt_module(name) for name in ("QtCore", "QtGui", "QtWidgets"))

UP, DOWN = QtGui.QColor("#d32f2f"), QtGui.QColor("#1565c0")  # Korean convention: up red, down blue


class Board(QtWidgets.QMainWindow):
    """One row per item, updated in place."""

    def __init__(self, items: list[str]) -> None:
        super().__init__()
        self.setWindowTitle("kiwoom-rt: after-hours board (0E)")
        self.table = QtWidgets.QTableWidget(len(items), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.rows: dict[str, int] = {}
        for row, item in enumerate(items):
            self.rows[item] = row
            for column in range(len(COLUMNS)):
                cell = QtWidgets.QTableWidgetItem("")
                if column >= 2:
                    cell.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, cell)
            self.table.item(row, 0).setText(item)
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.setCentralWidget(self.table)
        self.status = QtWidgets.QLabel("connecting")
        self.statusBar().addWidget(self.status)
        self.updates = 0
        self.updated_rows: set[int] = set()
        self.resize(720, 60 + 32 * max(5, len(items)))

    def show_quote(self, item: str, event: AfterHoursQuote) -> None:
        row = self.rows.get(item)
        if row is None:
            return
        self.updates += 1
        self.updated_rows.add(row)
        for column, text in enumerate(board_row(event)):
            self.table.item(row, column).setText(text)
        for column in CHANGE_COLUMNS:
            way = direction(event, column)
            color = UP if way > 0 else DOWN if way < 0 else self.palette().text().color()
            self.table.item(row, column).setForeground(color)

    def show_state(self, session: RealtimeSession, **_: Any) -> None:
        stats = session.stats()
        self.status.setText(f"{session.state} · {stats['events_total']:,} events · {stats['reconnects']} reconnects")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_feed_arguments(parser)
    parser.add_argument("--screenshot", help="save a PNG of the window just before quitting")
    args = parser.parse_args(argv)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    board = Board(args.items)
    try:
        with feed(args) as (url, token):
            session = RealtimeSession(token, url=url, dispatcher=QtDispatcher(conflate=True, interval_ms=50))
            session.on_0e.connect(board.show_quote)
            for signal in (session.on_login, session.on_disconnected, session.on_reconnecting):
                signal.connect(board.show_state)
            session.on_gave_up.connect(lambda s, error: board.status.setText(f"gave up: {error}"))
            close_with(session, app)
            close_with(session, board)
            session.start()
            session.subscribe(args.items)
            board.show()
            status_timer = QtCore.QTimer(board)
            status_timer.timeout.connect(lambda: board.show_state(session))
            status_timer.start(500)
            if args.duration is not None:
                def finish() -> None:
                    if args.screenshot:
                        board.grab().save(args.screenshot)
                    board.close()
                QtCore.QTimer.singleShot(int(args.duration * 1000), finish)
            code = app.exec()
            session.close()
    except (KiwoomError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"rows {board.table.rowCount()}, rows updated {len(board.updated_rows)}, updates {board.updates}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
