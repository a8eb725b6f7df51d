"""The simulated market feed, sans-I/O: which REAL frames a client is owed at a moment.

``MarketFeed.frames(client, elapsed, now)`` turns ``rate`` events per second into REAL frames of
``batch`` entries over the client's registrations, as the clock allows (0E after hours, 0B and
0D in the regular session, published examples for the other types; on the US socket FE and FT
in the US pre-market, regular and after-hours sessions, with ``stexTp`` beside the values). It
also writes the 0s session notices, condition hits and US order events. Time is passed in; the
server sends what it returns.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..fids import TYPE_NAMES, WIRE_NAMES
from ._kiwoom import ClientState, text
from .market import AfterHoursMarket, RegularMarket, in_after_hours, in_regular_session
from .us_market import UsMarket, us_phase

__all__ = ["MarketFeed"]


class MarketFeed:
    """The feed of one simulator: seeded markets, a rate and entries per frame."""

    def __init__(self, seed: int = 0, *, rate: float = 10.0, batch: int = 1) -> None:
        self.market = AfterHoursMarket(seed)
        self.regular = RegularMarket(seed)
        self.us = UsMarket(seed)
        self.rate = rate
        self.batch = max(1, batch)
        #: items (codes or US symbols) that get nothing, while the others flow ("connected but silent")
        self.silenced: set[str] = set()

    def owed(self, client: ClientState, elapsed: float) -> int:
        """How many events ``client`` is owed after ``elapsed`` seconds (credit, capped at about a
        second's worth so a client that fell behind does not get a burst)."""
        if not client.data_pairs():
            client.credit = 0.0
            return 0
        client.credit = min(client.credit + self.rate * elapsed, self.rate + self.batch)
        count = int(client.credit)
        if count > 0:
            client.credit -= count
        return max(0, count)

    def frames(self, client: ClientState, count: int, now: dt.datetime) -> tuple[list[str], int]:
        """Up to ``count`` events for ``client`` at ``now``, as REAL frames: (frames, events)."""
        if client.market == "us":
            return self._us_frames(client, count, now)
        pairs = client.data_pairs()
        moment = now.timetz().replace(tzinfo=None)
        after_hours = in_after_hours(moment)
        regular = in_regular_session(moment)
        entries: list[dict[str, Any]] = []
        for _ in range(count * 2):  # skip pairs outside their hours, but never loop forever
            if len(entries) >= count:
                break
            item, type_code = pairs[client.cursor % len(pairs)]
            client.cursor += 1
            if item in self.silenced:
                continue
            if type_code == "0E":
                if not after_hours:
                    continue
                values = self.market.quote(item, now)
            elif type_code in ("0B", "0D"):
                if not regular:
                    continue
                values = self.regular.trade(item, now) if type_code == "0B" else self.regular.book(item, now)
            else:
                values = self.market.other(type_code, item, now)
            entries.append({"type": type_code, "name": TYPE_NAMES.get(type_code, ""), "item": item, "values": values})
        frames = [text({"trnm": "REAL", "data": entries[start:start + self.batch]})
                  for start in range(0, len(entries), self.batch)]
        return frames, len(entries)

    def _us_frames(self, client: ClientState, count: int, now: dt.datetime) -> tuple[list[str], int]:
        """FE trades and FT books while a US session is open (nothing when closed)."""
        pairs = client.data_pairs()
        if us_phase(now) is None:
            return [], 0
        entries: list[dict[str, Any]] = []
        for _ in range(count):
            symbol, type_code = pairs[client.cursor % len(pairs)]
            client.cursor += 1
            if symbol in self.silenced:
                continue
            values = self.us.trade(symbol, now) if type_code == "FE" else self.us.book(symbol, now)
            stex = client.exchanges.get(symbol) or self.us.stex_tp(symbol)
            entries.append({"type": type_code, "name": WIRE_NAMES.get(type_code, type_code), "item": symbol,
                            "stexTp": stex, "values": values})
        frames = [text({"trnm": "REAL", "data": entries[start:start + self.batch]})
                  for start in range(0, len(entries), self.batch)]
        return frames, len(entries)

    @staticmethod
    def us_account_frame(type_code: str, symbol: str, values: dict[str, str]) -> str:
        """An F4 or F5 push (account-level: no ``stexTp``, as in the published examples)."""
        return text({"trnm": "REAL", "data": [{"type": type_code, "name": WIRE_NAMES[type_code], "item": symbol,
                                               "values": values}]})

    @staticmethod
    def session_notice(code: str, now: dt.datetime) -> str:
        """A 0s notice (FID 215 ``code``) at ``now``."""
        values = {"215": code, "20": now.strftime("%H%M%S"), "214": "000000"}
        return text({"trnm": "REAL", "data": [{"type": "0s", "name": "장시작시간", "item": "", "values": values}]})


