"""The staleness judgement and the 0s phase override, tested by calling them (sans-I/O)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import Any

import pytest

from kiwoom_rt import markets
from kiwoom_rt._health import (
    NEVER_STALE,
    STALE_AFTER,
    Fresh,
    HealthCore,
    Resubscribe,
    Stale,
    event_key,
    exchanges_of,
    stale_after_table,
)

KST = dt.timezone(dt.timedelta(hours=9))
WANTED = {("005930", "0B"), ("000660", "0B"), ("", "00")}


def regular(exchange: str) -> str:
    return "regular"


def closed(exchange: str) -> str:
    return "closed"


def check(core: HealthCore, now: float, last: dict[tuple[str, str], float], *, connected: bool = True,
          phase=regular, wanted=WANTED):  # type: ignore[no-untyped-def]
    by_type: dict[str, dict[str, float]] = {}
    for (item, kind), at in last.items():
        by_type.setdefault(kind, {})[item] = at
    return core.check(now, 1_000_000.0 + now, connected=connected, wanted=wanted, confirmed={("005930", "0B")},
                      last=by_type, phase=phase)


def test_a_silent_pair_turns_stale_once_and_fresh_with_its_next_event() -> None:
    core = HealthCore(stale_after=10.0)
    last = {("005930", "0B"): 0.0, ("000660", "0B"): 0.0}
    health, out = check(core, 0.0, last)
    assert out == []
    assert health.stale == ()
    last[("000660", "0B")] = 9.0
    health, out = check(core, 10.5, last)
    assert out == [Stale("005930", "0B", 10.5)]
    assert health.stale == (("005930", "0B"),)
    assert health[("005930", "0B")].stale
    assert not health[("000660", "0B")].stale
    assert health[("005930", "0B")].confirmed
    assert not health[("000660", "0B")].confirmed
    _, out = check(core, 15.0, last)
    assert out == []  # once
    last[("005930", "0B")] = 16.0
    health, out = check(core, 17.0, last)
    assert out[0] == Fresh("005930", "0B")
    assert ("005930", "0B") not in health.stale


def test_account_types_are_never_stale_and_the_age_counts_from_the_subscription() -> None:
    core = HealthCore(stale_after=5.0)
    check(core, 100.0, {})  # first seen at 100: nothing came yet, but the clock starts now
    health, out = check(core, 104.0, {})
    assert out == []
    assert health[("005930", "0B")].silent_for == pytest.approx(4.0)
    health, out = check(core, 106.0, {})
    assert {o.item for o in out if isinstance(o, Stale)} == {"005930", "000660"}
    assert health[("", "00")].stale_after is None
    assert not health[("", "00")].stale


def test_nothing_is_stale_while_the_market_is_closed_or_the_session_is_down() -> None:
    core = HealthCore(stale_after=5.0)
    check(core, 0.0, {}, phase=closed)
    health, out = check(core, 100.0, {}, phase=closed)
    assert out == []
    assert health.stale == ()
    assert not health[("005930", "0B")].flowing
    # the market is seen open at 103: the silence counts from then
    health, out = check(core, 103.0, {})
    assert out == []
    health, out = check(core, 107.0, {})
    assert out == []
    assert health[("005930", "0B")].silent_for == pytest.approx(4.0)
    health, out = check(core, 108.5, {})
    assert len(health.stale) == 2
    # closing ends staleness (without Fresh: nothing flowed)
    health, out = check(core, 109.0, {}, phase=closed)
    assert health.stale == ()
    assert out == []
    core2 = HealthCore(stale_after=5.0)
    health, out = check(core2, 50.0, {}, connected=False)
    health, out = check(core2, 500.0, {}, connected=False)
    assert out == []
    assert health[("005930", "0B")].silent_for is None
    health, out = check(core2, 503.0, {})  # connected at 503: counted from there
    assert out == []


def test_resubscribe_is_asked_at_most_once_per_stale_after() -> None:
    core = HealthCore(stale_after=10.0, resubscribe=True)
    wanted = {("005930", "0B")}
    check(core, 0.0, {}, wanted=wanted)
    _, out = check(core, 11.0, {}, wanted=wanted)
    assert out == [Stale("005930", "0B", 11.0), Resubscribe("005930", "0B")]
    _, out = check(core, 15.0, {}, wanted=wanted)
    assert out == []
    _, out = check(core, 21.5, {}, wanted=wanted)
    assert out == [Resubscribe("005930", "0B")]
    assert core.resubscriptions == 2


def test_an_unsubscribed_pair_is_forgotten() -> None:
    core = HealthCore(stale_after=1.0)
    check(core, 0.0, {})
    health, _ = check(core, 2.0, {})
    assert health.stale
    health, _out = check(core, 3.0, {}, wanted={("", "00")})
    assert health.stale == ()
    assert len(health) == 1


def test_thresholds_by_type_and_overrides() -> None:
    assert STALE_AFTER["0B"] == 120.0
    assert STALE_AFTER["0D"] == 60.0
    assert {"00", "04", "F4", "F5"} <= NEVER_STALE
    table = stale_after_table({"0B": 30, "0D": None})
    assert table["0B"] == 30.0
    assert table["0D"] is None
    assert table["00"] is None
    assert HealthCore(stale_after=7).threshold("0J") == 7.0
    assert HealthCore(stale_after=7).threshold("F5") is None
    assert HealthCore().threshold("ZZ") == 300.0
    with pytest.raises(ValueError, match="> 0"):
        stale_after_table(0)
    with pytest.raises(ValueError, match="> 0"):
        stale_after_table({"0B": -1})


def test_items_map_to_exchanges_and_event_keys() -> None:
    assert exchanges_of("005930", "kr") == ("KRX",)
    assert exchanges_of("005930_NX", "kr") == ("NXT",)
    assert exchanges_of("005930_AL", "kr") == ("KRX", "NXT")
    assert exchanges_of("NASDAQ:NVDA", "us") == ("US",)
    assert event_key(("NASDAQ:NVDA", "FE"), "us") == ("NVDA", "FE")
    assert event_key(("005930", "0B"), "kr") == ("005930", "0B")


def test_sor_items_flow_while_either_exchange_trades() -> None:
    core = HealthCore(stale_after=5.0)
    wanted = {("005930_AL", "0B")}
    phases = {"KRX": "closed", "NXT": "post"}
    health, _ = core.check(0.0, 0.0, connected=True, wanted=wanted, confirmed=(), last={}, phase=phases.__getitem__)
    assert health[("005930_AL", "0B")].flowing
    assert dict(health.phases) == phases


# --- 0s overriding the table ---------------------------------------------------------------------

def at(hour: int, minute: int, second: int = 0, day: int = 7) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, second, tzinfo=KST)  # 2026-12-07 is a Monday


def test_an_announcement_overrides_the_table_until_the_next_one(caplog: pytest.LogCaptureFixture) -> None:
    book = markets.PhaseBook()
    assert book.phase("KRX", at(9, 5)) == markets.phase("KRX", at(9, 5))
    # a late opening: 0s says "before the open" at 08:40 and "open" only at 09:10
    with caplog.at_level(logging.WARNING, logger="kiwoom_rt"):
        assert book.announce("0", at(8, 40)) == "closed"
        assert book.phase("KRX", at(9, 5)) == "closed"
        assert not book.flows("0B", "KRX", at(9, 5))  # the table alone would say regular
        book.announce("3", at(9, 10))
    assert book.phase("KRX", at(9, 11)) == "regular"
    disagreements = [r for r in caplog.records if "0s announced" in r.getMessage()]
    assert disagreements == []  # 08:40 closed and 09:10 regular both agree with the table
    # a holiday the calendar does not know: 0s says the day is over at 09:30
    with caplog.at_level(logging.WARNING, logger="kiwoom_rt"):
        book.announce("9", at(9, 30))
        book.announce("9", at(9, 31))
    assert book.phase("KRX", at(10, 0)) == "closed"
    assert not book.flows("0B", "KRX", at(10, 0))
    messages = [r.getMessage() for r in caplog.records if "0s announced" in r.getMessage()]
    assert len(messages) == 1
    assert "KRX closed" in messages[0]
    assert "regular" in messages[0]


def test_an_announcement_holds_at_most_two_hours_and_never_past_the_day() -> None:
    book = markets.PhaseBook()
    book.announce("0", at(8, 40))  # and the 09:00 "3" was missed
    assert book.phase("KRX", at(10, 39)) == "closed"
    assert book.phase("KRX", at(10, 41)) == "regular"  # the table again
    book.announce("c", at(16, 0))
    assert book.phase("KRX", at(17, 0)) == "post_single"
    assert book.phase("KRX", at(9, 30, day=8)) == "regular"


def test_nxt_codes_and_unknown_codes() -> None:
    book = markets.PhaseBook()
    assert book.announce("U", at(16, 0)) == "post"
    assert book.phase("NXT", at(16, 1)) == "post"
    assert book.phase("KRX", at(16, 1)) == markets.phase("KRX", at(16, 1))
    assert book.announce("o", at(9, 0)) is None  # futures and options: not a stock exchange's
    assert book.announce(None, at(9, 0)) is None
    assert set(markets.ANNOUNCEMENTS) >= {"0", "2", "3", "4", "8", "9", "a", "b", "c", "d", "P", "Q", "R", "S",
                                          "T", "U", "V"}


def test_the_watchdog_notes_every_events_item_and_type_in_batches_of_one_type_or_several() -> None:
    """The reading thread's side of the watchdog: each (item, type) keeps the time of its latest
    batch, whether the batch held one type (one C-level update) or several (a loop)."""
    from kiwoom_rt import protocol
    from kiwoom_rt._health import HealthCore
    from kiwoom_rt._watchdog import Watchdog

    def batch(*entries: tuple[str, str]) -> list[Any]:
        frame = json.dumps({"trnm": "REAL", "data": [{"type": kind, "item": item, "values": {}}
                                                     for kind, item in entries]})
        events: list[Any] = []
        protocol.decode_frames([frame], events)
        return events

    def tick() -> None:  # until the monotonic clock moves (it is coarse on some systems)
        start = time.monotonic()
        while time.monotonic() == start:
            pass

    watchdog = Watchdog(HealthCore(), inputs=lambda: ("connected", True, (), (), None),
                        resubscribe=lambda pairs: None, report=lambda output: None)

    def last() -> dict[tuple[str, str], float]:
        return {(item, kind): at for kind, seen in watchdog.last.items() for item, at in seen.items()}

    watchdog.queued_events(batch(("0B", "A"), ("0B", "B")))
    first = last()
    assert set(first) == {("A", "0B"), ("B", "0B")}
    tick()
    watchdog.queued_events(batch(("0D", "A"), ("0B", "A"), ("0D", "C")))
    second = last()
    assert set(second) == {("A", "0B"), ("B", "0B"), ("A", "0D"), ("C", "0D")}
    assert second[("A", "0B")] > first[("A", "0B")]
    assert second[("B", "0B")] == first[("B", "0B")]
    tick()
    watchdog.queued_events(batch(("0B", "B")))  # one type again: the newest time wins
    third = last()
    assert third[("B", "0B")] > second[("B", "0B")]
    assert third[("A", "0B")] == second[("A", "0B")]
    watchdog.queued_events([])
    assert last() == third
