"""Market hours (kiwoom_rt.markets), by calling it: phase boundaries, weekends, US daylight saving,
holidays with and without the calendar extra, and what the CLI says when a type will not flow."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator

import pytest

from kiwoom_rt import markets

KST = dt.timezone(dt.timedelta(hours=9))
EDT = dt.timezone(dt.timedelta(hours=-4))
EST = dt.timezone(dt.timedelta(hours=-5))
THURSDAY = dt.date(2026, 12, 3)


def kst(h: int, m: int, s: int = 0, day: dt.date = THURSDAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(h, m, s), KST)


@pytest.mark.parametrize(("clock", "krx", "nxt"), [
    ((7, 59, 59), "closed", "closed"), ((8, 0), "closed", "pre"), ((8, 30), "pre", "pre"),
    ((8, 39, 59), "pre", "pre"), ((8, 40), "closed", "pre"), ((8, 50), "closed", "closed"),
    ((9, 0), "regular", "regular"), ((15, 19, 59), "regular", "regular"), ((15, 20), "regular", "closed"),
    ((15, 29, 59), "regular", "closed"), ((15, 30), "closed", "post"), ((15, 40), "post", "post"),
    ((16, 0), "post_single", "post"), ((17, 59, 59), "post_single", "post"), ((18, 0), "closed", "post"),
    ((19, 59, 59), "closed", "post"), ((20, 0), "closed", "closed"),
])
def test_domestic_phase_boundaries(clock: tuple[int, ...], krx: str, nxt: str) -> None:
    moment = kst(*clock)
    assert markets.phase_at("KRX", moment) == krx
    assert markets.phase_at("NXT", moment) == nxt
    assert markets.phase_at("SOR", moment) == krx
    assert markets.phase_at("KRX", moment.astimezone(dt.UTC)) == krx  # any zone: read in KST


def test_weekends_and_holidays_are_closed() -> None:
    saturday = kst(10, 0, day=dt.date(2026, 12, 5))
    assert markets.phase_at("KRX", saturday) == "closed"
    assert markets.phase_at("KRX", kst(10, 0), holiday=True) == "closed"
    assert markets.phase_at("KRX", kst(10, 0), holiday=None) == "regular"  # unknown: the clock decides


def test_us_phases_follow_daylight_saving() -> None:
    summer = dt.datetime(2026, 7, 1, 9, 30, tzinfo=EDT)
    winter = dt.datetime(2026, 12, 3, 9, 30, tzinfo=EST)
    for moment in (summer, winter):
        assert markets.phase_at("NASDAQ", moment) == "regular"
        assert markets.phase_at("NY", moment - dt.timedelta(seconds=1)) == "pre"
        assert markets.phase_at("US", moment + dt.timedelta(hours=6, minutes=30)) == "post"
        assert markets.phase_at("AMEX", moment + dt.timedelta(hours=10, minutes=30)) == "closed"
    # the same instant in KST: 22:30 in summer is the open, in winter an hour before it
    assert markets.phase_at("US", dt.datetime(2026, 7, 1, 22, 30, tzinfo=KST)) == "regular"
    assert markets.phase_at("US", dt.datetime(2026, 12, 3, 22, 30, tzinfo=KST)) == "pre"
    # the spring switch (8 March 2026, 02:00 EST -> 03:00 EDT): Monday's open is 13:30 UTC
    assert markets.phase_at("US", dt.datetime(2026, 3, 9, 13, 30, tzinfo=dt.UTC)) == "regular"
    assert markets.phase_at("US", dt.datetime(2026, 3, 6, 13, 30, tzinfo=dt.UTC)) == "pre"  # Friday, EST


def test_unknown_exchanges_and_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown exchange"):
        markets.phase_at("LSE", kst(10, 0))
    with pytest.raises(ValueError, match="aware datetime"):
        markets.phase_at("KRX", dt.datetime(2026, 12, 3, 10, 0))


def test_holidays_from_the_calendar_extra() -> None:
    pytest.importorskip("exchange_calendars")
    chuseok = dt.date(2026, 9, 25)  # 추석
    assert markets.is_holiday("KRX", chuseok) is True
    assert markets.is_holiday("KRX", THURSDAY) is False
    assert markets.phase("KRX", at=kst(10, 0, day=chuseok)) == "closed"
    assert markets.phase("KRX", at=kst(10, 0)) == "regular"
    thanksgiving = dt.date(2026, 11, 26)
    assert markets.is_holiday("US", thanksgiving) is True
    assert markets.phase("NYSE", at=dt.datetime(2026, 11, 26, 10, 0, tzinfo=EST)) == "closed"
    assert markets.is_holiday("KRX", dt.date(2026, 12, 5)) is False  # a Saturday is not a holiday


@pytest.fixture
def without_calendar(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    markets._calendar.cache_clear()
    monkeypatch.setitem(sys.modules, "exchange_calendars", None)  # as if the extra were not installed
    yield
    markets._calendar.cache_clear()


def test_without_the_extra_holidays_are_unknown(without_calendar: None) -> None:
    chuseok = dt.date(2026, 9, 25)
    assert markets.is_holiday("KRX", chuseok) is None
    assert markets.phase("KRX", at=kst(10, 0, day=chuseok)) == "regular"  # the clock alone decides


def test_which_types_flow_when() -> None:
    assert markets.flows("0B", "KRX", kst(10, 0))
    assert not markets.flows("0B", "KRX", kst(21, 0))
    assert markets.flows("0E", "KRX", kst(16, 30))
    assert not markets.flows("0E", "KRX", kst(10, 0))
    assert markets.flows("00", "KRX", kst(23, 0))  # account types are not tied to a phase
    assert markets.flows("0B", "NXT", kst(19, 0))
    assert markets.describe("0B", "KRX", kst(10, 0)) is None
    said = markets.describe("0B", "KRX", kst(21, 0, day=dt.date(2026, 12, 1)))
    assert said is not None
    assert "KRX is closed now" in said
    assert "09:00-15:30" in said
    assert "KST" in said
    us = markets.describe("FE", "US", dt.datetime(2026, 12, 3, 21, 0, tzinfo=EST))
    assert us is not None
    assert "04:00-09:30, 09:30-16:00, 16:00-20:00 US Eastern" in us
