"""The chunked frame reader's parser, fed bytes directly (no socket)."""

from __future__ import annotations

import os

import pytest

from kiwoom_rt._transport import ChunkedFrameReader


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[bytes, int]] = []
        self.oversized: list[int] = []
        self.pings: list[bytes] = []
        self.closed: list[tuple[int, str]] = []
        self.chunks = 0

    def on_message(self, payload: bytes, opcode: int) -> None:
        self.messages.append((payload, opcode))

    def on_chunk_done(self) -> None:
        self.chunks += 1

    def on_oversized(self, size: int) -> None:
        self.oversized.append(size)

    def on_ws_ping(self, payload: bytes) -> None:
        self.pings.append(payload)

    def on_close_frame(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))


def frame(payload: bytes, opcode: int = 1, fin: bool = True, mask: bytes | None = None) -> bytes:
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if mask else 0
    if size < 126:
        head = bytes([first, mask_bit | size])
    elif size < 65536:
        head = bytes([first, mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([first, mask_bit | 127]) + size.to_bytes(8, "big")
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


class FakeSocket:
    """Serves prepared chunks to recv(), then end of stream."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    def settimeout(self, value: float | None) -> None:
        pass

    def recv(self, size: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


def read_all(chunks: list[bytes], max_frame_bytes: int = 1 << 20) -> tuple[Recorder, ChunkedFrameReader]:
    recorder = Recorder()
    reader = ChunkedFrameReader(recorder, max_frame_bytes=max_frame_bytes)
    reader.read(FakeSocket(chunks))
    return recorder, reader


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 100, 65536])
def test_frames_of_every_length_survive_any_split(piece: int) -> None:
    payloads = [b"", b"x" * 125, b"y" * 126, b"z" * 65535, b"w" * 65536, os.urandom(70_000)]
    data = b"".join(frame(p, opcode=2) for p in payloads)
    recorder, reader = read_all(split_every(data, piece))
    assert [p for p, _ in recorder.messages] == payloads
    assert isinstance(reader.end_error, EOFError)


def test_fragmented_message_is_reassembled() -> None:
    data = frame(b"ab", fin=False) + frame(b"cd", opcode=0, fin=False) + frame(b"ef", opcode=0)
    recorder, _ = read_all([data])
    assert recorder.messages == [(b"abcdef", 1)]


def test_masked_frames_are_unmasked() -> None:
    recorder, _ = read_all([frame(b'{"trnm":"PING"}', mask=b"\x01\x02\x03\x04")])
    assert recorder.messages == [(b'{"trnm":"PING"}', 1)]


def test_oversized_frame_is_skipped_and_reported_and_reading_continues() -> None:
    data = frame(b"a" * 5000) + frame(b"after")
    recorder, _ = read_all(split_every(data, 700), max_frame_bytes=1024)
    assert recorder.oversized == [5000]
    assert recorder.messages == [(b"after", 1)]


def test_oversized_fragmented_message_is_skipped() -> None:
    data = frame(b"a" * 800, fin=False) + frame(b"b" * 800, opcode=0) + frame(b"ok")
    recorder, _ = read_all([data], max_frame_bytes=1024)
    assert recorder.oversized == [1600]
    assert recorder.messages == [(b"ok", 1)]


def test_ping_and_close_control_frames() -> None:
    data = frame(b"hi", opcode=9) + frame((1001).to_bytes(2, "big") + b"bye", opcode=8) + frame(b"never")
    recorder, reader = read_all([data])
    assert recorder.pings == [b"hi"]
    assert recorder.closed == [(1001, "bye")]
    assert recorder.messages == []
    assert reader.end_error is None


def test_many_frames_in_one_chunk_make_one_chunk_callback() -> None:
    data = b"".join(frame(b"%d" % i) for i in range(500))
    recorder, _ = read_all([data])
    assert len(recorder.messages) == 500
    assert recorder.chunks == 1
