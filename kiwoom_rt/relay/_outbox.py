"""The relay's bounded buffer of feed entries waiting for Redis (runtime: locks).

The upstream session's reading thread puts REAL frames as received; the publishing thread
drains them in batches. While Redis is away the buffer holds up to ``limit`` frames, then drops
the oldest, counted and announced to consumers as a gap.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from ._wire import REAL, feed_frames, number_entry

__all__ = ["Outbox"]


class _Frames:
    """REAL frames of one read, waiting to become one feed entry."""

    __slots__ = ("frames", "received_at")

    def __init__(self, frame: bytes, received_at: float) -> None:
        self.frames = [frame]
        self.received_at = received_at


class _Built:
    """A feed entry already numbered (drained once, and put back after a failed write): it keeps
    its number, so a write that reached Redis after all is recognised as a duplicate."""

    __slots__ = ("entry", "size")

    def __init__(self, entry: dict[bytes, bytes], size: int) -> None:
        self.entry = entry
        self.size = size  # frames (or 1 for a notice) it holds


class Outbox:
    """Feed entries waiting for Redis, bounded at ``limit`` frames plus notices: when full, the
    oldest go, so a long Redis outage costs bounded memory. Dropped REAL frames are counted in
    ``lost`` (announced to consumers as a gap) and ``lost_total``; dropped notices (heartbeats
    and the like) in ``lost_notices``. Frames with the same receive time (one socket read) that
    are still waiting share one entry, up to ``frames_per_entry``. Thread-safe: the session's
    reading thread puts, the publishing thread drains."""

    def __init__(self, limit: int = 100_000, frames_per_entry: int = 1000, relay: str = "") -> None:
        if limit < 1 or frames_per_entry < 1:
            raise ValueError("limit and frames_per_entry must be >= 1")
        self.limit = limit
        self.frames_per_entry = frames_per_entry
        self.lost = 0  # REAL frames dropped since the last ``take_lost``
        self.lost_total = 0
        self.lost_notices = 0
        self.relay = relay  # the relay's id, written into every entry with its number
        self.numbered = 0  # the number of the last entry drained
        self.announced = 0  # frames lost that the last ``drain`` announced
        self._entries: deque[_Frames | _Built | dict[bytes, bytes]] = deque()
        self._size = 0  # frames and notices waiting
        self._lock = threading.Lock()
        self._ready = threading.Event()

    def __len__(self) -> int:
        """Frames and notices waiting."""
        return self._size

    def put_frame(self, frame: bytes, received_at: float) -> None:
        """A REAL frame as received (joins the waiting entry of the same read, if any)."""
        with self._lock:
            entries = self._entries
            last = entries[-1] if entries else None
            if (type(last) is _Frames and last.received_at == received_at
                    and len(last.frames) < self.frames_per_entry):
                last.frames.append(frame)
            else:
                entries.append(_Frames(frame, received_at))
            self._size += 1
            self._trim()
        self._ready.set()

    def put(self, entry: dict[bytes, bytes]) -> None:
        """A notice or reply, ready as a feed entry."""
        with self._lock:
            self._entries.append(entry)
            self._size += 1
            self._trim()
        self._ready.set()

    def _trim(self) -> None:
        """Drop the oldest entries that were never written while over the limit. An entry put back
        after a failed write (at the front) may have reached Redis after all: it is kept, and
        written again (the consumers drop it by its number if it had), so the count of lost
        frames is exact. Only when nothing else is left does such an entry go, counted as lost."""
        entries = self._entries
        while self._size > self.limit:
            tried = 0  # entries put back after a failed write lead the queue
            while tried < len(entries) and type(entries[tried]) is _Built:
                tried += 1
            if tried == len(entries):
                built: _Built = entries.popleft()  # type: ignore[assignment]
                if built.entry.get(b"k") == REAL:
                    self.lost += built.size
                    self.lost_total += built.size
                else:
                    self.lost_notices += 1
                self._size -= built.size
                continue
            oldest = entries[tried]
            if type(oldest) is _Frames:
                oldest.frames.pop(0)
                if not oldest.frames:
                    del entries[tried]
                self.lost += 1
                self.lost_total += 1
            else:
                del entries[tried]
                self.lost_notices += 1
            self._size -= 1

    def wait(self, timeout: float) -> bool:
        """Block until something is queued (or ``timeout``); True if something is."""
        if self._entries:
            return True
        self._ready.wait(timeout)
        self._ready.clear()
        return bool(self._entries)

    def drain(self, count: int, gap: Callable[[int], dict[bytes, bytes]] | None = None) -> list[dict[bytes, bytes]]:
        """Remove up to ``count`` of the oldest entries and return them as feed entries, each
        numbered in the relay's order (an entry put back keeps its number). With ``gap``, frames
        lost since the last drain are announced by ``gap(lost)``, numbered in its place: after
        the entries put back (numbered before the loss) and before anything newer."""
        with self._lock:
            entries = self._entries
            taken = [entries.popleft() for _ in range(min(count, len(entries)))]
            lost = self.lost if gap is not None else 0
            self.lost -= lost
            self.announced = lost
            drained: list[dict[bytes, bytes]] = []
            for entry in [*taken, None] if lost else taken:
                if type(entry) is _Built:
                    self._size -= entry.size
                    drained.append(entry.entry)
                    continue
                if lost and gap is not None:
                    self.numbered += 1
                    drained.append(number_entry(gap(lost), self.relay, self.numbered))
                    lost = 0
                if entry is None:
                    continue
                if type(entry) is _Frames:
                    self._size -= len(entry.frames)
                    built = feed_frames(entry.frames, entry.received_at)
                else:
                    self._size -= 1
                    built = entry  # type: ignore[assignment]
                self.numbered += 1
                drained.append(number_entry(built, self.relay, self.numbered))
        return drained

    def requeue(self, batch: list[dict[bytes, bytes]], lost: int = 0) -> None:
        """Put back, in front and in order, a batch Redis did not take (numbered: each keeps its
        number), and the count of lost frames it was to announce (announced with the next batch)."""
        with self._lock:
            restored = [_Built(entry, self._frames_in(entry)) for entry in batch]
            self._size += sum(built.size for built in restored)
            self._entries.extendleft(reversed(restored))
            self.lost += lost
            self._trim()

    @staticmethod
    def _frames_in(entry: dict[bytes, bytes]) -> int:
        if entry.get(b"k") != REAL:
            return 1
        data, count, pos = entry[b"d"], 0, 0
        while pos < len(data):
            pos += 4 + int.from_bytes(data[pos:pos + 4], "big")
            count += 1
        return count

    def take_lost(self) -> int:
        """The frames lost since the last call (to announce them once)."""
        with self._lock:
            lost, self.lost = self.lost, 0
            return lost
