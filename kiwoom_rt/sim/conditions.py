"""The simulator's condition search (pure): conditions, their members and replies as Kiwoom sends them.

Kiwoom's conventions kept here: replies pad ``seq`` with spaces, codes carry a market prefix
(``A005930``), numbers in one-shot rows are zero-padded (signed ones as ``-00000100``), one-shot
results come in pages (``cont_yn``/``next_key``), and a realtime search is refused on a
connection that has not asked for the list (CNSRLST) first.

``SimUsConditions`` is the US socket's (GCNSRLST, GCNSRREQ, GCNSRCLR): symbols as they are,
decimal prices, ``stex_tp`` in rows and ``stexTp`` beside hits (type S2). Its reply spellings are
configurable, because the sources disagree (``GCNSRLST`` or ``GCNSRLT``; ``GCNSRREQ`` or
``CNSRREQ``).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from typing import Any

from .market import RegularMarket, hhmmss
from .us_market import UsMarket

__all__ = ["DEFAULT_CONDITIONS", "DEFAULT_US_CONDITIONS", "SimConditions", "SimUsConditions"]

#: seq -> name of the conditions every simulated user has written in the HTS.
DEFAULT_CONDITIONS: Mapping[str, str] = {"0": "급등주", "1": "거래량 급증", "4": "골든크로스"}
_UNIVERSE = ("005930", "000660", "035420", "035720", "005380", "051910", "006400", "000270", "068270",
             "105560", "055550", "012330")


def padded_seq(seq: str) -> str:
    """The seq as replies carry it: padded with spaces to three characters."""
    return f"{seq:<3}"


def _zero_padded(value: int, width: int = 9) -> str:
    return f"-{abs(value):0{width - 1}d}" if value < 0 else f"{value:0{width}d}"


class SimConditions:
    """Conditions and their members; the server asks it for replies and member changes."""

    universe: tuple[str, ...] = _UNIVERSE
    rng_name = "conditions"

    def __init__(self, conditions: Mapping[str, str] | None = None, *, seed: int = 0, page_size: int = 5,
                 market: RegularMarket | None = None) -> None:
        self.conditions = dict(self._defaults() if conditions is None else conditions)
        self.page_size = max(1, page_size)
        self._rng = random.Random(f"{self.rng_name}:{seed}")
        self._market = market or RegularMarket(seed)
        self.members: dict[str, list[str]] = {
            seq: sorted(self._rng.sample(self.universe, 4)) for seq in self.conditions}

    @staticmethod
    def _defaults() -> Mapping[str, str]:
        return DEFAULT_CONDITIONS

    def trnm(self, trnm: str) -> str:
        """The ``trnm`` a reply to ``trnm`` carries."""
        return trnm

    def list_reply(self) -> dict[str, Any]:
        return {"trnm": "CNSRLST", "return_code": 0, "return_msg": "",
                "data": [[seq, name] for seq, name in self.conditions.items()]}

    def refusal(self, trnm: str, seq: str, message: str) -> dict[str, Any]:
        return {"trnm": self.trnm(trnm), "seq": padded_seq(seq), "return_code": 1, "return_msg": message}

    def _row(self, code: str) -> dict[str, str]:
        stock = self._market.stock(code)
        change = stock.last - stock.close
        rate = round(change * 100 / stock.close, 2)
        sign = "2" if change > 0 else "5" if change < 0 else "3"
        return {"9001": f"A{code}", "302": f"종목{code}", "10": _zero_padded(stock.last), "25": sign,
                "11": _zero_padded(change), "12": f"{'-' if rate < 0 else ''}{abs(rate):09.2f}",
                "13": _zero_padded(stock.volume), "16": _zero_padded(stock.open or stock.close),
                "17": _zero_padded(stock.high or stock.close), "18": _zero_padded(stock.low or stock.close)}

    def search_reply(self, seq: str, next_key: str) -> dict[str, Any]:
        """One page of a one-shot search."""
        start = int(next_key) if next_key.isdigit() else 0
        codes = self.members[seq]
        page = codes[start:start + self.page_size]
        more = start + self.page_size < len(codes)
        return {"trnm": self.trnm("CNSRREQ"), "seq": padded_seq(seq), "cont_yn": "Y" if more else "N",
                "next_key": str(start + self.page_size) if more else "", "return_code": 0, "return_msg": "",
                "data": [self._row(code) for code in page]}

    def realtime_reply(self, seq: str) -> dict[str, Any]:
        """The current members, answering a realtime search."""
        return {"trnm": self.trnm("CNSRREQ"), "seq": padded_seq(seq), "return_code": 0, "return_msg": "",
                "data": [self._member(code) for code in self.members[seq]]}

    def _member(self, code: str) -> dict[str, str]:
        return {"jmcode": f"A{code}"}

    def clear_reply(self, seq: str) -> dict[str, Any]:
        return {"trnm": self.trnm("CNSRCLR"), "seq": padded_seq(seq), "return_code": 0, "return_msg": ""}

    def change(self, seq: str, code: str, entered: bool) -> bool:
        """Move ``code`` into or out of ``seq``; False if that changes nothing."""
        members = self.members[seq]
        if entered == (code in members):
            return False
        if entered:
            members.append(code)
            members.sort()
        else:
            members.remove(code)
        return True

    def random_change_due(self, probability: float) -> bool:
        """A seeded coin with ``probability`` of heads (the market's pace of changes)."""
        return self._rng.random() < probability

    def random_change(self) -> tuple[str, str, bool] | None:
        """A plausible entry or exit somewhere (the market moving), or None."""
        if not self.conditions:
            return None
        seq = self._rng.choice(sorted(self.conditions))
        code = self._rng.choice(self.universe)
        entered = code not in self.members[seq]
        self.change(seq, code, entered)
        return seq, code, entered

    def hit_frame(self, seq: str, code: str, entered: bool, moment: dt.datetime | dt.time) -> dict[str, Any]:
        """The type-02 REAL push for one entry or exit."""
        return {"trnm": "REAL", "data": [{"type": "02", "name": "조건검색", "item": code, "values": {
            "841": seq, "9001": code, "843": "I" if entered else "D", "20": hhmmss(moment), "907": "2"}}]}


#: seq -> name of the US conditions every simulated user has written in 영웅문Global.
DEFAULT_US_CONDITIONS: Mapping[str, str] = {"0": "나스닥 급등", "1": "대형 기술주", "2": "배당주"}


class SimUsConditions(SimConditions):
    """The US socket's condition search: G-prefixed requests, symbols and decimal prices.

    ``spellings`` maps a request's ``trnm`` to the one its reply carries; by default each reply
    carries its request's name (``GCNSRLST``, ``GCNSRREQ``, ``GCNSRCLR``, as the official example
    scripts read them). ``{"GCNSRLST": "GCNSRLT", "GCNSRREQ": "CNSRREQ"}`` is the other reading.
    """

    universe = ("AAPL", "NVDA", "MSFT", "TSLA", "AMZN", "META", "GOOGL", "COIN", "KO", "JPM", "XOM", "SPY")
    rng_name = "us-conditions"

    def __init__(self, conditions: Mapping[str, str] | None = None, *, seed: int = 0, page_size: int = 5,
                 us_market: UsMarket | None = None, spellings: Mapping[str, str] | None = None) -> None:
        super().__init__(conditions, seed=seed, page_size=page_size)
        self._us = us_market or UsMarket(seed)
        self.spellings = dict(spellings or {})

    @staticmethod
    def _defaults() -> Mapping[str, str]:
        return DEFAULT_US_CONDITIONS

    def trnm(self, trnm: str) -> str:
        request = trnm if trnm.startswith("G") else "G" + trnm
        return self.spellings.get(request, request)

    def list_reply(self) -> dict[str, Any]:
        return {**super().list_reply(), "trnm": self.trnm("GCNSRLST")}

    def _row(self, code: str) -> dict[str, str]:
        return self._us.condition_row(code)

    def _member(self, code: str) -> dict[str, str]:
        return {"stex_tp": self._us.stex_tp(code), "jmcode": code}

    def hit_frame(self, seq: str, code: str, entered: bool, moment: dt.datetime | dt.time) -> dict[str, Any]:
        """The S2 REAL push for one entry or exit (the usa20290 example's shape)."""
        return {"trnm": "REAL", "data": [{"type": "S2", "name": "조건검색", "item": code,
                                          "stexTp": self._us.stex_tp(code), "values": {
            "20": hhmmss(moment), "841": seq, "843": "I" if entered else "D", "907": "2", "9001": code}}]}
