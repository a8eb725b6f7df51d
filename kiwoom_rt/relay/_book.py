"""The relay's decisions, sans-I/O: who wants what, with reference counts and leases.

``RelayBook`` holds every consumer's wanted (item, type) pairs and condition watches. It says
which REG/REMOVE/watch/cancel the upstream session needs (``RelayChange``): REG when the first
consumer wants a pair, REMOVE when the last one lets it go, or when its lease runs out.

Nothing here touches a socket, a thread or a clock: ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = ["RelayBook", "RelayChange"]

Pair = tuple[str, str]  # (item, type)


@attrs.define
class RelayChange:
    """What the upstream session must do after a book change."""

    register: dict[str, list[str]] = attrs.Factory(dict)  # type -> items now wanted by someone
    remove: dict[str, list[str]] = attrs.Factory(dict)  # type -> items no one wants any more
    watch: list[str] = attrs.Factory(list)  # condition seqs now watched by someone
    unwatch: list[str] = attrs.Factory(list)  # condition seqs no one watches any more

    def __bool__(self) -> bool:
        return bool(self.register or self.remove or self.watch or self.unwatch)

    def merge(self, other: RelayChange) -> RelayChange:
        for mine, theirs in ((self.register, other.register), (self.remove, other.remove)):
            for type_code, items in theirs.items():
                mine.setdefault(type_code, []).extend(items)
        self.watch.extend(other.watch)
        self.unwatch.extend(other.unwatch)
        return self


@attrs.define
class _Consumer:
    pairs: set[Pair] = attrs.Factory(set)
    seqs: set[str] = attrs.Factory(set)
    seen: float = 0.0


class RelayBook:
    """Reference counts of (item, type) pairs and condition seqs over consumers, with leases.

    A pair is registered upstream while at least one consumer wants it; a consumer whose lease
    (``lease`` seconds since its last message) ran out loses everything it wanted.
    """

    def __init__(self, lease: float = 15.0) -> None:
        if lease <= 0:
            raise ValueError("lease must be > 0")
        self.lease = lease
        self._consumers: dict[str, _Consumer] = {}
        self._pairs: dict[Pair, int] = {}
        self._seqs: dict[str, int] = {}

    @property
    def consumers(self) -> frozenset[str]:
        return frozenset(self._consumers)

    def wanted(self) -> frozenset[Pair]:
        """Every pair some consumer wants."""
        return frozenset(self._pairs)

    def leases(self) -> dict[str, float]:
        """When each consumer's lease runs out (in the clock of the ``now`` it was touched with)."""
        return {name: consumer.seen + self.lease for name, consumer in list(self._consumers.items())}

    def watched(self) -> frozenset[str]:
        return frozenset(self._seqs)

    def count(self, item: str, type_code: str) -> int:
        """How many consumers want (item, type)."""
        return self._pairs.get((item, type_code), 0)

    def wants(self, consumer: str) -> frozenset[Pair]:
        found = self._consumers.get(consumer)
        return frozenset(found.pairs) if found is not None else frozenset()

    def touch(self, consumer: str, now: float) -> None:
        self._consumer(consumer, now)

    def _consumer(self, consumer: str, now: float) -> _Consumer:
        found = self._consumers.get(consumer)
        if found is None:
            found = self._consumers[consumer] = _Consumer()
        found.seen = max(found.seen, now)
        return found

    def subscribe(self, consumer: str, items: Iterable[str], types: Iterable[str], now: float) -> RelayChange:
        return self._set(consumer, self._consumer(consumer, now).pairs | _pairs(items, types), None, now)

    def unsubscribe(self, consumer: str, items: Iterable[str], types: Iterable[str], now: float) -> RelayChange:
        return self._set(consumer, self._consumer(consumer, now).pairs - _pairs(items, types), None, now)

    def watch(self, consumer: str, seq: str, now: float) -> RelayChange:
        return self._set(consumer, None, self._consumer(consumer, now).seqs | {seq}, now)

    def unwatch(self, consumer: str, seq: str, now: float) -> RelayChange:
        return self._set(consumer, None, self._consumer(consumer, now).seqs - {seq}, now)

    def sync(self, consumer: str, pairs: Iterable[Pair], seqs: Iterable[str], now: float) -> RelayChange:
        """Make ``consumer``'s wants exactly these (a lease renewal carries them)."""
        return self._set(consumer, set(pairs), set(seqs), now)

    def leave(self, consumer: str) -> RelayChange:
        """``consumer`` closed: forget everything it wanted."""
        if consumer not in self._consumers:
            return RelayChange()
        change = self._set(consumer, set(), set(), 0.0)
        del self._consumers[consumer]
        return change

    def expire(self, now: float) -> tuple[list[str], RelayChange]:
        """Drop consumers whose lease ran out: (their names, what the upstream must remove)."""
        gone = [name for name, c in self._consumers.items() if now - c.seen > self.lease]
        change = RelayChange()
        for name in gone:
            change.merge(self.leave(name))
        return gone, change

    def _set(self, consumer: str, pairs: set[Pair] | None, seqs: set[str] | None, now: float) -> RelayChange:
        state = self._consumer(consumer, now)
        change = RelayChange()
        if pairs is not None:
            for pair in sorted(pairs - state.pairs):
                count = self._pairs.get(pair, 0)
                self._pairs[pair] = count + 1
                if count == 0:
                    change.register.setdefault(pair[1], []).append(pair[0])
            for pair in sorted(state.pairs - pairs):
                count = self._pairs[pair] - 1
                if count:
                    self._pairs[pair] = count
                else:
                    del self._pairs[pair]
                    change.remove.setdefault(pair[1], []).append(pair[0])
            state.pairs = set(pairs)
        if seqs is not None:
            for seq in sorted(seqs - state.seqs):
                count = self._seqs.get(seq, 0)
                self._seqs[seq] = count + 1
                if count == 0:
                    change.watch.append(seq)
            for seq in sorted(state.seqs - seqs):
                count = self._seqs[seq] - 1
                if count:
                    self._seqs[seq] = count
                else:
                    del self._seqs[seq]
                    change.unwatch.append(seq)
            state.seqs = set(seqs)
        return change


def _pairs(items: Iterable[str], types: Iterable[str]) -> set[Pair]:
    types = list(types)
    return {(item, type_code) for item in items for type_code in types}
