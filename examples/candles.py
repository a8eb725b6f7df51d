"""A live candlestick chart in Qt (실시간 분봉): bars built from the trade stream by kiwoom_rt.bars.

    python examples/candles.py --duration 20                 # the built-in simulator, 10-second bars
    KIWOOM_TOKEN=... python examples/candles.py --prod 005930 --interval 1m

Final bars come from ``BarFeed.on_bar``, the bar in progress from ``on_update``; both run on the
GUI thread (QtDispatcher). A bar the feed may have missed trades of (``complete`` False) is drawn
hollow and grey. Only QPainter: no charting library.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _common import add_feed_arguments, feed

from kiwoom_rt import KiwoomError, RealtimeSession
from kiwoom_rt.bars import Bar, BarFeed
from kiwoom_rt.qt import QtDispatcher, close_with, qt_module

QtCore, QtGui, QtWidgets = (qt_module(name) for name in ("QtCore", "QtGui", "QtWidgets"))

UP, DOWN, MISSED = QtGui.QColor("#d32f2f"), QtGui.QColor("#1565c0"), QtGui.QColor("#9e9e9e")
SHOWN = 60  # bars on screen


class Chart(QtWidgets.QWidget):
    """Candles of one item: the final bars, then the one in progress."""

    def __init__(self, item: str, interval: str) -> None:
        super().__init__()
        self.item = item
        self.interval = interval
        self.bars: list[Bar] = []
        self.current: Bar | None = None
        self.finished = 0  # final bars received
        self.updates = 0
        self.setWindowTitle(f"kiwoom-rt: {item} {interval} candles")
        self.resize(900, 480)

    def on_bar(self, item: str, bar: Bar) -> None:
        self.finished += 1
        self.bars = [*self.bars[-(SHOWN - 1):], bar]
        self.current = None
        self.update()

    def on_update(self, item: str, bar: Bar) -> None:
        self.updates += 1
        self.current = bar
        self.update()

    def paintEvent(self, event: Any) -> None:  # (Qt's name)
        painter = QtGui.QPainter(self)
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QtGui.QColor("white"))
        bars = self.bars + ([self.current] if self.current is not None else [])
        margin, axis = 16, 80
        width, height = self.width() - 2 * margin - axis, self.height() - 2 * margin - 24
        painter.setPen(QtGui.QColor("#333"))
        last = bars[-1] if bars else None
        title = f"{self.item}  {self.interval}"
        if last is not None:
            title += (f"   O {last.open:,.0f}  H {last.high:,.0f}  L {last.low:,.0f}  C {last.close:,.0f}"
                      f"  V {last.volume:,}")
        painter.drawText(margin, margin + 12, title)
        if not bars:
            painter.drawText(margin, margin + 40, "waiting for trades ...")
            return
        low = min(bar.low for bar in bars)
        high = max(bar.high for bar in bars)
        span = (high - low) or 1.0
        top = margin + 24

        def y(price: float) -> float:
            return top + (high - price) / span * height

        step = width / SHOWN
        for index, bar in enumerate(bars):
            x = margin + index * step + step / 2
            color = MISSED if not bar.complete else UP if bar.close >= bar.open else DOWN
            painter.setPen(QtGui.QPen(color, 1))
            painter.drawLine(QtCore.QPointF(x, y(bar.high)), QtCore.QPointF(x, y(bar.low)))
            body_top, body_bottom = y(max(bar.open, bar.close)), y(min(bar.open, bar.close))
            rect = QtCore.QRectF(x - step * 0.35, body_top, step * 0.7, max(1.0, body_bottom - body_top))
            if bar.complete:
                painter.fillRect(rect, color)
            else:
                painter.drawRect(rect)
        painter.setPen(QtGui.QColor("#666"))
        for price in (high, (high + low) / 2, low):
            painter.drawText(QtCore.QPointF(self.width() - axis - margin + 8, y(price) + 4), f"{price:,.0f}")
        painter.drawText(QtCore.QPointF(margin, self.height() - 6),
                         f"{bars[0].start:%H:%M:%S} - {bars[-1].end:%H:%M:%S}  "
                         f"({sum(1 for bar in bars if not bar.complete)} incomplete, grey)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_feed_arguments(parser, rate=60.0, items=["005930"])
    parser.add_argument("--interval", default="10s", help="bar interval (default 10s)")
    parser.add_argument("--speed", type=float, default=10.0, help="simulator: clock speed (default 10x)")
    parser.add_argument("--screenshot", help="save a PNG of the window just before quitting")
    args = parser.parse_args(argv)
    args.regular = True  # trades flow in the regular session
    args.clock_speed = args.speed
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    chart = Chart(args.items[0], args.interval)
    try:
        with feed(args) as (url, token):
            session = RealtimeSession(token, url=url, dispatcher=QtDispatcher(conflate=True, interval_ms=50))
            bars = BarFeed(session, args.interval, items=[args.items[0]])
            bars.on_bar.connect(chart.on_bar)
            bars.on_update.connect(chart.on_update)
            close_with(session, app)
            close_with(session, chart)
            session.start()
            session.subscribe([args.items[0]], ["0B"])
            chart.show()
            if args.duration is not None:
                def finish() -> None:
                    if args.screenshot:
                        chart.grab().save(args.screenshot)
                    chart.close()
                QtCore.QTimer.singleShot(int(args.duration * 1000), finish)
            code = app.exec()
            bars.close()
            session.close()
        print(f"bars {chart.finished}, updates {chart.updates}, late {bars.late}")
    except (KiwoomError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
