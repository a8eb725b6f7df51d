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
        self.text_calls = 0
        self.log: list[str] = []  # what came, in order

    def on_texts(self, payloads: list[bytes]) -> None:
        self.text_calls += 1
        self.messages += [(payload, 1) for payload in payloads]
        self.log += [payload.decode(errors="replace")[:10] for payload in payloads]

    def on_binary(self, payload: bytes) -> None:
        self.messages.append((payload, 2))
        self.log.append("binary")

    def on_step(self, payloads: list[bytes]) -> None:
        self.chunks += 1
        if payloads:
            self.on_texts(payloads)

    def on_oversized(self, size: int) -> None:
        self.oversized.append(size)
        self.log.append("oversized")

    def on_ws_ping(self, payload: bytes) -> None:
        self.pings.append(payload)

    def on_close_frame(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))
        self.log.append("close")


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
    """Serves prepared chunks to recv_into() (as much of each as fits), then end of stream."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.sizes: list[int] = []  # the buffer size offered by each read

    def settimeout(self, value: float | None) -> None:
        pass

    def recv_into(self, buffer: bytearray) -> int:
        self.sizes.append(len(buffer))
        if not self.chunks:
            return 0
        chunk = self.chunks.pop(0)
        taken, rest = chunk[:len(buffer)], chunk[len(buffer):]
        if rest:
            self.chunks.insert(0, rest)
        buffer[:len(taken)] = taken
        return len(taken)


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
    assert recorder.text_calls == 1  # the text frames of one read arrive as one list


def test_text_frames_keep_their_place_around_binary_oversized_and_close_frames() -> None:
    data = (frame(b"one") + frame(b"bin", opcode=2) + frame(b"two") + frame(b"a" * 2000) + frame(b"three")
            + frame((1000).to_bytes(2, "big"), opcode=8) + frame(b"never"))
    recorder, _ = read_all([data], max_frame_bytes=1024)
    assert recorder.log == ["one", "binary", "two", "oversized", "three", "close"]


def test_the_read_buffer_grows_while_reads_come_back_full() -> None:
    data = b"".join(frame(b"x" * 100) for i in range(20_000))  # about 2 MB waiting in the kernel
    recorder = Recorder()
    reader = ChunkedFrameReader(recorder, bufsize=64 * 1024, max_bufsize=1024 * 1024)
    sock = FakeSocket([data])
    reader.read(sock)
    assert len(recorder.messages) == 20_000
    assert sock.sizes[:5] == [64 * 1024, 128 * 1024, 256 * 1024, 512 * 1024, 1024 * 1024]
    assert max(sock.sizes) == 1024 * 1024  # and no further
    assert reader.reads == len(sock.sizes) - 1  # the last read saw the end of the stream
