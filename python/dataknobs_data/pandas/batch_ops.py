"""Moving DataFrames in and out of a database with its batch and streaming verbs.

:class:`BatchOperations` writes a DataFrame chunk by chunk, one ``create_batch`` or
``update_batch`` call per chunk, and reads query results through ``stream_read`` page by page
into columns, so no call is made per row. Its methods are synchronous, as in 0.11.0, and take
a sync or an async database. With an async database they also work when the calling thread
is already running an event loop (inside ``async def`` code, a notebook, a web handler): the
database work then runs to completion on a helper thread with its own loop while the caller
waits. Our backends' connections belong to no event loop, so this is safe for them; a user
backend whose connections are tied to the caller's loop should be given a sync twin instead.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pandas as pd

from dataknobs_data.database import AsyncDatabase
from dataknobs_data.exceptions import ConfigurationError, DataFormatError, SerializationError
from dataknobs_data.query import Query
from dataknobs_data.streaming import StreamConfig

from .columns import python_values
from .converter import RECORD_ID_INDEX, ColumnCollector, ConversionOptions, DataFrameConverter
from .type_mapper import is_missing

if TYPE_CHECKING:
    from dataknobs_data.database import AnyQuery, SyncDatabase
    from dataknobs_data.records import Record

__all__ = ["BatchConfig", "BatchOperations", "ChunkedProcessor"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: Records gathered before they become columns, and the page size asked of stream_read.
PAGE_SIZE = 10_000
_ERROR_HANDLING = ("raise", "skip", "log")


@dataclass
class BatchConfig:
    """How :class:`BatchOperations` writes.

    Args:
        chunk_size: Rows per chunk; each chunk is one batch call.
        parallel: Accepted for 0.11.0 code; chunks are written one after another (each is
            a single bulk call that the backend already runs as one operation).
        max_workers: Accepted with ``parallel``; not used.
        progress_callback: Called after each chunk with (rows done, rows in total).
        error_handling: "raise" (the first failing chunk raises; it stored nothing, the
            chunks before it stay stored), "skip" (failing rows are counted and left out) or
            "log" (as skip, and each error is logged and listed in the result's "errors").
        memory_efficient: Convert and write chunk by chunk; False makes the whole frame one
            batch.

    Raises:
        ConfigurationError: chunk_size is not positive, or error_handling is unknown.
    """

    chunk_size: int = 1000
    parallel: bool = False
    max_workers: int = 4
    progress_callback: Callable[[int, int], None] | None = None
    error_handling: str = "raise"
    memory_efficient: bool = True

    def __post_init__(self) -> None:
        if self.chunk_size <= 0:
            raise ConfigurationError("chunk_size", "chunk_size must be greater than 0")
        if self.error_handling not in _ERROR_HANDLING:
            raise ConfigurationError(
                "error_handling", "error_handling must be one of: 'raise', 'skip', 'log'"
            )


class ChunkedProcessor:
    """Runs a function over a DataFrame (or a CSV file) ``chunk_size`` rows at a time."""

    def __init__(self, chunk_size: int = 1000) -> None:
        if chunk_size <= 0:
            raise ConfigurationError("chunk_size", "chunk_size must be greater than 0")
        self.chunk_size = chunk_size

    def iter_chunks(self, df: pd.DataFrame) -> Generator[pd.DataFrame, None, None]:
        """Consecutive row slices of ``df`` (views, not copies)."""
        for start in range(0, len(df), self.chunk_size):
            yield df.iloc[start : start + self.chunk_size]

    def process_dataframe(
        self,
        df: pd.DataFrame,
        processor: Callable[[pd.DataFrame], Any],
        combine: Callable[[list[Any]], Any] | None = None,
    ) -> Any:
        """``processor`` applied to each chunk; the list of results, or ``combine(list)``."""
        results = [processor(chunk) for chunk in self.iter_chunks(df)]
        return combine(results) if combine is not None else results

    def read_csv_chunked(
        self, filepath: str, processor: Callable[[pd.DataFrame], Any], **read_kwargs: Any
    ) -> list[Any]:
        """``processor`` applied to each chunk of a CSV file read with ``pd.read_csv``."""
        with pd.read_csv(filepath, chunksize=self.chunk_size, **read_kwargs) as reader:
            return [processor(chunk) for chunk in reader]


class BatchOperations:
    """DataFrame loads, queries, updates and exports over one database (sync or async)."""

    def __init__(
        self, database: AsyncDatabase | SyncDatabase, converter: DataFrameConverter | None = None
    ) -> None:
        self.database = database
        self.converter = converter or DataFrameConverter()
        self.is_async = isinstance(database, AsyncDatabase) or inspect.iscoroutinefunction(
            getattr(database, "create", None)
        )

    # ------------------------------------------------------------------ writes

    def bulk_insert_dataframe(
        self,
        df: pd.DataFrame,
        config: BatchConfig | None = None,
        conversion_options: ConversionOptions | None = None,
    ) -> dict[str, Any]:
        """Create one record per row, one ``create_batch`` per chunk.

        Returns ``{"total_rows", "inserted", "failed", "errors"}``. A chunk with a row that
        cannot be created (a duplicate id, a value no backend stores) stores nothing; under
        "raise" the error propagates (with a note of how many rows earlier chunks stored),
        under "skip"/"log" the chunk's rows are retried one by one and the failures counted.
        """
        cfg = config or BatchConfig()
        opts = conversion_options or ConversionOptions()
        stats: dict[str, Any] = {"total_rows": len(df), "inserted": 0, "failed": 0, "errors": []}

        async def work() -> dict[str, Any]:
            done = 0
            for chunk in self._chunks(df, cfg):
                records = self.converter.dataframe_to_records(chunk, opts)
                await self._insert_chunk(records, done, cfg, stats)
                done += len(records)
                if cfg.progress_callback is not None:
                    cfg.progress_callback(done, len(df))
            return stats

        return self._run(work())

    def update_from_dataframe(
        self,
        df: pd.DataFrame,
        id_column: str | None,
        config: BatchConfig | None = None,
        conversion_options: ConversionOptions | None = None,
    ) -> dict[str, Any]:
        """Replace the record of each row, one ``update_batch`` per chunk.

        The id of a row is its ``id_column`` cell, or its index label when ``id_column`` is
        None (the id column stays in the record's data). Returns ``{"total_rows", "updated",
        "failed", "not_found", "errors"}``.

        Raises:
            ConfigurationError: ``id_column`` is not a column of ``df``.
            DataFormatError: a row has no id; checked before anything is written.
        """
        cfg = config or BatchConfig()
        opts = conversion_options or ConversionOptions()
        if id_column is not None and id_column not in df.columns:
            raise ConfigurationError("id_column", f"ID column '{id_column}' not found in DataFrame")
        source = df.index.to_series() if id_column is None else df[id_column]
        ids: list[str] = []
        for position, value in enumerate(python_values(source)):
            if is_missing(value):
                where = "index" if id_column is None else f"column {id_column!r}"
                raise DataFormatError("dataframe", f"row {position} has no id in its {where}")
            ids.append(value if isinstance(value, str) else str(value))
        stats: dict[str, Any] = {
            "total_rows": len(df),
            "updated": 0,
            "failed": 0,
            "not_found": 0,
            "errors": [],
        }

        async def work() -> dict[str, Any]:
            done = 0
            for chunk in self._chunks(df, cfg):
                records = self.converter.dataframe_to_records(chunk, opts)
                updates = list(zip(ids[done : done + len(records)], records, strict=True))
                await self._update_chunk(updates, cfg, stats)
                done += len(records)
                if cfg.progress_callback is not None:
                    cfg.progress_callback(done, len(df))
            return stats

        return self._run(work())

    def transform_and_save(
        self,
        query: Query,
        transformer: Callable[[pd.DataFrame], pd.DataFrame],
        config: BatchConfig | None = None,
    ) -> dict[str, Any]:
        """Query into a DataFrame, ``transformer`` it, and write the result back.

        The frame handed to ``transformer`` always carries the record ids: in the index
        (``record_id``) or, when the records hold their id in a data field, in that column.
        A result that still carries them updates those records (``update_from_dataframe``);
        one that does not is inserted as new records. An empty query result returns
        ``{"total_rows": 0, "transformed": 0}`` without calling ``transformer``.
        """
        cfg = config or BatchConfig()
        df = self._query_frame(query, ConversionOptions(), keep_ids=True)
        if df.empty:
            return {"total_rows": 0, "transformed": 0}
        out = transformer(df)
        if out.index.name == RECORD_ID_INDEX:
            return self.update_from_dataframe(out, None, cfg)
        for column in ("id", RECORD_ID_INDEX):
            if column in df.columns and column in out.columns:
                return self.update_from_dataframe(out, column, cfg)
        return self.bulk_insert_dataframe(out, cfg)

    # ------------------------------------------------------------------ reads

    def query_as_dataframe(
        self, query: Query | None, conversion_options: ConversionOptions | None = None
    ) -> pd.DataFrame:
        """The records matching ``query`` (None: all) as a DataFrame, streamed page by page
        into columns. Sort, offset, limit and projection of the query apply."""
        return self._query_frame(query, conversion_options or ConversionOptions(), False)

    def aggregate(
        self,
        query: Query,
        aggregations: dict[str, str | Callable[..., Any]],
        group_by: list[str] | None = None,
    ) -> pd.DataFrame:
        """pandas aggregations over the query's records.

        With ``group_by`` it is ``df.groupby(group_by).agg(aggregations)``; without, one row
        with a ``{column}_{name}`` (or ``{column}_agg`` for a callable) entry per
        aggregation over a column that exists. An empty result is an empty DataFrame.
        """
        df = self.query_as_dataframe(query)
        if df.empty:
            return pd.DataFrame()
        if group_by:
            return df.groupby(group_by).agg(aggregations)
        row: dict[str, Any] = {}
        for column, how in aggregations.items():
            if column not in df.columns:
                continue
            if isinstance(how, str):
                row[f"{column}_{how}"] = df[column].agg(how)
            else:
                row[f"{column}_agg"] = how(df[column])
        return pd.DataFrame([row])

    def export_to_csv(
        self,
        query: Query,
        filepath: str,
        conversion_options: ConversionOptions | None = None,
        **to_csv_kwargs: Any,
    ) -> None:
        """Write the query's records to a CSV file (``DataFrame.to_csv`` keyword arguments
        pass through)."""
        self.query_as_dataframe(query, conversion_options).to_csv(filepath, **to_csv_kwargs)

    def export_to_parquet(
        self,
        query: Query,
        filepath: str,
        conversion_options: ConversionOptions | None = None,
        **to_parquet_kwargs: Any,
    ) -> None:
        """Write the query's records to a Parquet file (``DataFrame.to_parquet`` keyword
        arguments pass through).

        Raises:
            SerializationError: a column holds values Parquet cannot store together (for
                instance dicts and numbers mixed); nothing is written then.
        """
        import pyarrow as pa

        df = self.query_as_dataframe(query, conversion_options)
        try:
            # pyarrow converts the whole frame before it opens the file.
            df.to_parquet(filepath, **to_parquet_kwargs)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise SerializationError("parquet", str(exc)) from exc

    # ------------------------------------------------------------------ internals

    def _chunks(self, df: pd.DataFrame, cfg: BatchConfig) -> Iterator[pd.DataFrame]:
        if not cfg.memory_efficient or len(df) <= cfg.chunk_size:
            return iter([df])
        return ChunkedProcessor(cfg.chunk_size).iter_chunks(df)

    def _query_frame(
        self, query: AnyQuery | None, opts: ConversionOptions, keep_ids: bool
    ) -> pd.DataFrame:
        async def work() -> pd.DataFrame:
            collector = ColumnCollector(opts, keep_ids=keep_ids)
            stream: Any = self.database.stream_read(
                query if query is not None else Query(), StreamConfig(batch_size=PAGE_SIZE)
            )
            if inspect.isawaitable(stream):
                stream = await stream
            page: list[Record] = []
            if hasattr(stream, "__aiter__"):
                async for record in stream:
                    page.append(record)
                    if len(page) >= PAGE_SIZE:
                        collector.add_page(page)
                        page = []
            else:
                for record in stream:
                    page.append(record)
                    if len(page) >= PAGE_SIZE:
                        collector.add_page(page)
                        page = []
            collector.add_page(page)
            return collector.frame(self.converter.type_mapper)

        return self._run(work())

    async def _insert_chunk(
        self, records: list[Record], first_row: int, cfg: BatchConfig, stats: dict[str, Any]
    ) -> None:
        db: Any = self.database
        try:
            ids = await _call(db.create_batch, records)
        except Exception as exc:
            if cfg.error_handling == "raise":
                exc.add_note(
                    f"this chunk (rows from {first_row}) stored nothing; "
                    f"the {first_row} rows before it are stored"
                )
                raise
            # The batch stored nothing; stream_write retries its rows one by one and reports
            # each failure with its index.
            keep_going = StreamConfig(batch_size=len(records), on_error=lambda _e, _r: True)
            result = await _call(db.stream_write, records, keep_going)
            stats["inserted"] += result.successful
            stats["failed"] += result.failed
            for error in result.errors:
                self._report(cfg, stats, f"row {first_row + error['index']}", error["error"])
            return
        stats["inserted"] += len(ids)

    async def _update_chunk(
        self, updates: list[tuple[str, Record]], cfg: BatchConfig, stats: dict[str, Any]
    ) -> None:
        db: Any = self.database
        try:
            outcomes = await _call(db.update_batch, updates)
        except Exception:
            if cfg.error_handling == "raise":
                raise
            outcomes = []
            for record_id, record in updates:
                try:
                    outcomes.append(await _call(db.update, record_id, record))
                except Exception as exc:
                    stats["failed"] += 1
                    self._report(cfg, stats, f"record {record_id}", str(exc))
        for ok in outcomes:
            stats["updated" if ok else "not_found"] += 1

    @staticmethod
    def _report(cfg: BatchConfig, stats: dict[str, Any], where: str, error: str) -> None:
        if cfg.error_handling == "log":
            logger.error("Failed to write %s: %s", where, error)
            stats["errors"].append(error)

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run one operation's coroutine to its end, whatever thread and loop we are on."""
        if not self.is_async:
            return _run_inline(work)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(work)
        # This thread's loop is busy running our caller: give the work a loop of its own.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataknobs-pandas") as pool:
            return pool.submit(asyncio.run, work).result()


async def _call(method: Callable[..., Any], *args: Any) -> Any:
    """Call a database method, awaiting its result when it is awaitable (async databases)."""
    result = method(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _run_inline(work: Coroutine[Any, Any, T]) -> T:
    # With a sync database nothing is ever awaited for real, so the coroutine finishes on
    # its first step and no event loop is needed (or disturbed, if one is running).
    try:
        work.send(None)
    except StopIteration as done:
        return cast("T", done.value)
    work.close()
    raise RuntimeError("a sync database returned an awaitable that had to wait")
