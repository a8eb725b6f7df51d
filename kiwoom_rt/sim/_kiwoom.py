"""What the simulated Kiwoom server decides, sans-I/O: logins, registrations, condition search.

``KiwoomLogic.on_message(client, message, clients)`` takes one parsed client message and says
what the server does about it (``Effects``): frames to send back, other clients to kick
(R10001), or this client refused (R10004, then closed). ``ClientState`` is what the server knows
of one client, including which socket it came in on (``market``: ``"kr"`` for
/api/dostk/websocket, ``"us"`` for /api/us/websocket). The asyncio server (``server.py``) owns
the sockets and carries effects out.

On the US socket REG takes items as Kiwoom's examples send them (``{"jmcode", "stex_tp"}``) and,
because two peer clients send them so, as plain symbols too; only FE, FT, F4 and F5 are accepted,
and condition search is G-prefixed (GCNSRLST, GCNSRREQ, GCNSRCLR).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs

from .._catalogue import ACCOUNT_TYPES, registrable
from ..protocol import counted_items
from ..us import EXCHANGE_NAMES
from .conditions import SimConditions
from .tokens import TokenStore

__all__ = ["KICKED_MSG", "NO_HEARTBEAT_MSG", "NO_LOGIN_MSG", "ClientState", "Effects", "KiwoomLogic", "text"]

LOGIN_REFUSED_MSG = "토큰 인증에 실패했습니다. 접속을 종료합니다 [CODE=8005, MESSAGE=Token이 유효하지 않습니다]"
NO_LOGIN_MSG = "Websocket 연결 시 유효한 Token 정보가 없습니다. 연결을 종료합니다."
KICKED_MSG = "동일한 App key로 접속이 되어 기존 세션을 종료합니다."
NO_HEARTBEAT_MSG = "Heartbeat 응답이 없어 연결을 종료합니다."
#: Types the market feed never streams: the account's (pushed on request: ``us_order``) and 0s,
#: which the server announces itself at phase changes.
NO_ACCOUNT_PUSH = ACCOUNT_TYPES | {"0s"}
_CONDITION_TRNMS = frozenset({"CNSRLST", "CNSRREQ", "CNSRCLR"})


def text(frame: dict[str, Any]) -> str:
    """A frame as the server writes it (JSON, Korean unescaped)."""
    return json.dumps(frame, ensure_ascii=False)


def system(code: str, message: str) -> str:
    return text({"trnm": "SYSTEM", "code": code, "message": message})


class ClientState:
    """What the server knows of one client connection."""

    def __init__(self, market: str = "kr") -> None:
        self.market = market
        self.exchanges: dict[str, str] = {}  # US: the stex_tp each symbol was registered with
        self.appkey: str | None = None
        self.logged_in = False
        self.silent = False
        self.closed = False
        self.unanswered_pings = 0
        self.pings_echoed = 0
        self.registrations: dict[str, set[tuple[str, str]]] = {}
        self.listed = False  # sent CNSRLST: realtime condition searches are accepted
        self.watching: set[str] = set()  # condition seqs searched in realtime
        self.credit = 0.0  # events the feed owes this client (fractional)
        self.cursor = 0  # where the feed is in its pairs
        self._pairs: list[tuple[str, str]] | None = None

    @property
    def live(self) -> bool:
        """Logged in, open and not silenced: frames pushed by the server reach it."""
        return self.logged_in and not self.closed and not self.silent

    def data_pairs(self) -> list[tuple[str, str]]:
        """The registered (item, type) pairs the market feed streams, sorted."""
        if self._pairs is None:
            pairs = {pair for group in self.registrations.values() for pair in group}
            self._pairs = sorted(p for p in pairs if p[1] not in NO_ACCOUNT_PUSH)
        return self._pairs

    def registrations_changed(self) -> None:
        self._pairs = None

    def wants(self, type_code: str) -> bool:
        return any(t == type_code for group in self.registrations.values() for _, t in group)


@attrs.define
class Effects:
    """What the server does after one message: send ``replies`` to the client, close the
    ``kicked`` clients (they were told R10001), and close this client if ``close``."""

    replies: list[str] = attrs.Factory(list)
    kicked: list[ClientState] = attrs.Factory(list)
    close: bool = False


class KiwoomLogic:
    """Logins, registrations and condition search as the simulated server answers them.

    Controls (set by the server's test controls): ``refuse_logins`` and ``refuse_conditions``
    count down the next requests to refuse; ``hold_logins`` and ``hold_conditions`` leave
    requests unanswered.
    """

    def __init__(self, tokens: TokenStore, conditions: SimConditions, *, max_items_per_reg: int = 100,
                 max_items: int | None = 200, us_conditions: SimConditions | None = None) -> None:
        self.tokens = tokens
        self.conditions = conditions
        self.us_conditions = us_conditions or conditions
        self.max_items_per_reg = max_items_per_reg
        self.max_items = max_items  # items per connection (account types 00/04/F4/F5 not counted)
        self.refuse_logins = 0
        self.hold_logins = False
        self.refuse_conditions = 0
        self.hold_conditions = False
        self.login_attempts = 0
        self.logins = 0

    def on_message(self, client: ClientState, message: Any, clients: Iterable[ClientState]) -> Effects:
        """One text message of ``client`` (already parsed as JSON, or the raw text)."""
        effects = Effects()
        if message == "PING" or (isinstance(message, dict) and message.get("trnm") == "PING"):
            client.unanswered_pings = 0
            client.pings_echoed += 1
            return effects
        if not isinstance(message, dict):
            return effects
        trnm = message.get("trnm")
        if trnm == "LOGIN":
            return self._login(client, message, clients)
        condition = self._condition_request(client, trnm)
        if trnm not in ("REG", "REMOVE") and condition is None:
            return effects  # unknown here (a domestic CNSR* on the US socket too): ignored
        if not client.logged_in:
            return self.refuse(NO_LOGIN_MSG)
        if condition is None:
            effects.replies.append(text(self._registration(client, str(trnm), message)))
        elif not self.hold_conditions:  # held: received, never answered
            effects.replies.append(text(self._condition(client, condition, message)))
        return effects

    @staticmethod
    def _condition_request(client: ClientState, trnm: Any) -> str | None:
        """The condition request ``trnm`` names on the client's socket (domestic spelling), or None."""
        if not isinstance(trnm, str):
            return None
        if client.market == "us":
            return trnm[1:] if trnm.startswith("G") and trnm[1:] in _CONDITION_TRNMS else None
        return trnm if trnm in _CONDITION_TRNMS else None

    @staticmethod
    def refuse(message: str) -> Effects:
        """R10004 and close (no valid login)."""
        return Effects([system("R10004", message)], close=True)

    def ping_due(self, client: ClientState, max_missed: int) -> tuple[str, bool]:
        """The frame a PING tick sends, and whether the client is then closed (R10002: too many
        PINGs went unanswered)."""
        if client.unanswered_pings >= max_missed:
            return system("R10002", NO_HEARTBEAT_MSG), True
        client.unanswered_pings += 1
        return '{"trnm":"PING"}', False

    def _login(self, client: ClientState, message: dict[str, Any], clients: Iterable[ClientState]) -> Effects:
        self.login_attempts += 1
        if self.hold_logins:
            return Effects()
        appkey = self.tokens.appkey_for(message.get("token"))
        if self.refuse_logins > 0:
            self.refuse_logins -= 1
            appkey = None
        if appkey is None:
            refusal = self.refuse(NO_LOGIN_MSG)
            refusal.replies.insert(0, text({"trnm": "LOGIN", "return_code": 805004, "return_msg": LOGIN_REFUSED_MSG}))
            return refusal
        # one app key, one connection per socket: a second login on the same socket kicks the first
        # (R10001); the domestic and the US socket may be held at once (what the peers assume)
        kicked = [other for other in clients
                  if other is not client and other.logged_in and other.appkey == appkey and not other.closed
                  and other.market == client.market]
        client.appkey = appkey
        client.logged_in = True
        self.logins += 1
        return Effects([text({"trnm": "LOGIN", "return_code": 0, "return_msg": "", "sor_yn": "Y"})], kicked)

    def _registration(self, client: ClientState, trnm: str, message: dict[str, Any]) -> dict[str, Any]:
        def reply(code: int, msg: str) -> dict[str, Any]:
            return {"trnm": trnm, "return_code": code, "return_msg": msg}

        grp_no = message.get("grp_no")
        data = message.get("data")
        if not isinstance(grp_no, str) or not 1 <= len(grp_no) <= 4 or not isinstance(data, list):
            return reply(1, "요청 형식이 올바르지 않습니다")
        pairs: set[tuple[str, str]] = set()
        known = registrable(client.market)
        for entry in data:
            items = entry.get("item") if isinstance(entry, dict) else None
            types = entry.get("type") if isinstance(entry, dict) else None
            if not isinstance(items, list) or not isinstance(types, list):
                return reply(1, "요청 형식이 올바르지 않습니다")
            if len(items) > self.max_items_per_reg:
                return reply(1, f"등록 가능한 종목 수({self.max_items_per_reg})를 초과했습니다")
            for type_code in types:
                if type_code not in known:
                    return reply(1, f"유효하지 않은 실시간 항목입니다: {type_code}")
            codes = []
            for item in items:
                code = self._us_item(client, item) if client.market == "us" else item
                if not isinstance(code, str):
                    return reply(1, f"유효하지 않은 종목입니다: {item!r}")
                codes.append(code)
            pairs.update((code, t) for code in codes for t in types)
        group = client.registrations.setdefault(grp_no, set())
        if trnm == "REG":
            kept = group if message.get("refresh") != "0" else set()
            if self.max_items is not None:
                others = [pairs for name, pairs in client.registrations.items() if name != grp_no]
                after = len(counted_items(set().union(pairs, kept, *others)))
                if after > self.max_items:  # refused whole: nothing registered changes
                    limit = self.max_items
                    return reply(1, f"실시간 등록 가능한 종목 수({limit})를 초과했습니다 (요청 후 {after}종목)")
            if message.get("refresh") == "0":
                group.clear()
            group |= pairs
        else:
            group -= pairs
        client.registrations_changed()
        return reply(0, "")

    @staticmethod
    def _us_item(client: ClientState, item: Any) -> str | None:
        """A US REG item: ``{"jmcode": "NVDA", "stex_tp": "ND"}`` (remembered) or ``"NVDA"``."""
        if isinstance(item, str):
            return item or None
        if not isinstance(item, dict) or set(item) != {"jmcode", "stex_tp"}:
            return None
        symbol, stex = item["jmcode"], item["stex_tp"]
        if not isinstance(symbol, str) or not symbol or stex not in EXCHANGE_NAMES:
            return None
        client.exchanges[symbol] = stex
        return symbol

    def _condition(self, client: ClientState, trnm: str, message: dict[str, Any]) -> dict[str, Any]:
        book = self.us_conditions if client.market == "us" else self.conditions
        seq = str(message.get("seq", "")).strip()
        if self.refuse_conditions > 0:
            self.refuse_conditions -= 1
            return book.refusal(trnm, seq, "조건검색 요청이 거부되었습니다 (simulated refusal)")
        if trnm == "CNSRLST":
            client.listed = True
            return book.list_reply()
        if seq not in book.conditions:
            return book.refusal(trnm, seq, f"조건검색식을 찾을 수 없습니다 (seq {seq!r})")
        if trnm == "CNSRCLR":
            client.watching.discard(seq)
            return book.clear_reply(seq)
        if str(message.get("search_type")) == "1":
            if not client.listed:
                return book.refusal(trnm, seq, "조건검색 목록 조회를 먼저 진행해 주세요")
            client.watching.add(seq)
            return book.realtime_reply(seq)
        return book.search_reply(seq, str(message.get("next_key") or ""))
