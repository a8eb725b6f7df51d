"""Wanted registrations and the REG/REMOVE request pipeline (sans-I/O).

The server acknowledges REG and REMOVE without saying which request an ack answers, so requests
go one at a time and acks pair with them in order. The wanted registrations (grp_no -> set of
(item, type)) are kept apart from the connection, so that every new connection can be given all
of them again, minus what was unsubscribed (the "wanted vs confirmed" split of python-kis).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import attrs

from . import protocol
from .messages import Ack

__all__ = ["Registrations", "Request", "RequestPipeline"]

Pair = tuple[str, str]  # (item, type)


@attrs.define(eq=False)
class Request:
    """One REG or REMOVE frame, and the ids of the application's calls waiting for its ack."""

    kind: str  # "REG" or "REMOVE"
    grp_no: str
    items: tuple[str, ...]
    types: tuple[str, ...]
    refresh: bool
    frame: str
    asked_by: list[int] = attrs.field(factory=list)
    sent_at: float | None = None


def build_requests(kind: str, grp_no: str, items: Sequence[str], types: Sequence[str], refresh: bool,
                   chunk_size: int, asked_by: int | None = None, *, market: str = "kr",
                   us_item_format: str = "object") -> list[Request]:
    """REG/REMOVE requests for ``items`` in chunks of at most ``chunk_size`` items.

    Only the first REG chunk carries ``refresh=False`` (it replaces the group); the later chunks
    keep what the first one registered. ``market="us"``: items are canonical US items
    (``"NASDAQ:NVDA"``), sent in ``us_item_format`` (``protocol.reg``).
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    requests = []
    for start in range(0, len(items), chunk_size):
        chunk = tuple(items[start:start + chunk_size])
        keep = refresh or start > 0
        frame = (protocol.reg(chunk, types, grp_no, keep, market=market, us_item_format=us_item_format)
                 if kind == "REG" else
                 protocol.remove(chunk, types, grp_no, market=market, us_item_format=us_item_format))
        requests.append(Request(kind, grp_no, chunk, tuple(types), keep, frame,
                                [asked_by] if asked_by is not None else []))
    return requests


class Registrations:
    """What the user wants registered, by group: {grp_no: {(item, type), ...}}.

    Items are the session's canonical strings (``"005930"``, ``"NASDAQ:NVDA"``)."""

    def __init__(self) -> None:
        self._groups: dict[str, set[Pair]] = {}
        #: the pairs the server acknowledged on the current connection
        self.confirmed: set[Pair] = set()

    def acknowledged(self, request: Request) -> None:
        """The server accepted ``request`` (REG or REMOVE) on the current connection."""
        pairs = {(item, type_code) for item in request.items for type_code in request.types}
        if request.kind == "REG":
            self.confirmed |= pairs
        else:
            self.confirmed -= pairs

    def wanted(self) -> set[Pair]:
        """Every wanted pair, whatever its group."""
        return set().union(*self._groups.values()) if self._groups else set()

    def add(self, grp_no: str, items: Iterable[str], types: Iterable[str], refresh: bool = True) -> None:
        pairs = {(item, type_code) for item in items for type_code in types}
        if refresh:
            self._groups.setdefault(grp_no, set()).update(pairs)
        else:
            self._groups[grp_no] = pairs

    def remove(self, grp_no: str, items: Iterable[str], types: Iterable[str]) -> None:
        group = self._groups.get(grp_no)
        if group is None:
            return
        gone = {(item, type_code) for item in items for type_code in types}
        group.difference_update(gone)
        self.confirmed -= gone
        if not group:
            del self._groups[grp_no]

    def counted_items(self) -> int:
        """How many items count against the socket's item limit (``protocol.counted_items``)."""
        return len(protocol.counted_items(self.wanted()))

    def counted_items_after(self, grp_no: str, items: Iterable[str], types: Iterable[str], refresh: bool) -> int:
        """How many items would count after ``add(grp_no, items, types, refresh)`` (nothing changes)."""
        pairs = {(item, type_code) for item in items for type_code in types}
        others = [group for name, group in self._groups.items() if name != grp_no]
        kept = self._groups.get(grp_no, set()) if refresh else set()
        return len(protocol.counted_items(set().union(pairs, kept, *others)))

    def snapshot(self) -> dict[str, set[Pair]]:
        """A copy: {grp_no: {(item, type), ...}} (empty groups left out)."""
        return {grp_no: set(pairs) for grp_no, pairs in self._groups.items() if pairs}

    def restore_requests(self, chunk_size: int, *, market: str = "kr",
                         us_item_format: str = "object") -> dict[str, list[Request]]:
        """REG requests that rebuild every wanted registration on a fresh connection, by group.

        Items sharing the same set of types go together, so 500 items of 0E make five requests.
        """
        result: dict[str, list[Request]] = {}
        for grp_no in sorted(self._groups):
            by_item: dict[str, set[str]] = {}
            for item, type_code in self._groups[grp_no]:
                by_item.setdefault(item, set()).add(type_code)
            by_types: dict[tuple[str, ...], list[str]] = {}
            for item, types in by_item.items():
                by_types.setdefault(tuple(sorted(types)), []).append(item)
            requests: list[Request] = []
            for types_key in sorted(by_types):
                requests += build_requests("REG", grp_no, sorted(by_types[types_key]), types_key,
                                           True, chunk_size, market=market, us_item_format=us_item_format)
            if requests:
                result[grp_no] = requests
        return result


class RequestPipeline:
    """Sends REG/REMOVE one at a time and pairs each ack with the request in flight.

    Methods return the request to send next (or None); the caller sends ``request.frame`` and
    records nothing else. Times are passed in (``now``); nothing here reads a clock.
    """

    def __init__(self) -> None:
        self._queue: deque[Request] = deque()
        self.in_flight: Request | None = None
        self.open = False  # True while logged in on a connection

    @property
    def pending(self) -> int:
        return len(self._queue) + (self.in_flight is not None)

    def _next(self, now: float) -> Request | None:
        if not self.open or self.in_flight is not None or not self._queue:
            return None
        self.in_flight = self._queue.popleft()
        self.in_flight.sent_at = now
        return self.in_flight

    def enqueue(self, requests: Iterable[Request], now: float) -> Request | None:
        self._queue.extend(requests)
        return self._next(now)

    def connection_ready(self, requests: Iterable[Request], now: float) -> Request | None:
        """Logged in on a new connection: start with ``requests`` (the restore set)."""
        self.open = True
        self._queue.extendleft(reversed(list(requests)))
        return self._next(now)

    def on_ack(self, ack: Ack, now: float) -> tuple[Request | None, Request | None]:
        """Pair ``ack`` with the request in flight: returns (answered request or None, next to send)."""
        finished = self.in_flight
        if finished is None:
            return None, None
        self.in_flight = None
        return finished, self._next(now)

    def connection_lost(self) -> list[Request]:
        """The connection ended: every queued or in-flight request is void. Returns them."""
        self.open = False
        abandoned = ([self.in_flight] if self.in_flight is not None else []) + list(self._queue)
        self.in_flight = None
        self._queue.clear()
        return abandoned

    def overdue(self, now: float, timeout: float) -> Request | None:
        """The request in flight if its ack is more than ``timeout`` seconds late."""
        request = self.in_flight
        if request is not None and request.sent_at is not None and now - request.sent_at > timeout:
            return request
        return None
