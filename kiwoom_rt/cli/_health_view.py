"""The ``kiwoom-rt health`` table: one line per wanted (item, type), stale rows marked."""

from __future__ import annotations

import datetime as dt
import time

from .._health import Health, SubscriptionHealth

__all__ = ["health_lines"]

KST = dt.timezone(dt.timedelta(hours=9), "KST")
STALE, RESET = "\x1b[1;31m", "\x1b[0m"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _status(row: SubscriptionHealth) -> str:
    if row.stale:
        return "STALE"
    if row.stale_after is None:
        return "ok (never stale)"
    if not row.flowing:
        return "ok (market not flowing)"
    if row.last_event_time is None:
        return "waiting"
    return "ok"


def health_lines(health: Health, title: str, *, color: bool = False) -> list[str]:
    """The table for one ``Health`` snapshot (``color``: stale rows in bold red)."""
    phases = "  ".join(f"{exchange} {phase.replace('_', ' ')}" for exchange, phase in sorted(health.phases.items()))
    moment = health.market_time or dt.datetime.fromtimestamp(health.at or time.time(), dt.UTC)
    stamp = moment.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S KST")
    lines = [
        f"{title}   market clock {stamp}",
        f"state {health.state} · last frame {_seconds(health.last_frame_age)} ago · {phases or 'no market'} · "
        f"{len(health.stale)} stale of {len(health)} · {health.resubscriptions} re-subscribed",
        "",
        f"{'item':<14}{'type':<6}{'confirmed':<11}{'last event':<14}{'age':>10}{'silent':>10}"
        f"{'stale after':>13}  status",
    ]
    for row in health:
        last = ((moment - dt.timedelta(seconds=row.last_event_age)).astimezone(KST).strftime("%H:%M:%S")
                if row.last_event_age is not None else "-")  # on the market clock, as the title
        after = "never" if row.stale_after is None else _seconds(row.stale_after)
        line = (f"{row.item or '(all)':<14}{row.type:<6}{'yes' if row.confirmed else 'no':<11}{last:<14}"
                f"{_seconds(row.last_event_age):>10}{_seconds(row.silent_for):>10}{after:>13}  {_status(row)}")
        lines.append(f"{STALE}{line}{RESET}" if row.stale and color else line)
    if not len(health):
        lines.append("(no subscriptions)")
    return lines
