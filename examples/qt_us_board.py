"""A live board of US stocks (type FE, 미국주식 체결) in Qt: last price, change, volume, exchange.

    python examples/qt_us_board.py --duration 10                  # the built-in simulator
    KIWOOM_TOKEN=... python examples/qt_us_board.py --prod NASDAQ:NVDA NYSE:KO

The US socket is its own connection (US_PRODUCTION_URL); items are written EXCHANGE:SYMBOL.
Receivers run on the GUI thread (QtDispatcher), conflated to the latest trade per symbol per
tick. Closing the window closes the session.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _common import add_feed_arguments, feed

from kiwoom_rt import KiwoomError, RealtimeSession, UsItem, UsTrade
from kiwoom_rt.qt import QtDispatcher, close_with, qt_module

QtCore, QtGui, QtWidgets = (qt_module(name) for name in ("QtCore", "QtGui", "QtWidgets"))

UP, DOWN = QtGui.QColor("#d32f2f"), QtGui.QColor("#1565c0")  # Korean convention: up red, down blue
COLUMNS = ["Symbol", "Exchange", "Price", "Change", "Rate", "Volume", "Cum. volume", "Time (local)"]
ITEMS = ["NASDAQ:NVDA", "NASDAQ:AAPL", "NASDAQ:MSFT", "NASDAQ:TSLA", "NYSE:KO", "NYSE:JPM", "AMEX:SPY"]


def row_texts(event: UsTrade) -> list[str]:
    """The texts of one row, in COLUMNS order (None shows as '-')."""
    def money(value: float | None, sign: str = "") -> str:
        return "-" if value is None else f"{value:{sign},.2f}"

    return [event.code, event.exchange or "-", money(event.price), money(event.change, "+"),
            "-" if event.rate is None else f"{event.rate:+.2f}%", "-" if event.volume is None else f"{event.volume:+,}",
            "-" if event.cumulative_volume is None else f"{event.cumulative_volume:,}",
            "-" if event.local_time is None else event.local_time.isoformat()]


class Board(QtWidgets.QMainWindow):
    """One row per symbol, updated in place."""

    def __init__(self, symbols: list[str]) -> None:
        super().__init__()
        self.setWindowTitle("kiwoom-rt: US stocks (FE)")
        self.table = QtWidgets.QTableWidget(len(symbols), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.rows = {symbol: row for row, symbol in enumerate(symbols)}
        for symbol, row in self.rows.items():
            for column in range(len(COLUMNS)):
                cell = QtWidgets.QTableWidgetItem(symbol if column == 0 else "")
                if column >= 2:
                    cell.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, cell)
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.setCentralWidget(self.table)
        self.status = QtWidgets.QLabel("connecting")
        self.statusBar().addWidget(self.status)
        self.updates = 0
        self.updated_rows: set[int] = set()
        self.resize(860, 60 + 32 * max(5, len(symbols)))

    def show_trade(self, symbol: str, event: UsTrade) -> None:
        row = self.rows.get(symbol)
        if row is None:
            return
        self.updates += 1
        self.updated_rows.add(row)
        for column, text in enumerate(row_texts(event)):
            self.table.item(row, column).setText(text)
        change = event.change or 0.0
        color = UP if change > 0 else DOWN if change < 0 else self.palette().text().color()
        for column in (2, 3, 4):
            self.table.item(row, column).setForeground(color)

    def show_state(self, session: RealtimeSession, **_: Any) -> None:
        stats = session.stats()
        self.status.setText(f"{session.state} · {stats['events_total']:,} trades · {stats['reconnects']} reconnects")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_feed_arguments(parser, items=ITEMS)
    parser.add_argument("--screenshot", help="save a PNG of the window just before quitting")
    args = parser.parse_args(argv)
    args.us = True
    try:
        items = [UsItem(*reversed(item.split(":", 1))) for item in args.items]
    except (TypeError, ValueError) as exc:
        parser.error(f"items are EXCHANGE:SYMBOL, e.g. NASDAQ:NVDA ({exc})")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    board = Board([item.symbol for item in items])
    try:
        with feed(args) as (url, token):
            session = RealtimeSession(token, url=url, dispatcher=QtDispatcher(conflate=True, interval_ms=50))
            session.signal("FE").connect(board.show_trade)
            for signal in (session.on_login, session.on_disconnected, session.on_reconnecting):
                signal.connect(board.show_state)
            session.on_gave_up.connect(lambda s, error: board.status.setText(f"gave up: {error}"))
            close_with(session, app)
            close_with(session, board)
            session.start()
            session.subscribe(items, ["FE"])
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
