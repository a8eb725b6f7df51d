"""Sans-I/O Kiwoom realtime protocol: request builders and the frame decoder.

No sockets, threads or clocks here: ``decode`` turns one received frame into one message, and the
builders turn requests into frames. The runtime passes ``received_at`` in.

Server quirks handled here (see docs/protocol.md): ``return_code`` arrives as int or numeric string;
SYSTEM uses ``code``/``message`` or ``return_code``/``return_msg``; a bare text ``PING`` occurs;
REAL ``data`` is a list whose entries are decoded independently, so one bad entry never spoils
the others. Events are typed lazily: an entry with unusable values is still delivered, those
fields read None, and one ``DecodeError`` per entry says what was wrong when the first of them is
read (see ``kiwoom_rt.events``). ``decode_frames`` is the hot path: every frame of a socket read
in one call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

from . import _json
from ._catalogue import ACCOUNT_TYPES, DOMESTIC_TYPES, US_TYPES, registrable
from .errors import DecodeError, ProtocolError
from .events import EVENT_TYPES, US_EVENT_TYPES, RealEvent, RealtimeEvent, fast_constructor, item_parts
from .fids import TYPE_NAMES, WIRE_NAMES
from .messages import Ack, ConditionReply, LoginReply, Message, Ping, RealBatch, SystemNotice, Unknown
from .us import EXCHANGE_NAMES, UsItem, check_us_items, wire_items

__all__ = [
    "AUTH_RETRY_CODES",
    "KNOWN_TYPES",
    "PRIVATE_TYPES",
    "US_TYPES",
    "auth_failure_code",
    "check_grp_no",
    "check_items",
    "check_seq",
    "check_types",
    "cnsrclr",
    "cnsrlst",
    "cnsrreq",
    "counted_items",
    "decode",
    "decode_frames",
    "decode_into",
    "echo_ping",
    "is_real_frame",
    "login",
    "reg",
    "remove",
    "types_of",
]

#: Realtime type codes that REG accepts on the domestic socket (case-sensitive: 0G and 0g differ);
#: the US socket's are ``US_TYPES``. Both come from the type catalogue (``_catalogue.TYPES``).
KNOWN_TYPES: Final = DOMESTIC_TYPES


#: The account's own types (order fills, balances): they name no market item, so they do not
#: count against a socket's item limit (``counted_items``).
PRIVATE_TYPES: Final = ACCOUNT_TYPES


def counted_items(pairs: Iterable[tuple[str, str]]) -> set[str]:
    """The items of (item, type) ``pairs`` that count against a socket's item limit: every
    non-empty item registered for at least one type other than ``PRIVATE_TYPES``."""
    return {item for item, type_code in pairs if item and type_code not in PRIVATE_TYPES}


def types_of(market: str) -> frozenset[str]:
    """The realtime types REG accepts on the ``"kr"`` or ``"us"`` socket."""
    return registrable(market)

#: Kiwoom codes after which a fresh token is worth exactly one more LOGIN.
AUTH_RETRY_CODES: Final = frozenset({8005, 8031, 8103})

_TYPE_CODE = re.compile(r"[0-9A-Za-z]{2}\Z")
#: An item code: KRX "005930", NXT "005930_NX", SOR "005930_AL", sector "001"; "" for account
#: and market-wide types (00, 04, 0s).
_ITEM_CODE = re.compile(r"(?:[0-9A-Za-z]{1,12}(?:_NX|_AL)?)?\Z")

_loads: Any = _json.loads  # orjson when a safe version is installed (see kiwoom_rt._json)
_DECODE_ERRORS: tuple[type[BaseException], ...] = (*_json.DECODE_ERRORS, StopIteration)
#: Without orjson: the standard library's C scanner, called directly on the hot path.
_SCAN: Any = _json.SCANNER
#: ``"name":"<a published type's name>",`` as Kiwoom writes it (dropped before scanning).
_KNOWN_NAMES: Final = frozenset(f'"name":"{name}",'.encode() for name in (*TYPE_NAMES.values(), *WIRE_NAMES.values()))


# ---------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------

def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def login(token: str) -> str:
    """The LOGIN frame: the raw access token, no ``Bearer`` prefix."""
    if not isinstance(token, str) or not token.strip():
        raise ValueError("token must be a non-empty string")
    return _dumps({"trnm": "LOGIN", "token": token})


def check_items(items: Iterable[str | UsItem] | str | UsItem, market: str = "kr") -> list[str]:
    """Validate item codes; a single string (or ``UsItem``) is one item. Raises ValueError or TypeError.

    Domestic codes on the ``"kr"`` socket; on ``"us"``, US items (``UsItem`` or ``"NASDAQ:NVDA"``),
    returned as their canonical strings (``kiwoom_rt.us``). Either refuses the other's items.
    """
    if market == "us":
        return check_us_items(items)
    given = [items] if isinstance(items, (str, UsItem)) else list(items)  # reg("005930") is one item, not six
    result: list[str] = []
    for item in given:
        if isinstance(item, UsItem):
            raise ValueError(f"{item!r} is a US item: subscribe it on a US session (US_PRODUCTION_URL)")
        if not isinstance(item, str):
            raise TypeError(f"item codes must be strings, got {item!r}")
        if not _ITEM_CODE.match(item):
            if ":" in item:
                raise ValueError(f"{item!r} looks like a US item: subscribe it on a US session (US_PRODUCTION_URL)")
            raise ValueError(f"malformed item code {item!r} (expected e.g. 005930, 005930_NX or 005930_AL)")
        result.append(item)
    if not result:
        raise ValueError("at least one item is needed (use [''] for account and market types)")
    return result


def check_types(types: Iterable[str] | str) -> list[str]:
    """Validate realtime type codes (two ASCII letters or digits, case-sensitive)."""
    if isinstance(types, str):
        types = [types]
    result = list(types)
    for type_code in result:
        if not isinstance(type_code, str) or not _TYPE_CODE.match(type_code):
            raise ValueError(f"malformed realtime type code {type_code!r}")
    if not result:
        raise ValueError("at least one realtime type is needed")
    return result


def check_grp_no(grp_no: str) -> str:
    """Validate a group number: a string of one to four characters."""
    if not isinstance(grp_no, str) or not 1 <= len(grp_no) <= 4 or not grp_no.isalnum():
        raise ValueError(f"grp_no must be 1 to 4 letters or digits, got {grp_no!r}")
    return grp_no


def _wire(items: Iterable[str] | str, market: str, us_item_format: str) -> list[Any]:
    checked = check_items(items, market)
    return wire_items(checked, us_item_format) if market == "us" else checked


def reg(
    items: Iterable[str] | str, types: Iterable[str] | str, grp_no: str = "1", refresh: bool = True, *,
    market: str = "kr", us_item_format: str = "object",
) -> str:
    """A REG frame. ``refresh=True`` keeps the group's earlier registrations, False replaces them.

    On the ``"us"`` socket, items are ``UsItem``s or ``"NASDAQ:NVDA"`` strings, sent as
    ``{"jmcode": "NVDA", "stex_tp": "ND"}`` (or as ``"NVDA"`` with ``us_item_format="string"``).
    """
    return _dumps({
        "trnm": "REG",
        "grp_no": check_grp_no(grp_no),
        "refresh": "1" if refresh else "0",
        "data": [{"item": _wire(items, market, us_item_format), "type": check_types(types)}],
    })


def remove(items: Iterable[str] | str, types: Iterable[str] | str, grp_no: str = "1", *,
           market: str = "kr", us_item_format: str = "object") -> str:
    """A REMOVE frame (no ``refresh`` key); US items as ``reg`` sends them."""
    return _dumps({
        "trnm": "REMOVE",
        "grp_no": check_grp_no(grp_no),
        "data": [{"item": _wire(items, market, us_item_format), "type": check_types(types)}],
    })


def check_seq(seq: str) -> str:
    """Validate a condition's sequence number: one to four ASCII digits (spaces around are dropped)."""
    if not isinstance(seq, str) or not seq.strip().isdigit() or not seq.strip().isascii() or len(seq.strip()) > 4:
        raise ValueError(f"a condition seq is a string of 1 to 4 digits, got {seq!r}")
    return seq.strip()


def _condition_trnm(trnm: str, market: str) -> str:
    return "G" + trnm if market == "us" else trnm


def cnsrlst(market: str = "kr") -> str:
    """The condition list request (ka10171; GCNSRLST, usa20280, on the US socket)."""
    return _dumps({"trnm": _condition_trnm("CNSRLST", market)})


def cnsrreq(seq: str, *, realtime: bool, next_key: str = "", exchange: str = "K", market: str = "kr") -> str:
    """A condition search (ka10172 one-shot, ka10173 realtime). ``next_key`` asks for the next page.

    On the US socket: GCNSRREQ (usa20281, usa20290), without ``stex_tp``.
    """
    frame: dict[str, Any] = {"trnm": _condition_trnm("CNSRREQ", market), "seq": check_seq(seq),
                             "search_type": "1" if realtime else "0"}
    if market != "us":
        frame["stex_tp"] = exchange
    if not realtime:
        frame.update(cont_yn="Y" if next_key else "N", next_key=next_key)
    return _dumps(frame)


def cnsrclr(seq: str, market: str = "kr") -> str:
    """Stop a realtime condition search (ka10174; GCNSRCLR, usa20291, on the US socket)."""
    return _dumps({"trnm": _condition_trnm("CNSRCLR", market), "seq": check_seq(seq)})


def echo_ping(ping: Ping) -> str | bytes:
    """The PING echo: the received frame, unchanged."""
    return ping.raw


# ---------------------------------------------------------------------------------------------
# Decoder
# ---------------------------------------------------------------------------------------------

def _return_code(obj: dict[str, Any], frame: str | bytes, key: str = "return_code") -> int:
    code = obj.get(key)
    if type(code) is int:
        return code
    if isinstance(code, str):
        text = code.strip()
        if text.lstrip("-").isdigit() and text.isascii():
            return int(text)
    raise ProtocolError(f"{obj.get('trnm')} frame has no usable {key}", frame)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def decode(frame: str | bytes | bytearray | memoryview, *, received_at: float = 0.0) -> Message:
    """Turn one received frame into one message; raise ``ProtocolError`` for anything unusable.

    ``received_at`` stamps the events of a REAL frame (the runtime passes ``time.time()``).
    Never raises any other exception type.
    """
    events: list[RealtimeEvent] = []
    result = decode_into(frame, events, received_at=received_at)
    if type(result) is tuple:
        return _new_batch(tuple(events), result)
    return result  # type: ignore[return-value]


def decode_into(frame: str | bytes | bytearray | memoryview, events: list[Any], *,
                received_at: float = 0.0) -> Message | tuple[DecodeError, ...]:
    """``decode`` without the batch: a REAL frame's events are appended to ``events``, in order,
    and its bad entries are returned as a tuple (empty when every entry decoded). Any other
    frame returns its message. Raises ``ProtocolError`` exactly as ``decode`` does.
    """
    _, others = decode_frames((frame,), events, received_at=received_at)
    if others is None:
        return _NO_ERRORS
    errors = []
    for _, found in others:
        if type(found) is DecodeError:
            errors.append(found)
        elif isinstance(found, ProtocolError):
            raise found
        else:
            return found  # type: ignore[return-value]
    return tuple(errors)


#: What ``decode_frames`` found besides events: (events decoded before it, message or error).
Found = tuple[int, "Message | ProtocolError | DecodeError"]


def decode_frames(frames: Iterable[str | bytes | bytearray | memoryview], events: list[Any], *,
                  received_at: float = 0.0, counts: dict[str, int] | None = None,
                  report: Callable[[DecodeError], None] | None = None,
                  us: Mapping[str, str] | None = None) -> tuple[int, list[Found] | None]:
    """Decode ``frames`` in order; the hot path of every session, replay and export.

    The events of REAL frames are appended to ``events`` (and counted per type in ``counts``).
    Everything else is returned in order, each with the number of events decoded before it, so
    the caller can keep it in its place among them: a non-REAL message to act on, a frame that
    is unusable (``ProtocolError``), or an entry that is (``DecodeError``). Returns
    (REAL frames decoded, those findings or None when there were none, the common case).

    Events are typed lazily (``kiwoom_rt.events``); ``report`` receives the ``DecodeError`` of an
    entry whose values turn out to be unusable when a field is first read. Never raises.

    ``us`` is given on the US socket: the exchange of each subscribed symbol (``{"NVDA":
    "NASDAQ"}``), for entries that do not carry ``stexTp``. There, a type-02 hit reads as S2.
    US entries of either socket get ``code`` (the symbol as pushed) and ``exchange`` here.
    """
    others: list[Found] | None = None
    real = 0
    run_type: Any = None  # events are counted per run of one type (a batch is mostly one type)
    run = 0
    append = events.append
    loads = _loads
    scan = _SCAN
    known_names = _KNOWN_NAMES
    classes = _CLASSES if us is None else _US_CLASSES
    us_types = _US_TYPE_CODES if us is None else _US_SOCKET_TYPE_CODES
    us_names = EXCHANGE_NAMES
    new = _new_object
    set_state = _set_state
    proxy = MappingProxyType
    for given in frames:
        frame: Any = given
        kind = type(frame)
        if kind is not bytes and kind is not str:
            if not isinstance(frame, (bytearray, memoryview)):  # a caller's mistake, reported all the same
                others = others or []
                others.append((len(events), ProtocolError(f"frame must be str or bytes, not {kind.__name__}",
                                                          repr(frame))))
                continue
            frame = bytes(frame)
        try:
            if scan is None:
                obj = loads(frame)
            else:  # the standard library's C scanner, called directly (see kiwoom_rt._json)
                text = frame
                if kind is bytes:
                    # A known type's Korean name is dropped before scanning: the decoder never
                    # reads it (the class has it), and one non-ASCII string in a frame sends
                    # every string of the frame through CPython's slower UCS-2 path. Its bytes
                    # can only match outside a string: inside one, every quote is escaped.
                    at = frame.find(b'"name":"')
                    if at >= 0:
                        named = frame[at:frame.find(b'"', at + 8) + 2]
                        if named in known_names:
                            text = frame.replace(named, b"")
                    text = text.decode("utf-8")
                obj, end = scan(text, 0)
                if end != len(text):
                    raise ValueError("trailing data")
        except _DECODE_ERRORS:
            try:
                obj = loads(frame)  # judged again, whole and as received: the proper error, or an edge case
            except _DECODE_ERRORS as exc:
                others = others or []
                others.append((len(events), _unusable(frame, exc)))
                continue
        if type(obj) is dict and obj.get("trnm") == "REAL":
            data = obj.get("data")
            if type(data) is not list:
                if type(data) is not dict:  # tolerate a single entry not wrapped in a list
                    others = others or []
                    others.append((len(events), ProtocolError("REAL frame has no data list", frame)))
                    continue
                data = [data]
            real += 1
            for entry in data:
                # the hot path: a well-formed entry of a published type, with as few checks as
                # can be afforded (anything else raises here and takes the careful path)
                try:
                    type_code = entry["type"]
                    cls = classes[type_code]
                    item = entry["item"]
                    values = entry["values"]
                    if type(item) is not str or type(values) is not dict:
                        raise TypeError
                except (KeyError, TypeError, IndexError):
                    try:
                        event, problem = _decode_other(entry, received_at, us)
                    except DecodeError as exc:
                        problem = exc
                    else:
                        append(event)
                        if counts is not None:
                            counts[event.type] = counts.get(event.type, 0) + 1
                    if problem is not None:
                        others = others or []
                        others.append((len(events), problem))
                    continue
                event = new(cls)
                if type_code in us_types:  # a US event: its code is the symbol, its exchange from stexTp
                    stex = entry.get("stexTp")
                    exchange = us_names.get(stex) if type(stex) is str else None
                    if exchange is None:  # no usable stexTp: the subscription, or nothing (and a report)
                        exchange, problem = _us_exchange(entry, item, us)
                        if problem is not None:
                            others = others or []
                            others.append((len(events) + 1, problem))
                    set_state(event, {"item": item, "values": proxy(values), "received_at": received_at,
                                      "_report": report, "code": item, "exchange": exchange})
                    type_code = cls.type  # 02 read as S2 on the US socket
                else:
                    set_state(event, {"item": item, "values": proxy(values), "received_at": received_at,
                                      "_report": report})
                append(event)
                if type_code == run_type:
                    run += 1
                else:
                    if run and counts is not None:
                        counts[run_type] = counts.get(run_type, 0) + run
                    run_type, run = type_code, 1
            continue
        found: Message | ProtocolError
        try:
            found = _message(obj, frame)
        except ProtocolError as exc:
            found = exc
        others = others or []
        others.append((len(events), found))
    if run and counts is not None:
        counts[run_type] = counts.get(run_type, 0) + run
    return real, others


def _unusable(frame: str | bytes, error: BaseException) -> Ping | ProtocolError:
    """A frame that is not JSON: a bare text PING (echoed too), or bad input."""
    if len(frame) == 4 and (frame == b"PING" or frame == "PING"):
        return Ping(frame)
    return ProtocolError(f"frame is not valid JSON ({type(error).__name__})", frame)


def _message(obj: Any, raw: str | bytes) -> Message:
    """A parsed frame that is not REAL, as its message; raises ProtocolError if unusable."""
    if type(obj) is not dict:
        raise ProtocolError("frame is not a JSON object", raw)
    trnm = obj.get("trnm")
    if trnm == "REAL":
        raise ProtocolError("REAL frame has no data list", raw)
    if trnm == "PING":
        return Ping(raw)
    if not isinstance(trnm, str):
        raise ProtocolError("frame has no trnm", raw)
    if trnm == "LOGIN":
        extra = {k: v for k, v in obj.items() if k not in ("trnm", "return_code", "return_msg")}
        return LoginReply(_return_code(obj, raw), _text(obj.get("return_msg")),
                          MappingProxyType(extra))
    if trnm in ("REG", "REMOVE"):
        return Ack(trnm, _return_code(obj, raw), _text(obj.get("return_msg")))
    if trnm == "SYSTEM":
        code = obj.get("code", obj.get("return_code"))
        message = obj.get("message", obj.get("return_msg"))
        if code is None and message is None:
            raise ProtocolError("SYSTEM frame has neither code nor message", raw)
        return SystemNotice(_text(code), _text(message))
    if trnm in _CONDITION_TRNMS:
        return _condition_reply(trnm, obj, raw)
    return Unknown(trnm, MappingProxyType(obj))


#: How Kiwoom spells the start of a REAL frame (its key order in every published example).
REAL_PREFIX: Final = b'{"trnm":"REAL"'


def is_real_frame(frame: bytes) -> bool:
    """True when ``frame`` is a REAL frame: by its start (Kiwoom's key order), else by parsing it.

    The one place that decides it for frames taken undecoded (a relay forwards them as received).
    """
    if frame.startswith(REAL_PREFIX):
        return True
    if b'"REAL"' not in frame:
        return False
    try:
        obj = _loads(frame)
    except _DECODE_ERRORS:
        return False
    return type(obj) is dict and obj.get("trnm") == "REAL"


#: Condition search replies by ``trnm``, as the request they answer. The US socket's replies are
#: G-prefixed; its list reply is documented as ``GCNSRLT`` in one table, and its search reply as
#: ``CNSRREQ`` in another: every spelling is read.
_CONDITION_TRNMS: Final = MappingProxyType({
    "CNSRLST": "CNSRLST", "CNSRREQ": "CNSRREQ", "CNSRCLR": "CNSRCLR",
    "GCNSRLST": "CNSRLST", "GCNSRLT": "CNSRLST", "GCNSRREQ": "CNSRREQ", "GCNSRCLR": "CNSRCLR",
})


def _condition_reply(trnm: str, obj: dict[str, Any], frame: str | bytes) -> ConditionReply:
    trnm = _CONDITION_TRNMS[trnm]
    code = _return_code(obj, frame) if obj.get("return_code") is not None else 0
    data = obj.get("data")
    if data is None:
        data = []
    elif type(data) is not list:
        raise ProtocolError(f"{trnm} reply has a data that is not a list", frame)
    seq = obj.get("seq")
    if seq is not None and not isinstance(seq, (str, int)):
        raise ProtocolError(f"{trnm} reply has an unusable seq", frame)
    return ConditionReply(trnm, _text(seq).strip(), code, _text(obj.get("return_msg")), tuple(data),
                          _text(obj.get("cont_yn")).strip().upper() == "Y", _text(obj.get("next_key")))


_NO_ERRORS: tuple[DecodeError, ...] = ()
_new_batch: Callable[..., RealBatch] = fast_constructor(RealBatch)
_new_object = object.__new__
#: Sets a new event's instance dict: the ``__dict__`` descriptor's own setter, with no attribute
#: lookup per call.
_set_state: Callable[[Any, dict[str, Any]], None] = RealtimeEvent.__dict__["__dict__"].__set__
_CLASSES: dict[str, type[RealtimeEvent]] = dict(EVENT_TYPES)
#: On the US socket a type-02 hit is a US one.
_US_CLASSES: dict[str, type[RealtimeEvent]] = {**EVENT_TYPES, "02": US_EVENT_TYPES["S2"]}
_US_TYPE_CODES: Final = frozenset(US_EVENT_TYPES)
_US_SOCKET_TYPE_CODES: Final = _US_TYPE_CODES | {"02"}


def _us_exchange(entry: dict[str, Any], item: str,
                 exchanges: Mapping[str, str] | None) -> tuple[str | None, DecodeError | None]:
    """A US entry's exchange when its ``stexTp`` did not name one: ``stex_tp`` (the other
    spelling), else the subscription's, else None; an unknown code is reported as well."""
    stex = entry.get("stexTp", entry.get("stex_tp"))
    exchange = EXCHANGE_NAMES.get(stex) if type(stex) is str else None
    if exchange is not None:
        return exchange, None
    exchange = exchanges.get(item) if exchanges else None
    if stex is None or (type(stex) is str and not stex.strip()):
        return exchange, None
    type_code = entry.get("type")
    return exchange, DecodeError(f"{type_code} entry has an unknown stexTp {stex!r} (known: ND, NY, NA)", entry,
                                 type=str(type_code), item=item)


def _decode_other(entry: Any, received_at: float,
                  us: Mapping[str, str] | None = None) -> tuple[RealtimeEvent, DecodeError | None]:
    """An entry of a type without a class (``RealEvent``), or a malformed entry (DecodeError)."""
    if type(entry) is not dict:
        raise DecodeError("REAL entry is not an object", entry)
    type_code = entry.get("type")
    item = entry.get("item")
    values = entry.get("values")
    if type(type_code) is not str or not type_code:
        raise DecodeError("REAL entry has no type", entry, item=_text(item))
    if type(item) is not str:
        raise DecodeError("REAL entry has no item", entry, type=type_code)
    if type(values) is not dict:
        raise DecodeError("REAL entry has no values object", entry, type=type_code, item=item)
    name = entry.get("name")
    code, exchange = item_parts(RealEvent, item)
    if us is not None:  # a US symbol is never split
        stex = entry.get("stexTp", entry.get("stex_tp"))
        code, exchange = item, EXCHANGE_NAMES.get(stex) if type(stex) is str else us.get(item)
    event = RealEvent(item, code, exchange, MappingProxyType(values), received_at, type_code,
                      name if type(name) is str and name else TYPE_NAMES.get(type_code, ""))
    bad = [fid for fid, value in values.items() if type(value) is not str]
    problem = None
    if bad:
        problem = DecodeError(f"values of FIDs {', '.join(bad)} are not strings", entry,
                              type=type_code, item=item)
    return event, problem


_AUTH_CODE_IN_MESSAGE = re.compile(r"(?:CODE=|\[)(\d{4})\b")


def auth_failure_code(return_code: int | None, return_msg: str) -> int | None:
    """The auth code (8005, 8031, 8103) behind a LOGIN refusal, or None for any other refusal.

    The server wraps it: ``805004`` with ``[CODE=8005, MESSAGE=...]`` in the message.
    """
    if return_code in AUTH_RETRY_CODES:
        return return_code
    for match in _AUTH_CODE_IN_MESSAGE.finditer(return_msg or ""):
        code = int(match.group(1))
        if code in AUTH_RETRY_CODES:
            return code
    return None
