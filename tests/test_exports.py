"""The public surface: ``kiwoom_rt.__all__`` is pinned, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import kiwoom_rt

EXPECTED = [
    "MOCK_URL", "PRODUCTION_URL", "AfterHoursQuote", "AuthError", "ConnectError", "DecodeError",
    "ConnectionOptions", "DeliveryOptions", "HealthOptions",
    "FrameTooLargeError", "KiwoomError", "ImplausibleTradeError",
    "LateTradeError", "LoginError", "PendingRequest", "Price", "ProtocolError",
    "QtDispatcher", "QueueDispatcher", "RealEvent", "RealtimeSession", "ReceiverError", "ReconnectPolicy",
    "Recorder", "RecordingError", "ReplaySession", "SessionClosedError", "SessionSignal", "SessionState",
    "SessionStats", "SubscribeError", "Subscription", "SymbolLimitError", "TkDispatcher", "__version__",
    # condition search (issue 11)
    "Condition", "ConditionError", "ConditionHit", "ConditionWatch",
    # typed events (issue 10)
    "EVENT_TYPES", "Balance", "BestQuote", "BookLevel", "BrokerLevel", "Brokers", "ConditionEvent",
    "ElwIndicator", "ElwTheoretical", "EtfNav", "ExpectedTrade", "GoldPrice", "IndicativePrice",
    "MarketSession", "OrderBook", "OrderExecution", "ProgramTrading", "RealtimeEvent",
    "SectorBreadth", "SectorIndex", "StockInfo", "Trade", "VolatilityInterruption",
    # one session surface (issue 19)
    "Session",
    # the US socket (issue 20)
    "US_PRODUCTION_URL", "US_MOCK_URL", "UsItem", "UsTrade", "UsOrderBook", "UsOrder", "UsFill",
    "UsConditionEvent",
    # health (issue 22)
    "Health", "SubscriptionHealth", "STALE_AFTER", "NEVER_STALE",
]


def test_all_is_pinned() -> None:
    assert sorted(kiwoom_rt.__all__) == sorted(EXPECTED)


def test_every_exported_name_resolves_and_gui_toolkits_load_only_on_use() -> None:
    code = ("import sys, kiwoom_rt\n"
            "gui = lambda: [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt6', 'PyQt5', 'tkinter',\n"
            "                                                              'redis', 'pandas', 'pyarrow',\n"
            "                                                              'websockets', 'prometheus_client',\n"
            "                                                              'exchange_calendars')]\n"
            "assert gui() == [], gui()\n"
            "names = [n for n in kiwoom_rt.__all__ if n not in ('QtDispatcher', 'TkDispatcher')]\n"
            "assert all(getattr(kiwoom_rt, n) is not None for n in names)\n"
            "assert gui() == [], gui()\n"
            "assert kiwoom_rt.QtDispatcher.__name__ == 'QtDispatcher'\n"
            "assert kiwoom_rt.TkDispatcher.__name__ == 'TkDispatcher'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={"QT_QPA_PLATFORM": "offscreen", "PATH": ""})
    assert result.returncode == 0, result.stderr


def test_internal_modules_are_private() -> None:
    import pkgutil

    public = {m.name for m in pkgutil.iter_modules(kiwoom_rt.__path__) if not m.name.startswith("_")}
    assert public == {"auth", "backoff", "bars", "cli", "conditions", "errors", "events", "fids", "frames", "markets",
                      "messages", "metrics", "options", "protocol", "qt", "queued", "recording", "relay", "replay",
                      "session", "sim", "tk", "us", "values"}
