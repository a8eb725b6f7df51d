"""kiwoom_rt.frames: typed events as DataFrames, and recordings exported in chunks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from kiwoom_rt import OrderBook, Trade, protocol
from kiwoom_rt.recording import Recorder
from kiwoom_rt.replay import ReplaySession
from kiwoom_rt.sim.market import AfterHoursMarket, RegularMarket

from .helpers import Collector

pandas = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from kiwoom_rt.frames import columns, export, iter_events, to_frame  # noqa: E402


def frame_of(type_code: str, values: dict[str, str], item: str = "005930") -> bytes:
    return json.dumps({"trnm": "REAL", "data": [{"type": type_code, "name": "", "item": item,
                                                 "values": values}]}, ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording of a regular session: 0B and 0D of two items, one bad frame, some 0E."""
    path = tmp_path_factory.mktemp("rec") / "session.jsonl.gz"
    market, after = RegularMarket(5), AfterHoursMarket(5)
    with Recorder(path) as recorder:
        for index in range(500):
            item = ("005930", "000660_NX")[index % 2]
            moment = dt.time(10, 0, index // 10 % 60)
            recorder(frame_of("0D", market.book(item, moment), item), 1_700_000_000.0 + index)
            recorder(frame_of("0B", market.trade(item, moment), item), 1_700_000_000.5 + index)
            if index % 50 == 0:
                recorder(frame_of("0E", after.quote(item, moment), item), 1_700_000_000.7 + index)
        recorder(b"not json", 1_700_001_000.0)
    return path


def test_to_frame_columns_and_values(recording: Path) -> None:
    trades = [e for e in iter_events(recording) if isinstance(e, Trade)]
    table = to_frame(trades)
    assert list(table.columns) == columns("0B")
    assert list(table.columns[:4]) == ["item", "code", "exchange", "received_at"]
    assert len(table) == len(trades) == 500
    assert list(table["price"]) == [t.price for t in trades]
    assert list(table["exchange"].unique()) == ["KRX", "NXT"]
    assert table["received_at"].iloc[0] == pandas.Timestamp(1_700_000_000.5, unit="s", tz="UTC")
    assert table["time"].iloc[0] == trades[0].time
    by_code = table.groupby("code")["volume"].apply(lambda v: v.abs().sum())
    last = {t.code: t.cumulative_volume for t in trades}
    assert by_code.to_dict() == last  # cumulative volume is the sum of the trades' volumes


def test_to_frame_flattens_book_levels(recording: Path) -> None:
    books = [e for e in iter_events(recording, ["0D"])]
    table = to_frame(books)
    first: OrderBook = books[0]  # type: ignore[assignment]
    assert table["ask_price_1"].iloc[0] == first.asks[0].price
    assert table["bid_quantity_10"].iloc[0] == first.bids[9].quantity
    assert (table["bid_total"] == table[[f"bid_quantity_{i}" for i in range(1, 11)]].sum(axis=1)).all()


def test_to_frame_refuses_mixed_types_and_nothing(recording: Path) -> None:
    events = list(iter_events(recording))
    with pytest.raises(ValueError, match="one type"):
        to_frame(events)
    with pytest.raises(ValueError, match="at least one"):
        to_frame([])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_streams_in_chunks_and_matches_to_frame(recording: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"trades{suffix}"
    errors: list[BaseException] = []
    rows = export(recording, out, "0B", chunk_rows=64, errors=errors)  # 500 rows: 8 chunks
    assert rows == 500
    assert len(errors) == 1  # the bad frame, reported, not fatal
    written = pandas.read_csv(out) if suffix == ".csv" else pandas.read_parquet(out)
    expected = to_frame(iter_events(recording, ["0B"]))
    assert list(written.columns) == list(expected.columns)
    assert list(written["price"]) == list(expected["price"])
    assert list(written["volume"]) == list(expected["volume"])
    if suffix == ".parquet":
        assert list(written["time"]) == list(expected["time"])
        assert written["received_at"].equals(expected["received_at"])


def test_export_of_a_type_with_blanks_keeps_one_schema(tmp_path: Path) -> None:
    path = tmp_path / "blanks.jsonl"
    market = RegularMarket(1)
    with Recorder(path) as recorder:
        for index in range(10):
            values = market.book("005930", dt.time(10, 0))
            if index >= 5:
                values["23"], values["24"] = "20850", "100"  # expected fields appear later
            recorder(frame_of("0D", values), float(index))
    out = tmp_path / "books.parquet"
    assert export(path, out, "0D", chunk_rows=3) == 10
    table = pandas.read_parquet(out)
    assert table["expected_price"].isna().sum() == 5
    assert table["expected_price"].dropna().tolist() == [20850] * 5


def test_recording_round_trip_gives_equal_typed_events(recording: Path) -> None:
    direct = list(iter_events(recording))
    replayed = Collector()
    replay = ReplaySession(recording, speed=None)
    replay.on_real.connect(replayed)
    with replay:
        assert replay.wait(20)
    replay.close()
    assert replayed.events == direct  # typed equality: class, item and values
    assert [type(e) for e in replayed.events] == [type(e) for e in direct]
    assert {type(e).__name__ for e in direct} == {"Trade", "OrderBook", "AfterHoursQuote"}
    live = protocol.decode(frame_of("0B", dict(direct[1].values), direct[1].item))
    assert live.events[0] == direct[1]  # type: ignore[union-attr]
