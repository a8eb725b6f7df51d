"""Typed events as pandas tables, and recordings exported to Parquet or CSV.

Needs the ``frames`` extra (``pip install "kiwoom-rt[frames]"``: pandas and pyarrow); ``import
kiwoom_rt`` never imports it.

    from kiwoom_rt.frames import to_frame
    trades = to_frame(collected_trades)          # one row per event
    trades.groupby("code")["volume"].sum()

Columns: ``item``, ``code``, ``exchange``, ``received_at`` (a UTC timestamp), then the typed
headline fields of the type in declaration order. ``OrderBook`` and ``UsOrderBook`` add their
levels, flattened: ``ask_price_1`` ... ``ask_change_10`` and ``bid_price_1`` ... ``bid_change_10``
(empty levels are missing values). Times stay ``datetime.time`` as sent; missing values are
None/NaN. A recording of the US socket is read as a US session reads it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._bars import Bar
from ._fields import DATE, DURATION, ENTERED, INT, LAST, LAST_NUMBER, NUMBER, PRICE, RATE, SIDE, TEXT, TIME, UINT
from ._intake import Intake
from .events import (
    EVENT_TYPES,
    OrderBook,
    RealEvent,
    RealtimeEvent,
    UsOrderBook,
    headline_fields,
)
from .recording import read_header, read_recording, recording_exchanges

if TYPE_CHECKING:
    import pandas

__all__ = ["BAR_COLUMNS", "columns", "export", "export_bars", "iter_events", "to_frame"]

_BASE = ("item", "code", "exchange", "received_at")
_BOOK_LEVELS = 10
_BOOKS = (OrderBook, UsOrderBook)


def _book_columns() -> list[str]:
    return [f"{side}_{what}_{level}" for side in ("ask", "bid") for level in range(1, _BOOK_LEVELS + 1)
            for what in ("price", "quantity", "change")]


def columns(type_code: str) -> list[str]:
    """The column names ``to_frame`` gives events of ``type_code``."""
    cls = EVENT_TYPES.get(type_code)
    if cls is None:
        return [*_BASE, "type", "values"]
    names = [*_BASE, *(field.attr for field in headline_fields(cls))]
    if cls in _BOOKS:
        names += _book_columns()
    return names


def _row(event: RealtimeEvent) -> list[Any]:
    row: list[Any] = [event.item, event.code, event.exchange, event.received_at]
    if isinstance(event, RealEvent):
        return [*row, event.type, dict(event.values)]
    row += [getattr(event, field.attr) for field in headline_fields(type(event))]
    if isinstance(event, _BOOKS):
        for levels in (event.asks, event.bids):
            for index in range(_BOOK_LEVELS):
                row += levels[index] if index < len(levels) else (None, None, None)
    return row


def _frame(type_code: str, rows: list[list[Any]]) -> pandas.DataFrame:
    import pandas

    frame = pandas.DataFrame(rows, columns=columns(type_code))
    # microseconds, as received (and as the Parquet export stores them)
    frame["received_at"] = pandas.to_datetime(frame["received_at"], unit="s", utc=True).astype("datetime64[us, UTC]")
    return frame


#: The columns of a table of bars (``kiwoom_rt.bars.Bar``).
BAR_COLUMNS = ("item", "start", "end", "open", "high", "low", "close", "volume", "buy_volume", "sell_volume",
               "amount", "vwap", "trades", "complete", "final")


def _bar_row(bar: Bar) -> list[Any]:
    return [bar.item, bar.start, bar.end, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.buy_volume,
            bar.sell_volume, bar.amount, bar.vwap, bar.trades, bar.complete, bar.final]


def _bars_frame(rows: list[list[Any]]) -> pandas.DataFrame:
    import pandas

    return pandas.DataFrame(rows, columns=list(BAR_COLUMNS))


def to_frame(events: Iterable[RealtimeEvent | Bar]) -> pandas.DataFrame:
    """A DataFrame with one row per event, or per bar (``kiwoom_rt.bars``: columns
    ``BAR_COLUMNS``, times as aware timestamps in the exchange's zone). All rows must be of one
    type (ValueError otherwise)."""
    rows: list[list[Any]] = []
    type_code: str | None = None
    items = iter(events)
    first = next(items, None)
    if isinstance(first, Bar):
        rows.append(_bar_row(first))
        for bar in items:
            if not isinstance(bar, Bar):
                raise ValueError(f"to_frame needs bars or events of one type, got a Bar and {type(bar).__name__}")
            rows.append(_bar_row(bar))
        return _bars_frame(rows)
    if first is not None:
        type_code = first.type
        rows.append(_row(first))
    for event in items:
        if isinstance(event, Bar):
            raise ValueError("to_frame needs bars or events of one type, got an event and a Bar")
        if type_code is None:
            type_code = event.type
        elif event.type != type_code:
            raise ValueError(f"to_frame needs events of one type, got {type_code} and {event.type}")
        rows.append(_row(event))
    if type_code is None:
        raise ValueError("to_frame needs at least one event (the type decides the columns)")
    return _frame(type_code, rows)


def iter_events(recording: str | os.PathLike[str], types: Sequence[str] | None = None,
                errors: list[BaseException] | None = None) -> Iterator[RealtimeEvent]:
    """The events of a recording, decoded as a live session would, one at a time.

    Frames or entries that cannot be decoded are added to ``errors`` when given. An entry with
    some unusable values is still yielded, as live, and its ``DecodeError`` is added when one of
    those fields is first read (events are typed lazily). A recording of the US socket (its
    header says so) is read as a US session reads it.
    """
    wanted = None if types is None else set(types)
    decoded: list[RealtimeEvent] = []
    found: list[BaseException] = errors if errors is not None else []
    us = recording_exchanges(read_header(recording))
    intake = Intake(emit=decoded.extend, report=found.append, us=us)  # the live session's intake
    for received_at, frame in read_recording(recording):
        intake.decode((frame,), received_at)
        for event in decoded:
            if wanted is None or event.type in wanted:
                yield event
        decoded.clear()


def _arrow_table(type_code: str, rows: list[list[Any]]) -> Any:
    """A pyarrow table with a fixed schema per type, so every chunk of an export matches."""
    import pyarrow

    kinds = {PRICE: pyarrow.int64(), LAST: pyarrow.int64(), LAST_NUMBER: pyarrow.float64(),
             INT: pyarrow.int64(), UINT: pyarrow.int64(), NUMBER: pyarrow.float64(),
             RATE: pyarrow.float64(), TIME: pyarrow.time64("us"), TEXT: pyarrow.string(),
             ENTERED: pyarrow.bool_(), DURATION: pyarrow.duration("us"), DATE: pyarrow.date32(),
             SIDE: pyarrow.string()}
    cls = EVENT_TYPES[type_code]
    types = [pyarrow.string(), pyarrow.string(), pyarrow.string(), pyarrow.timestamp("us", tz="UTC")]
    types += [kinds[field.kind] for field in headline_fields(cls)]
    if cls in _BOOKS:
        price = pyarrow.float64() if cls is UsOrderBook else pyarrow.int64()
        types += [price if name.split("_")[1] == "price" else pyarrow.int64() for name in _book_columns()]
    names = columns(type_code)
    arrays = []
    for index, (name, arrow_type) in enumerate(zip(names, types, strict=True)):
        column = [row[index] for row in rows]
        if name == "received_at":
            column = [None if value is None else round(value * 1_000_000) for value in column]
        arrays.append(pyarrow.array(column, type=arrow_type))
    return pyarrow.Table.from_arrays(arrays, names=names)


def export(recording: str | os.PathLike[str], out: str | os.PathLike[str], type_code: str, *,
           chunk_rows: int = 100_000, errors: list[BaseException] | None = None) -> int:
    """Write the ``type_code`` events of a recording to ``out`` (``.parquet`` or ``.csv``).

    Streams: at most ``chunk_rows`` rows are held in memory, so a day of ticks fits. Returns the
    number of rows written. The file is written even when no event matched (with no rows).
    """
    if type_code not in EVENT_TYPES:
        raise ValueError(f"export needs a published type, not {type_code!r}")
    rows = (_row(event) for event in iter_events(recording, [type_code], errors))
    return _write(out, rows, lambda chunk: _frame(type_code, chunk), lambda chunk: _arrow_table(type_code, chunk),
                  chunk_rows, "export")


def export_bars(recording: str | os.PathLike[str], out: str | os.PathLike[str], interval: str | None = None, *,
                ticks: int | None = None, volume: int | None = None, types: Sequence[str] | None = None,
                items: Sequence[str] | None = None, grace: float = 2.0, fill_empty: bool = False,
                chunk_rows: int = 100_000, errors: list[BaseException] | None = None,
                late: list[Any] | None = None) -> int:
    """Build bars from a recording (``kiwoom_rt.bars.recording_bars``, the code a live ``BarFeed``
    runs) and write them to ``out`` (``.parquet`` or ``.csv``), streaming. Returns the bars written."""
    from .bars import recording_bars

    bars = recording_bars(recording, interval, ticks=ticks, volume=volume, types=types, items=items, grace=grace,
                          fill_empty=fill_empty, errors=errors, late=late)
    schema: Any = None

    def table(chunk: list[list[Any]]) -> Any:
        import pyarrow

        nonlocal schema
        frame = _bars_frame(chunk)
        if schema is None:  # one schema for the whole file: a recording across a DST switch still fits
            schema = _bar_schema(frame)
        return pyarrow.Table.from_pandas(frame, preserve_index=False, schema=schema)

    return _write(out, (_bar_row(bar) for bar in bars), _bars_frame, table, chunk_rows, "export_bars")


def _write(out: str | os.PathLike[str], rows: Iterable[list[Any]], to_frame: Callable[[list[list[Any]]], Any],
           to_table: Callable[[list[list[Any]]], Any], chunk_rows: int, what: str) -> int:
    """Stream ``rows`` to ``out`` (.csv through ``to_frame``, .parquet through ``to_table``), at
    most ``chunk_rows`` in memory; the file is written even with no rows. Returns the rows written."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"{what} writes .parquet or .csv, not {path.name!r}")
    writer: Any = None
    written = 0
    chunk: list[list[Any]] = []

    def flush() -> None:
        nonlocal writer, written
        if suffix == ".csv":
            to_frame(chunk).to_csv(path, mode="w" if writer is None else "a", header=writer is None, index=False)
            writer = True
        else:
            import pyarrow.parquet

            table = to_table(chunk)
            if writer is None:
                writer = pyarrow.parquet.ParquetWriter(path, table.schema)
            writer.write_table(table)
        written += len(chunk)
        chunk.clear()

    try:
        for row in rows:
            chunk.append(row)
            if len(chunk) >= chunk_rows:
                flush()
        if chunk or writer is None:
            flush()
    finally:
        if writer is not None and writer is not True:
            writer.close()
    return written


def _bar_schema(frame: pandas.DataFrame) -> Any:
    """One schema for every chunk: times in the zone of the first bar (one market per recording)."""
    import pyarrow

    zone = "+09:00"
    if len(frame):
        offset = frame["start"].iloc[0].utcoffset()
        minutes = int(offset.total_seconds() // 60)
        zone = f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    stamp = pyarrow.timestamp("us", tz=zone)
    return pyarrow.schema([("item", pyarrow.string()), ("start", stamp), ("end", stamp), ("open", pyarrow.float64()),
                           ("high", pyarrow.float64()), ("low", pyarrow.float64()), ("close", pyarrow.float64()),
                           ("volume", pyarrow.int64()), ("buy_volume", pyarrow.int64()),
                           ("sell_volume", pyarrow.int64()), ("amount", pyarrow.float64()),
                           ("vwap", pyarrow.float64()), ("trades", pyarrow.int64()), ("complete", pyarrow.bool_()),
                           ("final", pyarrow.bool_())])
