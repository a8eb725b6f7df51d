"""Recordings, by calling the module: what ``Recorder`` writes and ``read_recording`` reads back."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from kiwoom_rt import RecordingError
from kiwoom_rt.recording import Recorder, read_recording


@pytest.mark.parametrize("name", ["day.jsonl", "day.jsonl.gz"])
def test_frames_come_back_in_order_with_their_times(tmp_path: Path, name: str, no_thread_leak: None) -> None:
    path = tmp_path / name
    frames = [(1.5, b'{"trnm":"REAL","data":[]}'), (2.25, "{\"name\":\"주식체결\"}".encode()),
              (3.0, b"\xff\xfe not utf-8")]  # kept as base64, still byte for byte
    with Recorder(path, meta={"url": "ws://127.0.0.1/x"}) as recorder:
        for received_at, frame in frames:
            recorder(frame, received_at)
    assert recorder.frames_written == 3
    assert list(read_recording(path)) == frames
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as file:  # type: ignore[operator]
        header = json.loads(file.readline())
    assert header["kiwoom_rt_recording"] == 1
    assert header["url"] == "ws://127.0.0.1/x"


def test_a_recording_cut_short_ends_at_its_last_complete_line(tmp_path: Path, no_thread_leak: None) -> None:
    path = tmp_path / "crash.jsonl"
    with Recorder(path) as recorder:
        recorder(b'{"a":1}', 1.0)
    with path.open("a", encoding="utf-8") as file:
        file.write('{"t": 2.0, "frame": "{\\"b\\":')  # the writer died mid-line
    assert list(read_recording(path)) == [(1.0, b'{"a":1}')]


def test_a_recording_is_flushed_while_it_runs(tmp_path: Path, no_thread_leak: None) -> None:
    path = tmp_path / "live.jsonl.gz"
    recorder = Recorder(path, flush_interval=0.05)
    try:
        recorder(b'{"a":1}', 1.0)
        import time

        deadline = time.monotonic() + 5
        while recorder.frames_written < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert list(read_recording(path)) == [(1.0, b'{"a":1}')]  # readable before close
    finally:
        recorder.close()


@pytest.mark.parametrize(("content", "message"), [
    (b"", "no header line"),
    (b'{"something": "else"}\n', "no header line"),
    (b'{"kiwoom_rt_recording": 1}\n{"t": "soon", "frame": "x"}\n', "line 2: unreadable entry"),
    (b'{"kiwoom_rt_recording": 1}\n{"frame": "x"}\n', "line 2: unreadable entry"),
])
def test_unreadable_recordings_say_where(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=message):
        list(read_recording(path))


def test_missing_or_unwritable_files(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="cannot read"):
        list(read_recording(tmp_path / "nowhere.jsonl"))
    with pytest.raises(RecordingError, match="cannot write"):
        Recorder(tmp_path / "no" / "such" / "folder.jsonl")
    (tmp_path / "binary.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(RecordingError):
        list(read_recording(tmp_path / "binary.jsonl.gz"))


def test_the_old_replay_path_still_works_with_a_warning() -> None:
    """``kiwoom_rt.recording.ReplaySession`` moved to ``kiwoom_rt.replay`` (no import cycle)."""
    import kiwoom_rt.recording as recording
    from kiwoom_rt.replay import ReplaySession

    with pytest.warns(DeprecationWarning, match="moved"):
        assert recording.ReplaySession is ReplaySession
    with pytest.raises(AttributeError):
        recording.NoSuchThing  # noqa: B018
